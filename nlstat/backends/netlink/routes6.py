"""RTM_GETROUTE dumps of AF_INET6 decoded into the rows /proc/net/ipv6_route would show.

inet6_dump_fib() and /proc/net/ipv6_route walk the same tables (hash order) with the same fib6
walker (post-order: a table's root comes last), but the dump leaves out the root's null entry
("::/0 !n -1 lo") of a table that has no default route, merges ECMP siblings into one
RTA_MULTIPATH message (the file prints one line per sibling), and carries neither fib6_ref
(the Ref column) nor fib6_flags. Flags are rebuilt from the route type, protocol and expiry;
Ref is left unknown. That is why the routes mode reads IPv6 from /proc unless netlink is
forced (see nlstat/modes/routes.py). IPv6 tables are small next to IPv4 ones, so this decoder
is the plain attribute walk.
"""

from __future__ import annotations

import _socket
from typing import Iterable, List, Optional, Tuple

from nlstat.backends.netlink.nlsocket import iter_attrs, messages
from nlstat.backends.netlink.routes import (
    ATTRS_OFFSET,
    CACHEINFO_EXPIRES,
    RTMSG_OFFSET,
    U32,
    IfName,
    InterfaceNames,
    capture_routes,
)
from nlstat.cscan import to_s32
from nlstat.kernel.rtnetlink import (
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
    RTA_CACHEINFO,
    RTA_DST,
    RTA_GATEWAY,
    RTA_MULTIPATH,
    RTA_OIF,
    RTA_PRIORITY,
    RTA_SRC,
    RTA_TABLE,
    RTF_ADDRCONF,
    RTF_ANYCAST,
    RTF_DEFAULT,
    RTF_EXPIRES,
    RTF_GATEWAY,
    RTF_LOCAL,
    RTF_NONEXTHOP,
    RTF_REJECT,
    RTF_UP,
    RTM_F_CLONED,
    RTM_NEWROUTE,
    RTMSG,
    RTN_ANYCAST,
    RTN_BLACKHOLE,
    RTN_LOCAL,
    RTN_PROHIBIT,
    RTN_THROW,
    RTN_UNREACHABLE,
    RTNEXTHOP,
    RTPROT_KERNEL,
    RTPROT_RA,
)
from nlstat.model.routes import Route6, Route6Data

# fib6_null_entry as /proc/net/ipv6_route prints it (net/ipv6/route.c): reject, no next hop,
# metric ~0, on the namespace's loopback device.
NULL_ENTRY_FLAGS = RTF_REJECT | RTF_NONEXTHOP
NULL_ENTRY_METRIC = -1
FIB6_TABLE_HASHSZ = 256
REJECT_TYPES = (RTN_UNREACHABLE, RTN_PROHIBIT, RTN_BLACKHOLE, RTN_THROW)


def decode_ipv6(chunks: Iterable[bytes], ifname: IfName, loopback: str = "lo") -> List[Route6]:
    """The rows of /proc/net/ipv6_route, in its order, from the chunks of an AF_INET6 dump.

    Every table is listed (the file shows them all, in hash-bucket order); each table ends with
    its root's null entry unless a ::/0 route sits there; the main and local tables exist even
    when the dump has nothing from them. ECMP routes become one row per next hop.
    """
    rows: List[Route6] = []
    tables: List[Tuple[int, List[Route6], bool]] = []  # (table, rows, has a ::/0 route)
    current: Optional[List[Route6]] = None
    current_table = -1
    has_default = False
    for buf, offset, length, msg_type, _ in messages(chunks):
        if msg_type != RTM_NEWROUTE or length < ATTRS_OFFSET:
            continue
        decoded = _decode_route6(buf, offset, length, ifname)
        if decoded is None:
            continue
        table, is_default, routes = decoded
        if table != current_table or current is None:
            if current is not None:
                tables.append((current_table, current, has_default))
            current, current_table, has_default = [], table, False
        current.extend(routes)
        has_default = has_default or is_default
    if current is not None:
        tables.append((current_table, current, has_default))
    seen = {table for table, _, _ in tables}
    for always in (RT_TABLE_MAIN, RT_TABLE_LOCAL):
        if always not in seen:
            # Created with the namespace, so the oldest entry of its hash bucket: it comes
            # after every table of a lower bucket and after newer tables of its own bucket.
            position = len(tables)
            for index, (table, _, _) in enumerate(tables):
                if table % FIB6_TABLE_HASHSZ > always % FIB6_TABLE_HASHSZ:
                    position = index
                    break
            tables.insert(position, (always, [], False))
    null = Route6Data(
        prefix_len=0,
        next_hop="::",
        metric=NULL_ENTRY_METRIC,
        refcnt=None,
        use=0,
        flags=NULL_ENTRY_FLAGS,
        iface=loopback,
        type=RTN_UNREACHABLE,
    )
    for table, table_rows, has_default_route in tables:
        rows.extend(table_rows)
        if not has_default_route:
            rows.append(Route6(destination="::", data=null._replace(table=table)))
    return rows


