"""netstat -r tables: titles, column headers, flag letters and row layouts of net-tools
lib/inet_gr.c (rprint_fib, rprint_cache) and lib/inet6_gr.c (rprint_fib6).

Rows are rendered from records; the text of everything but the destination is cached per
shared data record (model/routes.py), so a 100k-route table costs one dictionary look-up and
one concatenation per row.
"""

from __future__ import annotations

import _socket
from itertools import chain, repeat
from operator import itemgetter
from typing import Dict, List, Optional, Tuple

from nlstat.cscan import c_int
from nlstat.kernel.rtnetlink import (
    RTCF_BROADCAST,
    RTCF_DEAD,
    RTCF_DIRECTDST,
    RTCF_DIRECTSRC,
    RTCF_DNAT,
    RTCF_DOREDIRECT,
    RTCF_FAST,
    RTCF_LOCAL,
    RTCF_MASQ,
    RTCF_MULTICAST,
    RTCF_NOTIFY,
    RTCF_ONLINK,
    RTCF_REJECT,
    RTCF_SNAT,
    RTCF_TPROXY,
    RTF_ADDRCONF,
    RTF_ALLONLINK,
    RTF_CACHE,
    RTF_DEFAULT,
    RTF_DYNAMIC,
    RTF_EXPIRES,
    RTF_FLOW,
    RTF_GATEWAY,
    RTF_HOST,
    RTF_IRTT,
    RTF_LOCAL,
    RTF_MODIFIED,
    RTF_MTU,
    RTF_NONEXTHOP,
    RTF_NOTCACHED,
    RTF_POLICY,
    RTF_REINSTATE,
    RTF_REJECT,
    RTF_UP,
    RTF_WINDOW,
)
from nlstat.model.routes import CachedRoute, Route, Route6, Route6Data, RouteCache, RouteData
from nlstat.resolve import Names, unmap_v4

IPV4_TITLE = "Kernel IP routing table\n"
IPV4_HEADERS = {
    1: "Destination     Gateway         Genmask         Flags Metric Ref    Use Iface\n",
    2: "Destination     Gateway         Genmask         Flags   MSS Window  irtt Iface\n",
    3: "Destination     Gateway         Genmask         Flags Metric Ref    Use Iface    "
    "MSS   Window irtt\n",
}
IPV4_CACHE_TITLE = "Kernel IP routing cache\n"
IPV4_CACHE_HEADERS = {
    1: "Source          Destination     Gateway         Flags Metric Ref    Use Iface\n",
    2: "Source          Destination     Gateway         Flags   MSS Window  irtt Iface\n",
}
IPV4_CACHE_HEADERS_EXT3 = {
    1: "Source          Destination     Gateway         Flags Metric Ref    Use Iface    "
    "MSS   Window irtt  HH  Arp\n",
    2: "Source          Destination     Gateway         Flags Metric Ref    Use Iface    "
    "MSS   Window irtt  TOS HHRef HHUptod     SpecDst\n",
}
IPV6_TITLE = "Kernel IPv6 routing table\n"
IPV6_CACHE_TITLE = "Kernel IPv6 routing cache\n"
IPV6_HEADER = "Destination                    Next Hop                   Flag Met Ref  Use If\n"

# INET_rresolve() "netmask" for gateways and cache addresses (INET_sprint): any non-zero mask
# keeps 0.0.0.0 numeric; the 0x4000 "host" bit forces gethostbyaddr().
SPRINT_MASK = 0xFFFFFF00
# netstat cuts route names at 15 characters (net_addr[15] = '\0'), even with -W.
NAME_CUT = 15
# netlink has no fib6_ref; print the reference the routing tree itself holds.
UNKNOWN_REFCNT = 1


def route_layout(extend: int) -> int:
    """netstat's `ext` from the number of -e (netstat.c main()): none -> 2, -e -> 1, then E mod 4.

    ext 0 (-eee) prints the title only; ext >= 3 (both column groups) is written as 3.
    """
    e = extend + 1
    if e == 1:
        return 2
    if e == 2:
        return 1
    return e & 3


# -- IPv4 FIB ---------------------------------------------------------------------------------

