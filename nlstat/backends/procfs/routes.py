"""/proc/net/route, /proc/net/ipv6_route and /proc/net/rt_cache -> route records, read as netstat
reads them (net-tools lib/inet_gr.c rprint_fib/rprint_cache, lib/inet6_gr.c rprint_fib6).

netstat parses these files with sscanf() and never checks for garbage, so a malformed line does
not stop it: a short IPv4 line is skipped, but a bad IPv6 line is printed with whatever the
previous line left in the variables, and an unparsable address keeps the previous address.
`scan()` reproduces sscanf() closely enough that such files give netstat's rows, not a
traceback. Lines as the kernel writes them take a fast path that reuses the data of an earlier
line with the same text after the destination (see model/routes.py).
"""

from __future__ import annotations

import _socket
from functools import partial
from itertools import repeat
from operator import itemgetter
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from nlstat import procio
from nlstat.cscan import c_int, to_s32
from nlstat.kernel.rtnetlink import RTF_CACHE, RTF_UP
from nlstat.model.build import values_of
from nlstat.model.routes import CachedRoute, Route, Route6, Route6Data, RouteCache, RouteData

# The title lines the kernel writes (net/ipv4/fib_trie.c, net/ipv4/route.c), tabs included.
ROUTE_TITLES = (
    "Iface", "Destination", "Gateway", "Flags", "RefCnt", "Use", "Metric", "Mask", "MTU",
    "Window", "IRTT",
)
CACHE_TITLES_V1 = (
    "Iface", "Destination", "Gateway", "Flags", "RefCnt", "Use", "Metric", "Source", "MTU",
    "Window", "IRTT", "HH", "ARP",
)
CACHE_TITLES_V2 = (
    "Iface", "Destination", "Gateway", "Flags", "RefCnt", "Use", "Metric", "Source", "MTU",
    "Window", "IRTT", "TOS", "HHRef", "HHUptod", "SpecDst",
)
# proc_guess_fmt() bits for the rt_cache title (lib/proc.c): a title *contains* the name.
CACHE_GUESS = (("IRTT", 1), ("TOS", 2), ("HHRef", 4), ("HHUptod", 8), ("SpecDst", 16),
               ("HH", 32), ("ARP", 64))
CACHE_LAYOUT_V2 = 63
CACHE_LAYOUT_V1 = 97

# netstat reads with fgets(buff, 1023, fp): longer lines arrive in pieces; proc_gen_fmt()
# reads the title line with fgets(buf, 511).
LINE_MAX = 1022
TITLE_MAX = 510

ScanValue = Union[str, int]
Spec = Tuple[str, int]  # (conversion, width): "s", "x", "d", "*" (skip a string), " " (blanks)


class ProcTable(NamedTuple):
    """What netstat got from one file: its rows, or why it gave up after the title.

    `error` is None when the file was read; "" when it was empty (netstat returns 1 silently);
    otherwise the warning netstat writes to stderr before returning 1.
    """

    routes: List[Route]
    error: Optional[str] = None


# -- a small sscanf ---------------------------------------------------------------------------

_HEX = frozenset("0123456789abcdefABCDEF")
_DEC = frozenset("0123456789")
_BLANKS = " \t\n\r\v\f"


def scan(text: str, specs: Sequence[Spec]) -> List[ScanValue]:
    """The values glibc's sscanf() stores for `specs`, up to the first failing conversion.

    "d" stores (int) strtol(), "x" (unsigned int) strtoul(base 16), "s" a string of at most
    `width` non-blanks (0: no limit), "*" skips such a string, " " skips blanks. A number may
    stop inside a token; the next conversion starts where it stopped, as in C.
    """
    values: List[ScanValue] = []
    pos = 0
    end = len(text)
    for kind, width in specs:
        while pos < end and text[pos] in _BLANKS:
            pos += 1
        if kind == " ":
            continue
        if pos >= end:
            break
        limit = end if not width else min(end, pos + width)
        if kind == "s" or kind == "*":
            start = pos
            while pos < limit and text[pos] not in _BLANKS:
                pos += 1
            if kind == "s":
                values.append(text[start:pos])
            continue
        start = pos
        if pos < limit and text[pos] in "+-":
            pos += 1
        if (
            kind == "x"
            and pos + 2 < limit
            and text[pos] == "0"
            and text[pos + 1] in "xX"
            and text[pos + 2] in _HEX
        ):
            pos += 2
        digits = _HEX if kind == "x" else _DEC
        digits_start = pos
        while pos < limit and text[pos] in digits:
            pos += 1
        if pos == digits_start:
            break
        number = int(text[start:pos], 16 if kind == "x" else 10)
        if kind == "x":
            number = min(number, (1 << 64) - 1) if number >= 0 else number % (1 << 64)
            number &= 0xFFFFFFFF
        else:
            number = c_int(number)
        values.append(number)
    return values


