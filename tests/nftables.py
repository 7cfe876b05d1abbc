"""A few nftables rules sent over netlink, so the `-M` tests need no `nft` binary.

The kernel's nf_tables API (include/uapi/linux/netfilter/nf_tables.h) takes a batch of
NFT_MSG_NEWTABLE / NEWCHAIN / NEWRULE messages between NFNL_MSG_BATCH_BEGIN and _END on a
NETLINK_NETFILTER socket; a rule is a list of expressions (meta, payload, cmp, immediate,
masq, nat) working on registers, the same thing `nft` compiles its rule text into. Every
integer attribute of nf_tables is big-endian. The batch is applied inside a test namespace
(Namespace.call_inside) and vanishes with it.

    batch = Batch()
    batch.table("nlstnat")
    batch.chain("nlstnat", "post", hook=NF_INET_POST_ROUTING, priority=100, kind="nat")
    batch.rule("nlstnat", "post", [*oifname_is("n1"), *l4proto_is(IPPROTO_TCP), *masquerade()])
    ns.call_inside(batch.commit)
"""

from __future__ import annotations

import os
import socket
import struct
from typing import List, Sequence, Tuple

NETLINK_NETFILTER = 12
SOL_NETLINK, NETLINK_EXT_ACK = 270, 11  # socket.SOL_NETLINK is not in every Python
NFNL_SUBSYS_NFTABLES = 10
NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END = 0x10, 0x11
NFT_MSG_NEWTABLE, NFT_MSG_NEWCHAIN, NFT_MSG_NEWRULE = 0, 3, 6
NLM_F_REQUEST, NLM_F_ACK, NLM_F_CREATE, NLM_F_APPEND = 0x1, 0x4, 0x400, 0x800
NLM_F_ACK_TLVS = 0x200
NLMSG_ERROR = 2
NLA_F_NESTED = 0x8000
NFPROTO_IPV4 = 2

NF_INET_PRE_ROUTING, NF_INET_LOCAL_IN, NF_INET_POST_ROUTING = 0, 1, 4
NF_DROP, NF_ACCEPT = 0, 1
NFT_REG_VERDICT, NFT_REG_1, NFT_REG_2 = 0, 1, 2
NFT_CMP_EQ, NFT_CMP_LTE, NFT_CMP_GTE = 0, 3, 5
NFT_META_IIFNAME, NFT_META_OIFNAME, NFT_META_L4PROTO = 6, 7, 16
NFT_PAYLOAD_TRANSPORT_HEADER = 2
NFT_NAT_DNAT = 1
NF_NAT_RANGE_PROTO_SPECIFIED = 2
IFNAMSIZ = 16

NLMSGHDR = struct.Struct("=IHHII")
NFGENMSG = struct.Struct("=BBH")  # family, version, res_id (big-endian)
NLATTR = struct.Struct("=HH")


def _attr(kind: int, payload: bytes, nested: bool = False) -> bytes:
    header = NLATTR.pack(NLATTR.size + len(payload), kind | (NLA_F_NESTED if nested else 0))
    return header + payload + bytes(-len(payload) % 4)


def _string(kind: int, text: str) -> bytes:
    return _attr(kind, text.encode() + b"\0")


def _be32(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack("!i" if value < 0 else "!I", value))


def _nest(kind: int, *attrs: bytes) -> bytes:
    return _attr(kind, b"".join(attrs), nested=True)


def _data(kind: int, value: bytes) -> bytes:
    """NFTA_*_DATA: a nested NFTA_DATA_VALUE."""
    return _nest(kind, _attr(1, value))


def expression(name: str, *attrs: bytes) -> bytes:
    """One NFTA_LIST_ELEM: NFTA_EXPR_NAME and its NFTA_EXPR_DATA."""
    return _nest(1, _string(1, name), _nest(2, *attrs))


def meta(key: int, register: int = NFT_REG_1) -> bytes:
    return expression("meta", _be32(1, register), _be32(2, key))  # DREG, KEY


def cmp(value: bytes, op: int = NFT_CMP_EQ, register: int = NFT_REG_1) -> bytes:
    return expression("cmp", _be32(1, register), _be32(2, op), _data(3, value))


def payload(base: int, offset: int, length: int, register: int = NFT_REG_1) -> bytes:
    return expression("payload", _be32(1, register), _be32(2, base), _be32(3, offset),
                      _be32(4, length))


def immediate(value: bytes, register: int) -> bytes:
    return expression("immediate", _be32(1, register), _data(2, value))


def verdict(code: int) -> bytes:
    return expression("immediate", _be32(1, NFT_REG_VERDICT),
                      _nest(2, _nest(2, _be32(1, code))))  # DATA { VERDICT { CODE } }


def oifname_is(name: str) -> List[bytes]:
    # The name is compared as the whole IFNAMSIZ register, NUL padded, as nft does.
    return [meta(NFT_META_OIFNAME), cmp(name.encode().ljust(IFNAMSIZ, b"\0"))]


def iifname_is(name: str) -> List[bytes]:
    return [meta(NFT_META_IIFNAME), cmp(name.encode().ljust(IFNAMSIZ, b"\0"))]


def l4proto_is(protocol: int) -> List[bytes]:
    return [meta(NFT_META_L4PROTO), cmp(bytes([protocol]))]