_IPV4_LETTERS: Tuple[Tuple[int, str], ...] = (
    (RTF_HOST, "H"),
    (RTF_REINSTATE, "R"),
    (RTF_DYNAMIC, "D"),
    (RTF_MODIFIED, "M"),
    (RTF_DEFAULT, "d"),
    (RTF_ALLONLINK, "a"),
    (RTF_ADDRCONF, "c"),
    (RTF_NONEXTHOP, "o"),
    (RTF_EXPIRES, "e"),
    (RTF_CACHE, "c"),
    (RTF_FLOW, "f"),
    (RTF_POLICY, "p"),
    (RTF_LOCAL, "l"),
    (RTF_MTU, "u"),
    (RTF_WINDOW, "w"),
    (RTF_IRTT, "i"),
    (RTF_NOTCACHED, "n"),
)


def ipv4_flags(flags: int) -> str:
    """rprint_fib()'s letters: "U", "G", then RTF_REJECT replaces them with "!", then the rest."""
    text = ""
    if flags & RTF_UP:
        text += "U"
    if flags & RTF_GATEWAY:
        text += "G"
    if flags & RTF_REJECT:
        text = "!"
    for bit, letter in _IPV4_LETTERS:
        if flags & bit:
            text += letter
    return text


def ipv4_header(ext: int) -> str:
    """Title and column header of the IPv4 FIB (title only for ext 0)."""
    return IPV4_TITLE + IPV4_HEADERS.get(min(ext, 3), "")


class Ipv4Rows:
    """Renders IPv4 FIB rows for one layout; `names` is None for numeric output (-n, -N).

    Make one per table listing: its cache is keyed by the identity of the shared data records
    of that listing (hashing a 14-field tuple per row would cost more than the row itself).
    """

    def __init__(self, ext: int, names: Optional[Names]) -> None:
        self.ext = min(ext, 3)
        self.names = names
        self.tails: Dict[int, Tuple[str, int, bool]] = {}
        self.flag_texts: Dict[int, str] = {}
        self.masks: Dict[str, int] = {}

    def render(self, route: Route) -> str:
        data = route.data
        cached = self.tails.get(id(data))
        if cached is None:
            cached = self.tails[id(data)] = self._tail(data)
        tail, mask, host = cached
        if self.names is None:
            destination = route.destination
        else:
            destination = self.names.inet_name(
                route.destination, mask, False, default_word=True, force_host=host
            )[:NAME_CUT]
        return f"{destination:<15} {tail}"

    def render_all(self, routes: List[Route]) -> List[str]:
        """Every row, as pieces of text to be joined (not one string per row).

        Numeric listings take a path with no Python code per row: the tails are made once
        per distinct data record, then joined by str.ljust and concatenation in map(), in
        half the time of a render() per row.
        """
        if self.ext == 0:
            return []
        if self.names is not None:
            return list(map(self.render, routes))
        datas = list(map(itemgetter(1), routes))
        ids = list(map(id, datas))
        tails = self.tails
        if not tails.keys() >= set(ids):
            for data_id, data in zip(ids, datas):
                if data_id not in tails:
                    tails[data_id] = self._tail(data)
        # "%-15s " is ljust(16) for a dotted quad, which is never longer than 15. The pieces
        # are joined by the caller: no per-row concatenation.
        heads = map(str.ljust, map(itemgetter(0), routes), repeat(16))
        texts = map(itemgetter(0), map(tails.__getitem__, ids))
        return list(chain.from_iterable(zip(heads, texts)))

    def _tail(self, data: RouteData) -> Tuple[str, int, bool]:
        """Everything after the destination column, the mask as a number, the RTF_HOST bit."""
        flags = self.flag_texts.get(data.flags)
        if flags is None:
            flags = self.flag_texts[data.flags] = ipv4_flags(data.flags)
        mask = self.masks.get(data.genmask)
        if mask is None:
            mask = self.masks[data.genmask] = int.from_bytes(
                _socket.inet_aton(data.genmask), "big"
            )
        genmask = data.genmask[:NAME_CUT]
        ext = self.ext
        if data.flags & RTF_REJECT:
            if ext == 1:
                tail = (
                    f"-               {genmask:<15} {flags:<5} {data.metric:<6d} -  "
                    f"{data.use:7d} -\n"
                )
            elif ext == 2:
                tail = f"-               {genmask:<15} {flags:<5}     - -          - -\n"
            else:
                tail = (
                    f"-               {genmask:<15} {flags:<5} {data.metric:<6d} -  "
                    f"{data.use:7d} -        -     -      -\n"
                )
            return tail, mask, bool(data.flags & RTF_HOST)
        if self.names is None:
            gateway = data.gateway
        else:
            gateway = self.names.inet_name(data.gateway, SPRINT_MASK, False, force_host=True)
            gateway = gateway[:NAME_CUT]
        if ext == 1:
            tail = (
                f"{gateway:<15} {genmask:<15} {flags:<5} {data.metric:<6d} {data.refcnt:<2d} "
                f"{data.use:7d} {data.iface}\n"
            )
        elif ext == 2:
            tail = (
                f"{gateway:<15} {genmask:<15} {flags:<5} {data.mtu:5d} {data.window:<5d} "
                f"{data.irtt:6d} {data.iface}\n"
            )
        else:
            tail = (
                f"{gateway:<15} {genmask:<15} {flags:<5} {data.metric:<6d} {data.refcnt:<3d} "
                f"{data.use:6d} {data.iface[:6]:<6}   {data.mtu:<5d} {data.window:<6d} "
                f"{data.irtt}\n"
            )
        return tail, mask, bool(data.flags & RTF_HOST)


