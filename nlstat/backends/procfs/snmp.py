"""/proc/net/{snmp,netstat,snmp6,sctp/snmp} -> StatsFile records, parsed exactly as netstat -s does.

There is no netlink source for these counters: the kernel exports its global SNMP MIBs only as
these text files (RTM_GETSTATS carries per-interface counters, not the IP/TCP/UDP totals), so
`-s` always reads /proc, whatever NLSTAT_BACKEND says.

netstat's parsers (net-tools statistics.c process_fd, process6_fd, process_fd2) are C string
code with quirks that show on odd input; each is reproduced here and commented where it bites.
The files are handled as bytes and names decoded as latin-1, so odd bytes come out unchanged.
"""

from __future__ import annotations

from typing import Iterator, List, Optional, Tuple

from nlstat import procio
from nlstat.cscan import read_counters, strtoull
from nlstat.model.stats import StatsFile, StatsSection

# netstat reads snmp6 and sctp/snmp with fgets() into 1024-byte buffers: a longer line is read
# as several lines of at most 1023 bytes.
FGETS_SIZE = 1024


def _read(path: str) -> Tuple[bytes, int, int]:
    """(content, open errno, read errno) for one file, as fopen() + reading would see it."""
    return procio.outcome(path)


def _c_string(line: bytes) -> bytes:
    """What C string functions see of a line: everything before the first NUL byte."""
    nul = line.find(b"\0")
    return line if nul < 0 else line[:nul]


def _c_words(text: bytes) -> List[bytes]:
    """Words as netstat's strspn/strcspn(" \\t\\n") loop cuts them (\\r, \\v, \\f stay in words)."""
    return [word for word in text.replace(b"\t", b" ").replace(b"\n", b" ").split(b" ") if word]


def parse_pairs(data: bytes) -> Tuple[List[StatsSection], bool]:
    """The "Section: names" / "Section: values" line pairs of /proc/net/snmp and /proc/net/netstat.

    Returns the sections and whether a line without ":" stopped the parse (netstat's formaterr).
    Example: b"Ip: Forwarding DefaultTTL\\nIp: 2 64\\n" -> ([StatsSection("Ip", (("Forwarding",
    2), ("DefaultTTL", 64)))], False).
    """
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the text after the last newline is not a line
    sections: List[StatsSection] = []
    count = len(lines)
    i = 0
    while i < count:
        title = lines[i]
        i += 1
        if title == b"":
            continue  # netstat skips an empty first line of a pair (2.6 kernels printed one)
        if i >= count:
            break  # a title line without its value line ends the file quietly
        values = _c_string(lines[i])
        i += 1
        title = _c_string(title)
        colon = title.find(b":")
        value_colon = values.find(b":")
        if colon < 0 or value_colon < 0:
            return sections, True
        names = _c_words(title[colon + 1 :])
        numbers = read_counters(values[value_colon + 1 :], len(names))
        sections.append(
            StatsSection(
                name=title[:colon].decode("latin-1"),
                counters=tuple(zip((name.decode("latin-1") for name in names), numbers)),
            )
        )
    return sections, False


def _fgets_lines(data: bytes) -> Iterator[bytes]:
    """The successive fgets(buf, 1024) results over data, each with its newline if it had one."""
    limit = FGETS_SIZE - 1
    start = 0
    end = len(data)
    while start < end:
        newline = data.find(b"\n", start)
        stop = end if newline < 0 else newline + 1
        while stop - start > limit:
            yield data[start : start + limit]
            start += limit
        yield data[start:stop]
        start = stop


def _scan_unsigned(token: bytes) -> Optional[int]:
    """sscanf's %llu on a token (no leading blanks): the value, or None on a matching failure."""
    value, end = strtoull(token, 0)
    return value if end else None


def _section_title(name: str) -> str:
    """netstat's cpytitle(): the name up to and including its first "6" ("Icmp6InMsgs": "Icmp6")."""
    six = name.find("6")
    return name if six < 0 else name[: six + 1]


def parse_snmp6(data: bytes) -> List[StatsSection]:
    """/proc/net/snmp6 "Name value" lines -> sections, found the way netstat finds them.

    A section is named after the first counter's name up to its first "6"; a new one starts
    whenever that title is not a substring of the counter name. netstat reads each line with
    sscanf("%s %llu") into variables that keep their old contents when a line does not match,
    so a blank line repeats the previous counter, and a missing value repeats the previous value.
    """
    sections: List[StatsSection] = []
    counters: List[Tuple[str, int]] = []
    title: Optional[str] = None
    # netstat's name buffer starts empty (seen: a blank first line makes a section titled "").
    name = ""
    value = 0
    for line in _fgets_lines(data):
        tokens = _c_string(line).split(None, 2)
        if tokens:
            name = tokens[0].decode("latin-1")
            if len(tokens) > 1:
                scanned = _scan_unsigned(tokens[1])
                if scanned is not None:
                    value = scanned
        if title is None or title not in name:
            if title is not None:
                sections.append(StatsSection(name=title, counters=tuple(counters)))
            title = _section_title(name)
            counters = []
        counters.append((name, value))
    if title is not None:
        sections.append(StatsSection(name=title, counters=tuple(counters)))
    return sections


def parse_sctp(data: bytes) -> StatsSection:
    """/proc/net/sctp/snmp "Name value" lines -> the one "Sctp" section (netstat process_fd2).

    The name ends at the first blank, tab or newline; a line with nothing after it is skipped.
    """
    counters: List[Tuple[str, int]] = []
    for raw_line in _fgets_lines(data):
        line = _c_string(raw_line)
        cut = len(line)
        for separator in b" \t\n":
            found = line.find(bytes((separator,)), 0, cut)
            if found >= 0:
                cut = found
        if cut == len(line):
            # No separator: the last line lacks its newline. netstat then reads past the end of
            # the string into stale buffer bytes; we skip the line (spec FIX-OK territory).
            continue
        rest = line[cut + 1 :].lstrip(b" \t\n")
        if rest:
            counters.append((line[:cut].decode("latin-1"), strtoull(rest, 0)[0]))
    return StatsSection(name="Sctp", counters=tuple(counters))


def read_pairs_file(path: str, name: str) -> StatsFile:
    """/proc/net/snmp or /proc/net/netstat; `name` is netstat's path for messages."""
    data, open_errno, read_errno = _read(path)
    if open_errno or read_errno:
        return StatsFile(path=name, sections=(), open_errno=open_errno, read_errno=read_errno)
    sections, malformed = parse_pairs(data)
    return StatsFile(path=name, sections=tuple(sections), malformed=malformed)


def read_snmp6_file(path: str, name: str) -> StatsFile:
    """/proc/net/snmp6."""
    data, open_errno, read_errno = _read(path)
    if open_errno or read_errno:
        return StatsFile(path=name, sections=(), open_errno=open_errno, read_errno=read_errno)
    return StatsFile(path=name, sections=tuple(parse_snmp6(data)))


def read_sctp_file(path: str, name: str) -> StatsFile:
    """/proc/net/sctp/snmp. Its "Sctp" section exists even when reading fails or finds nothing,
    because netstat opens the section before it reads the first line."""
    data, open_errno, read_errno = _read(path)
    if open_errno:
        return StatsFile(path=name, sections=(), open_errno=open_errno)
    return StatsFile(path=name, sections=(parse_sctp(data),), read_errno=read_errno)
