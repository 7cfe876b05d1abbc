"""sock_diag dumps: inet_diag (tcp, udp, udplite, raw over IPv4/IPv6) and unix_diag -> records.

Requests ask the kernel only for what the query needs (a state mask, and INET_DIAG_INFO only
for -o); answers are decoded with one precompiled struct per message over the receive buffer,
a hundred times faster than a generic decoder (pyroute2's) on a big dump.
"""

from __future__ import annotations

import _socket
import array
import os
import struct
import sys
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from nlstat.backends.netlink.nlsocket import NetlinkSocket, iter_attrs, nlmsg_error
from nlstat.errors import BackendUnavailable
from nlstat.kernel.netlink import (
    NETLINK_SOCK_DIAG,
    NLA_TYPE_MASK,
    NLATTR,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSGHDR,
)
from nlstat.kernel.sockdiag import (
    INET_DIAG_CGROUP_ID,
    INET_DIAG_INFO,
    INET_DIAG_MSG,
    INET_DIAG_REQ,
    INET_DIAG_REQ_V2,
    IPPROTO_RAW,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPPROTO_UDPLITE,
    SO_ACCEPTCON,
    SOCK_DIAG_BY_FAMILY,
    SS_CONNECTED,
    SS_CONNECTING,
    SS_UNCONNECTED,
    TCP_ESTABLISHED,
    TCP_INFO,
    TCP_LISTEN,
    TCP_SYN_SENT,
    TCPDIAG_GETSOCK,
    UDIAG_SHOW_NAME,
    UDIAG_SHOW_PEER,
    UNIX_DIAG_MSG,
    UNIX_DIAG_NAME,
    UNIX_DIAG_PEER,
    UNIX_DIAG_REQ,
)
from nlstat.model.build import specialised, values_of
from nlstat.model.sockets import RAW, TCP, UDP, UDPLITE, InetSocket, UnixSocket

IPPROTO_BY_NAME = {TCP: IPPROTO_TCP, UDP: IPPROTO_UDP, UDPLITE: IPPROTO_UDPLITE, RAW: IPPROTO_RAW}

# Every TCP state bit up to TCP_NEW_SYN_RECV (12). TCP_BOUND_INACTIVE (13) is left out on
# purpose: asking for it makes the kernel also walk the bind hash, and /proc never lists those.
STATES_ALL = (1 << 13) - 1

# An inet_diag answer is an nlmsghdr then a struct inet_diag_msg (kernel/sockdiag.py), read
# with one layout per family so that an IPv4 address comes out as its 4 bytes without slicing
# (the kernel puts it in the first 4 of 16). Ports are big-endian: unpacked natively, swapped
# by the decoder's table.
INET_MSG_V6 = NLMSGHDR.then(INET_DIAG_MSG)
INET_MSG_V4 = NLMSGHDR.then(INET_DIAG_MSG.view(idiag_src="4s12x", idiag_dst="4s12x"))
# What the hot loop reads: the nlmsghdr fields it does not use (flags, seq, pid) are skipped,
# three fewer ints to build per record.
_ROW_FIELDS = ("nlmsg_len", "nlmsg_type") + INET_DIAG_MSG.fields
INET_ROW_V4 = INET_MSG_V4.reading(*_ROW_FIELDS)
INET_ROW_V6 = INET_MSG_V6.reading(*_ROW_FIELDS)
INET_MSG_SIZE = INET_MSG_V6.size  # 16 + 72

UNIX_MSG = NLMSGHDR.then(UNIX_DIAG_MSG)

U32 = struct.Struct("=I")
U64 = struct.Struct("=Q")
# struct nlattr of INET_DIAG_CGROUP_ID: nla_len 12 (4 + a u64), nla_type 21.
CGROUP_HEADER = NLATTR.pack(NLATTR.size + 8, INET_DIAG_CGROUP_ID)
NLATTR_HEADER = NLATTR.unpack_from
# Cached address texts per decoder; past this the cache starts again (peak RSS stays flat).
TEXT_CACHE_LIMIT = 1 << 16
TCP_INFO_COUNTERS = TCP_INFO.head("tcpi_probes").reading("tcpi_retransmits",
                                                         "tcpi_probes")
