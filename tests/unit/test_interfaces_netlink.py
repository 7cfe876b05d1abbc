"""The rtnetlink link/address decoders on captured kernel answers, against pyroute2 and /proc.

tests/data/links holds one quiet moment of the lab namespace (tests/links_support.py): the raw
RTM_GETLINK and RTM_GETADDR answers, /proc/net/dev and /proc/net/if_inet6 read in between, and
netstat's own output.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Dict, List

import pytest

from nlstat.backends.netlink.links import (
    Device,
    Ipv4Entry,
    decode_ipv4_addresses,
    decode_ipv6_addresses,
    decode_links,
    interfaces_from,
    proc_scope,
    stats_from_counters,
)
from nlstat.backends.procfs.links import (
    InterfaceFetchError,
    parse_if_inet6,
    parse_proc_net_dev,
)
from nlstat.model.links import DeviceMap, LinkStats

REPO = Path(__file__).resolve().parents[2]

DATA = REPO / "tests" / "data" / "links"


def _text(name: str) -> str:
    """A captured text file; device names are bytes, so undecodable ones are kept as such."""
    return (DATA / name).read_bytes().decode(errors="surrogateescape")


def _bytes(name: str) -> bytes:
    return (DATA / name).read_bytes()


def _pyroute2_messages(name: str) -> List[object]:
    from pyroute2.netlink.rtnl import marshal

    return [m for m in marshal.MarshalRtnl().parse(_bytes(name)) if m["header"]["type"] in (16, 20)]


@pytest.fixture(scope="module")
def devices() -> List[Device]:
    return decode_links([_bytes("links.nl")])


def test_links_match_pyroute2(devices: List[Device]) -> None:
    reference = _pyroute2_messages("links.nl")
    assert len(devices) == len(reference) > 10
    for device, msg in zip(devices, reference):
        get = msg.get_attr  # type: ignore[attr-defined]
        assert device.ifindex == msg["index"]  # type: ignore[index]
        assert device.flags == msg["flags"]  # type: ignore[index]
        assert device.type == msg["ifi_type"]  # type: ignore[index]
        # pyroute2 hands back bytes for a name that is not UTF-8; ours keeps them as escapes
        name = get("IFLA_IFNAME")
        if isinstance(name, bytes):
            assert device.name.encode(errors="surrogateescape") == name
        else:
            assert device.name == name
        assert device.mtu == get("IFLA_MTU")
        assert device.tx_queue_len == get("IFLA_TXQLEN")
        ifmap = get("IFLA_MAP")
        assert device.device_map == DeviceMap(ifmap["mem_start"], ifmap["mem_end"],
                                              ifmap["base_addr"], ifmap["irq"], ifmap["dma"],
                                              ifmap["port"])
        address = get("IFLA_ADDRESS")
        if address is None:
            assert device.address == bytes(8)
        else:
            raw = bytes.fromhex(address.replace(":", ""))
            assert device.address == raw[:8].ljust(8, b"\0")
        stats = get("IFLA_STATS64")
        values = tuple(stats[key] for key in (
            "rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_errors", "tx_errors",
            "rx_dropped", "tx_dropped", "multicast", "collisions", "rx_length_errors",
            "rx_over_errors", "rx_crc_errors", "rx_frame_errors", "rx_fifo_errors",
            "rx_missed_errors", "tx_aborted_errors", "tx_carrier_errors", "tx_fifo_errors",
            "tx_heartbeat_errors", "tx_window_errors", "rx_compressed", "tx_compressed"))
        assert device.stats == stats_from_counters(values)


def test_link_kinds_in_capture(devices: List[Device]) -> None:
    by_name = {device.name: device for device in devices}
    assert by_name["lo"].type == 772
    assert by_name["nlstun0"].type == 0xFFFE  # ARPHRD_NONE: no hardware address
    assert by_name["nlstun0"].address == bytes(8)
    assert by_name["nlsveth0"].type == 1
    assert by_name["nlsb01"].tx_queue_len == 0xFFFFFFFF
    assert by_name["nlsbr0"].mtu == 1400
    # promisc (0x100) and allmulti (0x200) are what dev_get_flags() reports
    assert by_name["nlsverylongname"].flags & 0x300 == 0x300
    assert by_name["nlsmoved"].ifindex == 50


def test_counters_equal_proc_net_dev(devices: List[Device]) -> None:
    """IFLA_STATS64 with the kernel's sums gives exactly the /proc/net/dev columns."""
    proc = dict(parse_proc_net_dev(_text("proc_net_dev.txt")))
    assert set(proc) == {device.name for device in devices}
    moved = 0
    for device in devices:
        assert device.stats == proc[device.name], device.name
        moved += device.stats.rx_packets if device.stats else 0
    assert moved > 0  # the capture has traffic in it


