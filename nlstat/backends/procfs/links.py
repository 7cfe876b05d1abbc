"""netstat's own interface list: /proc/net/dev, SIOCGIFCONF and SIOCGIF* ioctls (lib/interface.c).

The list is every /proc/net/dev name, then every IPv4 label SIOCGIFCONF reports (alias labels
such as "eth0:1" included), kept sorted by net-tools' nstrcmp(). Each name is then asked for its
flags, hardware address, MTU, map, queue length and IPv4 address with ioctls, in netstat's order.
The netlink backend builds the same list from its dumps with `netstat_order`.
"""

from __future__ import annotations

import _socket
import errno as errno_mod
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from nlstat import procio
from nlstat.cscan import c_int, read_counters
from nlstat.errors import NlstatError
from nlstat.kernel.link import (
    IFNAMSIZ,
    SIOCGIFADDR,
    SIOCGIFBRDADDR,
    SIOCGIFCONF,
    SIOCGIFDSTADDR,
    SIOCGIFFLAGS,
    SIOCGIFHWADDR,
    SIOCGIFMAP,
    SIOCGIFMTU,
    SIOCGIFNETMASK,
    SIOCGIFTXQLEN,
)
from nlstat.model.links import DeviceMap, Inet6Address, InetAddress, Interface, LinkStats

# struct ifreq is 40 bytes on 64-bit Linux: ifr_name[16] then a 24-byte union.
IFREQ_SIZE = 40
IFR_DATA = IFNAMSIZ
# struct ifmap { unsigned long mem_start, mem_end; unsigned short base_addr;
#                unsigned char irq, dma, port; }
IFMAP = struct.Struct("@LLHBBB")
# struct ifconf { int ifc_len; char *ifc_buf; } with native alignment.
IFCONF = struct.Struct("@iP")
USHORT = struct.Struct("@H")
INT = struct.Struct("@i")

Warn = Callable[[str], None]


class InterfaceFetchError(NlstatError):
    """SIOCGIFFLAGS failed for a listed name (the device went away, or an alias label names no
    device). netstat prints `NAME: error fetching interface information: ...` and stops."""

    def __init__(self, name: str, errno: int) -> None:
        super().__init__(f"{name}: error fetching interface information")
        self.name = name
        self.errno = errno


# -- nstrcmp and the sorted list (lib/nstrcmp.c, lib/interface.c if_cache_add) ------------------


def _is_digit(byte: int) -> bool:
    return 0x30 <= byte <= 0x39


def _atoi(digits: bytes) -> int:
    """glibc atoi() of a digit run: strtol() clamped to long, then cut to int."""
    return c_int(int(digits)) if digits else 0


def _cut_alias(name: bytes) -> tuple[bytes, bytes | None]:
    """b"eth0:12" -> (b"eth0", b"12"): a ':' followed by one or more digits at the end."""
    pos = len(name)
    digit = False
    while pos > 0:
        byte = name[pos - 1]
        if byte == 0x3A and digit:
            return name[: pos - 1], name[pos:]
        if not _is_digit(byte):
            break
        digit = True
        pos -= 1
    return name, None


def _digits_start(name: bytes) -> int:
    """Index just after the last non-digit (0 when the name is all digits)."""
    pos = len(name)
    while pos > 0 and _is_digit(name[pos - 1]):
        pos -= 1
    return pos


_Ordered = TypeVar("_Ordered", bytes, int)


def _cmp(a: _Ordered, b: _Ordered) -> int:
    return (a > b) - (a < b)