def _count(specs: Sequence[Spec]) -> int:
    return sum(1 for kind, _ in specs if kind in "sxd")


def header_specs(
    title_line: str, fields: Sequence[Tuple[str, Spec]]
) -> Tuple[Optional[List[Spec]], Optional[str]]:
    """proc_gen_fmt() (lib/proc.c): the scanf layout for a title line, or the missing title.

    The wanted titles must appear in the given order; other columns are skipped.
    """
    specs: List[Spec] = []
    wanted = 0
    for token in title_line.replace("|", " ").split():
        if wanted < len(fields) and token == fields[wanted][0]:
            specs.append(fields[wanted][1])
            wanted += 1
            if wanted == len(fields):
                break
        else:
            specs.append(("*", 0))
    if wanted < len(fields):
        return None, fields[wanted][0]
    return specs, None


def hex_ipv4(text: str) -> Optional[str]:
    """INET_getsock(): the first 8 hex digits of a little-endian dump -> dotted quad, or None.

    "010200C0" -> "192.0.2.1"; fewer than 8 hex digits -> None (netstat keeps the old address).
    """
    if len(text) < 8:
        return None
    head = text[:8]
    try:
        return _socket.inet_ntoa(bytes.fromhex(head)[::-1])
    except ValueError:
        return None


def _read_lines(path: str) -> List[str]:
    """The file as netstat's fgets(buff, 1023) loop sees it, without the newlines.

    OSError when it can't be opened (the caller prints netstat's message).
    """
    text = procio.read_text(path, "utf-8", "surrogateescape", "\n")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if lines and max(map(len, lines)) >= LINE_MAX:
        pieces: List[str] = []
        for line in lines:
            line += "\n"
            pieces.extend(line[start : start + LINE_MAX].rstrip("\n")
                          for start in range(0, len(line), LINE_MAX))
        lines = pieces
    return lines


def read_fgets(path: str, size: int = 256) -> List[bytes]:
    """The lines a `while (fgets(buffer, size, f))` loop gets from the file, newlines kept,
    longer lines in pieces of size - 1 bytes (the legacy families' printers read this way).

    OSError when the file can't be opened.
    """
    data = procio.read(path)
    pieces: List[bytes] = []
    start = 0
    while start < len(data):
        newline = data.find(b"\n", start, start + size - 1)
        stop = newline + 1 if newline >= 0 else min(start + size - 1, len(data))
        pieces.append(data[start:stop])
        start = stop
    return pieces


def _title(lines: List[str]) -> str:
    """proc_gen_fmt() reads the title line with fgets(buf, 511): the rest is a data line."""
    title = lines[0]
    if len(title) >= TITLE_MAX:
        lines[0:1] = [title[:TITLE_MAX], title[TITLE_MAX:]]
        return title[:TITLE_MAX]
    return title


# -- IPv4 FIB ---------------------------------------------------------------------------------

_ROUTE_FIELDS: Tuple[Tuple[str, Spec], ...] = (
    ("Iface", ("s", 15)),
    ("Destination", ("s", 127)),
    ("Gateway", ("s", 127)),
    ("Flags", ("x", 0)),
    ("RefCnt", ("d", 0)),
    ("Use", ("d", 0)),
    ("Metric", ("d", 0)),
    ("Mask", ("s", 127)),
    ("MTU", ("d", 0)),
    ("Window", ("d", 0)),
    ("IRTT", ("d", 0)),
)
_KERNEL_ROUTE_TITLE = "\t".join(
    ("Iface", "Destination", "Gateway ", "Flags", "RefCnt", "Use", "Metric", "Mask\t", "MTU",
     "Window", "IRTT")
)


