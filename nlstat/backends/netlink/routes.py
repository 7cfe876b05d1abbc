"""RTM_GETROUTE dumps of AF_INET decoded into the rows /proc/net/route would show.

The kernel answers a dump by walking each table's trie in key order, and within a key the
alias list (longest prefix first, then tos, then priority): the same walk fib_route_seq_show()
does for /proc/net/route (net/ipv4/fib_trie.c, fn_trie_dump_leaf() vs fib_route_seq_next()).
So the dump, filtered to the main table, broadcast and multicast entries dropped, is the file's
content in the file's order. Every column is known: the kernel prints constants for RefCnt and
Use, and Metric, MTU (advmss + 40), Window and IRTT (rtt >> 3) come from RTA_PRIORITY and
RTA_METRICS (unit tests hold the decoder to /proc and to pyroute2 on captured bytes).
The dump socket and the ifindex names are shared with routes6.py (IPv6).
"""

from __future__ import annotations

import socket
import struct
from itertools import repeat
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from nlstat.backends.netlink.nlsocket import NLMSGHDR, NetlinkSocket, iter_attrs, nlmsg_error
from nlstat.errors import BackendUnavailable
from nlstat.kernel.netlink import NETLINK_ROUTE, NLMSG_DONE, NLMSG_ERROR, SOL_NETLINK
from nlstat.kernel.rtnetlink import (
    NETLINK_GET_STRICT_CHK,
    RT_TABLE_MAIN,
    RT_TABLE_UNSPEC,
    RTA_DST,
    RTA_GATEWAY,
    RTA_METRICS,
    RTA_MULTIPATH,
    RTA_NH_ID,
    RTA_OIF,
    RTA_PRIORITY,
    RTA_TABLE,
    RTA_VIA,
    RTAX_ADVMSS,
    RTAX_RTT,
    RTAX_WINDOW,
    RTF_GATEWAY,
    RTF_HOST,
    RTF_REJECT,
    RTF_UP,
    RTM_F_CLONED,
    RTM_GETROUTE,
    RTM_NEWROUTE,
    RTN_BROADCAST,
    RTN_MULTICAST,
    RTN_PROHIBIT,
    RTN_UNREACHABLE,
)
from nlstat.model.routes import Route, RouteData

# struct rtmsg { unsigned char rtm_family, rtm_dst_len, rtm_src_len, rtm_tos;
#                unsigned char rtm_table, rtm_protocol, rtm_scope, rtm_type; unsigned rtm_flags; };
RTMSG = struct.Struct("=BBBBBBBBI")
# nlmsghdr length and type, then the rtmsg, in one call.
HEAD = struct.Struct("=IH10xBBBBBBBBI")
# struct rtnexthop { unsigned short rtnh_len; unsigned char rtnh_flags, rtnh_hops;
#                     int rtnh_ifindex; };
RTNEXTHOP = struct.Struct("=HBBi")
# struct rta_cacheinfo { __u32 rta_clntref, rta_lastuse; __s32 rta_expires; ... };
CACHEINFO_EXPIRES = struct.Struct("=8xi")
U32 = struct.Struct("=I")
LENGTH_TYPE = struct.Struct("=IH")

RTMSG_OFFSET = NLMSGHDR.size  # 16
ATTRS_OFFSET = NLMSGHDR.size + RTMSG.size  # 28

# The fixed layout of nearly every IPv4 route message: RTA_TABLE is always the first attribute
# (fib_dump_info()), RTA_DST the second whenever dst_len > 0. Messages whose bytes match
# outside the destination's 4 bytes give the same row, so the row's data is decoded once and
# found again by those bytes (see decode_ipv4()).
TABLE_HEADER = struct.pack("=HH", 8, RTA_TABLE)
DST4_HEADER = struct.pack("=HH", 8, RTA_DST)
DST4_START = ATTRS_OFFSET + 12  # 40: the payload of the second attribute
DST4_END = DST4_START + 4

IfName = Callable[[int], str]


def to_s32(value: int) -> int:
    """An unsigned kernel value as netstat's `%d` scanf of the kernel's text gives it."""
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value & 0x80000000 else value


def prefix_mask(prefix_len: int) -> str:
    """24 -> "255.255.255.0"."""
    bits = (0xFFFFFFFF << (32 - prefix_len)) & 0xFFFFFFFF if prefix_len else 0
    return socket.inet_ntoa(bits.to_bytes(4, "big"))