def nstrcmp(a: bytes, b: bytes) -> int:
    """net-tools' name comparison: eth2 < eth10, lo < lo:7, and aliases by number."""
    a_name, a_alias = _cut_alias(a)
    b_name, b_alias = _cut_alias(b)
    a_index = _digits_start(a_name)
    b_index = _digits_start(b_name)
    common = min(a_index, b_index)
    result = _cmp(a_name[:common], b_name[:common])
    if result:
        return result
    if a_index != b_index:
        return 1 if a_index > b_index else -1
    result = _cmp(_atoi(a_name[a_index:]), _atoi(b_name[b_index:]))
    if result:
        return result
    result = _cmp(a_name, b_name)
    if result:
        return result
    a_number = _atoi(a_alias) if a_alias is not None else -1
    b_number = _atoi(b_alias) if b_alias is not None else -1
    result = _cmp(a_number, b_number)
    if result:
        return result
    if a_alias is not None and b_alias is not None:
        return _cmp(a_alias, b_alias)
    return 0


def order_key(name: bytes) -> tuple[bytes, int, bytes, int, bytes]:
    """A sort key that orders as nstrcmp() does, step for step: the name part's non-digit
    prefix (strncmp over the shorter one, then the longer wins: plain bytes order), the number
    after it, the whole name part, the alias number (-1 without one), the alias text."""
    base, alias = _cut_alias(name)
    start = _digits_start(base)
    alias_number = _atoi(alias) if alias is not None else -1
    return (base[:start], _atoi(base[start:]), base, alias_number, alias or b"")


def netstat_order(names: Iterable[str]) -> list[str]:
    """Names in netstat's list order, duplicates dropped (if_cache_add).

    netstat inserts each name by walking back from the end past every greater entry; an equal
    entry stops the walk and the name is not added. With the comparison a total order that is
    the sorted list of distinct names, which `order_key` gives in O(n log n) (the walk costs
    O(n^2) comparisons: 0.1 s for 400 interfaces with 100 alias labels). nstrcmp() is a total
    order unless an alias number reads as -1 (atoi() wrapping "4294967295"), which then equals
    "no alias": only then is the walk replayed, in netstat's insertion order.
    """
    encoded = [(name.encode("utf-8", "surrogateescape"), name) for name in names]
    keyed: dict[tuple[bytes, int, bytes, int, bytes], str] = {}
    for key_bytes, name in encoded:
        key = order_key(key_bytes)
        if key[3] == -1 and key[4]:
            return _walk_order(encoded)
        keyed.setdefault(key, name)
    return [keyed[key] for key in sorted(keyed)]


def _walk_order(encoded: list[tuple[bytes, str]]) -> list[str]:
    keys: list[bytes] = []
    result: list[str] = []
    for key, name in encoded:
        position = len(keys)
        duplicate = False
        while position > 0:
            order = nstrcmp(keys[position - 1], key)
            if order == 0:
                duplicate = True
                break
            if order < 0:
                break
            position -= 1
        if not duplicate:
            keys.insert(position, key)
            result.insert(position, name)
    return result


# -- /proc/net/dev ------------------------------------------------------------------------------


def parse_proc_net_dev(text: str) -> list[tuple[str, LinkStats]]:
    """The lines of /proc/net/dev -> (name, counters), in file order.

    "  eth0: 79318679    1800    0    0    0     0          0         0   100669    1115 ..."
    The second title line says which columns exist (lib/interface.c procnetdev_version): with
    "compressed" all 16; with only "bytes" 13 (no compressed/multicast); else 11 (no bytes).
    """
    lines = text.split("\n")
    version = 1
    if len(lines) > 1:
        if "compressed" in lines[1]:
            version = 3
        elif "bytes" in lines[1]:
            version = 2
    result: list[tuple[str, LinkStats]] = []
    for line in lines[2:]:
        head, colon, rest = line.partition(":")
        name = head.strip()
        if not colon or not name:
            continue
        # sscanf("%llu %llu %lu ...") of the rest: strtoull() after strtoull().
        counters = rest.encode("utf-8", "surrogateescape")
        if version == 3:
            stats = LinkStats(*read_counters(counters, 16))
        elif version == 2:
            v = read_counters(counters, 13)
            stats = LinkStats(rx_bytes=v[0], rx_packets=v[1], rx_errors=v[2], rx_dropped=v[3],
                              rx_fifo_errors=v[4], rx_frame_errors=v[5], tx_bytes=v[6],
                              tx_packets=v[7], tx_errors=v[8], tx_dropped=v[9],
                              tx_fifo_errors=v[10], collisions=v[11], tx_carrier_errors=v[12])
        else:
            v = read_counters(counters, 11)
            stats = LinkStats(rx_packets=v[0], rx_errors=v[1], rx_dropped=v[2],
                              rx_fifo_errors=v[3], rx_frame_errors=v[4], tx_packets=v[5],
                              tx_errors=v[6], tx_dropped=v[7], tx_fifo_errors=v[8],
                              collisions=v[9], tx_carrier_errors=v[10])
        result.append((name, stats))
    return result