# --watch: the byte counters, in the tcp_info of Linux 4.1 and later (shorter ones lack them).
TCP_INFO_BYTES = TCP_INFO.head("tcpi_bytes_received").reading(
    "tcpi_bytes_acked", "tcpi_bytes_received")
# cookie -> tcpi_bytes_acked << 64 | tcpi_bytes_received (one int: a tuple of two costs
# 90 bytes more a socket, held twice by --watch), filled by a decoder asked to.
ByteCounters = Dict[int, int]

_SWAP16: Optional[Sequence[int]] = None


def port_table() -> Sequence[int]:
    """Big-endian port (read natively) -> port: a 65536-entry table, ~3x cheaper per port
    than ntohs(). On a little-endian host entry i is i byte-swapped, i.e. its bytes are i's
    big-endian bytes: laid out with two strided slices (0.06 ms, where filling an array from
    range() and swapping it took 2 ms, more than a small dump)."""
    global _SWAP16
    if _SWAP16 is None:
        table = array.array("H")
        if sys.byteorder == "little":
            layout = bytearray(2 * 65536)
            layout[0::2] = b"".join(bytes((high,)) * 256 for high in range(256))
            layout[1::2] = bytes(range(256)) * 256
            table.frombytes(layout)
        else:
            table.extend(range(65536))
        _SWAP16 = table
    return _SWAP16


def inet_request(
    protocol: str, family: int, states: int, want_info: bool = False, bytecode: bytes = b"",
    ports: Tuple[int, int] = (0, 0),
) -> bytes:
    """The inet_diag_req_v2 payload for one protocol and family, with the filter program
    (backends/netlink/bytecode.py) as its INET_DIAG_REQ_BYTECODE attribute when there is one.
    `ports`: tcp's exact local and remote ports to ask for in the socket id (0: any; see
    bytecode.tcp_request_parts)."""
    ext = (1 << (INET_DIAG_INFO - 1)) if (want_info and protocol == TCP) else 0
    proto = IPPROTO_BY_NAME[protocol]
    # raw_diag reads the protocol to match from `pad` (sdiag_raw_protocol); IPPROTO_RAW means all.
    raw_protocol = IPPROTO_RAW if protocol == RAW else 0
    request = INET_DIAG_REQ_V2.pack(family, proto, ext, raw_protocol, states)
    if ports != (0, 0):
        request = _with_ports(request, INET_DIAG_REQ_V2.offset("id"), ports)
    return request + _bytecode_attribute(bytecode)


def tcp_both_request(
    states: int, want_info: bool = False, bytecode: bytes = b"", ports: Tuple[int, int] = (0, 0)
) -> bytes:
    """The TCPDIAG_GETSOCK payload: tcp over IPv4 and IPv6 in one walk of the kernel's tables
    (inet_diag_rcv_msg_compat() takes the bytecode attribute after the old struct too)."""
    ext = (1 << (INET_DIAG_INFO - 1)) if want_info else 0
    request = INET_DIAG_REQ.pack(0, 0, 0, ext, states, 0)
    if ports != (0, 0):
        request = _with_ports(request, INET_DIAG_REQ.offset("id"), ports)
    return request + _bytecode_attribute(bytecode)


# idiag_sport and idiag_dport, first in the request's inet_diag_sockid: network order, as
# the kernel compares them with the socket's own (__be16) ports.
_ID_PORTS = struct.Struct("!HH")


def _with_ports(request: bytes, offset: int, ports: Tuple[int, int]) -> bytes:
    changed = bytearray(request)
    _ID_PORTS.pack_into(changed, offset, *ports)
    return bytes(changed)


