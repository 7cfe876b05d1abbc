"""Interface records for `netstat -i`, produced by the netlink and procfs links backends."""


from typing import NamedTuple, Optional


class LinkStats(NamedTuple):
    """The 16 counters of one /proc/net/dev line, in its column order.

    Some are sums the kernel makes when it prints the file (net/core/net-procfs.c,
    dev_seq_printf_stats): `rx_dropped` is rx_dropped + rx_missed_errors, `rx_frame_errors` is
    length + over + crc + frame errors, `tx_carrier_errors` is carrier + aborted + window +
    heartbeat errors. The netlink backend makes the same sums from IFLA_STATS64.
    """

    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    rx_fifo_errors: int = 0
    rx_frame_errors: int = 0
    rx_compressed: int = 0
    rx_multicast: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0
    tx_fifo_errors: int = 0
    collisions: int = 0
    tx_carrier_errors: int = 0
    tx_compressed: int = 0


class DeviceMap(NamedTuple):
    """struct ifmap (SIOCGIFMAP) / struct rtnl_link_ifmap (IFLA_MAP): I/O resources of a device."""

    mem_start: int = 0
    mem_end: int = 0
    base_addr: int = 0
    irq: int = 0
    dma: int = 0
    port: int = 0


class InetAddress(NamedTuple):
    """The IPv4 address netstat shows for an interface name (SIOCGIFADDR and friends).

    That is the first address in the device's list whose label equals the name: "eth0" and
    the alias label "eth0:1" each get their own. Dotted-quad texts; `broadcast` is "0.0.0.0"
    when none is set, `destination` equals `address` unless the link is point-to-point.
    None means the ioctl for it failed (netstat then prints "[NONE SET]").
    """

    address: str
    netmask: Optional[str]
    broadcast: Optional[str]
    destination: Optional[str]


class Interface(NamedTuple):
    """One entry of netstat's interface list: a network device or an IPv4 alias label.

    `flags` is what the source gives (32 bits from netlink, the low 16 from SIOCGIFFLAGS); the
    formatter keeps the low 16 bits as netstat does. `hardware_address` is at most 8 bytes (netstat
    copies 8 bytes of ifr_hwaddr). `stats` is None for names that are not in /proc/net/dev (alias
    labels); `tx_queue_len` is None when unknown; `ifindex` is 0 from the procfs backend (netstat's
    ioctls never learn it).
    """

    name: str
    ifindex: int
    flags: int
    hardware_type: int
    hardware_address: bytes
    mtu: int
    tx_queue_len: Optional[int]
    device_map: DeviceMap
    inet: Optional[InetAddress]
    stats: Optional[LinkStats]


class Inet6Address(NamedTuple):
    """One line of /proc/net/if_inet6 (or its RTM_GETADDR equivalent).

    `scope` is the kernel's IPv6 address-type scope bits as /proc/net/if_inet6 prints them
    (0x00 global, 0x10 host, 0x20 link, 0x40 site, plus 0x80 for v4-compatible addresses), not
    the rtnetlink ifa_scope. `address` is inet_ntop text.
    """

    device: str
    ifindex: int
    address: str
    prefix_length: int
    scope: int
    flags: int = 0