def read_proc_net_dev(path: str) -> list[tuple[str, LinkStats]]:
    """Read and parse /proc/net/dev; raises OSError as open() does."""
    text = procio.read(path).decode("utf-8", "surrogateescape")
    return parse_proc_net_dev(text)


# -- /proc/net/if_inet6 -------------------------------------------------------------------------


def parse_if_inet6(text: str) -> list[Inet6Address]:
    """/proc/net/if_inet6 lines -> Inet6Address, in file order (netstat prints them in it).

    "fe8000000000000000fc00fffe000001 04 40 20 80     eth0" is fe80::fc:ff:fe00:1/64 on ifindex 4,
    scope 0x20 (link), flags 0x80 (permanent); every number is hex.
    """
    result: list[Inet6Address] = []
    for line in text.split("\n"):
        fields = line.split()
        if len(fields) < 6 or len(fields[0]) != 32:
            continue
        try:
            raw = bytes.fromhex(fields[0])
            index, prefix, scope, flags = (int(field, 16) for field in fields[1:5])
        except ValueError:
            continue
        address = _socket.inet_ntop(_socket.AF_INET6, raw)
        result.append(Inet6Address(device=fields[5], ifindex=index, address=address,
                                   prefix_length=prefix, scope=scope, flags=flags))
    return result


def read_if_inet6(path: str) -> list[Inet6Address]:
    return parse_if_inet6(procio.read(path).decode("utf-8", "surrogateescape"))


# -- ioctls -------------------------------------------------------------------------------------


def _open_socket() -> _socket.socket:
    """netstat asks on an AF_INET socket (SIOCGIFCONF and SIOCGIFADDR need one)."""
    try:
        return _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    except OSError:
        return _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)


def ifconf_labels(sock: _socket.socket) -> list[str]:
    """SIOCGIFCONF: the label of every IPv4 address, in the kernel's device and address order."""
    if procio.tape is not None:
        return procio.tape.answer("SIOCGIFCONF", lambda: _ifconf_labels(sock))
    return _ifconf_labels(sock)


def _ifconf_labels(sock: _socket.socket) -> list[str]:
    import array
    import fcntl

    count = 30
    while True:
        buffer = array.array("B", bytes(IFREQ_SIZE * count))
        address, _ = buffer.buffer_info()
        request = bytearray(IFCONF.pack(len(buffer), address))
        fcntl.ioctl(sock.fileno(), SIOCGIFCONF, request)
        (length, _) = IFCONF.unpack(request)
        # A full buffer may have overflowed: netstat doubles it and asks again.
        if length == len(buffer):
            count *= 2
            continue
        break
    data = buffer.tobytes()
    labels = []
    for offset in range(0, length, IFREQ_SIZE):
        name = data[offset : offset + IFNAMSIZ].split(b"\0", 1)[0]
        labels.append(name.decode("utf-8", "surrogateescape"))
    return labels


def _ipv4_text(request: bytearray) -> str:
    # struct sockaddr_in inside the union: family (2), port (2), address (4).
    return _socket.inet_ntoa(bytes(request[IFR_DATA + 4 : IFR_DATA + 8]))