def _bytecode_attribute(bytecode: bytes) -> bytes:
    if not bytecode:
        return b""
    from nlstat.backends.netlink.bytecode import bytecode_attribute

    return bytecode_attribute(bytecode)


def unix_request(states: int = 0xFFFFFFFF, show: int = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER) -> bytes:
    return UNIX_DIAG_REQ.pack(_socket.AF_UNIX, 0, 0, states, 0, show, 0)


def _check_control(buf: bytes, offset: int, msg_type: int, what: str) -> None:
    if msg_type == NLMSG_ERROR:
        code = nlmsg_error(buf, offset)
        if code:
            raise BackendUnavailable(f"sock_diag {what}: error {code}", code)


def _check_done(buf: bytes, offset: int, length: int, what: str) -> None:
    # A dump whose handler is missing (CONFIG_INET_RAW_DIAG=n, say) answers with nothing but
    # an NLMSG_DONE carrying -ENOENT: an empty table is not the same thing as a refusal.
    if length >= 20:
        code = nlmsg_error(buf, offset)
        if code:
            raise BackendUnavailable(f"sock_diag {what}: {os.strerror(code)}", code)


class InetDecoder:
    """Decodes inet_diag answers chunk by chunk into InetSocket records, in the kernel's order
    (which is /proc's order). `done` turns true at NLMSG_DONE; an error raises BackendUnavailable.

    Values are made to read as /proc/net/* shows them: a LISTEN socket's Send-Q is 0 (the diag
    message carries the backlog limit there) and a raw socket's remote port is 0. A chunk is
    decoded into a list in one tight loop: per-record generator switches cost 0.1 us each.
    """

    def __init__(
        self,
        protocol: str,
        want_info: bool = False,
        family: Optional[int] = None,
        msg_type: int = SOCK_DIAG_BY_FAMILY,
        want_cgroup: bool = False,
        byte_counters: Optional[ByteCounters] = None,
    ) -> None:
        self.protocol = protocol
        # INET_DIAG_CGROUP_ID comes with every message that has attributes (Linux 5.7+,
        # inet_diag_msg_attrs_fill(), unasked: no idiag_ext bit names it); it is read only
        # when wanted, since finding it costs an attribute look-up per record.
        self.want_cgroup = want_cgroup
        # Where the attribute was in the last message of that length (attributes of one
        # protocol and family come in one order): most records need no walk.
        self.cgroup_at = (0, 0)
        self.want_info = (want_info or byte_counters is not None) and protocol == TCP
        # --watch: each tcp socket's byte counters by cookie, beside its record (the record
        # type stays what every other output reads).
        self.byte_counters = byte_counters
        self._info_run: Optional[AttributeRun] = None
        self.done = False
        # None: records of either family, in the kernel's order. A family: the records
        # chunk() returns; the other family's go to `others` (a dump of both families at
        # once, see SockDiag.tcp_both_stream), for the caller to take when it wants them.
        self.family = family
        self.others: List[InetSocket] = []
        # SOCK_DIAG_BY_FAMILY, or TCPDIAG_GETSOCK for the old request that dumps both families.
        self.msg_type = msg_type
        # Address texts repeat (listeners, peers): inet_ntop once per distinct address.
        self.texts: Dict[bytes, str] = {}

    @specialised
    def chunk(self, buf: bytes) -> List[InetSocket]:
        # fmt: off
        records: List[InetSocket] = []
        if self.done:
            return records
        end = len(buf)
        if end < INET_MSG_SIZE:
            self._odd(buf, 0)
            return records
        # Every message of a run of one family is read with that family's layout; where the
        # family changes (a dump of both), the loop switches layouts and the list it fills.
        # Anything else (a control message, a runt) goes to _odd().
        layout_family = -1
        unpack = INET_ROW_V4.unpack_from
        ntoa: Callable[[bytes], str] = _socket.inet_ntoa
        append = records.append
        last_row = end - INET_MSG_SIZE
        swap = port_table()
        texts = self.texts
        if len(texts) > TEXT_CACHE_LIMIT:
            texts.clear()  # a million distinct peers must not cost a million cached strings
        texts_get = texts.get
        # tuple.__new__ builds the record without the generated __new__'s argument handling
        # (a quarter of its cost); values_of() is written out in field order (model/build.py).
        new = tuple.__new__
        inet_socket = InetSocket
        protocol = self.protocol
        is_tcp = protocol == TCP
        is_raw = protocol == RAW
        want_info = self.want_info
        want_cgroup = self.want_cgroup
        info = _tcp_info_counters if self.byte_counters is None else self._info_and_bytes
        record_msg = self.msg_type
        msg_size = INET_MSG_SIZE
        offset = 0
        while offset <= last_row:
            (length, msg_type, family, state, timer, retrans, local_port, remote_port, src, dst,
             interface, cookie, timer_ms, recv_q, send_q, uid, inode) = unpack(buf, offset)
            if msg_type != record_msg or family != layout_family or length < msg_size:
                if msg_type == record_msg and length >= msg_size and family != layout_family:
                    layout_family = family
                    if family == _socket.AF_INET:
                        unpack, ntoa = INET_ROW_V4.unpack_from, _socket.inet_ntoa
                    else:
                        unpack, ntoa = INET_ROW_V6.unpack_from, _ntop6
                    kept = self.family is None or self.family == family
                    append = records.append if kept else self.others.append
                    continue  # read this message again with its own layout
                offset = self._odd(buf, offset)
                if offset < 0:
                    return records
                continue
            local_address = texts_get(src)
            if local_address is None:
                local_address = texts[src] = ntoa(src)
            remote_address = texts_get(dst)
            if remote_address is None:
                remote_address = texts[dst] = ntoa(dst)
            retransmits = probes = cgroup_id = 0
            if is_tcp:
                if state == TCP_LISTEN:
                    send_q = 0
                # The kernel appends attributes (shutdown, sockopt, ...) even unasked: only
                # walk them when INET_DIAG_INFO was requested (-o).
                if want_info and length > msg_size:
                    retransmits, probes = info(buf, offset, min(length, end - offset), cookie)
                elif timer == 1:
                    retransmits = retrans
                else:
                    probes = retrans
            elif is_raw:
                remote_port = 0
            if want_cgroup and length > msg_size:
                cgroup_id = self._cgroup_id(buf, offset, min(length, end - offset))
            append(new(inet_socket, values_of(
                InetSocket, protocol=protocol, family=family, state=state,
                local_address=local_address, local_port=swap[local_port],
                remote_address=remote_address, remote_port=swap[remote_port], recv_q=recv_q,
                send_q=send_q, uid=uid, inode=inode, timer=timer, timer_ms=timer_ms,
                retransmits=retransmits, probes=probes, cookie=cookie, interface=interface,
                cgroup_id=cgroup_id)))
            offset += (length + 3) & ~3
        while 0 <= offset < end:
            offset = self._odd(buf, offset)
        return records
        # fmt: on

    def _cgroup_id(self, buf: bytes, offset: int, length: int) -> int:
        """INET_DIAG_CGROUP_ID of the message at `offset` (0 when it has none)."""
        known_length, known_at = self.cgroup_at
        at = offset + known_at
        if length == known_length and buf[at : at + 4] == CGROUP_HEADER:
            (value,) = U64.unpack_from(buf, at + 4)
            return int(value)
        for kind, start, stop in iter_attrs(buf, offset + INET_MSG_SIZE, offset + length):
            if kind == INET_DIAG_CGROUP_ID and stop - start >= 8:
                self.cgroup_at = (length, start - 4 - offset)
                (value,) = U64.unpack_from(buf, start)
                return int(value)
        return 0

    def _info_and_bytes(self, buf: bytes, offset: int, length: int, cookie: int) -> Tuple[int, int]:
        """_tcp_info_counters(), and the socket's byte counters kept by its cookie (--watch).

        Called for every tcp socket of a --watch tick. The kernel writes the attributes before
        INET_DIAG_INFO in a fixed order and size for one request (shutdown, mark, cgroup id,
        sockopt...), so after one walk their headers and tcp_info's counters are read with
        one compiled struct (AttributeRun), and the walk is taken again only when a header
        differs: exact, at a fifth of a walk's cost."""
        start = offset + INET_MSG_SIZE
        end = offset + length
        run = self._info_run
        if run is not None and start + run.size <= end:
            values = run.unpack_from(buf, start)
            if values[:run.headers] == run.expected:
                if self.byte_counters is not None:
                    self.byte_counters[cookie] = values[-2] << 64 | values[-1]
                return values[-4], values[-3]
        found = _find_info(buf, start, min(end, len(buf)))
        if found is None:
            return 0, 0
        info, size, run = found
        if size >= TCP_INFO_BYTES.size:
            self._info_run = run
            if self.byte_counters is not None:
                acked, received = TCP_INFO_BYTES.unpack_from(buf, info)
                self.byte_counters[cookie] = acked << 64 | received
        if size >= TCP_INFO_COUNTERS.size:
            retransmits, probes = TCP_INFO_COUNTERS.unpack_from(buf, info)
            return retransmits, probes
        return 0, 0

    def _odd(self, buf: bytes, offset: int) -> int:
        """One message that is not a whole record at `offset`: NLMSG_DONE ends the dump,
        NLMSG_ERROR raises, other control messages are skipped. Returns the next message's
        offset, or -1 where the chunk (or the dump) ends: at NLMSG_DONE, at a runt or a record
        cut short (nothing after it can be trusted)."""
        if offset + NLMSGHDR.size > len(buf):
            return -1
        length, msg_type, _f, _s, _p = NLMSGHDR.unpack_from(buf, offset)
        if length < NLMSGHDR.size or msg_type == self.msg_type:
            return -1
        if msg_type == NLMSG_DONE:
            self.done = True
            _check_done(buf, offset, length, self.protocol)
            return -1
        _check_control(buf, offset, msg_type, self.protocol)
        following: int = offset + ((length + 3) & ~3)
        return following


