"""netstat's interface list over rtnetlink: RTM_GETLINK (with IFLA_STATS64) and RTM_GETADDR.

One RTM_GETLINK dump gives every device with its flags, type, hardware address, MTU, queue
length, map and 64-bit counters; one AF_INET RTM_GETADDR dump gives the IPv4 labels and
addresses that netstat gets from SIOCGIFCONF and SIOCGIFADDR. Decoders take raw chunks, so
they run the same on a live socket and on captured bytes.
"""

from __future__ import annotations

import _socket
import errno
import struct
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from nlstat.backends.netlink.nlsocket import NetlinkSocket, iter_attrs, messages
from nlstat.backends.procfs.links import InterfaceFetchError, netstat_order
from nlstat.kernel.link import (
    IFA_ADDRESS,
    IFA_BROADCAST,
    IFA_LABEL,
    IFA_LOCAL,
    IFADDRMSG,
    IFINFOMSG,
    IFLA_ADDRESS,
    IFLA_IFNAME,
    IFLA_MAP,
    IFLA_MTU,
    IFLA_STATS,
    IFLA_STATS64,
    IFLA_TXQLEN,
    IPV6_ADDR_LINKLOCAL,
    IPV6_ADDR_LOOPBACK,
    IPV6_ADDR_SITELOCAL,
    RT_SCOPE_HOST,
    RT_SCOPE_LINK,
    RT_SCOPE_SITE,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTNL_LINK_IFMAP,
    RTNL_LINK_STATS,
    RTNL_LINK_STATS64,
    IPV6_ADDR_COMPATv4,
)
from nlstat.kernel.netlink import NETLINK_ROUTE, NLA_TYPE_MASK, NLATTR, NLMSGHDR
from nlstat.model.links import DeviceMap, Inet6Address, InetAddress, Interface, LinkStats

# struct ifinfomsg, ifaddrmsg, rtnl_link_ifmap and rtnl_link_stats{,64} are declared in
# kernel/link.py.
U32 = struct.Struct("=I")
U64_MASK = 0xFFFFFFFFFFFFFFFF



class Device(NamedTuple):
    """One RTM_NEWLINK message, decoded: a network device with its /proc/net/dev counters."""

    ifindex: int
    name: str
    flags: int
    type: int
    address: bytes
    mtu: int
    tx_queue_len: int | None
    device_map: DeviceMap
    stats: LinkStats | None


class Ipv4Entry(NamedTuple):
    """One AF_INET RTM_NEWADDR message: what SIOCGIFCONF and SIOCGIFADDR report for its label."""

    ifindex: int
    label: str
    local: str
    address: str
    prefix_length: int
    broadcast: str


def link_request() -> bytes:
    return IFINFOMSG.pack(_socket.AF_UNSPEC, 0, 0, 0, 0)


def address_request(family: int) -> bytes:
    return IFADDRMSG.pack(family, 0, 0, 0, 0)


def _name(buf: bytes, start: int, end: int) -> str:
    return buf[start:end].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def stats_from_counters(values: tuple[int, ...]) -> LinkStats:
    """rtnl_link_stats64 (or the 32-bit rtnl_link_stats), unpacked -> the /proc/net/dev columns.

    The kernel's sums (net/core/net-procfs.c dev_seq_printf_stats) are made in u64.
    """
    c = dict(zip(RTNL_LINK_STATS64.fields, values))
    return LinkStats(
        rx_bytes=c["rx_bytes"],
        rx_packets=c["rx_packets"],
        rx_errors=c["rx_errors"],
        rx_dropped=(c["rx_dropped"] + c["rx_missed_errors"]) & U64_MASK,
        rx_fifo_errors=c["rx_fifo_errors"],
        rx_frame_errors=(c["rx_length_errors"] + c["rx_over_errors"] + c["rx_crc_errors"]
                         + c["rx_frame_errors"]) & U64_MASK,
        rx_compressed=c["rx_compressed"],
        rx_multicast=c["multicast"],
        tx_bytes=c["tx_bytes"],
        tx_packets=c["tx_packets"],
        tx_errors=c["tx_errors"],
        tx_dropped=c["tx_dropped"],
        tx_fifo_errors=c["tx_fifo_errors"],
        collisions=c["collisions"],
        tx_carrier_errors=(c["tx_carrier_errors"] + c["tx_aborted_errors"]
                           + c["tx_window_errors"] + c["tx_heartbeat_errors"]) & U64_MASK,
        tx_compressed=c["tx_compressed"],
    )


def _counters(buf: bytes, start: int, end: int, width: int) -> LinkStats | None:
    layout = RTNL_LINK_STATS64 if width == 8 else RTNL_LINK_STATS
    if end - start < layout.size:
        return None
    return stats_from_counters(layout.unpack_from(buf, start))