def read_ipv4(path: str) -> ProcTable:
    """/proc/net/route -> the rows netstat prints (rows without RTF_UP or with fewer than 10
    fields are skipped, as netstat does). OSError when the file can't be opened."""
    lines = _read_lines(path)
    if not lines:
        return ProcTable([], "")
    title = _title(lines)
    specs, missing = header_specs(title, _ROUTE_FIELDS)
    if specs is None:
        return ProcTable([], f"warning: {path} does not contain required field {missing}")
    routes = None
    if title.rstrip(" ") == _KERNEL_ROUTE_TITLE:
        routes = _parse_ipv4_kernel(lines[1:], specs)
    if routes is None:
        state = _Ipv4State()
        routes = [route for route in map(state.row, lines[1:], repeat(specs)) if route is not None]
    return ProcTable(routes)


_REVERSED = itemgetter(slice(None, None, -1))


def _parse_ipv4_kernel(lines: List[str], specs: List[Spec]) -> Optional[List[Route]]:
    """The rows of a file as the kernel writes it, or None if it is not quite that.

    A kernel line is "eth0\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0" padded
    to 127 characters. Lines with the same text around the destination give the same row but
    for the destination, so each such text is parsed once and every step per line is a
    C-level map(), in less than half the time of line by line.
    Every line must parse cleanly: only then is each row independent of the lines before it
    (netstat's variables keep old values), else the caller goes line by line.
    """
    if not lines:
        return []
    parts = list(map(str.split, lines, repeat("\t"), repeat(2)))
    if min(map(len, parts)) != 3:
        return None
    destinations = list(map(itemgetter(1), parts))
    if set(map(len, destinations)) != {8}:
        return None
    keys = list(zip(map(itemgetter(0), parts), map(itemgetter(2), parts)))
    known: Dict[Tuple[str, str], Optional[RouteData]] = {}
    for key, line in dict(zip(keys, lines)).items():
        route, clean = _Ipv4State().parse(line, specs)
        if not clean:
            return None
        known[key] = None if route is None else route.data
    datas = list(map(known.__getitem__, keys))
    try:
        destination_texts = list(
            map(_socket.inet_ntoa, map(_REVERSED, map(bytes.fromhex, destinations))))
    except (ValueError, OSError):
        return None
    if None in datas:
        return [Route(destination=destination, data=data)
                for destination, data in zip(destination_texts, datas) if data is not None]
    return list(map(tuple.__new__, repeat(Route), zip(*values_of(
        Route, destination=destination_texts, data=datas))))


class _Ipv4State:
    """The variables rprint_fib() keeps between lines: irtt, and the last parsed addresses."""

    def __init__(self) -> None:
        self.irtt = 0
        self.destination = "0.0.0.0"
        self.gateway = "0.0.0.0"
        self.genmask = "0.0.0.0"

    def row(self, line: str, specs: List[Spec]) -> Optional[Route]:
        return self.parse(line, specs)[0]

    def parse(self, line: str, specs: List[Spec]) -> Tuple[Optional[Route], bool]:
        """One line -> (row or None, whether the line was complete and clean)."""
        values = scan(line, specs)
        if len(values) == 11:
            self.irtt = int(values[10])
        if len(values) < 10:
            return None, False
        iface, destination, gateway, flags, refcnt, use, metric, mask, mtu, window = values[:10]
        clean = len(values) == 11
        if not int(flags) & RTF_UP:
            return None, clean
        text = hex_ipv4(str(destination))
        if text is None:
            clean = False
        else:
            self.destination = text
        text = hex_ipv4(str(gateway))
        if text is None:
            clean = False
        else:
            self.gateway = text
        text = hex_ipv4(str(mask))
        if text is None:
            clean = False
        else:
            self.genmask = text
        data = RouteData(
            genmask=self.genmask,
            gateway=self.gateway,
            flags=int(flags),
            metric=int(metric),
            refcnt=int(refcnt),
            use=int(use),
            mtu=int(mtu),
            window=int(window),
            irtt=self.irtt,
            iface=str(iface),
            prefix_len=_prefix_len(self.genmask),
        )
        return Route(destination=self.destination, data=data), clean