class InterfaceNames:
    """ifindex -> name, asked of the kernel once per index (SIOCGIFNAME through libc).

    Routes use a handful of devices, so one ioctl per distinct index beats dumping every link
    (RTM_GETLINK carries ~1 KiB of statistics per link). A device that vanished mid-dump
    (its routes are going too) gets "*", the name /proc prints for a route without a device.
    """

    def __init__(self) -> None:
        self.names: Dict[int, str] = {}

    def __call__(self, index: int) -> str:
        name = self.names.get(index)
        if name is None:
            try:
                name = socket.if_indextoname(index)
            except OSError:
                name = "*"
            self.names[index] = name
        return name


def route_request(family: int, table: int = RT_TABLE_UNSPEC) -> bytes:
    return RTMSG.pack(family, 0, 0, 0, table, 0, 0, 0, 0)


def dump_routes(family: int, table: int, feed: Callable[[bytes], bool]) -> None:
    """One RTM_GETROUTE dump, each chunk handed to `feed` as it arrives until `feed` says the
    dump is over (it saw NLMSG_DONE). BackendUnavailable when netlink is refused.

    With NETLINK_GET_STRICT_CHK (Linux 4.20+) the kernel filters by table itself; older kernels
    refuse the option and dump every table, which the decoders filter anyway.
    """
    with NetlinkSocket(NETLINK_ROUTE) as nl:
        if table != RT_TABLE_UNSPEC:
            try:
                nl.sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
            except OSError:
                table = RT_TABLE_UNSPEC
        for chunk in nl.dump(RTM_GETROUTE, route_request(family, table)):
            if feed(chunk):
                return


def capture_routes(family: int, table: int = RT_TABLE_UNSPEC) -> List[bytes]:
    """The raw chunks of one dump, up to and including NLMSG_DONE (tests, --save)."""
    chunks: List[bytes] = []

    def keep(chunk: bytes) -> bool:
        chunks.append(chunk)
        return ends_dump(chunk)

    dump_routes(family, table, keep)
    return chunks


def ends_dump(chunk: bytes) -> bool:
    """Does this chunk hold the NLMSG_DONE (or an error) that ends the dump?"""
    unpack = LENGTH_TYPE.unpack_from
    offset = 0
    end = len(chunk)
    while offset + 16 <= end:
        length, msg_type = unpack(chunk, offset)
        if msg_type in (NLMSG_DONE, NLMSG_ERROR) or length < 16:
            return True
        offset += (length + 3) & ~3
    return False


def strerror(code: int) -> str:
    import os

    return os.strerror(code)


# -- IPv4 -------------------------------------------------------------------------------------


def decode_ipv4(chunks: Iterable[bytes], ifname: IfName) -> List[Route]:
    """The main table's rows, in /proc/net/route's order, from the chunks of an AF_INET dump."""
    decoder = Ipv4Decoder(ifname)
    for chunk in chunks:
        if decoder.feed(chunk):
            break
    return decoder.routes


# Attributes that describe a route's next hop itself (with a nexthop object, only
# net.ipv4.nexthop_compat_mode=1 adds them).
EXPANDED_NEXTHOP = frozenset((RTA_OIF, RTA_GATEWAY, RTA_VIA, RTA_MULTIPATH))
# A row the file does not show (another table, broadcast, multicast, a cloned exception).
SKIP = RouteData("", "", 0, 0, 0, 0, 0, 0, 0, "*", table=-1)
# Decimal text of every octet, for dotted quads built column by column.
OCTETS = tuple(str(octet) for octet in range(256))
# Runs shorter than this go message by message: setting up a run costs about 8 messages.
MIN_RUN = 8