def decode_links(chunks: Iterable[bytes]) -> list[Device]:
    """RTM_NEWLINK messages -> Device records, in dump order.

    The kernel fills a link message in a fixed order (net/core/rtnetlink.c rtnl_fill_ifinfo):
    name, queue length, MTU, map and address first, then IFLA_STATS64 directly followed by
    IFLA_STATS, then the large nests (VF info, link info, per-family data) that make up most
    of the bytes. The walk stops after IFLA_STATS, which halves the decoding of bridges.
    """
    devices: list[Device] = []
    unpack_attr = NLATTR.unpack_from
    for buf, offset, length, msg_type, _flags in messages(chunks, IFINFOMSG.size):
        if msg_type != RTM_NEWLINK:
            continue
        _family, kind, index, flags, _change = IFINFOMSG.unpack_from(buf, offset + NLMSGHDR.size)
        name = ""
        address = b""
        mtu = 0
        tx_queue_len: int | None = None
        device_map = DeviceMap()
        stats64: LinkStats | None = None
        stats32: LinkStats | None = None
        position = offset + NLMSGHDR.size + IFINFOMSG.size
        end = offset + length
        while position + 4 <= end:
            size, attr = unpack_attr(buf, position)
            if size < 4 or position + size > end:
                break  # nla_ok() fails: the rest of a damaged message is not read
            begin, finish = position + 4, position + size
            position += (size + 3) & ~3
            attr &= NLA_TYPE_MASK
            if attr == IFLA_IFNAME:
                name = _name(buf, begin, finish)
            elif attr == IFLA_ADDRESS:
                address = buf[begin:finish]
            elif attr == IFLA_MTU and finish - begin >= 4:
                mtu = U32.unpack_from(buf, begin)[0]
            elif attr == IFLA_TXQLEN and finish - begin >= 4:
                tx_queue_len = U32.unpack_from(buf, begin)[0]
            elif attr == IFLA_MAP and finish - begin >= RTNL_LINK_IFMAP.size:
                device_map = DeviceMap(*RTNL_LINK_IFMAP.unpack_from(buf, begin))
            elif attr == IFLA_STATS64:
                stats64 = _counters(buf, begin, finish, 8)
            elif attr == IFLA_STATS:
                stats32 = _counters(buf, begin, finish, 4)
                if name and stats64 is not None:
                    break
        # SIOCGIFHWADDR hands over at most the first 8 bytes netstat keeps, zero-padded.
        address = address[:8].ljust(8, b"\0")
        devices.append(Device(index, name, flags, kind, address, mtu, tx_queue_len, device_map,
                              stats64 if stats64 is not None else stats32))
    return devices


def _ipv4(buf: bytes, start: int) -> str:
    return _socket.inet_ntoa(buf[start : start + 4])


def decode_ipv4_addresses(chunks: Iterable[bytes]) -> list[Ipv4Entry]:
    """AF_INET RTM_NEWADDR messages -> Ipv4Entry, in dump order (each device's ifa_list order)."""
    entries: list[Ipv4Entry] = []
    for buf, offset, length, msg_type, _flags in messages(chunks, IFADDRMSG.size):
        if msg_type != RTM_NEWADDR:
            continue
        family, prefix, _flags8, _scope, index = IFADDRMSG.unpack_from(buf, offset + NLMSGHDR.size)
        if family != _socket.AF_INET:
            continue
        label = ""
        local = address = broadcast = "0.0.0.0"
        start = offset + NLMSGHDR.size + IFADDRMSG.size
        for attr, begin, finish in iter_attrs(buf, start, offset + length):
            if attr == IFA_LOCAL and finish - begin >= 4:
                local = _ipv4(buf, begin)
            elif attr == IFA_ADDRESS and finish - begin >= 4:
                address = _ipv4(buf, begin)
            elif attr == IFA_BROADCAST and finish - begin >= 4:
                broadcast = _ipv4(buf, begin)
            elif attr == IFA_LABEL:
                label = _name(buf, begin, finish)
        entries.append(Ipv4Entry(index, label, local, address, prefix, broadcast))
    return entries


def proc_scope(rt_scope: int, raw: bytes) -> int:
    """ifa_scope (an rtm_scope) -> the address-type scope bits /proc/net/if_inet6 prints.

    The kernel keeps ipv6_addr_scope() of the address and reports rt_scope() of it over netlink,
    which drops the v4-compatible bit (0x80) of addresses like ::198.18.0.1; put it back.
    """
    if rt_scope == RT_SCOPE_HOST:
        scope = IPV6_ADDR_LOOPBACK
    elif rt_scope == RT_SCOPE_LINK:
        scope = IPV6_ADDR_LINKLOCAL
    elif rt_scope == RT_SCOPE_SITE:
        scope = IPV6_ADDR_SITELOCAL
    else:
        scope = 0
    v4_compatible = raw[:12] == bytes(12) and raw[12:] not in (bytes(4), b"\0\0\0\1")
    if v4_compatible and scope in (0, IPV6_ADDR_LOOPBACK):
        scope |= IPV6_ADDR_COMPATv4
    return scope