# -- IPv4 cache -------------------------------------------------------------------------------

_CACHE_LETTERS_V2: Tuple[Tuple[int, str], ...] = (
    (RTCF_DEAD, "-"),
    (RTCF_ONLINK, "o"),
)
_CACHE_LETTERS_COMMON: Tuple[Tuple[int, str], ...] = (
    (RTCF_NOTIFY, "n"),
    (RTCF_DIRECTDST, "d"),
    (RTCF_TPROXY, "t"),
    (RTCF_FAST, "f"),
    (RTCF_MASQ, "q"),
    (RTCF_SNAT, "Ns"),
    (RTCF_DOREDIRECT, "r"),
    (RTCF_DIRECTSRC, "i"),
    (RTCF_DNAT, "Nd"),
    (RTCF_BROADCAST, "b"),
    (RTCF_MULTICAST, "m"),
    (RTCF_REJECT, "#"),
    (RTCF_LOCAL, "l"),
)


def cache_flags(flags: int, layout: int) -> str:
    """rprint_cache()'s letters (the 2.0 layout also knows U and H)."""
    text = ""
    if layout == 1:
        if flags & RTF_UP:
            text += "U"
        if flags & RTF_HOST:
            text += "H"
    if flags & RTF_GATEWAY:
        text += "G"
    if flags & RTF_REJECT:
        text = "!"
    for bit, letter in ((RTF_REINSTATE, "R"), (RTF_DYNAMIC, "D"), (RTF_MODIFIED, "M")):
        if flags & bit:
            text += letter
    if layout == 2:
        for bit, letter in _CACHE_LETTERS_V2:
            if flags & bit:
                text += letter
    for bit, letter in _CACHE_LETTERS_COMMON:
        if flags & bit:
            text += letter
    return text


def ipv4_cache_lines(cache: RouteCache, ext: int, names: Optional[Names]) -> List[str]:
    """Title, the layout-guess complaint if any, header and rows of `netstat -rC` (IPv4)."""
    ext = min(ext, 3)
    lines = [IPV4_CACHE_TITLE]
    if cache.layout not in (1, 2):
        lines.append(
            f"ERROR: proc_guess_fmt(/proc/net/rt_cache,... returned: {cache.layout}\n"
        )
    if ext in IPV4_CACHE_HEADERS:
        lines.append(IPV4_CACHE_HEADERS[ext])
    if ext >= 3 and cache.layout in IPV4_CACHE_HEADERS_EXT3:
        lines.append(IPV4_CACHE_HEADERS_EXT3[cache.layout])
    lines.extend(_cache_row(entry, cache.layout, ext, names) for entry in cache.entries)
    return [line for line in lines if line]