def decode_inet(
    chunks: Iterable[bytes], protocol: str, want_info: bool = False, want_cgroup: bool = False
) -> Iterator[InetSocket]:
    """inet_diag answers -> InetSocket records, until NLMSG_DONE (see InetDecoder)."""
    decoder = InetDecoder(protocol, want_info, want_cgroup=want_cgroup)
    for buf in chunks:
        yield from decoder.chunk(buf)
        if decoder.done:
            return


def _ntop6(address: bytes) -> str:
    return _socket.inet_ntop(_socket.AF_INET6, address)


class AttributeRun:
    """The attribute headers before INET_DIAG_INFO as one message had them, then tcp_info's
    retransmits, probes and byte counters, read with one struct.

    `unpack_from(buf, first attribute)` gives the headers' (nla_len, nla_type) values, then
    (retransmits, probes, bytes_acked, bytes_received); the values are this message's when
    its headers equal `expected` (each header then lies where the walk would find it)."""

    __slots__ = ("unpack_from", "size", "headers", "expected", "format")

    def __init__(self, headers: Sequence[Tuple[int, int, int]]) -> None:
        parts = []
        expected: List[int] = []
        for size, kind, padded in headers:  # the last one is INET_DIAG_INFO's
            parts.append("HH%dx" % (padded - 4) if kind != INET_DIAG_INFO else "HH")
            expected += [size, kind]
        info = TCP_INFO.head("tcpi_bytes_received")
        counters = info.reading("tcpi_retransmits", "tcpi_probes", "tcpi_bytes_acked",
                                "tcpi_bytes_received")
        compiled = struct.Struct("=" + "".join(parts) + counters.format.lstrip("=<>!@"))
        self.unpack_from = compiled.unpack_from
        self.size = compiled.size
        self.format = compiled.format
        self.headers = len(expected)
        self.expected = tuple(expected)


