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

import _socket
import os
import re
import struct
from itertools import repeat
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from nlstat import procio
from nlstat.backends.netlink.nlsocket import (
    LENGTH_TYPE,
    NetlinkSocket,
    checked,
    consistent,
    iter_attrs,
    nlmsg_error,
)
from nlstat.cscan import to_s32
from nlstat.errors import BackendUnavailable
from nlstat.kernel.netlink import (
    NETLINK_GET_STRICT_CHK,
    NETLINK_ROUTE,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSGHDR,
    SOL_NETLINK,
)
from nlstat.kernel.rtnetlink import (
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
    RTMSG,
    RTN_BROADCAST,
    RTN_MULTICAST,
    RTN_PROHIBIT,
    RTN_UNREACHABLE,
    RTNEXTHOP,
    STRUCT_RTA_CACHEINFO,
)
from nlstat.model.build import specialised, values_of
from nlstat.model.routes import Route, RouteData

# struct rtmsg, struct rtnexthop and struct rta_cacheinfo are declared in kernel/rtnetlink.py.
CACHEINFO_EXPIRES = STRUCT_RTA_CACHEINFO.head("rta_expires").reading("rta_expires")
U32 = struct.Struct("=I")

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


def prefix_mask(prefix_len: int) -> str:
    """24 -> "255.255.255.0"."""
    bits = (0xFFFFFFFF << (32 - prefix_len)) & 0xFFFFFFFF
    return _socket.inet_ntoa(bits.to_bytes(4, "big"))


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
                name = procio.interface_name(index)
            except OSError:
                name = "*"
            self.names[index] = name
        return name


def route_request(family: int, table: int = RT_TABLE_UNSPEC) -> bytes:
    return RTMSG.pack(family, 0, 0, 0, table, 0, 0, 0, 0)


def route_chunks(
    family: int, table: int = RT_TABLE_UNSPEC, last: bool = True
) -> Iterator[bytes]:
    """The raw chunks of one RTM_GETROUTE dump, up to the one that ends it (the decoders and
    --save take them alike). BackendUnavailable when netlink is refused; DumpInterrupted at
    the end of an answer flagged NLM_F_DUMP_INTR unless `last` (see nlsocket.checked()).

    With NETLINK_GET_STRICT_CHK (Linux 4.20+) the kernel filters by table itself; older kernels
    refuse the option and dump every table, which the decoders filter anyway.
    """
    with NetlinkSocket(NETLINK_ROUTE) as nl:
        if table != RT_TABLE_UNSPEC:
            try:
                nl.sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
            except OSError:
                table = RT_TABLE_UNSPEC
        what = "IPv4 routes" if family == _socket.AF_INET else "IPv6 routes"
        yield from checked(nl.dump(RTM_GETROUTE, route_request(family, table)), what, last)


def capture_routes(family: int, table: int = RT_TABLE_UNSPEC) -> List[bytes]:
    """The raw chunks of one dump, up to and including NLMSG_DONE (tests, --save), asked for
    again while it is flagged NLM_F_DUMP_INTR."""
    return consistent(lambda last: list(route_chunks(family, table, last)))


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
SKIP = RouteData(genmask="", gateway="", flags=0, metric=0, refcnt=0, use=0, mtu=0, window=0,
                 irtt=0, iface="*", table=-1)
# A message that matched FIXED_ROUTE without being one (see Ipv4Decoder._learn()).
NOT_FIXED = SKIP._replace(table=-2)


def _fixed_route_pattern() -> re.Pattern[bytes]:
    """One route message of the fixed layout, as three groups: the bytes before the
    destination (nlmsghdr, rtmsg, RTA_TABLE, RTA_DST's header), the destination, and the
    attributes after it.

    An attribute is matched by its length alone (8 to 40 bytes: RTA_OIF, RTA_GATEWAY,
    RTA_PRIORITY, RTA_PREFSRC, a short RTA_METRICS or RTA_MULTIPATH); no message is shorter
    than 44 bytes, so the next message's header never passes for an attribute. The pattern
    only splits the chunk: Ipv4Decoder checks every distinct message against its length field.
    """
    native_u16 = struct.Struct("=H").pack
    attribute = b"|".join(
        re.escape(native_u16(size)) + b".{%d}" % (size - 2) for size in range(8, 44, 4)
    )
    return re.compile(
        b"(.{4}" + re.escape(native_u16(RTM_NEWROUTE)) + b".{22}"
        + re.escape(TABLE_HEADER) + b".{4}" + re.escape(DST4_HEADER)
        + b")(.{4})((?:" + attribute + b")*)",
        re.S,
    )


FIXED_ROUTE = _fixed_route_pattern()