def _cache_row(entry: CachedRoute, layout: int, ext: int, names: Optional[Names]) -> str:
    def text(address: str) -> str:
        # INET_sprint() tests its host-order mask against the address in network order, the
        # socket tables' byte-order bug (lib/inet.c INET_rresolve()).
        return address if names is None else names.socket_host4(address)

    source, destination, gateway = text(entry.source), text(entry.destination), text(entry.gateway)
    flags = cache_flags(entry.flags, layout)
    head = f"{source:<15} {destination:<15} {gateway:<15} {flags:<5} "
    if ext == 1:
        return f"{head}{entry.metric:<6d} {entry.refcnt:<2d} {entry.use:7d} {entry.iface}\n"
    if ext == 2:
        return f"{head}{entry.mss:5d} {entry.window:<5d} {entry.irtt:6d} {entry.iface}\n"
    if ext < 3 or layout not in (1, 2):
        return ""
    middle = (
        f"{head}{entry.metric:<6d} {entry.refcnt:<3d} {entry.use:6d} {entry.iface[:6]:<6}   "
        f"{entry.mss:<5d} {entry.window:<6d} "
    )
    if layout == 1:
        return f"{middle}{entry.irtt:<5d} {entry.hh:<3d} {entry.arp}\n"
    return (
        f"{middle}{entry.irtt:<5d} {entry.tos:<3d} {entry.hhref:<3d}   {entry.hhuptod:<3d} "
        f"{text(entry.specdst):>15}\n"
    )


# -- IPv6 -------------------------------------------------------------------------------------

_IPV6_LETTERS: Tuple[Tuple[int, str], ...] = (
    (RTF_UP, "U"),
    (RTF_REJECT, "!"),
    (RTF_GATEWAY, "G"),
    (RTF_HOST, "H"),
    (RTF_DEFAULT, "D"),
    (RTF_ADDRCONF, "A"),
    (RTF_CACHE, "C"),
    (RTF_ALLONLINK, "a"),
    (RTF_EXPIRES, "e"),
    (RTF_MODIFIED, "m"),
    (RTF_NONEXTHOP, "n"),
    (RTF_FLOW, "f"),
)


def ipv6_flags(flags: int) -> str:
    """rprint_fib6()'s letters, in its order: "U", "!", "G", ... ("!n" for reject routes)."""
    return "".join(letter for bit, letter in _IPV6_LETTERS if flags & bit)


def ipv6_header(cache: bool) -> str:
    return (IPV6_CACHE_TITLE if cache else IPV6_TITLE) + IPV6_HEADER


class Ipv6Rows:
    """Renders IPv6 rows; `names` is None for numeric output. One per listing (see Ipv4Rows)."""

    def __init__(self, names: Optional[Names]) -> None:
        self.names = names
        self.tails: Dict[int, Tuple[str, str]] = {}
        self.flag_texts: Dict[int, str] = {}

    def render(self, route: Route6) -> str:
        data = route.data
        cached = self.tails.get(id(data))
        if cached is None:
            cached = self.tails[id(data)] = self._tail(data)
        suffix, tail = cached
        if self.names is None:
            destination = route.destination
            if destination.startswith("::ffff:"):
                destination = unmap_v4(destination)
        else:
            destination = self.names.inet6_name(route.destination, False)
        return f"{destination + suffix:<30} {tail}"

    def _tail(self, data: Route6Data) -> Tuple[str, str]:
        flags = self.flag_texts.get(data.flags)
        if flags is None:
            flags = self.flag_texts[data.flags] = ipv6_flags(data.flags)
        if self.names is None:
            # INET6_sprint() drops "::ffff:" from v4-mapped addresses, numeric or not.
            next_hop = unmap_v4(data.next_hop) if data.next_hop.startswith("::ffff:") else (
                data.next_hop
            )
        else:
            next_hop = self.names.inet6_name(data.next_hop, False)
        refcnt = UNKNOWN_REFCNT if data.refcnt is None else data.refcnt
        tail = (
            f"{next_hop:<26} {flags:<4} {data.metric:<3d} {refcnt:<1d} {data.use:6d} "
            f"{data.iface}\n"
        )
        return f"/{data.prefix_len}", tail

    def render_all(self, routes: List[Route6]) -> List[str]:
        return list(map(self.render, routes))


# -- AX.25, NET/ROM, X.25, ROSE (lib/ax25_gr.c, netrom_gr.c, x25_gr.c, rose_gr.c) ------------