class Ipv4Decoder:
    """Decodes AF_INET route dumps chunk by chunk, reusing the rows of identical messages.

    Two messages whose bytes differ only in the 4 bytes of RTA_DST give the same row but for
    the destination, so the row's data is decoded once and found again by those bytes (the
    key: rtmsg, RTA_TABLE, the RTA_DST header and every later attribute; the message length
    is implied by the key's). Messages of one length usually follow each other (one route
    shape), so such a run is cut into (key head, destination, key tail) by one
    Struct.iter_unpack() and every per-row step is a C-level map().

    Measured on 100k host routes through one gateway (Python 3.11, 2-core VM): decoding
    every attribute of every message, 0.30 s; the key look-up per message in a Python loop,
    0.10 s; runs, 0.035 s.
    """

    def __init__(self, ifname: IfName) -> None:
        self.ifname = ifname
        self.routes: List[Route] = []
        self.known: Dict[bytes, RouteData] = {}
        self.structs: Dict[int, struct.Struct] = {}

    def feed(self, buf: bytes) -> bool:
        """Decode one chunk; True once the dump is over (NLMSG_DONE, or a truncated message)."""
        unpack = LENGTH_TYPE.unpack_from
        offset = 0
        end = len(buf)
        # After a short run has been measured, its other messages need no second measuring.
        measured_until = 0
        while offset + 16 <= end:
            length, msg_type = unpack(buf, offset)
            if length < 16 or offset + length > end or msg_type == NLMSG_DONE:
                return True
            step = (length + 3) & ~3
            if msg_type == NLMSG_ERROR:
                code = nlmsg_error(buf, offset)
                if code:
                    raise BackendUnavailable(f"RTM_GETROUTE: {strerror(code)}", code)
            elif msg_type == RTM_NEWROUTE and length >= ATTRS_OFFSET:
                if offset >= measured_until and length == step:
                    count = _run_length(buf, offset, step, end)
                    if count >= MIN_RUN and length >= DST4_END:
                        self._run(buf, offset, step, count)
                        offset += count * step
                        continue
                    measured_until = offset + count * step
                self._one(buf, offset, length)
            offset += step
        return False

    def _one(self, buf: bytes, offset: int, length: int) -> None:
        key = b""
        if length >= DST4_END:
            key = buf[offset + RTMSG_OFFSET : offset + DST4_START] + buf[
                offset + DST4_END : offset + length
            ]
            data = self.known.get(key)
            if data is not None:
                if data is not SKIP:
                    destination = socket.inet_ntoa(buf[offset + DST4_START : offset + DST4_END])
                    self.routes.append(tuple.__new__(Route, (destination, data)))
                return
        route = self._decode(buf, offset, length, key)
        if route is not None:
            self.routes.append(route)

    def _decode(self, buf: bytes, offset: int, length: int, key: bytes) -> Optional[Route]:
        """The full decode; remembers the row's data when the message has the fixed layout."""
        route = _decode_route4(buf, offset, length, self.ifname)
        if (
            key
            and buf[offset + ATTRS_OFFSET : offset + ATTRS_OFFSET + 4] == TABLE_HEADER
            and buf[offset + ATTRS_OFFSET + 8 : offset + DST4_START] == DST4_HEADER
        ):
            self.known[key] = SKIP if route is None else route.data
        return route

    def _run(self, buf: bytes, offset: int, step: int, count: int) -> None:
        """`count` messages of `step` bytes each, starting at `offset`."""
        block = buf[offset : offset + count * step]
        masked = bytearray(block)
        zeros = bytes(count)
        for position in range(DST4_START, DST4_END):
            masked[position::step] = zeros
        if masked == masked[:step] * count:
            # One shape for the whole run (a table of host routes through one gateway): decode
            # the first message, then make only the destinations, column by column.
            key = block[RTMSG_OFFSET:DST4_START] + block[DST4_END:step]
            data = self.known.get(key)
            if data is None:
                route = self._decode(block, 0, step, key)
                data = self.known.get(key)
                if data is None:  # not the fixed layout after all
                    if route is not None:
                        self.routes.append(route)
                    for index in range(1, count):
                        self._one(buf, offset + index * step, step)
                    return
            if data is not SKIP:
                octet = OCTETS.__getitem__
                columns = [map(octet, block[p::step]) for p in range(DST4_START, DST4_END)]
                # "198.18.0.1" from the four octet columns: no bytes object per row.
                texts = map(".".join, zip(*columns))
                self.routes.extend(map(tuple.__new__, repeat(Route), zip(texts, repeat(data))))
            return
        layout = self.structs.get(step)
        if layout is None:
            layout = self.structs[step] = struct.Struct(
                f"={RTMSG_OFFSET}x{DST4_START - RTMSG_OFFSET}s4s{step - DST4_END}s"
            )
        fields: List[Tuple[bytes, ...]] = list(
            zip(*layout.iter_unpack(buf[offset : offset + count * step]))
        )
        heads, destinations, tails = fields
        keys = list(map(bytes.__add__, heads, tails))
        datas: List[Optional[RouteData]] = list(map(self.known.get, keys))
        special: Dict[int, Optional[Route]] = {}
        if None in datas:
            for index, data in enumerate(datas):
                if data is None:
                    start = offset + index * step
                    route = self._decode(buf, start, step, keys[index])
                    data = self.known.get(keys[index])
                    if data is None:
                        special[index] = route  # not the fixed layout: never cached
                    datas[index] = data
        if special or SKIP in datas:
            ntoa = socket.inet_ntoa
            for index, data in enumerate(datas):
                if index in special:
                    route = special[index]
                    if route is not None:
                        self.routes.append(route)
                elif data is not SKIP and data is not None:
                    self.routes.append(Route(ntoa(destinations[index]), data))
            return
        self.routes.extend(
            map(tuple.__new__, repeat(Route), zip(map(socket.inet_ntoa, destinations), datas))
        )