def _decode_route6(
    buf: bytes, offset: int, length: int, ifname: IfName
) -> Optional[Tuple[int, bool, List[Route6]]]:
    """One AF_INET6 route message -> (table, is ::/0 without source, rows)."""
    _, dst_len, src_len, _, rtm_table, protocol, _, rtm_type, rtm_flags = RTMSG.unpack_from(
        buf, offset + RTMSG_OFFSET
    )
    if rtm_flags & RTM_F_CLONED:
        return None
    table = rtm_table
    destination = bytes(16)
    source = bytes(16)
    gateway: Optional[bytes] = None
    oif = 0
    metric = 0
    expires = 0
    hops: List[Tuple[int, Optional[bytes]]] = []
    u32 = U32.unpack_from
    for kind, start, stop in iter_attrs(buf, offset + ATTRS_OFFSET, offset + length):
        if kind == RTA_TABLE:
            (table,) = u32(buf, start)
        elif kind == RTA_DST:
            destination = buf[start : start + 16]
        elif kind == RTA_SRC:
            source = buf[start : start + 16]
        elif kind == RTA_GATEWAY:
            gateway = buf[start : start + 16]
        elif kind == RTA_OIF:
            (oif,) = u32(buf, start)
        elif kind == RTA_PRIORITY:
            (metric,) = u32(buf, start)
        elif kind == RTA_CACHEINFO and stop - start >= CACHEINFO_EXPIRES.size:
            (expires,) = CACHEINFO_EXPIRES.unpack_from(buf, start)
        elif kind == RTA_MULTIPATH:
            hops = _nexthops6(buf, start, stop)
    flags = _flags6(rtm_type, protocol, dst_len, expires)
    if not hops:
        hops = [(oif, gateway)]
    ntop = _socket.inet_ntop
    destination_text = ntop(_socket.AF_INET6, destination)
    source_text = ntop(_socket.AF_INET6, source)
    rows = []
    for hop_oif, hop_gateway in hops:
        hop_flags = flags | RTF_GATEWAY if hop_gateway is not None else flags
        data = Route6Data(
            prefix_len=dst_len,
            next_hop=ntop(_socket.AF_INET6, hop_gateway) if hop_gateway is not None else "::",
            metric=to_s32(metric),
            refcnt=None,
            use=0,
            flags=hop_flags,
            iface=ifname(hop_oif) if hop_oif else "",
            source=source_text,
            source_len=src_len,
            table=table,
            type=rtm_type,
            protocol=protocol,
        )
        rows.append(Route6(destination=destination_text, data=data))
    return table, dst_len == 0 and src_len == 0, rows


def _flags6(rtm_type: int, protocol: int, dst_len: int, expires: int) -> int:
    """fib6_flags, rebuilt from what the dump says (net/ipv6/route.c, addrconf.c, ndisc.c).

    Reject types carry RTF_REJECT | RTF_NONEXTHOP and no RTF_UP; addrconf's local and anycast
    routes (protocol kernel) carry RTF_NONEXTHOP; router-advertised routes carry RTF_ADDRCONF,
    and a default route from an RA also RTF_DEFAULT. RTF_PREFIX_RT and RTF_ROUTEINFO are
    invisible to netstat.
    """
    if rtm_type in REJECT_TYPES:
        return RTF_REJECT | RTF_NONEXTHOP
    flags = RTF_UP
    if rtm_type == RTN_LOCAL:
        flags |= RTF_LOCAL
    elif rtm_type == RTN_ANYCAST:
        flags |= RTF_ANYCAST
    if rtm_type in (RTN_LOCAL, RTN_ANYCAST) and protocol == RTPROT_KERNEL:
        flags |= RTF_NONEXTHOP
    if protocol == RTPROT_RA:
        flags |= RTF_ADDRCONF
        if dst_len == 0:
            flags |= RTF_DEFAULT
    if expires:
        flags |= RTF_EXPIRES
    return flags


def _nexthops6(buf: bytes, start: int, stop: int) -> List[Tuple[int, Optional[bytes]]]:
    hops: List[Tuple[int, Optional[bytes]]] = []
    while start + RTNEXTHOP.size <= stop:
        nh_len, _, _, ifindex = RTNEXTHOP.unpack_from(buf, start)
        if nh_len < RTNEXTHOP.size:
            break
        gateway: Optional[bytes] = None
        attrs_end = min(start + nh_len, stop)
        for kind, value_start, _ in iter_attrs(buf, start + RTNEXTHOP.size, attrs_end):
            if kind == RTA_GATEWAY:
                gateway = buf[value_start : value_start + 16]
        hops.append((max(ifindex, 0), gateway))
        start += (nh_len + 3) & ~3
    return hops


def read_ipv6() -> List[Route6]:
    """Every IPv6 table, as /proc/net/ipv6_route lists them, from the kernel."""
    names = InterfaceNames()
    chunks = capture_routes(_socket.AF_INET6)
    # The null entries sit on the namespace's loopback device, which is always ifindex 1
    # (LOOPBACK_IFINDEX).
    loopback = names(1)
    return decode_ipv6(chunks, names, "lo" if loopback == "*" else loopback)


__all__ = ["decode_ipv6", "read_ipv6"]