class CBuffer:
    """The `char buffer[256]` these printers fgets() into and then cut with NUL bytes.

    Bytes past the current line's end are what earlier, longer lines left there, and netstat
    reads them when a line is short; offsets outside the buffer read as empty text and 0
    (undefined behaviour in netstat).
    """

    def __init__(self, size: int = 256) -> None:
        self.data = bytearray(size)

    def load(self, line: bytes) -> None:
        self.data[: len(line)] = line
        if len(line) < len(self.data):
            self.data[len(line)] = 0

    def cut(self, *offsets: int) -> None:
        for offset in offsets:
            if 0 <= offset < len(self.data):
                self.data[offset] = 0

    def text(self, offset: int) -> str:
        if not 0 <= offset < len(self.data):
            return ""
        end = self.data.find(0, offset)
        return self.data[offset : len(self.data) if end < 0 else end].decode(
            "utf-8", "surrogateescape"
        )

    def atoi(self, offset: int) -> int:
        """(int) strtol(buffer + offset, NULL, 10)."""
        text = self.text(offset).lstrip(" \t\n\v\f\r")
        digits = 1 if text[:1] in ("+", "-") else 0
        while digits < len(text) and text[digits].isdigit() and text[digits].isascii():
            digits += 1
        try:
            value = int(text[:digits])
        except ValueError:
            return 0
        return c_int(value)


def ax25_lines(lines: List[bytes]) -> List[str]:
    out = ["Kernel AX.25 routing table\n", "Destination  Iface    Use\n"]
    buffer = CBuffer()
    for index, line in enumerate(lines):
        buffer.load(line)
        if index == 0:
            continue  # the title line, eaten
        buffer.cut(9, 14)
        out.append(f"{buffer.text(0):<9}    {buffer.text(10):<5}  {buffer.atoi(15):5d}\n")
    return out


def netrom_lines(nodes: List[bytes], neighbours: List[bytes]) -> List[str]:
    """Rows for which no neighbour matches end without a newline, as in netstat."""
    out = ["Kernel NET/ROM routing table\n", "Destination  Mnemonic  Quality  Neighbour  Iface\n"]
    buffer = CBuffer()  # one buffer for both files
    for index, line in enumerate(nodes):
        buffer.load(line)
        if index == 0:
            continue
        buffer.cut(9, 17)
        which = buffer.atoi(19) - 1
        out.append(f"{buffer.text(0):<9}    {buffer.text(10):<7}   ")
        quality = buffer.atoi(24 + 15 * which)
        neighbour = buffer.atoi(32 + 15 * which)
        for position, other in enumerate(neighbours):
            buffer.load(other)
            if position and buffer.atoi(0) == neighbour:
                buffer.cut(15, 20)
                out.append(f"{quality:3d}      {buffer.text(6):<9}  {buffer.text(16)}\n")
                break
    return out


def x25_lines(lines: List[bytes]) -> List[str]:
    out = ["Kernel X.25 routing table\n", "Destination          Iface\n"]
    buffer = CBuffer()
    for index, line in enumerate(lines):
        buffer.load(line)
        if index == 0:
            continue
        end = buffer.data.find(0)
        newline = buffer.data.find(b"\n", 0, len(buffer.data) if end < 0 else end)
        buffer.cut(newline, 24, 35)
        digits = buffer.atoi(17)
        if not 0 <= digits <= 15:
            digits = 15
        buffer.cut(digits)
        if digits == 0:
            out.append(f"*                    {buffer.text(25):<5}\n")
        else:
            # "%s/%*d" with the width digits - 17 < 0: left-justified in 17 - digits.
            out.append(f"{buffer.text(0)}/{digits:<{17 - digits}d}   {buffer.text(25):<5}\n")
    return out


def rose_lines(nodes: List[bytes], neighbours: List[bytes]) -> List[str]:
    out = [
        "Kernel ROSE routing table\n",
        "Destination  neigh1 callsign  device  neigh2 callsign  device  neigh3 callsign  "
        "device\n",
    ]
    node = CBuffer()
    other = CBuffer()
    for index, line in enumerate(nodes):
        node.load(line)
        if index == 0:
            continue
        node.cut(10, 15, 17, 23, 29, 35)
        row = f"{node.text(0):<10}   "
        for hop in range(min(node.atoi(16), 64)):
            wanted = node.atoi(6 * (hop + 3))
            row += f"{wanted:05d}  "
            for position, text in enumerate(neighbours):
                other.load(text)
                if position:
                    other.cut(15, 21)
                    if other.atoi(0) == wanted:
                        row += f"{other.text(6):<10}   {other.text(16):<4}"
        out.append(row + "\n")
    return out