# Messages looked at for one run; a longer run is simply taken in several pieces.
RUN_WINDOW = 512


def _run_length(buf: bytes, offset: int, step: int, end: int) -> int:
    """How many messages from `offset` on have this one's length and type (1 at least).

    Column p of the stride-`step` view holds byte p of every candidate message header; the
    run ends where any of the 6 length and type bytes first differs.
    """
    limit = (end - offset) // step
    if limit < MIN_RUN:
        return 1
    # Most tables mix shapes: when the next message already differs, say so at once rather
    # than scan the rest of the chunk (that scan per message made 100k mixed routes 0.7 s).
    following = offset + step
    if buf[following : following + 6] != buf[offset : offset + 6]:
        return 1
    # A short look first (runs in mixed tables are short), the long one only for a real run.
    for window in (2 * MIN_RUN, RUN_WINDOW):
        if window > limit and window != RUN_WINDOW:
            continue
        span = min(limit, window)
        stop = offset + span * step
        count = span
        for position in range(6):
            column = buf[offset + position : stop : step]
            same = len(column) - len(column.lstrip(column[:1]))
            if same < count:
                count = same
        if count < span or span == limit:
            return max(count, 1)
    return max(count, 1)


def _decode_route4(buf: bytes, offset: int, length: int, ifname: IfName) -> Optional[Route]:
    """One AF_INET route message -> its /proc/net/route row, or None if the file leaves it out.

    Mirrors fib_route_seq_show() and fib_flag_trans() (net/ipv4/fib_trie.c): main table only,
    no broadcast or multicast entries; RTF_REJECT for unreachable and prohibit; RTF_GATEWAY
    when the first next hop's gateway, read as an IPv4 address, is not zero (for an IPv6
    gateway that reads the first 4 bytes of it, and the Gateway column stays 0); RTF_HOST for
    a /32; the first next hop's device, "*" when there is none.
    """
    _, _, _, dst_len, _, _, rtm_table, protocol, _, rtm_type, rtm_flags = (
        HEAD.unpack_from(buf, offset)
    )
    if rtm_flags & RTM_F_CLONED or rtm_type in (RTN_BROADCAST, RTN_MULTICAST):
        return None
    table = rtm_table
    destination = b"\0\0\0\0"
    gateway = b"\0\0\0\0"
    gateway_flag = False
    oif = 0
    priority = 0
    advmss = window = rtt = 0
    nexthop_id = 0
    expanded = False
    u32 = U32.unpack_from
    end = offset + length
    for kind, start, stop in iter_attrs(buf, offset + ATTRS_OFFSET, end):
        if kind in EXPANDED_NEXTHOP:
            expanded = True
        if kind == RTA_TABLE:
            (table,) = u32(buf, start)
        elif kind == RTA_DST:
            destination = buf[start : start + 4]
        elif kind == RTA_GATEWAY:
            gateway = buf[start : start + 4]
            gateway_flag = gateway != b"\0\0\0\0"
        elif kind == RTA_VIA:
            gateway_flag = _via_sets_gateway(buf, start, stop)
        elif kind == RTA_OIF:
            (oif,) = u32(buf, start)
        elif kind == RTA_PRIORITY:
            (priority,) = u32(buf, start)
        elif kind == RTA_METRICS:
            advmss, window, rtt = _metrics(buf, start, stop)
        elif kind == RTA_MULTIPATH:
            oif, gateway, gateway_flag = _first_nexthop(buf, start, stop)
        elif kind == RTA_NH_ID:
            (nexthop_id,) = u32(buf, start)
    if table != RT_TABLE_MAIN:
        return None
    if nexthop_id and not expanded:
        # net.ipv4.nexthop_compat_mode=0: the route names its nexthop object only, and the
        # device and gateway /proc prints would need an RTM_GETNEXTHOP dump: use /proc.
        raise BackendUnavailable(
            f"route {socket.inet_ntoa(destination)}/{dst_len} uses nexthop object "
            f"{nexthop_id}, not expanded (net.ipv4.nexthop_compat_mode=0)"
        )
    flags = RTF_UP
    if rtm_type in (RTN_UNREACHABLE, RTN_PROHIBIT):
        flags |= RTF_REJECT
    if gateway_flag:
        flags |= RTF_GATEWAY
    if dst_len == 32:
        flags |= RTF_HOST
    data = RouteData(
        genmask=_genmask(dst_len),
        gateway=socket.inet_ntoa(gateway),
        flags=flags,
        metric=to_s32(priority),
        refcnt=0,
        use=0,
        mtu=to_s32(advmss + 40) if advmss else 0,
        window=to_s32(window),
        irtt=to_s32(rtt >> 3),
        iface=ifname(oif) if oif else "*",
        prefix_len=dst_len,
        table=table,
        type=rtm_type,
        protocol=protocol,
    )
    return Route(socket.inet_ntoa(destination), data)