def _find_info(
    buf: bytes, start: int, end: int
) -> Optional[Tuple[int, int, AttributeRun]]:
    """Walk the attributes (iter_attrs()'s guards, written out) to INET_DIAG_INFO: its
    payload's offset and size, and the AttributeRun that reads messages laid out alike."""
    headers: List[Tuple[int, int, int]] = []
    while start + 4 <= end:
        size, kind = NLATTR_HEADER(buf, start)
        if size < 4 or start + size > end:
            return None
        padded = (size + 3) & ~3
        headers.append((size, kind, padded))
        if kind & NLA_TYPE_MASK == INET_DIAG_INFO:
            return start + 4, size - 4, AttributeRun(headers)
        start += padded
    return None


def _tcp_info_counters(
    buf: bytes, offset: int, length: int, cookie: int = 0
) -> Tuple[int, int]:
    """(tcpi_retransmits, tcpi_probes) from INET_DIAG_INFO: what /proc prints as RETR/TIMEOUT."""
    for kind, start, stop in iter_attrs(buf, offset + INET_MSG_SIZE, offset + length):
        if kind == INET_DIAG_INFO and stop - start >= TCP_INFO_COUNTERS.size:
            retransmits, probes = TCP_INFO_COUNTERS.unpack_from(buf, start)
            return retransmits, probes
    return 0, 0


