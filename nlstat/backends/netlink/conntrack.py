"""Conntrack table over ctnetlink (NETLINK_NETFILTER, IPCTNL_MSG_CT_GET dump) -> ConntrackEntry.

The answer is one message per entry: nlmsghdr, struct nfgenmsg, then attributes, the two
tuples nested as CTA_TUPLE_{ORIG,REPLY} > CTA_TUPLE_IP / CTA_TUPLE_PROTO > leaf attributes.
Integers in ctnetlink attributes are big-endian. The walk is written out with precompiled
structs rather than through a generic attribute iterator: a NAT box can hold hundreds of
thousands of entries, and this decoder is what `-M` spends its time in: ten times faster than
pyroute2's, whose import alone costs more than this dump, which is why pyroute2 serves only
as the tests' reference decoder.
"""

from __future__ import annotations

import _socket
import errno
import struct
from typing import Iterable, Iterator, Tuple

from nlstat.backends.netlink.nlsocket import NetlinkSocket, iter_attrs, messages
from nlstat.errors import BackendUnavailable
from nlstat.kernel.conntrack import (
    CTA_ID,
    CTA_IP_V4_DST,
    CTA_IP_V4_SRC,
    CTA_IP_V6_DST,
    CTA_IP_V6_SRC,
    CTA_MARK,
    CTA_PROTO_DST_PORT,
    CTA_PROTO_ICMP_CODE,
    CTA_PROTO_ICMP_ID,
    CTA_PROTO_ICMP_TYPE,
    CTA_PROTO_ICMPV6_CODE,
    CTA_PROTO_ICMPV6_ID,
    CTA_PROTO_ICMPV6_TYPE,
    CTA_PROTO_NUM,
    CTA_PROTO_SRC_PORT,
    CTA_SEQ_ADJ_ORIG,
    CTA_SEQADJ_CORRECTION_POS,
    CTA_SEQADJ_OFFSET_AFTER,
    CTA_SEQADJ_OFFSET_BEFORE,
    CTA_STATUS,
    CTA_TIMEOUT,
    CTA_TUPLE_IP,
    CTA_TUPLE_ORIG,
    CTA_TUPLE_PROTO,
    CTA_TUPLE_REPLY,
    CTA_ZONE,
    IPCTNL_MSG_CT_GET,
    IPCTNL_MSG_CT_NEW,
    NFGENMSG,
    NFNETLINK_V0,
    NFNL_SUBSYS_CTNETLINK,
)
from nlstat.kernel.netlink import NETLINK_NETFILTER, NLA_TYPE_MASK, NLATTR, NLMSGHDR
from nlstat.model.conntrack import ConntrackEntry

_BE16 = struct.Struct("!H")
_BE32 = struct.Struct("!I")
_BE32_SIGNED = struct.Struct("!i")

CT_GET = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET
CT_NEW = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW

# (address, address, protocol, source "port", destination "port")
Tuple5 = Tuple[str, str, int, int, int]
_EMPTY_TUPLE: Tuple5 = ("", "", 0, 0, 0)


def dump_request(family: int) -> bytes:
    """The nfgenmsg payload of a CT_GET dump for one family (AF_INET; AF_UNSPEC for all)."""
    return NFGENMSG.pack(family, NFNETLINK_V0, 0)


def _tuple(buf: bytes, pos: int, end: int) -> Tuple5:
    """CTA_TUPLE_* payload -> (source, destination, protocol, sport, dport)."""
    unpack_attr = NLATTR.unpack_from
    src = dst = ""
    proto = sport = dport = 0
    icmp_type = icmp_code = 0
    is_icmp = False
    while pos + 4 <= end:
        length, kind = unpack_attr(buf, pos)
        if length < 4:
            break
        kind &= NLA_TYPE_MASK
        inner = pos + 4
        stop = pos + length
        if kind == CTA_TUPLE_IP:
            while inner + 4 <= stop:
                ip_length, ip_kind = unpack_attr(buf, inner)
                if ip_length < 4:
                    break
                ip_kind &= NLA_TYPE_MASK
                if ip_kind == CTA_IP_V4_SRC:
                    src = _socket.inet_ntop(_socket.AF_INET, buf[inner + 4 : inner + 8])
                elif ip_kind == CTA_IP_V4_DST:
                    dst = _socket.inet_ntop(_socket.AF_INET, buf[inner + 4 : inner + 8])
                elif ip_kind == CTA_IP_V6_SRC:
                    src = _socket.inet_ntop(_socket.AF_INET6, buf[inner + 4 : inner + 20])
                elif ip_kind == CTA_IP_V6_DST:
                    dst = _socket.inet_ntop(_socket.AF_INET6, buf[inner + 4 : inner + 20])
                inner += (ip_length + 3) & ~3
        elif kind == CTA_TUPLE_PROTO:
            while inner + 4 <= stop:
                l4_length, l4_kind = unpack_attr(buf, inner)
                if l4_length < 4:
                    break
                l4_kind &= NLA_TYPE_MASK
                value = inner + 4
                if l4_kind == CTA_PROTO_NUM:
                    proto = buf[value]
                elif l4_kind == CTA_PROTO_SRC_PORT:
                    (sport,) = _BE16.unpack_from(buf, value)
                elif l4_kind == CTA_PROTO_DST_PORT:
                    (dport,) = _BE16.unpack_from(buf, value)
                elif l4_kind in (CTA_PROTO_ICMP_ID, CTA_PROTO_ICMPV6_ID):
                    (sport,) = _BE16.unpack_from(buf, value)
                    is_icmp = True
                elif l4_kind in (CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMPV6_TYPE):
                    icmp_type = buf[value]
                    is_icmp = True
                elif l4_kind in (CTA_PROTO_ICMP_CODE, CTA_PROTO_ICMPV6_CODE):
                    icmp_code = buf[value]
                    is_icmp = True
                inner += (l4_length + 3) & ~3
        pos += (length + 3) & ~3
    if is_icmp:
        # The kernel keeps type and code in the tuple's destination "u.all" (type first).
        dport = (icmp_type << 8) | icmp_code
    return src, dst, proto, sport, dport


