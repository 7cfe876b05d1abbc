"""netstat -s text: StatsSection records -> netstat's sentences, with its printing state machine.

netstat prints counters through one global "state" shared by every section and file of a run
(net-tools statistics.c printval/newtable). The state decides the indentation of
unknown counters and when an "ICMP input/output histogram:" title appears, which is why an
unknown section inherits the indentation of the section before it.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Tuple

from nlstat.format import stats_tables as tables
from nlstat.model.stats import StatsSection

# Which section families use which tables (netstat's snmptabs / snmp6tabs).
IPV4 = "ipv4"  # /proc/net/snmp, /proc/net/netstat, /proc/net/sctp/snmp
IPV6 = "ipv6"  # /proc/net/snmp6

# Blanks before a line printed in a given state (netstat's states[].indent).
_INDENT = {
    tables.NUMBER: "    ",
    tables.OPTIONAL: "    ",
    tables.INPUT_HISTOGRAM: "        ",
    tables.OUTPUT_HISTOGRAM: "        ",
}
_HISTOGRAM_TITLE = {
    tables.INPUT_HISTOGRAM: "ICMP input histogram:",
    tables.OUTPUT_HISTOGRAM: "ICMP output histogram:",
}

# Section -> the -s filter switch that shows it (statistics.c parsesnmp(), parsesnmp6()).
_IPV4_SWITCH = {
    "Ip": "raw", "Icmp": "raw", "Tcp": "tcp", "Udp": "udp", "Sctp": "sctp", "TcpExt": "tcp"
}
_IPV6_SWITCH = {"Ip6": "raw", "Icmp6": "raw", "Udp6": "udp", "Tcp6": "tcp"}

Lookup = Dict[str, Tuple[int, str]]
_lookups: Dict[int, Lookup] = {}


def _bsearch(names: List[str], key: str) -> bool:
    """glibc bsearch() with strcmp() over names in table order, as statistics.c looks names up.

    Python compares str by code point, which is strcmp's byte order for these ASCII names.
    """
    low, high = 0, len(names)
    while low < high:
        middle = (low + high) // 2
        if key < names[middle]:
            high = middle
        elif key > names[middle]:
            low = middle + 1
        else:
            return True
    return False


def findable(table: tables.Table) -> Lookup:
    """name -> (kind, sentence) for the rows netstat's bsearch can actually find.

    A dictionary of the findable rows gives the same answers as bsearch over the (partly
    unsorted) table: an unfindable row behaves exactly like a name that is not there.
    """
    lookup = _lookups.get(id(table))
    if lookup is None:
        names = [row[0] for row in table]
        lookup = {name: (kind, text) for name, kind, text in table if _bsearch(names, name)}
        _lookups[id(table)] = lookup
    return lookup


class Switches:
    """The -s section filters after netstat.c main()'s derivation: -w, -t, -u, -S."""

    def __init__(self, raw: bool, tcp: bool, udp: bool, sctp: bool) -> None:
        self.raw = raw
        self.tcp = tcp
        self.udp = udp
        self.sctp = sctp

    def on(self, switch: str) -> bool:
        return bool(getattr(self, switch))


class StatisticsPrinter:
    """Turns sections into netstat's lines, keeping netstat's state across sections and files."""

    def __init__(self, switches: Switches) -> None:
        self.switches = switches
        self.state = tables.NUMBER
        self.lines: List[str] = []

    def add_sections(
        self, sections: Iterable[StatsSection], family: str, prefix: Optional[str] = None
    ) -> None:
        """Print sections of one file. `prefix`: only sections whose name starts with it (-s -6
        reads /proc/net/snmp for its "Tcp" sections only: statistics.c parsesnmp6())."""
        if family == IPV4:
            known, switch_of = tables.IPV4_TABLES, _IPV4_SWITCH
        else:
            known, switch_of = tables.IPV6_TABLES, _IPV6_SWITCH
        for section in sections:
            if prefix is not None and not section.name.startswith(prefix):
                continue
            table = known.get(section.name)
            if table is None:
                # Unknown sections are always shown (even under -t/-u/-w/-U) and do not reset
                # the state, so their counters inherit the previous section's indentation.
                self.lines.append(section.name + ":")
                self._counters(section.counters, {})
                continue
            self.state = tables.NUMBER
            if self.switches.on(switch_of[section.name]):
                self.lines.append(section.name + ":")
                self._counters(section.counters, findable(table))

    def _counters(self, counters: Iterable[Tuple[str, int]], lookup: Lookup) -> None:
        lines = self.lines
        for name, value in counters:
            entry = lookup.get(name)
            if entry is None:
                if value:
                    lines.append(f"{_INDENT[self.state]}{name}: {value}")
                continue
            kind, text = entry
            if kind == tables.STATIC or not text:
                continue
            if kind >= tables.INPUT_HISTOGRAM:
                if self.state != kind:
                    # The title takes the indentation of the state it leaves (statistics.c).
                    lines.append(_INDENT[self.state] + _HISTOGRAM_TITLE[kind])
                if value > 0:
                    lines.append("        " + text % value)
            elif value or kind == tables.NUMBER:
                lines.append("    " + text % value)
            self.state = kind

    def text(self) -> bytes:
        """The lines so far as output bytes (names were decoded as latin-1), then forget them."""
        if not self.lines:
            return b""
        out = ("\n".join(self.lines) + "\n").encode("latin-1")
        self.lines = []
        return out


def no_support_message(families: str) -> bytes:
    """netstat's complaint (on stdout) for -s with any family list but "inet" or "inet6"."""
    return f"netstat: No statistics support for specified address family: {families}\n".encode(
        "latin-1", "replace"
    )