def dport_is(port: int) -> List[bytes]:
    """The transport header's destination port (tcp and udp alike: bytes 2-3)."""
    return [payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2), cmp(struct.pack("!H", port))]


def dport_within(first: int, last: int) -> List[bytes]:
    return [payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2),
            cmp(struct.pack("!H", first), NFT_CMP_GTE), cmp(struct.pack("!H", last), NFT_CMP_LTE)]


def masquerade(ports: Tuple[int, int] = (0, 0)) -> List[bytes]:
    """`masquerade`, or `masquerade to :FIRST-LAST` when ports are given."""
    if ports == (0, 0):
        return [expression("masq")]
    return [immediate(struct.pack("!H", ports[0]), NFT_REG_1),
            immediate(struct.pack("!H", ports[1]), NFT_REG_2),
            expression("masq", _be32(1, NF_NAT_RANGE_PROTO_SPECIFIED),
                       _be32(2, NFT_REG_1), _be32(3, NFT_REG_2))]


def dnat(address: str, port: int) -> List[bytes]:
    """`dnat to ADDRESS:PORT` (IPv4)."""
    return [immediate(socket.inet_aton(address), NFT_REG_1),
            immediate(struct.pack("!H", port), NFT_REG_2),
            expression("nat", _be32(1, NFT_NAT_DNAT), _be32(2, NFPROTO_IPV4),
                       _be32(3, NFT_REG_1), _be32(4, NFT_REG_1),
                       _be32(5, NFT_REG_2), _be32(6, NFT_REG_2))]


class NftablesError(OSError):
    """The kernel refused a message of the batch; the text has its extended-ack message."""


class Batch:
    """IPv4-family tables, chains and rules, sent as one transaction by `commit()`."""

    def __init__(self) -> None:
        self.messages: List[Tuple[int, int, bytes]] = []  # (type, flags, attributes)

    def table(self, name: str) -> None:
        self.messages.append((NFT_MSG_NEWTABLE, NLM_F_CREATE, _string(1, name)))

    def chain(self, table: str, name: str, hook: int, priority: int, kind: str) -> None:
        """A base chain of type `kind` ("filter" or "nat") on `hook`."""
        attrs = (_string(1, table) + _string(3, name)
                 + _nest(4, _be32(1, hook), _be32(2, priority)) + _string(7, kind))
        self.messages.append((NFT_MSG_NEWCHAIN, NLM_F_CREATE, attrs))

    def rule(self, table: str, chain: str, expressions: Sequence[bytes]) -> None:
        attrs = _string(1, table) + _string(2, chain) + _nest(4, *expressions)
        self.messages.append((NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, attrs))

    def encode(self, first_seq: int = 1) -> bytes:
        def message(kind: int, flags: int, seq: int, family: int, res_id: int,
                    attrs: bytes) -> bytes:
            body = NFGENMSG.pack(family, 0, socket.htons(res_id)) + attrs
            return NLMSGHDR.pack(NLMSGHDR.size + len(body), kind, flags, seq, 0) + body

        parts = [message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, first_seq, socket.AF_UNSPEC,
                         NFNL_SUBSYS_NFTABLES, b"")]
        for index, (kind, flags, attrs) in enumerate(self.messages, first_seq + 1):
            parts.append(message((NFNL_SUBSYS_NFTABLES << 8) | kind,
                                 NLM_F_REQUEST | NLM_F_ACK | flags, index, NFPROTO_IPV4, 0,
                                 attrs))
        parts.append(message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, first_seq + len(parts),
                             socket.AF_UNSPEC, NFNL_SUBSYS_NFTABLES, b""))
        return b"".join(parts)

    def commit(self) -> None:
        """Send the batch in the calling thread's network namespace; wait for every ack."""
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
            sock.settimeout(10)
            sock.bind((0, 0))
            sock.sendall(self.encode())
            waiting = set(range(2, 2 + len(self.messages)))
            while waiting:
                data = sock.recv(65536)
                offset = 0
                while offset + NLMSGHDR.size <= len(data):
                    length, kind, flags, seq, _pid = NLMSGHDR.unpack_from(data, offset)
                    if kind == NLMSG_ERROR:
                        (code,) = struct.unpack_from("=i", data, offset + NLMSGHDR.size)
                        if code:
                            raise NftablesError(-code, _error_text(-code, seq, data[
                                offset:offset + length], flags))
                        waiting.discard(seq)
                    offset += (length + 3) & ~3
        finally:
            sock.close()


def _error_text(code: int, seq: int, message: bytes, flags: int) -> str:
    text = f"nf_tables message {seq - 1} of the batch: {os.strerror(code)}"
    if not flags & NLM_F_ACK_TLVS:
        return text
    # The extended ack's attributes follow the error code and the echoed request header
    # (whole, or only its header when NLM_F_CAPPED says the kernel cut it).
    (echoed_length,) = struct.unpack_from("=I", message, NLMSGHDR.size + 4)
    offset = NLMSGHDR.size + 4 + (echoed_length if not flags & 0x100 else NLMSGHDR.size)
    while offset + NLATTR.size <= len(message):
        length, kind = NLATTR.unpack_from(message, offset)
        if length < NLATTR.size:
            break
        if kind == 1:  # NLMSGERR_ATTR_MSG
            text += ": " + message[offset + 4:offset + length].rstrip(b"\0").decode(
                errors="replace")
        offset += (length + 3) & ~3
    return text