def decode_ipv6_addresses(chunks: Iterable[bytes], names: dict[int, str]) -> list[Inet6Address]:
    """AF_INET6 RTM_NEWADDR messages -> Inet6Address (device names from `names`), dump order."""
    result: list[Inet6Address] = []
    for buf, offset, length, msg_type, _flags in messages(chunks, IFADDRMSG.size):
        if msg_type != RTM_NEWADDR:
            continue
        family, prefix, flags, scope, index = IFADDRMSG.unpack_from(buf, offset + NLMSGHDR.size)
        if family != _socket.AF_INET6:
            continue
        raw: bytes | None = None
        local: bytes | None = None
        start = offset + NLMSGHDR.size + IFADDRMSG.size
        for attr, begin, finish in iter_attrs(buf, start, offset + length):
            if attr == IFA_ADDRESS and finish - begin >= 16:
                raw = buf[begin : begin + 16]
            elif attr == IFA_LOCAL and finish - begin >= 16:
                local = buf[begin : begin + 16]
        # With a peer, IFA_ADDRESS is the peer and IFA_LOCAL the address itself.
        if local is not None:
            raw = local
        if raw is None:
            continue
        address = _socket.inet_ntop(_socket.AF_INET6, raw)
        result.append(Inet6Address(device=names.get(index, ""), ifindex=index, address=address,
                                   prefix_length=prefix,
                                   scope=proc_scope(scope, raw), flags=flags))
    return result


def interfaces_from(devices: list[Device], entries: list[Ipv4Entry]) -> Iterator[Interface]:
    """netstat's list from decoded dumps: devices, then IPv4 labels, in nstrcmp order.

    Like the ioctls, a name is looked up by the part before its first ':' (an alias label
    "eth0:1" gets eth0's flags, hardware and MTU), and its IPv4 address is the first one of that
    device whose label equals the whole name. Only /proc/net/dev names (devices) have counters.
    """
    by_name = {device.name: device for device in devices}
    first_address: dict[tuple[int, str], Ipv4Entry] = {}
    for entry in entries:
        first_address.setdefault((entry.ifindex, entry.label), entry)
    order = netstat_order([device.name for device in devices]
                          + [entry.label for entry in entries if entry.label])
    for name in order:
        device = by_name.get(name.split(":", 1)[0])
        if device is None:
            raise InterfaceFetchError(name, errno.ENODEV)  # what SIOCGIFFLAGS answers
        inet: InetAddress | None = None
        first = first_address.get((device.ifindex, name))
        if first is not None:
            netmask = (0xFFFFFFFF << (32 - first.prefix_length)) & 0xFFFFFFFF
            inet = InetAddress(address=first.local, netmask=_socket.inet_ntoa(netmask.to_bytes(4,
                                                                                               "big")),
                               broadcast=first.broadcast, destination=first.address)
        stats = device.stats if name == device.name else None
        if name == device.name and stats is None:
            stats = LinkStats()
        yield Interface(name=name, ifindex=device.ifindex, flags=device.flags,
                        hardware_type=device.type, hardware_address=device.address,
                        mtu=device.mtu, tx_queue_len=device.tx_queue_len,
                        device_map=device.device_map, inet=inet, stats=stats)


class NetlinkInterfaces:
    """The interface list from one RTM_GETLINK and one AF_INET RTM_GETADDR dump."""

    def __init__(self) -> None:
        with NetlinkSocket(NETLINK_ROUTE) as sock:
            link_chunks = sock.dump_all(RTM_GETLINK, link_request(), "links")
            address_chunks = sock.dump_all(
                RTM_GETADDR, address_request(_socket.AF_INET), "IPv4 addresses"
            )
        self.devices = decode_links(link_chunks)
        self.entries = decode_ipv4_addresses(address_chunks)

    def __iter__(self) -> Iterator[Interface]:
        return interfaces_from(self.devices, self.entries)

    def names(self) -> dict[int, str]:
        return {device.ifindex: device.name for device in self.devices}

    def close(self) -> None:
        """Nothing stays open: the socket is closed once both dumps are read."""


def ipv6_addresses(names: dict[int, str]) -> list[Inet6Address]:
    """Every IPv6 address from an AF_INET6 RTM_GETADDR dump, in dump order."""
    with NetlinkSocket(NETLINK_ROUTE) as sock:
        chunks = sock.dump_all(
            RTM_GETADDR, address_request(_socket.AF_INET6), "IPv6 addresses"
        )
    return decode_ipv6_addresses(chunks, names)