def test_stats_sums() -> None:
    values = tuple(range(1, 24))
    stats = stats_from_counters(values)
    assert stats.rx_packets == 1 and stats.tx_packets == 2
    assert stats.rx_bytes == 3 and stats.tx_bytes == 4
    assert stats.rx_dropped == 7 + 16  # rx_dropped + rx_missed_errors
    assert stats.rx_frame_errors == 11 + 12 + 13 + 14  # length + over + crc + frame
    assert stats.tx_carrier_errors == 18 + 17 + 21 + 20  # carrier + aborted + window + heartbeat
    assert stats.rx_fifo_errors == 15 and stats.tx_fifo_errors == 19
    assert stats.collisions == 10 and stats.rx_multicast == 9
    assert stats.rx_compressed == 22 and stats.tx_compressed == 23
    overflow = [0] * 23
    overflow[6] = 2**64 - 1  # rx_dropped
    overflow[15] = 2  # rx_missed_errors
    assert stats_from_counters(tuple(overflow)).rx_dropped == 1  # u64 arithmetic, as the kernel


def test_ipv4_addresses_match_pyroute2() -> None:
    entries = decode_ipv4_addresses([_bytes("addr4.nl")])
    reference = _pyroute2_messages("addr4.nl")
    assert len(entries) == len(reference) > 5
    for entry, msg in zip(entries, reference):
        get = msg.get_attr  # type: ignore[attr-defined]
        assert entry.ifindex == msg["index"]  # type: ignore[index]
        assert entry.prefix_length == msg["prefixlen"]  # type: ignore[index]
        assert entry.label == get("IFA_LABEL")
        assert entry.local == get("IFA_LOCAL")
        assert entry.address == get("IFA_ADDRESS")
        assert entry.broadcast == (get("IFA_BROADCAST") or "0.0.0.0")
    labels = [entry.label for entry in entries]
    assert "lo:7" in labels and "nlsveth0:xyz" in labels


def test_ipv6_addresses_match_if_inet6(devices: List[Device]) -> None:
    """Same set as /proc/net/if_inet6, with its scope column rebuilt from ifa_scope."""
    names: Dict[int, str] = {device.ifindex: device.name for device in devices}
    ours = decode_ipv6_addresses([_bytes("addr6.nl")], names)
    proc = parse_if_inet6(_text("if_inet6.txt"))
    key = lambda e: (e.ifindex, e.address)  # noqa: E731
    assert sorted(ours, key=key) == sorted(proc, key=key)
    scopes = {entry.address: entry.scope for entry in ours}
    assert scopes["::198.18.0.6"] == 0x80  # v4-compatible: the bit rt_scope() drops
    assert scopes["fec0::1"] == 0x40
    assert scopes["::1"] == 0x10
    reference = _pyroute2_messages("addr6.nl")
    assert [m["index"] for m in reference] == [e.ifindex for e in ours]  # type: ignore[index]


def test_proc_scope() -> None:
    def raw(text: str) -> bytes:
        return socket.inet_pton(socket.AF_INET6, text)

    assert proc_scope(0, raw("2001:db8::1")) == 0
    assert proc_scope(253, raw("fe80::1")) == 0x20
    assert proc_scope(200, raw("fec0::1")) == 0x40
    assert proc_scope(254, raw("::1")) == 0x10
    assert proc_scope(0, raw("::198.18.0.6")) == 0x80
    assert proc_scope(0, raw("::ffff:198.18.0.6")) == 0  # v4-mapped is not v4-compatible


def test_interface_list(devices: List[Device]) -> None:
    entries = decode_ipv4_addresses([_bytes("addr4.nl")])
    listed = list(interfaces_from(devices, entries))
    names = [interface.name for interface in listed]
    assert names.index("nlsa2") < names.index("nlsa10")  # numbers compare as numbers
    assert names.index("nlsb01") < names.index("nlsb1")
    assert names[names.index("nlsveth0"):names.index("nlsveth0") + 5] == [
        "nlsveth0", "nlsveth0:1", "nlsveth0:2", "nlsveth0:10", "nlsveth0:xyz"]
    by_name = {interface.name: interface for interface in listed}
    alias = by_name["nlsveth0:1"]
    assert alias.stats is None and alias.flags == by_name["nlsveth0"].flags
    assert alias.inet is not None and alias.inet.address == "198.18.1.1"
    base = by_name["nlsveth0"].inet
    assert base is not None and base.address == "198.18.0.1"
    assert base.broadcast == "198.18.0.255" and base.netmask == "255.255.255.0"
    tun = by_name["nlstun0"].inet
    assert tun is not None and tun.destination == "198.18.2.2"
    assert tun.netmask == "255.255.255.255"


def test_label_without_device_is_an_error() -> None:
    device = Device(2, "eth0", 0x1043, 1, bytes(8), 1500, 1000, DeviceMap(), LinkStats())
    entries = [Ipv4Entry(2, "eth0", "198.18.0.1", "198.18.0.1", 24, "0.0.0.0"),
               Ipv4Entry(2, "ghost:1", "198.18.5.1", "198.18.5.1", 24, "0.0.0.0")]
    listed = interfaces_from([device], entries)
    with pytest.raises(InterfaceFetchError) as caught:
        list(listed)
    assert caught.value.name == "ghost:1"
    assert caught.value.errno == 19
    # the label is looked up on its own device: a label of another device is not eth0's address
    other = [Ipv4Entry(3, "eth0", "198.18.9.9", "198.18.9.9", 24, "0.0.0.0")]
    (only,) = interfaces_from([device], other)
    assert only.inet is None