def _prefix_len(mask: str) -> int:
    value = int.from_bytes(_socket.inet_aton(mask), "big")
    return bin(value).count("1")


# -- IPv4 cache -------------------------------------------------------------------------------


def read_ipv4_cache(path: str) -> RouteCache:
    """/proc/net/rt_cache -> netstat's layout guess and rows (none on kernels since 3.6).

    Raises OSError when the file can't be opened; an empty file is layout -1, which netstat
    treats as an I/O error.
    """
    lines = _read_lines(path)
    if not lines:
        return RouteCache(layout=-1, entries=[])
    title_line = _title(lines)
    guess = 0
    for title, bit in CACHE_GUESS:
        if title in title_line:
            guess |= bit
    titles: Tuple[str, ...]
    if guess == CACHE_LAYOUT_V2:
        layout, titles = 2, CACHE_TITLES_V2
    elif guess == CACHE_LAYOUT_V1:
        layout, titles = 1, CACHE_TITLES_V1
    else:
        # No scanf format: netstat rewinds and prints one row of never-set variables for
        # every line, the title included (zero addresses, MSS/Window/irtt 0; the rest is
        # uninitialised memory in netstat, 0 and "" here).
        blank = CachedRoute(source="0.0.0.0", destination="0.0.0.0", gateway="0.0.0.0", flags=0,
                            metric=0, refcnt=0, use=0, iface="", mss=0, window=0, irtt=0)
        return RouteCache(layout=guess, entries=[blank] * len(lines))
    fields = [(title, _cache_spec(title)) for title in titles]
    specs, missing = header_specs(title_line, fields)
    if specs is None:
        # netstat would sscanf() with a NULL format and crash; print no rows instead.
        return RouteCache(layout=layout, entries=[])
    entries: List[CachedRoute] = []
    values_kept: List[ScanValue] = [""] * len(titles)
    address = "0.0.0.0"
    for line in lines[1:]:
        values = scan(line, specs)
        if len(values) < 12:
            continue
        values_kept[: len(values)] = values
        row = dict(zip(titles, values_kept))
        texts = []
        for title in ("Destination", "Gateway", "Source", "SpecDst"):
            # rprint_cache() parses every address into one sockaddr: a bad one repeats the last.
            text = hex_ipv4(str(row.get(title, "")))
            if text is not None:
                address = text
            texts.append(address)
        entries.append(
            CachedRoute(
                source=texts[2],
                destination=texts[0],
                gateway=texts[1],
                flags=int(row["Flags"]),
                metric=int(row["Metric"]),
                refcnt=int(row["RefCnt"]),
                use=int(row["Use"]),
                iface=str(row["Iface"]),
                mss=int(row["MTU"]),
                window=int(row["Window"]),
                irtt=int(row["IRTT"]),
                tos=int(row.get("TOS", 0) or 0),
                hhref=int(row.get("HHRef", 0) or 0),
                hhuptod=int(row.get("HHUptod", 0) or 0),
                specdst=texts[3],
                hh=int(row.get("HH", 0) or 0),
                arp=int(row.get("ARP", 0) or 0),
            )
        )
    return RouteCache(layout=layout, entries=entries)


def _cache_spec(title: str) -> Spec:
    if title == "Iface":
        return ("s", 15)
    if title in ("Destination", "Gateway", "Source", "SpecDst"):
        return ("s", 127)
    if title == "Flags":
        return ("x", 0)
    return ("d", 0)


# -- IPv6 -------------------------------------------------------------------------------------

# rprint_fib6()'s format: "%4s" x8 " %02x " "%4s" x8 " %02x " "%4s" x8 " %08x %08x %08x %08x %15s".
_GROUPS: List[Spec] = [("s", 4)] * 8
IPV6_SPECS: List[Spec] = (
    _GROUPS + [("x", 2)] + _GROUPS + [("x", 2)] + _GROUPS
    + [("x", 8), ("x", 8), ("x", 8), ("x", 8), ("s", 15)]
)