def _unix_path(name: bytes) -> str:
    """sun_path bytes -> the text /proc/net/unix prints (net/unix/af_unix.c unix_seq_show).

    Abstract names start with NUL and print as "@name"; a bound path carries its terminating
    NUL, which /proc drops; any other NUL prints as "@".
    """
    if not name:
        return ""
    if name[0] == 0:
        text = "@" + name[1:].replace(b"\0", b"@").decode("utf-8", "surrogateescape")
    else:
        text = name[:-1].replace(b"\0", b"@").decode("utf-8", "surrogateescape")
    return text


@specialised
def decode_unix(chunks: Iterable[bytes]) -> Iterator[UnixSocket]:
    """unix_diag answers -> UnixSocket records (refcnt unknown: unix_diag does not export it).

    The socket-level state /proc prints is derived from sk_state: a listener is SS_UNCONNECTED
    with __SO_ACCEPTCON, an established socket SS_CONNECTED. /proc remains the authority for
    RefCnt and for states netlink cannot tell apart (see backends/sockets.py's join).
    """
    unpack = UNIX_MSG.unpack_from
    hdr_unpack = NLMSGHDR.unpack_from
    u32 = U32.unpack_from
    new = tuple.__new__
    unix_socket = UnixSocket
    for buf in chunks:
        offset = 0
        end = len(buf)
        while offset + NLMSGHDR.size <= end:
            length, msg_type, _f, _s, _p = hdr_unpack(buf, offset)
            if length < NLMSGHDR.size or offset + length > end:
                return  # a message cut short: nothing after it can be trusted (as messages())
            if msg_type != SOCK_DIAG_BY_FAMILY:
                if msg_type == NLMSG_DONE:
                    _check_done(buf, offset, length, "unix")
                    return
                _check_control(buf, offset, msg_type, "unix")
                offset += (length + 3) & ~3
                continue
            if length < UNIX_MSG.size:
                offset += (length + 3) & ~3
                continue  # too short for a unix_diag_msg: skipped, as nlmsg_parse refuses it
            (_l, _t, _f, _s, _p, _family, type, state, inode, cookie) = unpack(buf, offset)
            path = ""
            peer_inode = 0
            name: Optional[bytes] = None
            for kind, start, stop in iter_attrs(buf, offset + UNIX_MSG.size, offset + length):
                if kind == UNIX_DIAG_NAME:
                    sun_path = bytes(buf[start:stop])
                    path = _unix_path(sun_path)
                    if sun_path[:1] == b"\0" and b"\0" in sun_path[1:]:
                        name = sun_path  # an abstract name with NULs: "@" in path, lossy
                elif kind == UNIX_DIAG_PEER and stop - start >= 4:
                    (peer_inode,) = u32(buf, start)
            if state == TCP_LISTEN:
                socket_state, flags = SS_UNCONNECTED, SO_ACCEPTCON
            elif state == TCP_ESTABLISHED:
                socket_state, flags = SS_CONNECTED, 0
            elif state == TCP_SYN_SENT:
                socket_state, flags = SS_CONNECTING, 0
            else:
                socket_state, flags = SS_UNCONNECTED, 0
            yield new(unix_socket, values_of(
                UnixSocket, type=type, socket_state=socket_state, flags=flags, inode=inode,
                path=path, state=state, peer_inode=peer_inode, cookie=cookie, name=name))
            offset += (length + 3) & ~3


