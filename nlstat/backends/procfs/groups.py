"""/proc/net/igmp and /proc/net/igmp6 -> GroupMembership, read as netstat.c igmp_do_one() does.

netstat feeds both files, line by line, to one function whose state (which layout, the current
device) carries over from one line to the next and from igmp to igmp6. `GroupReader` keeps that
state for one listing; netstat kept it for the whole run, which garbles every `-c` iteration
after the first (docs/compat.md), so a new reader per listing is the fix.
"""

from __future__ import annotations

import _socket
import struct
from collections.abc import Callable, Iterable, Iterator

from nlstat import procio
from nlstat.cscan import c_int
from nlstat.model.groups import GroupMembership

Warn = Callable[[str], None]
_U32_LE = struct.Struct("<I")


def _scan_int(text: str, pos: int) -> tuple[int | None, int]:
    """sscanf("%d") at `pos`: blanks skipped, optional sign, digits."""
    end = len(text)
    while pos < end and text[pos].isspace():
        pos += 1
    start = pos
    if pos < end and text[pos] in "+-":
        pos += 1
    digits = pos
    while pos < end and "0" <= text[pos] <= "9":
        pos += 1
    if pos == digits:
        return None, start
    # glibc converts with strtol() (clamped to long), then %d stores an int: the low 32 bits.
    return c_int(int(text[start:pos])), pos


def _skip_blanks(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _scan_hex(text: str, pos: int, width: int) -> tuple[str, int]:
    """sscanf("%<width>[0-9A-Fa-f]") at `pos` (no blank skipping)."""
    start = pos
    while pos < len(text) and pos - start < width and text[pos] in "0123456789abcdefABCDEF":
        pos += 1
    return text[start:pos], pos


def _scan_word(text: str, pos: int, width: int) -> tuple[str, int]:
    """sscanf("%<width>s") at `pos`."""
    pos = _skip_blanks(text, pos)
    start = pos
    while pos < len(text) and pos - start < width and not text[pos].isspace():
        pos += 1
    return text[start:pos], pos


class GroupReader:
    """netstat's igmp_do_one() state machine, for one listing (igmp, then igmp6)."""

    def __init__(self, warn: Warn) -> None:
        self.warn = warn
        self.idx_flag = False
        self.igmp6_flag = False
        self.device = ""
        self.index = 0

    def line(self, number: int, line: str) -> GroupMembership | None:
        """One fgets() line (`number` counts from 0 in each file) -> a row to print, or None."""
        if number == 0:
            # igmp6 has no title line; the igmp title is recognised by its "Device" column.
            if "Device" not in line:
                self.igmp6_flag = True
            else:
                self.idx_flag = line.startswith("Idx")
                return None
        if self.igmp6_flag:
            return self._ipv6(number, line)
        return self._ipv4(number, line)

    def _ipv6(self, number: int, line: str) -> GroupMembership | None:
        # "%d %15s %64[0-9A-Fa-f] %d":
        # "4    eth0            ff020000000000000000000000000001     1 0000000C 0"
        index, pos = _scan_int(line, 0)
        device, pos = _scan_word(line, pos, 15) if index is not None else ("", pos)
        hexaddr, pos = _scan_hex(line, _skip_blanks(line, pos), 64) if device else ("", pos)
        users, pos = _scan_int(line, pos) if hexaddr else (None, pos)
        if index is None or users is None:
            self.warn(f"warning, got bogus igmp6 line {number}.")
            return None
        self.device = device
        # "%08X%08X%08X%08X", each word put in network order: the digits read as one number.
        raw = bytes.fromhex(hexaddr[:32].ljust(32, "0"))
        address = _socket.inet_ntop(_socket.AF_INET6, raw)
        return GroupMembership(family=_socket.AF_INET6, device=device, address=address,
                               users=users, ifindex=index)

    def _ipv4(self, number: int, line: str) -> GroupMembership | None:
        if not line.startswith("\t"):
            # A device line: "4\teth0      :     1      V3". The name is the 15 characters after
            # the index, cut at their last ':' (the kernel pads names to 10 before it).
            pos = 0
            index = 0
            if self.idx_flag:
                value, pos = _scan_int(line, 0)
                pos = _skip_blanks(line, pos)
                if value is None or pos >= len(line):
                    self.warn(f"warning, got bogus igmp line {number}.")
                    return None
                index = value
            if pos >= len(line):
                self.warn(f"warning, got bogus igmp line {number}.")
                return None
            window = line[pos : pos + 15]
            colon = window.rfind(":")
            if colon >= 0:
                window = window[:colon]
            self.device = window.rstrip(" ")
            self.index = index
            return None
        # A group line: "\t\t\t\t010000E0     1 0:00000000\t\t0" -> 224.0.0.1, 1 user.
        hexaddr, pos = _scan_hex(line, _skip_blanks(line, 0), 8)
        users, pos = _scan_int(line, pos) if hexaddr else (None, pos)
        if users is None:
            self.warn(f"warning, got bogus igmp line {number}.")
            return None
        address = _socket.inet_ntoa(_U32_LE.pack(int(hexaddr, 16)))
        return GroupMembership(family=_socket.AF_INET, device=self.device, address=address,
                               users=users, ifindex=self.index)

    def read(self, lines: Iterable[str]) -> Iterator[GroupMembership]:
        for number, text in enumerate(lines):
            row = self.line(number, text)
            if row is not None:
                yield row


def read_lines(path: str) -> list[str]:
    """The file's lines, newline kept (as fgets() gives them); raises OSError as open() does."""
    data = procio.read(path)
    parts = data.decode("utf-8", "surrogateescape").split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines
