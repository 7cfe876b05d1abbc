"""The interface table exactly as netstat prints it (lib/interface.c ife_print_*).

Records in, text out. Hardware names, titles and address printers are those of the Debian
net-tools 2.10 build (lib/hw.c with its per-type files), including its quirks.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Optional

from nlstat.kernel.link import (
    ARPHRD_ADAPT,
    ARPHRD_ARCNET,
    ARPHRD_ASH,
    ARPHRD_AX25,
    ARPHRD_CSLIP,
    ARPHRD_CSLIP6,
    ARPHRD_DLCI,
    ARPHRD_ETHER,
    ARPHRD_EUI64,
    ARPHRD_FDDI,
    ARPHRD_FRAD,
    ARPHRD_HDLC,
    ARPHRD_HIPPI,
    ARPHRD_IRDA,
    ARPHRD_LAPB,
    ARPHRD_LOOPBACK,
    ARPHRD_NETROM,
    ARPHRD_PPP,
    ARPHRD_ROSE,
    ARPHRD_SIT,
    ARPHRD_SLIP,
    ARPHRD_SLIP6,
    ARPHRD_TUNNEL,
    ARPHRD_X25,
    IFF_ALLMULTI,
    IFF_BROADCAST,
    IFF_DEBUG,
    IFF_DYNAMIC,
    IFF_LOOPBACK,
    IFF_MASTER,
    IFF_MULTICAST,
    IFF_NOARP,
    IFF_NOTRAILERS,
    IFF_POINTOPOINT,
    IFF_PROMISC,
    IFF_RUNNING,
    IFF_SLAVE,
    IFF_UP,
)
from nlstat.model.links import Inet6Address, Interface, LinkStats

TITLE = "Kernel Interface table\n"
SHORT_HEADER = (
    "Iface             MTU    RX-OK RX-ERR RX-DRP RX-OVR    TX-OK TX-ERR TX-DRP TX-OVR Flg\n"
)
# "%-56s" of the message, so the flag letters line up with the counters' column.
NO_STATISTICS = "     - no statistics available -".ljust(56)
INDENT = "        "

# Short-format letters, in ife_print_short's order (two flags share "P").
SHORT_FLAGS: tuple[tuple[int, str], ...] = (
    (IFF_ALLMULTI, "A"),
    (IFF_BROADCAST, "B"),
    (IFF_DEBUG, "D"),
    (IFF_LOOPBACK, "L"),
    (IFF_MULTICAST, "M"),
    (IFF_DYNAMIC, "d"),
    (IFF_PROMISC, "P"),
    (IFF_NOTRAILERS, "N"),
    (IFF_NOARP, "O"),
    (IFF_POINTOPOINT, "P"),
    (IFF_SLAVE, "s"),
    (IFF_MASTER, "m"),
    (IFF_RUNNING, "R"),
    (IFF_UP, "U"),
)
# Long-format names, in ife_print_long's order.
LONG_FLAGS: tuple[tuple[int, str], ...] = (
    (IFF_UP, "UP"),
    (IFF_BROADCAST, "BROADCAST"),
    (IFF_DEBUG, "DEBUG"),
    (IFF_LOOPBACK, "LOOPBACK"),
    (IFF_POINTOPOINT, "POINTOPOINT"),
    (IFF_NOTRAILERS, "NOTRAILERS"),
    (IFF_RUNNING, "RUNNING"),
    (IFF_NOARP, "NOARP"),
    (IFF_PROMISC, "PROMISC"),
    (IFF_ALLMULTI, "ALLMULTI"),
    (IFF_SLAVE, "SLAVE"),
    (IFF_MASTER, "MASTER"),
    (IFF_MULTICAST, "MULTICAST"),
    (IFF_DYNAMIC, "DYNAMIC"),
)

# Debian's get_name() (CVE-2025-46836 fix) copies at most 15 characters and then does not
# consume the ':', so sscanf() of the counters fails: a 15-character name shows all zeros.
DEBIAN_NAME_BUG_LENGTH = 15


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def flags16(flags: int) -> int:
    """ifr_flags is a short: netstat sees only the low 16 bits, sign included."""
    return _signed(flags, 16)


def visible_stats(interface: Interface) -> LinkStats | None:
    stats = interface.stats
    if stats is not None and len(interface.name.encode("utf-8", "surrogateescape")) == (
        DEBIAN_NAME_BUG_LENGTH
    ):
        return LinkStats()
    return stats


# -- hardware address printers (lib/ether.c, lib/fddi.c, ... as compiled in Debian) ------------


def _hex(address: bytes, count: int, pattern: str, separator: str) -> str:
    return separator.join(pattern % byte for byte in address[:count])


def _callsign(address: bytes) -> str:
    # lib/ax25.c, lib/netrom.c: shifted ASCII; a blank (or NUL) ends the call, then the SSID.
    chars = bytearray(byte >> 1 for byte in address[:6])
    text = bytes(chars).replace(b" ", b"\0").split(b"\0", 1)[0].decode("latin-1")
    ssid = (address[6] & 0x1E) >> 1
    return f"{text}-{ssid}" if ssid else text


def _irda(address: bytes) -> str:
    # lib/irda.c passes plain (signed) chars to %02x: bytes >= 0x80 print as ffffffXX, and
    # snprintf() keeps 11 characters.
    words = ["%02x" % (_signed(byte, 8) & 0xFFFFFFFF) for byte in (address[3], address[2],
                                                                   address[1], address[0])]
    return ":".join(words)[:11]


def _dlci(address: bytes) -> str:
    return str(struct.unpack("=h", address[:2])[0])


def _x25(address: bytes) -> str:
    return address.split(b"\0", 1)[0].decode("latin-1")


def _ash(address: bytes) -> str:
    # lib/ash.c: 64 signed chars, each printed with %1x at a position that advances by one, so
    # only the first digit of each survives. Bytes past the 8 netstat copies are taken as 0.
    data = address.ljust(64, b"\0")[:64]
    return "[" + "".join(("%x" % (_signed(byte, 8) & 0xFFFFFFFF))[0] for byte in data) + "]"


def _unspec(address: bytes) -> str:
    # lib/loopback.c pr_unspec: sizeof(struct sockaddr) = 16 bytes, the last 8 always zero here.
    return "-".join(f"{byte:02X}" for byte in address.ljust(16, b"\0")[:16])


Printer = Optional[Callable[[bytes], str]]

# ARPHRD number -> (name, printer, title), as lib/hw.c finds them with get_hwntype().
HARDWARE: dict[int, tuple[str, Printer, str]] = {
    ARPHRD_LOOPBACK: ("loop", None, "Local Loopback"),
    ARPHRD_SLIP: ("slip", None, "Serial Line IP"),
    ARPHRD_CSLIP: ("cslip", None, "VJ Serial Line IP"),
    ARPHRD_SLIP6: ("slip6", None, "6-bit Serial Line IP"),
    ARPHRD_CSLIP6: ("cslip6", None, "VJ 6-bit Serial Line IP"),
    ARPHRD_ADAPT: ("adaptive", None, "Adaptive Serial Line IP"),
    ARPHRD_ASH: ("ash", _ash, "Ash"),
    ARPHRD_ETHER: ("ether", lambda a: _hex(a, 6, "%02x", ":"), "Ethernet"),
    ARPHRD_AX25: ("ax25", _callsign, "AMPR AX.25"),
    ARPHRD_NETROM: ("netrom", _callsign, "AMPR NET/ROM"),
    ARPHRD_ROSE: ("rose", lambda a: _hex(a, 5, "%02x", ""), "AMPR ROSE"),
    ARPHRD_TUNNEL: ("tunnel", lambda a: "", "IPIP Tunnel"),
    ARPHRD_PPP: ("ppp", None, "Point-to-Point Protocol"),
    ARPHRD_HDLC: ("hdlc", None, "(Cisco)-HDLC"),
    ARPHRD_LAPB: ("lapb", None, "LAPB"),
    ARPHRD_ARCNET: ("arcnet", lambda a: f"{a[0]:02X}", "ARCnet"),
    ARPHRD_DLCI: ("dlci", _dlci, "Frame Relay DLCI"),
    ARPHRD_FRAD: ("frad", None, "Frame Relay Access Device"),
    ARPHRD_SIT: ("sit", None, "IPv6-in-IPv4"),
    ARPHRD_FDDI: ("fddi", lambda a: _hex(a, 6, "%02X", "-"), "Fiber Distributed Data Interface"),
    ARPHRD_HIPPI: ("hippi", lambda a: _hex(a, 6, "%02X", ":"), "HIPPI"),
    ARPHRD_IRDA: ("irda", _irda, "IrLAP"),
    ARPHRD_X25: ("x25", _x25, "generic X.25"),
    ARPHRD_EUI64: ("eui64", lambda a: _hex(a, 8, "%02X", ":"), "Generic EUI-64"),
}
UNSPEC: tuple[str, Printer, str] = ("unspec", _unspec, "UNSPEC")
# Only ash suppresses an all-zero address (hw->suppress_null_addr), over its 64-byte length.
SUPPRESS_NULL = {ARPHRD_ASH}


def hardware_line(interface: Interface) -> str:
    name, printer, title = HARDWARE.get(interface.hardware_type & 0xFFFF, UNSPEC)
    address = interface.hardware_address.ljust(8, b"\0")
    line = INDENT + name
    if printer is not None and not (
        interface.hardware_type in SUPPRESS_NULL and not any(address)
    ):
        line += " " + printer(address)
    if interface.tx_queue_len is not None:
        queue = _signed(interface.tx_queue_len, 32)
        # netstat stores "unknown" as -1, so a queue length of 0xffffffff is not printed.
        if queue != -1:
            line += f"  txqueuelen {queue}"
    return line + f"  ({title})\n"


# -- sizes --------------------------------------------------------------------------------------


def size_text(value: int) -> str:
    """Bytes -> netstat's "W.F UNIT": 1024 -> "1024.0 B", 29021 -> "28.3 KiB" (truncated)."""
    tenths = value * 10
    if value > 1 << 60:
        tenths, unit = value // 115292150460684697, "EiB"
    elif value > 1 << 50:
        tenths, unit = tenths // (1 << 50), "PiB"
    elif value > 1 << 40:
        tenths, unit = tenths // (1 << 40), "TiB"
    elif value > 1 << 30:
        tenths, unit = tenths // (1 << 30), "GiB"
    elif value > 1 << 20:
        tenths, unit = tenths // (1 << 20), "MiB"
    elif value > 1024:
        tenths, unit = tenths // 1024, "KiB"
    else:
        unit = "B"
    return f"{tenths // 10}.{tenths % 10} {unit}"


# -- rows ---------------------------------------------------------------------------------------


def short_row(interface: Interface) -> str:
    """One line of `netstat -i`."""
    # "%-15.15s": cut and padded by bytes.
    name = interface.name.encode("utf-8", "surrogateescape")[:15].ljust(15).decode(
        "utf-8", "surrogateescape"
    )
    line = f"{name} {_signed(interface.mtu, 32):5d} "
    stats = visible_stats(interface)
    if stats is not None:
        # RX-OVR is left-justified ("%-6lu") in netstat's format.
        line += (
            f"{stats.rx_packets:8d} {stats.rx_errors:6d} {stats.rx_dropped:6d} "
            f"{stats.rx_fifo_errors:<6d} {stats.tx_packets:8d} {stats.tx_errors:6d} "
            f"{stats.tx_dropped:6d} {stats.tx_fifo_errors:6d} "
        )
    else:
        line += NO_STATISTICS
    flags = flags16(interface.flags)
    if flags == 0:
        line += "[NO FLAGS]"
    line += "".join(letter for bit, letter in SHORT_FLAGS if flags & bit)
    return line + "\n"


def flags_text(flags: int) -> str:
    """`flags=4163<UP,BROADCAST,RUNNING,MULTICAST>`; 0 gives `flags=0<` and unknown bits only
    give `flags=N` (netstat trims its last character, which is then not a ',')."""
    value = flags16(flags)
    text = f"flags={value}<"
    if value == 0:
        text += ">"
    text += "".join(name + "," for bit, name in LONG_FLAGS if value & bit)
    return text[:-1] + ">" if text.endswith(",") else text[:-1]


def ipv6_address_text(address: str) -> str:
    """lib/inet6.c fix_v4_address: a v4-mapped address prints as its IPv4 part."""
    if address.startswith("::ffff:") and "." in address:
        return address[7:]
    return address


def scope_text(scope: int) -> str:
    """`0x20<link>`: the hex value, then the tags netstat derives from it."""
    tags = ""
    rest = scope
    if rest & 0x80:
        tags += "compat,"
        rest -= 0x80
    if rest == 0:
        tags += "global,"
    if rest & 0x20:
        tags += "link,"
    if rest & 0x40:
        tags += "site,"
    if rest & 0x10:
        tags += "host,"
    return f"0x{scope:x}" + (f"<{tags[:-1]}>" if tags else "")


def _map_line(interface: Interface) -> str:
    device_map = interface.device_map
    irq = device_map.irq & 0xFF
    dma = device_map.dma & 0xFF
    base = device_map.base_addr & 0xFFFF
    if not (irq or device_map.mem_start or dma or base >= 0x100):
        return ""
    line = INDENT + "device "
    if irq:
        line += f"interrupt {irq}  "
    if base >= 0x100:
        line += f"base 0x{base:x}  "
    if device_map.mem_start:
        line += f"memory 0x{device_map.mem_start:x}-{device_map.mem_end:x}  "
    if dma:
        line += f"  dma 0x{dma:x}"
    return line + "\n"


def long_block(interface: Interface, inet6: Sequence[Inet6Address]) -> str:
    """One interface of `netstat -ie`: flags line, addresses, hardware, counters, blank line."""
    flags = flags16(interface.flags)
    parts = [f"{interface.name}: {flags_text(flags)}  mtu {_signed(interface.mtu, 32)}\n"]
    inet = interface.inet
    if inet is not None:
        line = f"{INDENT}inet {inet.address}  netmask {inet.netmask or '[NONE SET]'}"
        if flags & IFF_BROADCAST:
            line += f"  broadcast {inet.broadcast or '[NONE SET]'}"
        if flags & IFF_POINTOPOINT:
            line += f"  destination {inet.destination or '[NONE SET]'}"
        parts.append(line + "\n")
    for entry in inet6:
        if entry.device == interface.name:
            parts.append(
                f"{INDENT}inet6 {ipv6_address_text(entry.address)}  prefixlen "
                f"{entry.prefix_length}  scopeid {scope_text(entry.scope)}\n"
            )
    parts.append(hardware_line(interface))
    stats = visible_stats(interface)
    if stats is not None:
        compressed = interface.hardware_type in (ARPHRD_CSLIP, ARPHRD_CSLIP6)
        parts.append(f"{INDENT}RX packets {stats.rx_packets}  bytes {stats.rx_bytes} "
                     f"({size_text(stats.rx_bytes)})\n")
        if compressed:
            parts.append(f"{INDENT}RX compressed:{stats.rx_compressed}\n")
        parts.append(f"{INDENT}RX errors {stats.rx_errors}  dropped {stats.rx_dropped}  "
                     f"overruns {stats.rx_fifo_errors}  frame {stats.rx_frame_errors}\n")
        parts.append(f"{INDENT}TX packets {stats.tx_packets}  bytes {stats.tx_bytes} "
                     f"({size_text(stats.tx_bytes)})\n")
        if compressed:
            parts.append(f"{INDENT}TX compressed {stats.tx_compressed}\n")
        # One blank before "overruns" here: netstat's format string has only one.
        parts.append(f"{INDENT}TX errors {stats.tx_errors}  dropped {stats.tx_dropped} "
                     f"overruns {stats.tx_fifo_errors}  carrier {stats.tx_carrier_errors}  "
                     f"collisions {stats.collisions}\n")
    parts.append(_map_line(interface))
    parts.append("\n")
    return "".join(parts)


def render(interface: Interface, long_format: bool, inet6: Sequence[Inet6Address]) -> str:
    return long_block(interface, inet6) if long_format else short_row(interface)