class SockDiag:
    """One NETLINK_SOCK_DIAG socket, reused for every dump of a listing (and of -c iterations)."""

    def __init__(self) -> None:
        self.netlink = NetlinkSocket(NETLINK_SOCK_DIAG)

    def close(self) -> None:
        self.netlink.close()

    def inet_stream(
        self,
        protocol: str,
        family: int,
        states: int = STATES_ALL,
        want_info: bool = False,
        bytecode: bytes = b"",
        *,
        want_cgroup: bool = False,
        byte_counters: Optional[ByteCounters] = None,
        ports: Tuple[int, int] = (0, 0),
    ) -> Tuple[List[InetSocket], InetDecoder, Iterator[bytes]]:
        """Records of the first chunk, the decoder, and the raw chunks still to come.

        The first chunk carries the kernel's refusal if there is one (BackendUnavailable is
        raised here); the rest can then be decoded anywhere, in another process too.
        """
        want_info = want_info or byte_counters is not None
        chunks = self.netlink.dump(
            SOCK_DIAG_BY_FAMILY,
            inet_request(protocol, family, states, want_info, bytecode, ports),
        )
        decoder = InetDecoder(protocol, want_info, want_cgroup=want_cgroup,
                              byte_counters=byte_counters)
        first = decoder.chunk(next(chunks))
        return first, decoder, chunks

    def tcp_both_stream(
        self,
        states: int = STATES_ALL,
        want_info: bool = False,
        bytecode: bytes = b"",
        *,
        want_cgroup: bool = False,
        byte_counters: Optional[ByteCounters] = None,
        ports: Tuple[int, int] = (0, 0),
    ) -> Tuple[List[InetSocket], InetDecoder, Iterator[bytes]]:
        """inet_stream() for tcp over both families at once: one walk of the kernel's hash
        tables instead of two (the IPv6 request walks every IPv4 socket too: 10 ms with 100k
        of them). Records of IPv4 come out of the decoder; IPv6 ones collect in its `others`,
        in the kernel's order, which is the order of an IPv6-only dump."""
        want_info = want_info or byte_counters is not None
        chunks = self.netlink.dump(
            TCPDIAG_GETSOCK, tcp_both_request(states, want_info, bytecode, ports)
        )
        decoder = InetDecoder(TCP, want_info, _socket.AF_INET, TCPDIAG_GETSOCK, want_cgroup,
                              byte_counters)
        first = decoder.chunk(next(chunks))
        return first, decoder, chunks

    def unix(self, states: int = 0xFFFFFFFF) -> Iterator[UnixSocket]:
        return decode_unix(self.netlink.dump(SOCK_DIAG_BY_FAMILY, unix_request(states)))


