"""Routing-table records, produced by backends/netlink/routes.py and backends/procfs/routes.py.

A route is split in two: its destination, and everything else (`RouteData`, `Route6Data`).
Routes that differ only in their destination share one data record: a table of 100,000 host
routes through one gateway holds one `RouteData`. The backends intern them (one dictionary
look-up per route instead of a full decode) and the formatter caches the text of each one, which
is what keeps `nlstat -rn` on 100k routes within netstat's time.
"""


from typing import List, NamedTuple, Optional


class RouteData(NamedTuple):
    """An IPv4 FIB entry as /proc/net/route shows it, without the destination.

    Values are the file's columns: `flags` are RTF_* bits (only RTF_UP, RTF_GATEWAY, RTF_HOST
    and RTF_REJECT are ever set by the kernel); `mtu` is the MTU column, which the kernel fills
    with advmss + 40 (0 when no advmss metric is set); `irtt` is the rtt metric in milliseconds
    (the kernel prints rtt >> 3); `metric` is the route priority. All are signed 32-bit, as
    netstat reads them. `iface` is "*" when the route has no device (reject and blackhole
    routes). `prefix_len`, `table`, `type` and `protocol` are known from netlink only
    (`type`/`protocol` are 0 from /proc).
    """

    genmask: str  # dotted quad
    gateway: str  # dotted quad, "0.0.0.0" when none
    flags: int
    metric: int
    refcnt: int
    use: int
    mtu: int
    window: int
    irtt: int
    iface: str
    prefix_len: int = 0
    table: int = 254
    type: int = 0
    protocol: int = 0


class Route(NamedTuple):
    """One IPv4 FIB row: destination (dotted quad) and the rest, shared between routes."""

    destination: str
    data: RouteData


class Route6Data(NamedTuple):
    """An IPv6 route as /proc/net/ipv6_route shows it, without the destination.

    `flags` are RTF_* bits as the kernel prints them (RTF_GATEWAY added when there is a next
    hop); `metric`, `refcnt` and `use` are signed 32-bit (metric 0xffffffff is -1).
    `refcnt` is None when unknown: netlink does not export fib6_info's reference count.
    `table` is known from netlink only (0 from /proc).
    """

    prefix_len: int
    next_hop: str  # inet_ntop text, "::" when none
    metric: int
    refcnt: Optional[int]
    use: int
    flags: int
    iface: str
    source: str = "::"
    source_len: int = 0
    table: int = 0
    type: int = 0
    protocol: int = 0


class Route6(NamedTuple):
    """One IPv6 route row: destination (inet_ntop text) and the rest, shared between routes."""

    destination: str
    data: Route6Data


class CachedRoute(NamedTuple):
    """One row of /proc/net/rt_cache (kernels before 3.6; the file holds only its title now).

    Addresses are dotted quads; `flags` are RTCF_*/RTF_* bits; `hh`/`arp` exist in the 2.0
    layout, `tos`/`hhref`/`hhuptod`/`specdst` in the 2.2 layout (0 or "" otherwise).
    """

    source: str
    destination: str
    gateway: str
    flags: int
    metric: int
    refcnt: int
    use: int
    iface: str
    mss: int
    window: int
    irtt: int
    tos: int = 0
    hhref: int = 0
    hhuptod: int = 0
    specdst: str = "0.0.0.0"
    hh: int = 0
    arp: int = 0


class RouteCache(NamedTuple):
    """The IPv4 routing cache: netstat's layout guess for the file, and its rows.

    `layout` is 2 (the 2.2+ title line, also what current kernels print), 1 (2.0.36), or the
    raw bit mask netstat's proc_guess_fmt() returned when it recognised neither.
    """

    layout: int
    entries: List[CachedRoute]
