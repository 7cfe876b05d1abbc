"""The interface formatter: golden output from captured records, and netstat's printing rules.

The golden files are netstat's own output captured at the same moment as the netlink answers
(tests/data/links, see tests/links_support.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List

import pytest

from nlstat.backends.netlink.links import (
    decode_ipv4_addresses,
    decode_links,
    interfaces_from,
)
from nlstat.backends.procfs.links import parse_if_inet6
from nlstat.format.interfaces import (
    SHORT_HEADER,
    TITLE,
    flags_text,
    hardware_line,
    long_block,
    render,
    scope_text,
    short_row,
    size_text,
)
from nlstat.model.links import DeviceMap, Inet6Address, InetAddress, Interface, LinkStats

REPO = Path(__file__).resolve().parents[2]

DATA = REPO / "tests" / "data" / "links"


def _text(name: str) -> str:
    """A captured text file; device names are bytes, so undecodable ones are kept as such."""
    return (DATA / name).read_bytes().decode(errors="surrogateescape")


def _interfaces() -> List[Interface]:
    devices = decode_links([(DATA / "links.nl").read_bytes()])
    entries = decode_ipv4_addresses([(DATA / "addr4.nl").read_bytes()])
    return list(interfaces_from(devices, entries))


@pytest.mark.parametrize("args", ["-i", "-ia", "-ie", "-iea"])
def test_golden(args: str) -> None:
    long_format = "e" in args
    show_all = "a" in args
    inet6 = parse_if_inet6(_text("if_inet6.txt"))
    text = TITLE + ("" if long_format else SHORT_HEADER)
    for interface in _interfaces():
        if interface.flags & 1 or show_all:
            text += render(interface, long_format, inet6)
    assert text.encode(errors="surrogateescape") == (DATA / f"netstat{args}.txt").read_bytes()


def _interface(**changes: Any) -> Interface:
    base = Interface("eth0", 2, 0x1043, 1, bytes.fromhex("5a503b0bd2c40000"), 1500, 1000,
                     DeviceMap(), None, LinkStats())
    return base._replace(**changes)


def test_size_text() -> None:
    assert size_text(0) == "0.0 B"
    assert size_text(1024) == "1024.0 B"  # strict comparisons: exactly 1 KiB stays in bytes
    assert size_text(1025) == "1.0 KiB"
    assert size_text(29021) == "28.3 KiB"
    assert size_text(10750111) == "10.2 MiB"
    assert size_text(12740868) == "12.1 MiB"
    assert size_text(16759360) == "15.9 MiB"
    assert size_text(2**30 + 1) == "1.0 GiB"
    assert size_text(2**40 * 3 // 2) == "1.5 TiB"
    assert size_text(2**50 * 7) == "7.0 PiB"
    assert size_text(2**64 - 1) == "16.0 EiB"  # tenths as x / 115292150460684697 (no overflow)


def test_flags_text() -> None:
    assert flags_text(0x1043) == "flags=4163<UP,BROADCAST,RUNNING,MULTICAST>"
    assert flags_text(0x49) == "flags=73<UP,LOOPBACK,RUNNING>"
    assert flags_text(0) == "flags=0<"  # netstat trims the ">" it just added
    assert flags_text(0x2000) == "flags=8192"  # PORTSEL has no name: the "<" is trimmed
    assert flags_text(0x10000 | 0x1043) == "flags=4163<UP,BROADCAST,RUNNING,MULTICAST>"
    assert flags_text(0x8001) == "flags=-32767<UP,DYNAMIC>"  # a signed short
    assert flags_text(0xD09) == "flags=3337<UP,LOOPBACK,PROMISC,SLAVE,MASTER>"


def test_short_row() -> None:
    stats = LinkStats(rx_packets=11, rx_errors=1, rx_dropped=2, rx_fifo_errors=3, tx_packets=24,
                      tx_errors=4, tx_dropped=5, tx_fifo_errors=6)
    assert short_row(_interface(stats=stats)) == (
        "eth0             1500       11      1      2 3            24      4      5      6 BMRU\n"
    )
    assert short_row(_interface(name="lo:7", flags=0x49, mtu=65536, stats=None)) == (
        "lo:7            65536      - no statistics available -                        LRU\n"
    )
    assert short_row(_interface(flags=0)).endswith(" [NO FLAGS]\n")
    assert short_row(_interface(flags=0x1111)).endswith(" MPPU\n")  # promisc and p-t-p: two Ps
    assert short_row(_interface(flags=0x8000 | 0x800 | 0x400 | 0x20 | 0x4)).endswith(" DdNsm\n")


def test_debian_fifteen_character_bug() -> None:
    stats = LinkStats(rx_bytes=726, rx_packets=9, tx_bytes=726, tx_packets=9)
    assert short_row(_interface(name="abcdefghijklmno", stats=stats)) == (
        "abcdefghijklmno  1500        0      0      0 0             0      0      0      0 BMRU\n"
    )
    assert "RX packets 9" in long_block(_interface(name="abcdefghijklmn", stats=stats), [])
    assert "RX packets 0  bytes 0 (0.0 B)" in long_block(
        _interface(name="abcdefghijklmno", stats=stats), [])


def test_hardware_lines() -> None:
    def line(kind: int, address: bytes = bytes(8), queue: object = 1000) -> str:
        return hardware_line(_interface(hardware_type=kind, hardware_address=address,
                                        tx_queue_len=queue))

    assert line(1, bytes.fromhex("020000000001")) == (
        "        ether 02:00:00:00:00:01  txqueuelen 1000  (Ethernet)\n")
    assert line(772) == "        loop  txqueuelen 1000  (Local Loopback)\n"
    assert line(768) == "        tunnel   txqueuelen 1000  (IPIP Tunnel)\n"  # empty printer
    assert line(776, queue=None) == "        sit  (IPv6-in-IPv4)\n"
    assert line(0xFFFE, queue=500) == (
        "        unspec 00-00-00-00-00-00-00-00-00-00-00-00-00-00-00-00"
        "  txqueuelen 500  (UNSPEC)\n")
    assert line(778, bytes.fromhex("c6120001")) == (
        "        unspec C6-12-00-01-00-00-00-00-00-00-00-00-00-00-00-00"
        "  txqueuelen 1000  (UNSPEC)\n")
    assert line(1, queue=0xFFFFFFFF) == "        ether 00:00:00:00:00:00  (Ethernet)\n"  # -1 hidden
    assert line(1, queue=0x80000000).endswith("  txqueuelen -2147483648  (Ethernet)\n")
    assert line(27, bytes(range(1, 9))) == (
        "        eui64 01:02:03:04:05:06:07:08  txqueuelen 1000  (Generic EUI-64)\n")
    assert line(774, bytes.fromhex("0a0b0c0d0e0f")).startswith("        fddi 0A-0B-0C-0D-0E-0F ")
    assert line(780, bytes.fromhex("0a0b0c0d0e0f")).startswith("        hippi 0A:0B:0C:0D:0E:0F ")
    assert line(7, b"\x2a").startswith("        arcnet 2A  ")
    # AX.25 callsigns are shifted ASCII with the SSID in the 7th byte.
    call = bytes(ord(c) << 1 for c in "N0CALL") + bytes([3 << 1])
    assert line(3, call).startswith("        ax25 N0CALL-3  ")
    assert line(0, bytes(ord(c) << 1 for c in "AB    ") + b"\0").startswith("        netrom AB  ")
    assert line(783, bytes.fromhex("01020380")) == (
        "        irda ffffff80:03  txqueuelen 1000  (IrLAP)\n")  # signed chars, 11 characters
    assert line(15, b"\x10\x00").startswith("        dlci 16  ")
    assert line(271, b"1234\0").startswith("        x25 1234  ")
    assert line(270, bytes.fromhex("1234567890")).startswith("        rose 1234567890  ")
    assert line(781) == "        ash  txqueuelen 1000  (Ash)\n"  # an all-zero Ash address is hidden


def test_scope_text() -> None:
    assert scope_text(0) == "0x0<global>"
    assert scope_text(0x10) == "0x10<host>"
    assert scope_text(0x20) == "0x20<link>"
    assert scope_text(0x40) == "0x40<site>"
    assert scope_text(0x80) == "0x80<compat,global>"
    assert scope_text(0x90) == "0x90<compat,host>"
    assert scope_text(0x01) == "0x1"  # no tag, no brackets


def test_long_block() -> None:
    inet = InetAddress("198.51.100.1", "255.255.255.255", "0.0.0.0", "198.51.100.2")
    inet6 = [
        Inet6Address("eth0", 2, "fe80::1", 64, 0x20),
        Inet6Address("eth1", 3, "2001:db8::9", 64, 0),
        Inet6Address("eth0", 2, "::ffff:198.18.0.5", 128, 0),
    ]
    stats = LinkStats(rx_bytes=866, rx_packets=11, tx_bytes=1948, tx_packets=24, rx_dropped=1,
                      rx_fifo_errors=2, rx_frame_errors=3, tx_errors=4, tx_dropped=5,
                      tx_fifo_errors=6, tx_carrier_errors=7, collisions=8)
    block = long_block(_interface(flags=0x10D1, inet=inet, stats=stats, tx_queue_len=None), inet6)
    assert block == (
        "eth0: flags=4305<UP,POINTOPOINT,RUNNING,NOARP,MULTICAST>  mtu 1500\n"
        "        inet 198.51.100.1  netmask 255.255.255.255  destination 198.51.100.2\n"
        "        inet6 fe80::1  prefixlen 64  scopeid 0x20<link>\n"
        "        inet6 198.18.0.5  prefixlen 128  scopeid 0x0<global>\n"
        "        ether 5a:50:3b:0b:d2:c4  (Ethernet)\n"
        "        RX packets 11  bytes 866 (866.0 B)\n"
        "        RX errors 0  dropped 1  overruns 2  frame 3\n"
        "        TX packets 24  bytes 1948 (1.9 KiB)\n"
        "        TX errors 4  dropped 5 overruns 6  carrier 7  collisions 8\n"
        "\n"
    )
    # an alias: its own inet line, the device's hardware, no inet6 and no counters
    alias = long_block(_interface(name="eth0:1", inet=inet._replace(broadcast="0.0.0.0"),
                                  stats=None), inet6)
    assert alias == (
        "eth0:1: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 1500\n"
        "        inet 198.51.100.1  netmask 255.255.255.255  broadcast 0.0.0.0\n"
        "        ether 5a:50:3b:0b:d2:c4  txqueuelen 1000  (Ethernet)\n"
        "\n"
    )
    unset = long_block(_interface(inet=InetAddress("198.51.100.1", None, None, None)), [])
    assert "netmask [NONE SET]  broadcast [NONE SET]\n" in unset


def test_compressed_and_map_lines() -> None:
    stats = LinkStats(rx_compressed=5, tx_compressed=6)
    block = long_block(_interface(hardware_type=257, stats=stats,
                                  device_map=DeviceMap(0xFE000000, 0xFE0FFFFF, 0x300, 11, 3)), [])
    assert "        RX compressed:5\n" in block
    assert "        TX compressed 6\n" in block
    assert block.endswith(
        "        device interrupt 11  base 0x300  memory 0xfe000000-fe0fffff    dma 0x3\n\n")
    low_base = long_block(_interface(device_map=DeviceMap(base_addr=0xFF)), [])
    assert "device" not in low_base
