"""/proc/net/nf_conntrack -> ConntrackEntry records, the fallback when ctnetlink is refused.

netstat's own source for -M, /proc/net/ip_masquerade, left Linux with 2.4; this file is its
closest /proc successor (CONFIG_NF_CONNTRACK_PROCFS). A line looks like
    ipv4     2 tcp      6 119 FIN_WAIT src=198.18.1.2 dst=198.19.2.2 sport=39996 dport=8080
    src=198.19.2.2 dst=198.19.2.1 sport=8080 dport=39996 [ASSURED] mark=0 zone=0 use=2
(one line): layer-3 and layer-4 names and numbers, seconds left, an optional state, then the
original tuple's key=value pairs and the reply tuple's, each starting at "src=". It has no NAT
status bits and no sequence adjustment: NAT shows as a reply tuple that differs.
"""

from __future__ import annotations

import _socket
from typing import Dict, Iterator, List

from nlstat import procio
from nlstat.errors import MalformedInput
from nlstat.kernel.conntrack import IPS_ASSURED, IPS_CONFIRMED, IPS_SEEN_REPLY
from nlstat.model.conntrack import ConntrackEntry

_FAMILIES = {"ipv4": _socket.AF_INET, "ipv6": _socket.AF_INET6}


def parse_line(line: str, path: str = "/proc/net/nf_conntrack", number: int = 0) -> ConntrackEntry:
    """One /proc/net/nf_conntrack line -> a ConntrackEntry (ICMP: id as source "port",
    (type << 8) | code as destination, the kernel's own tuple encoding)."""
    fields = line.split()
    try:
        family = _FAMILIES[fields[0]]
        protocol = int(fields[3])
        timeout = int(fields[4])
    except (IndexError, KeyError, ValueError) as err:
        raise MalformedInput(path, number, line.rstrip("\n"), "not a conntrack entry") from err
    tuples: List[Dict[str, str]] = []
    # The status bits the text shows (as flags) or implies: every entry in the table has been
    # confirmed, and one is replied unless it says [UNREPLIED].
    status = IPS_SEEN_REPLY | IPS_CONFIRMED
    mark = zone = 0
    for field in fields[5:]:
        key, sep, value = field.partition("=")
        if not sep:
            if field == "[UNREPLIED]":
                status &= ~IPS_SEEN_REPLY
            elif field == "[ASSURED]":
                status |= IPS_ASSURED
            continue
        if key == "src":
            tuples.append({})
        if key == "mark":
            mark = _number(value, path, number, line)
        elif key == "zone":
            zone = _number(value, path, number, line)
        elif tuples:
            tuples[-1].setdefault(key, value)
    if len(tuples) != 2:
        raise MalformedInput(path, number, line.rstrip("\n"), "expected two tuples")
    orig, reply = (_tuple(t, path, number, line) for t in tuples)
    return ConntrackEntry(
        family=family, protocol=protocol, orig_src=orig[0], orig_dst=orig[1],
        orig_sport=orig[2], orig_dport=orig[3], reply_src=reply[0], reply_dst=reply[1],
        reply_sport=reply[2], reply_dport=reply[3], status=status, timeout=timeout, mark=mark,
        zone=zone,
    )


def _number(text: str, path: str, number: int, line: str) -> int:
    try:
        return int(text, 0)
    except ValueError as err:
        raise MalformedInput(path, number, line.rstrip("\n"), f"bad number {text!r}") from err


def _tuple(pairs: Dict[str, str], path: str, number: int, line: str) -> tuple[str, str, int, int]:
    src = pairs.get("src", "")
    dst = pairs.get("dst", "")
    if "id" in pairs or "type" in pairs:
        sport = _number(pairs.get("id", "0"), path, number, line)
        dport = (_number(pairs.get("type", "0"), path, number, line) << 8) | _number(
            pairs.get("code", "0"), path, number, line
        )
    else:
        sport = _number(pairs.get("sport", "0"), path, number, line)
        dport = _number(pairs.get("dport", "0"), path, number, line)
    return src, dst, sport, dport


def read_entries(path: str) -> Iterator[ConntrackEntry]:
    """Every entry of the file; OSError (missing, EACCES) propagates to the caller."""
    # Universal newlines, as open() in text mode reads it; lines end at "\n" only.
    parts = procio.read_text(path, "ascii", "replace", None).split("\n")
    lines = [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    for number, line in enumerate(lines, 1):
        if line.strip():
            yield parse_line(line, path, number)