_GENMASKS: Dict[int, str] = {}


def _genmask(prefix_len: int) -> str:
    text = _GENMASKS.get(prefix_len)
    if text is None:
        text = _GENMASKS[prefix_len] = prefix_mask(min(prefix_len, 32))
    return text


def _via_sets_gateway(buf: bytes, start: int, stop: int) -> bool:
    # struct rtvia { __kernel_sa_family_t rtvia_family; __u8 rtvia_addr[]; }: the kernel keeps
    # the gateway in a union, and fib_flag_trans() tests its first 4 bytes as an IPv4 address.
    return buf[start + 2 : min(start + 6, stop)].strip(b"\0") != b""


def _metrics(buf: bytes, start: int, stop: int) -> Tuple[int, int, int]:
    """(advmss, window, rtt) from a nested RTA_METRICS; RTAX_CC_ALGO (a string) is skipped."""
    advmss = window = rtt = 0
    u32 = U32.unpack_from
    for kind, value_start, value_stop in iter_attrs(buf, start, stop):
        if value_stop - value_start < 4:
            continue
        if kind == RTAX_ADVMSS:
            (advmss,) = u32(buf, value_start)
        elif kind == RTAX_WINDOW:
            (window,) = u32(buf, value_start)
        elif kind == RTAX_RTT:
            (rtt,) = u32(buf, value_start)
    return advmss, window, rtt


def _first_nexthop(buf: bytes, start: int, stop: int) -> Tuple[int, bytes, bool]:
    """(ifindex, IPv4 gateway, gateway flag) of the first rtnexthop: /proc prints next hop 0."""
    if start + RTNEXTHOP.size > stop:
        return 0, b"\0\0\0\0", False
    nh_len, _, _, ifindex = RTNEXTHOP.unpack_from(buf, start)
    gateway = b"\0\0\0\0"
    gateway_flag = False
    for kind, value_start, value_stop in iter_attrs(
        buf, start + RTNEXTHOP.size, min(start + nh_len, stop)
    ):
        if kind == RTA_GATEWAY:
            gateway = buf[value_start : value_start + 4]
            gateway_flag = gateway != b"\0\0\0\0"
        elif kind == RTA_VIA:
            gateway_flag = _via_sets_gateway(buf, value_start, value_stop)
    return max(ifindex, 0), gateway, gateway_flag


def read_ipv4(ifname: Optional[IfName] = None) -> List[Route]:
    """The IPv4 main table, as /proc/net/route lists it, from the kernel (BackendUnavailable).

    Chunks are decoded as they arrive: the dump is walked once.
    """
    decoder = Ipv4Decoder(ifname or InterfaceNames())
    dump_routes(socket.AF_INET, RT_TABLE_MAIN, decoder.feed)
    return decoder.routes


__all__ = [
    "Ipv4Decoder",
    "InterfaceNames",
    "capture_routes",
    "decode_ipv4",
    "dump_routes",
    "read_ipv4",
    "to_s32",
]