def _seqadj(buf: bytes, pos: int, end: int) -> Tuple[int, int, int]:
    """CTA_SEQ_ADJ_* payload -> (correction position, offset before, offset after)."""
    position = before = after = 0
    for kind, value, _stop in iter_attrs(buf, pos, end):
        if kind == CTA_SEQADJ_CORRECTION_POS:
            (position,) = _BE32.unpack_from(buf, value)
        elif kind == CTA_SEQADJ_OFFSET_BEFORE:
            (before,) = _BE32_SIGNED.unpack_from(buf, value)
        elif kind == CTA_SEQADJ_OFFSET_AFTER:
            (after,) = _BE32_SIGNED.unpack_from(buf, value)
    return position, before, after


def decode_entry(buf: bytes, offset: int, length: int) -> ConntrackEntry:
    """One CT_NEW message at buf[offset:offset + length] -> a ConntrackEntry.

    A message cut short or with lengths that do not add up raises BackendUnavailable (EBADMSG),
    so a damaged answer or file ends in one message (or the /proc fallback), not a traceback.
    """
    try:
        return _decode_entry(buf, offset, min(offset + length, len(buf)))
    except (struct.error, ValueError, IndexError) as err:
        raise BackendUnavailable(f"malformed ctnetlink message: {err}", errno.EBADMSG) from err


def _decode_entry(buf: bytes, offset: int, end: int) -> ConntrackEntry:
    family = buf[offset + NLMSGHDR.size]
    pos = offset + NLMSGHDR.size + NFGENMSG.size
    unpack_attr = NLATTR.unpack_from
    orig = reply = _EMPTY_TUPLE
    status = timeout = mark = zone = entry_id = 0
    seq = (0, 0, 0)
    while pos + 4 <= end:
        attr_length, kind = unpack_attr(buf, pos)
        if attr_length < 4:
            break
        kind &= NLA_TYPE_MASK
        value = pos + 4
        stop = min(pos + attr_length, end)
        if kind == CTA_TUPLE_ORIG:
            orig = _tuple(buf, value, stop)
        elif kind == CTA_TUPLE_REPLY:
            reply = _tuple(buf, value, stop)
        elif kind == CTA_STATUS:
            (status,) = _BE32.unpack_from(buf, value)
        elif kind == CTA_TIMEOUT:
            (timeout,) = _BE32.unpack_from(buf, value)
        elif kind == CTA_MARK:
            (mark,) = _BE32.unpack_from(buf, value)
        elif kind == CTA_ID:
            (entry_id,) = _BE32.unpack_from(buf, value)
        elif kind == CTA_ZONE:
            (zone,) = _BE16.unpack_from(buf, value)
        elif kind == CTA_SEQ_ADJ_ORIG:
            seq = _seqadj(buf, value, stop)
        pos += (attr_length + 3) & ~3
    return ConntrackEntry(
        family=family,
        protocol=orig[2],
        orig_src=orig[0],
        orig_dst=orig[1],
        orig_sport=orig[3],
        orig_dport=orig[4],
        reply_src=reply[0],
        reply_dst=reply[1],
        reply_sport=reply[3],
        reply_dport=reply[4],
        status=status,
        timeout=timeout,
        mark=mark,
        zone=zone,
        id=entry_id,
        seq_correction_pos=seq[0],
        seq_offset_before=seq[1],
        seq_offset_after=seq[2],
    )


def decode_entries(chunks: Iterable[bytes]) -> Iterator[ConntrackEntry]:
    """Every entry of a dump answer (raw chunks from a socket or a file).

    Raises BackendUnavailable when the kernel answered with an error (no ctnetlink, EPERM).
    """
    for buf, offset, length, msg_type, _flags in messages(chunks, NFGENMSG.size):
        if msg_type == CT_NEW:
            yield decode_entry(buf, offset, length)


def dump(family: int = _socket.AF_INET) -> Iterator[bytes]:
    """Ask the kernel for its conntrack table; the raw answer chunks (for decode_entries)."""
    with NetlinkSocket(NETLINK_NETFILTER) as nl:
        # Held whole so that an answer flagged NLM_F_DUMP_INTR can be asked for again.
        yield from nl.dump_all(CT_GET, dump_request(family), "conntrack table")


def entries(family: int = _socket.AF_INET) -> Iterator[ConntrackEntry]:
    """The kernel's conntrack entries of one family, decoded as they arrive."""
    return decode_entries(dump(family))