def read_ipv6(path: str, cache: bool = False) -> List[Route6]:
    """/proc/net/ipv6_route -> the rows netstat prints: every line without RTF_CACHE, or for
    the cache view (-C) only those with it. OSError when the file can't be opened."""
    lines = _read_lines(path)
    rows = _parse_ipv6_kernel(lines, cache)
    if rows is None:
        state = _Ipv6State()
        rows = [row for row in map(state.row, lines, repeat(cache)) if row is not None]
    return rows


_DESTINATION6 = itemgetter(slice(0, 32))
_AFTER_DESTINATION6 = itemgetter(slice(32, None))
_NTOP6 = partial(_socket.inet_ntop, _socket.AF_INET6)


def _parse_ipv6_kernel(lines: List[str], cache: bool) -> Optional[List[Route6]]:
    """The rows of a file as the kernel writes it, or None (see _parse_ipv4_kernel()).

    A kernel line is 32 hex digits, " 40 ", ... fixed widths up to the device name; the rest
    of the line after the destination is parsed once per distinct text.
    """
    if not lines:
        return []
    if min(map(len, lines)) <= 141 or set(map(itemgetter(32), lines)) != {" "}:
        return None
    keys = list(map(_AFTER_DESTINATION6, lines))
    known: Dict[str, Optional[Route6Data]] = {}
    for key, line in dict(zip(keys, lines)).items():
        row, clean = _Ipv6State().parse(line, cache)
        if not clean:
            return None
        known[key] = None if row is None else row.data
    try:
        destination_texts = list(map(_NTOP6, map(bytes.fromhex, map(_DESTINATION6, lines))))
    except (ValueError, OSError):
        return None
    datas = list(map(known.__getitem__, keys))
    if None in datas:
        return [Route6(destination=destination, data=data)
                for destination, data in zip(destination_texts, datas) if data is not None]
    return list(map(tuple.__new__, repeat(Route6), zip(*values_of(
        Route6, destination=destination_texts, data=datas))))


class _Ipv6State:
    """rprint_fib6()'s variables, which keep their values when a line does not fill them.

    sscanf() stores into them for every line; the addresses are parsed only for the lines
    printed (a cache line is skipped in the FIB view before that, and the other way round).
    """

    def __init__(self) -> None:
        self.values: List[ScanValue] = ["0000"] * 8 + [0] + ["0000"] * 8 + [0] + ["0000"] * 8 + [
            0, 0, 0, 0, ""
        ]
        self.destination = "::"
        self.next_hop = "::"

    def row(self, line: str, cache: bool) -> Optional[Route6]:
        return self.parse(line, cache)[0]

    def parse(self, line: str, cache: bool) -> Tuple[Optional[Route6], bool]:
        """One line -> (row or None if the view leaves it out, whether it parsed cleanly)."""
        values = scan(line, IPV6_SPECS)
        clean = len(values) == len(IPV6_SPECS)
        self.values[: len(values)] = values
        v = self.values
        metric, refcnt, use, flags = (int(x) for x in v[26:30])
        if bool(flags & RTF_CACHE) != cache:
            return None, clean
        destination = _ipv6_text(v[0:8])
        if destination is not None:
            self.destination = destination
        else:
            clean = False
        next_hop = _ipv6_text(v[18:26])
        if next_hop is not None:
            self.next_hop = next_hop
        else:
            clean = False
        data = Route6Data(
            prefix_len=int(v[8]),
            next_hop=self.next_hop,
            metric=to_s32(metric),
            refcnt=to_s32(refcnt),
            use=to_s32(use),
            flags=flags,
            iface=str(v[30]),
            source=_ipv6_text(v[9:17]) or "::",
            source_len=int(v[17]),
        )
        return Route6(destination=self.destination, data=data), clean


def _ipv6_text(groups: Sequence[ScanValue]) -> Optional[str]:
    """netstat joins the eight 4-character groups with ":" and inet_pton()s the result."""
    try:
        return _socket.inet_ntop(_socket.AF_INET6, _socket.inet_pton(_socket.AF_INET6, ":".join(
            str(g) for g in groups)))
    except (OSError, ValueError):
        return None


__all__ = [
    "ProcTable",
    "header_specs",
    "read_fgets",
    "read_ipv4",
    "read_ipv4_cache",
    "read_ipv6",
    "scan",
]