class Ipv4Decoder:
    """Decodes AF_INET route dumps chunk by chunk, reusing the rows of identical messages.

    Two messages whose bytes differ only in the 4 bytes of RTA_DST give the same row but for
    the destination, so the row's data is decoded once and found again by the other bytes
    (the key). A chunk of such messages is split by one regular expression (FIXED_ROUTE, in
    C), and every per-row step after it is a C-level map(); a chunk with any other message
    (the default route has no RTA_DST, NLMSG_DONE ends the last chunk) goes message by
    message with the same keys. The split halves the decoding time of a big dump.
    """

    def __init__(self, ifname: IfName) -> None:
        self.ifname = ifname
        self.routes: List[Route] = []
        # key -> row data: the key of a FIXED_ROUTE match includes the nlmsghdr (its length
        # field is what _learn() checks), the key of a message taken alone does not.
        self.fixed: Dict[bytes, RouteData] = {}
        self.known: Dict[bytes, RouteData] = {}
        # Has any fixed key been learnt as SKIP or NOT_FIXED? (saves two scans per chunk)
        self.fixed_specials = False

    def take(self) -> List[Route]:
        """The rows decoded since the last take()."""
        routes, self.routes = self.routes, []
        return routes

    def feed(self, buf: bytes) -> bool:
        """Decode one chunk; True once the dump is over (NLMSG_DONE, or a truncated message).

        BackendUnavailable for an NLMSG_ERROR, or an NLMSG_DONE, that carries an errno."""
        if self._fixed_chunk(buf):
            return False
        unpack = LENGTH_TYPE.unpack_from
        offset = 0
        end = len(buf)
        while offset + 16 <= end:
            length, msg_type = unpack(buf, offset)
            if length < 16 or offset + length > end:
                return True
            if msg_type == NLMSG_DONE:
                # A dump that failed before its first record ends with an errno in DONE.
                code = nlmsg_error(buf, offset) if length >= 20 else 0
                if code:
                    raise BackendUnavailable(f"RTM_GETROUTE: {os.strerror(code)}", code)
                return True
            if msg_type == NLMSG_ERROR:
                code = nlmsg_error(buf, offset)
                if code:
                    raise BackendUnavailable(f"RTM_GETROUTE: {os.strerror(code)}", code)
            elif msg_type == RTM_NEWROUTE and length >= ATTRS_OFFSET:
                self._one(buf, offset, length)
            offset += (length + 3) & ~3
        return False

    def _fixed_chunk(self, buf: bytes) -> bool:
        """Decode a chunk made only of fixed-layout route messages; False (nothing decoded)
        for any other chunk."""
        found = FIXED_ROUTE.findall(buf)
        if not found:
            return False
        heads, destinations, tails = zip(*found)
        # Matches tile the chunk exactly when each spans its own length field (checked once
        # per key by _learn()) and the spans add up to the chunk: no byte was skipped.
        if DST4_END * len(heads) + sum(map(len, tails)) != len(buf):
            return False
        keys = list(map(bytes.__add__, heads, tails))
        known = self.fixed
        datas: List[Optional[RouteData]] = list(map(known.get, keys))
        if None in datas:
            for index, data in enumerate(datas):
                if data is None:
                    key = keys[index]
                    data = known.get(key) or self._learn(
                        key, heads[index] + destinations[index] + tails[index]
                    )
                    datas[index] = data
        if self.fixed_specials and NOT_FIXED in datas:
            return False
        if self.fixed_specials and SKIP in datas:
            ntoa = _socket.inet_ntoa
            self.routes.extend(
                Route(destination=ntoa(destination), data=data)
                for destination, data in zip(destinations, datas)
                if data is not SKIP and data is not None
            )
        else:
            self.routes.extend(
                map(tuple.__new__, repeat(Route), zip(*values_of(
                    Route, destination=map(_socket.inet_ntoa, destinations), data=datas)))
            )
        return True

    def _learn(self, key: bytes, message: bytes) -> RouteData:
        """Decode the first message of a key in full and remember its row data."""
        (length,) = U32.unpack_from(message)
        if length != len(message):
            data = NOT_FIXED  # the expression cut the message elsewhere than the kernel did
        else:
            route = _decode_route4(message, 0, length, self.ifname)
            data = SKIP if route is None else route.data
        self.fixed[key] = data
        self.fixed_specials |= data is SKIP or data is NOT_FIXED
        return data

    @specialised
    def _one(self, buf: bytes, offset: int, length: int) -> None:
        key = b""
        if length >= DST4_END:
            key = buf[offset + RTMSG_OFFSET : offset + DST4_START] + buf[
                offset + DST4_END : offset + length
            ]
            data = self.known.get(key)
            if data is not None:
                if data is not SKIP:
                    destination = _socket.inet_ntoa(buf[offset + DST4_START : offset + DST4_END])
                    self.routes.append(tuple.__new__(Route, values_of(
                        Route, destination=destination, data=data)))
                return
        route = _decode_route4(buf, offset, length, self.ifname)
        if (
            key
            and buf[offset + ATTRS_OFFSET : offset + ATTRS_OFFSET + 4] == TABLE_HEADER
            and buf[offset + ATTRS_OFFSET + 8 : offset + DST4_START] == DST4_HEADER
        ):
            self.known[key] = SKIP if route is None else route.data
        if route is not None:
            self.routes.append(route)


def _decode_route4(buf: bytes, offset: int, length: int, ifname: IfName) -> Optional[Route]:
    """One AF_INET route message -> its /proc/net/route row, or None if the file leaves it out.

    Mirrors fib_route_seq_show() and fib_flag_trans() (net/ipv4/fib_trie.c): main table only,
    no broadcast or multicast entries; RTF_REJECT for unreachable and prohibit; RTF_GATEWAY
    when the first next hop's gateway, read as an IPv4 address, is not zero (for an IPv6
    gateway that reads the first 4 bytes of it, and the Gateway column stays 0); RTF_HOST for
    a /32; the first next hop's device, "*" when there is none.
    """
    _, dst_len, _, _, rtm_table, protocol, _, rtm_type, rtm_flags = RTMSG.unpack_from(
        buf, offset + RTMSG_OFFSET
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
            f"route {_socket.inet_ntoa(destination)}/{dst_len} uses nexthop object "
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
        gateway=_socket.inet_ntoa(gateway),
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
    return Route(destination=_socket.inet_ntoa(destination), data=data)


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


def ipv4_chunks(last: bool = True) -> Iterator[bytes]:
    """The chunks of the main table's AF_INET dump (Ipv4Decoder takes them); `last` as for
    route_chunks()."""
    return route_chunks(_socket.AF_INET, RT_TABLE_MAIN, last)


__all__ = [
    "Ipv4Decoder",
    "InterfaceNames",
    "capture_routes",
    "decode_ipv4",
    "ipv4_chunks",
    "route_chunks",
]