def fetch_interface(
    sock: _socket.socket, name: str, stats: LinkStats | None, request: bytearray
) -> Interface:
    """One name's ioctls, in the order of lib/interface.c if_fetch().

    `request` is reused from call to call as netstat reuses its struct ifreq: a failed
    SIOCGIFHWADDR leaves the flags where the hardware type would be, and SIOCGIFADDR sees the
    bytes the previous calls left. Only a failing SIOCGIFFLAGS is an error.
    """
    import fcntl

    ioctl = fcntl.ioctl if procio.tape is None else procio.tape.ioctl
    fd = sock.fileno()
    encoded = name.encode("utf-8", "surrogateescape")[: IFNAMSIZ - 1]
    request[:IFNAMSIZ] = encoded.ljust(IFNAMSIZ, b"\0")
    try:
        ioctl(fd, SIOCGIFFLAGS, request)
    except OSError as err:
        raise InterfaceFetchError(name, err.errno or errno_mod.ENODEV) from err
    flags = USHORT.unpack_from(request, IFR_DATA)[0]

    try:
        ioctl(fd, SIOCGIFHWADDR, request)
        hardware_address = bytes(request[IFR_DATA + 2 : IFR_DATA + 10])
    except OSError:
        hardware_address = bytes(8)
    hardware_type = USHORT.unpack_from(request, IFR_DATA)[0]

    try:
        ioctl(fd, SIOCGIFMTU, request)
        mtu = INT.unpack_from(request, IFR_DATA)[0]
    except OSError:
        mtu = 0

    try:
        ioctl(fd, SIOCGIFMAP, request)
        device_map = DeviceMap(*IFMAP.unpack_from(request, IFR_DATA))
    except OSError:
        device_map = DeviceMap()

    tx_queue_len: int | None
    try:
        ioctl(fd, SIOCGIFTXQLEN, request)
        tx_queue_len = INT.unpack_from(request, IFR_DATA)[0]
    except OSError:
        tx_queue_len = None

    inet: InetAddress | None = None
    USHORT.pack_into(request, IFR_DATA, _socket.AF_INET)
    try:
        ioctl(fd, SIOCGIFADDR, request)
    except OSError:
        pass
    else:
        address = _ipv4_text(request)
        texts: list[str | None] = []
        for command in (SIOCGIFDSTADDR, SIOCGIFBRDADDR, SIOCGIFNETMASK):
            try:
                ioctl(fd, command, request)
                texts.append(_ipv4_text(request))
            except OSError:
                texts.append(None)  # netstat: a zeroed sockaddr, printed as "[NONE SET]"
        destination, broadcast, netmask = texts
        inet = InetAddress(address=address, netmask=netmask, broadcast=broadcast,
                           destination=destination)

    return Interface(name=name, ifindex=0, flags=flags, hardware_type=hardware_type,
                     hardware_address=hardware_address, mtu=mtu, tx_queue_len=tx_queue_len,
                     device_map=device_map, inet=inet, stats=stats)


class ProcInterfaces:
    """netstat's interface list read as netstat reads it; iterate to fetch each name in turn."""

    def __init__(self, dev_path: str, warn: Warn) -> None:
        self.sock = _open_socket()
        self.statistics: dict[str, LinkStats] = {}
        names: list[str] = []
        proc_failed = False
        try:
            for name, stats in read_proc_net_dev(dev_path):
                names.append(name)
                self.statistics[name] = stats
        except OSError as err:
            reason = os.strerror(err.errno or 0)
            warn(f"Warning: cannot open {dev_path} ({reason}). Limited output.")
            proc_failed = True
        try:
            names.extend(ifconf_labels(self.sock))
        except OSError as err:
            warn(f"SIOCGIFCONF: {os.strerror(err.errno or 0)}")
            if proc_failed:
                self.sock.close()
                raise
        self.order = netstat_order(names)

    def close(self) -> None:
        self.sock.close()

    def names(self) -> dict[int, str]:
        """ifindex -> name; netstat's ioctls never learn indexes."""
        return {}

    def __iter__(self) -> Iterator[Interface]:
        request = bytearray(IFREQ_SIZE)
        for name in self.order:
            yield fetch_interface(self.sock, name, self.statistics.get(name), request)

