"""/proc/net/{tcp,tcp6,udp,udp6,udplite,udplite6,raw,raw6,unix} -> the same records as sock_diag.

Read the way netstat reads them (netstat.c tcp_do_one, udp_do_one, raw_do_one, unix_do_one):
the title line skipped, fields split on blanks, hex where the kernel prints hex; a line that
does not parse is reported (netstat's warning plus file and line number) and skipped.
"""

from __future__ import annotations

import _socket
import re
import struct
from typing import BinaryIO, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple, TypeVar

from nlstat import procio
from nlstat.cscan import c_int, to_s32
from nlstat.model.sockets import InetSocket, UnixBatch, UnixKind, UnixSocket

Warn = Callable[[str], None]

# The 32 hex digits of an IPv6 address are four 32-bit words, each printed in host
# (little-endian) order: swap each word's bytes back to network order.
_FOUR_WORDS_LE = struct.Struct("<4I")
_FOUR_WORDS_BE = struct.Struct(">4I")


def ipv6_hex_to_text(hexaddr: str) -> str:
    """ "0000000000000000FFFF00000100007F" -> "::ffff:127.0.0.1"."""
    raw = _FOUR_WORDS_BE.pack(*_FOUR_WORDS_LE.unpack(bytes.fromhex(hexaddr)))
    return _socket.inet_ntop(_socket.AF_INET6, raw)


def ipv4_hex_to_text(hexaddr: str) -> str:
    """ "0100007F" -> "127.0.0.1" (a little-endian dump of the network-order address)."""
    return _socket.inet_ntoa(bytes.fromhex(hexaddr)[::-1])


def read_lines(path: str) -> List[str]:
    """All lines of a /proc file but the title; raises OSError as open() does."""
    data = procio.read(path)
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines[1:]


def _bogus(warn: Warn, what: str, path: str, number: int) -> None:
    # netstat's own words, then where: a malformed line is never a traceback.
    warn(f"warning, got bogus {what} line. ({path} line {number})")


class HexNumbers(Dict[str, int]):
    """Hex text -> int, remembered: most hex fields repeat (states, queues, timers, flags), and
    a dict hit costs a third of int(text, 16)."""

    def __missing__(self, text: str) -> int:
        value = self[text] = int(text, 16)
        return value


class CNumbers(Dict[str, int]):
    """A field's text -> the number netstat's sscanf conversion leaves (tcp_do_one's
    "%X %lX:%lX %X:%lX %lX %d %d %lu"), remembered per text. A crafted or garbled /proc then
    gives netstat's numbers, never one that indexes a table out of its range: `%X` keeps 32
    bits unsigned (a state, a timer kind), `%lX` 64 bits shown signed by its "%ld" (queues,
    retransmits), `%d` the low 32 bits signed (uid, timeout)."""

    def __init__(self, convert: Callable[[str], int]) -> None:
        super().__init__()
        self.convert = convert

    def __missing__(self, text: str) -> int:
        value = self[text] = self.convert(text)
        return value


def _hex_u32(text: str) -> int:
    return int(text, 16) & 0xFFFFFFFF


def _hex_s64(text: str) -> int:
    value = int(text, 16) & 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value >> 63 else value


def _hex_port(text: str) -> int:
    return int(text, 16) & 0xFFFF  # netstat passes a port through htons()


def _hex_ticks_ms(text: str) -> int:
    # `%lX` clock ticks (USER_HZ 100) -> ms, as sock_diag gives them
    return (int(text, 16) & 0xFFFFFFFFFFFFFFFF) * 10


def _hex_s32(text: str) -> int:
    return to_s32(int(text, 16))


def _dec_int(text: str) -> int:
    return c_int(int(text))


def parse_inet(
    lines: List[str],
    protocol: str,
    family: int,
    path: str = "",
    warn: Optional[Warn] = None,
    first_line: int = 2,
) -> List[InetSocket]:
    """Rows of /proc/net/{tcp,udp,udplite,raw}[6] -> InetSocket, in file order.

    "   0: 0100007F:1770 00000000:0000 0A 00000000:00000003 00:00000000 00000000  0 0 12345 ..."
    is tcp 127.0.0.1:6000 LISTEN, Recv-Q 3 (rx_queue), Send-Q 0 (tx_queue comes first).
    `first_line` is the file line number of lines[0], for warnings.
    """
    decode = ipv4_hex_to_text if family == _socket.AF_INET else ipv6_hex_to_text
    texts: Dict[str, str] = {}
    unsigned = CNumbers(_hex_u32)
    longs = CNumbers(_hex_s64)
    ints = CNumbers(_dec_int)
    timer_kinds = CNumbers(_hex_s32)
    ports = CNumbers(_hex_port)
    times = CNumbers(_hex_ticks_ms)
    what = "tcp" if protocol == "tcp" else ("raw" if protocol == "raw" else "udp")
    # The values are named as InetSocket's fields (tests/unit/test_layouts.py checks them).
    new = tuple.__new__
    inet_socket = InetSocket
    records: List[InetSocket] = []
    append = records.append
    for number, line in enumerate(lines, first_line):
        fields = line.split()
        try:
            if len(fields) < 10:
                raise ValueError("too few fields")
            local_hex, _, local_port = fields[1].partition(":")
            remote_hex, _, remote_port = fields[2].partition(":")
            send_q, _, recv_q = fields[4].partition(":")  # tx_queue:rx_queue
            timer, _, timer_ms = fields[5].partition(":")
            local_address = texts.get(local_hex)
            if local_address is None:
                local_address = texts[local_hex] = decode(local_hex)
            remote_address = texts.get(remote_hex)
            if remote_address is None:
                remote_address = texts[remote_hex] = decode(remote_hex)
            (_sl, _local, _remote, state, _queues, _timer, retransmits, uid, probes,
             inode) = fields[:10]
            # fmt: off
            # Remote ports hardly repeat: converted, not looked up.
            append(new(inet_socket, (
                protocol, family, unsigned[state], local_address, ports[local_port],
                remote_address, int(remote_port, 16) & 0xFFFF, longs[recv_q], longs[send_q],
                ints[uid], int(inode), timer_kinds[timer], times[timer_ms],
                longs[retransmits], ints[probes], 0, 0)))
            # fmt: on
        except (ValueError, IndexError, OSError):
            if warn is not None:
                _bogus(warn, what, path, number)
    return records


def parse_unix(
    lines: List[str], path: str = "", warn: Optional[Warn] = None, first_line: int = 2
) -> List[UnixSocket]:
    """Rows of /proc/net/unix -> UnixSocket, in file order.

    "0000000000000000: 00000002 00000000 00010000 0001 01 870859 /tmp/srv.sock": RefCount,
    Protocol, Flags, Type and St are hex, Inode decimal. The path is everything after the inode
    (netstat reads it with scanf's %s and so shows it only up to the first blank).
    """
    numbers = HexNumbers()
    # The values are named as UnixSocket's fields (tests/unit/test_layouts.py checks them).
    new = tuple.__new__
    unix_socket = UnixSocket
    records: List[UnixSocket] = []
    append = records.append
    for number, line in enumerate(lines, first_line):
        # At most 8 fields: the 8th is the whole path, blanks included (the formatter makes
        # netstat's cut; the record keeps what the kernel said).
        fields = line.split(None, 7)
        try:
            count = len(fields)
            if count < 7:
                raise ValueError("too few fields")
            _num, refcnt, protocol, flags, type, socket_state, inode = fields[:7]
            path_text = fields[7] if count > 7 else ""
            append(new(unix_socket, (
                numbers[type], numbers[socket_state], numbers[flags], int(inode), path_text,
                numbers[refcnt], numbers[protocol], 0, 0, 0, None)))
        except (ValueError, IndexError):
            if warn is not None:
                _bogus(warn, "unix", path, number)
    return records


# A /proc/net/unix line as unix_seq_show() prints it (net/unix/af_unix.c), with the newline
# before it: "%pK: %08X %08X %08X %04X %02X %5lu", then " " and the path when the socket is
# bound. Groups: the five hex fields as one text (checked by UNIX_FIELDS when first seen), the
# inode, the path. Starting at a newline lets the engine jump from line to line (a "^" anchor
# made it try every position). A line printed any other way (a
# path starting with a blank, a newline inside a path) does not match, and its chunk is read
# by parse_unix() instead, which also gives netstat's warning for a malformed line.
UNIX_LINE = re.compile(r"\n[0-9a-f]+: (.{34}) +([0-9]+)(?: (\S.*))?$", re.M)
UNIX_FIELDS = re.compile(r"[0-9A-F]{8} [0-9A-F]{8} [0-9A-F]{8} [0-9A-F]{4} [0-9A-F]{2}")


class UnixText:
    """Parses text_chunks() chunks of /proc/net/unix into UnixBatch columns (the rows
    parse_unix() gives, without an object per row).

    Most sockets share their five hex fields with many others, so those become one UnixKind
    per distinct text, and every per-row step is a C-level map over the expression's groups:
    less than half the time of records made line by line.
    """

    def __init__(self, path: str, warn: Optional[Warn] = None, unique: bool = False) -> None:
        self.path = path
        self.warn = warn
        # The hex fields' text -> its kind.
        self.kinds: Dict[str, UnixKind] = {}
        # With `unique`, the keys of the rows parsed so far (see unix_key()): each socket once.
        # A listing parses its chunks in order in one process (pipeline.handed_off()).
        self.seen: Optional[Set[str]] = set() if unique else None

    def batch(self, chunk: bytes) -> UnixBatch:
        # The chunk's first line is its line number, so every row has a newline before it.
        text = chunk.decode("utf-8", "surrogateescape")
        found = UNIX_LINE.findall(text)
        rows = text.count("\n") - text.endswith("\n")
        if len(found) != rows:
            return UnixBatch.of(self._by_line(text))
        if not found:
            return UnixBatch([], [], [])
        keys, inodes, paths = zip(*found)
        seen = self.seen
        if seen is not None and not _add_new(seen, inodes, "0"):
            return UnixBatch.of(self._by_line(text))
        kinds = self.kinds
        if not kinds.keys() >= set(keys):
            for key in set(keys) - kinds.keys():
                if not UNIX_FIELDS.fullmatch(key):
                    return UnixBatch.of(self._by_line(text))
                refcnt, protocol, flags, type, socket_state = (
                    int(f, 16) for f in key.split(" "))
                kinds[key] = UnixKind(type, socket_state, flags, refcnt, protocol)
        # The inodes stay the kernel's decimal texts ("%5lu" without its blanks).
        return UnixBatch(list(map(kinds.__getitem__, keys)), None, paths, inodes)

    def parse(self, chunk: bytes) -> List[UnixSocket]:
        return self.batch(chunk).records()

    def _by_line(self, text: str) -> List[UnixSocket]:
        head, _, body = text.partition("\n")
        first_line = int(head)
        lines = body.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        seen = self.seen
        if seen is None:
            return parse_unix(lines, self.path, self.warn, first_line)
        records: List[UnixSocket] = []
        for number, line in enumerate(lines, first_line):
            key = unix_key(line)
            if key is not None:
                if key in seen:
                    continue
                seen.add(key)
            records.extend(parse_unix([line], self.path, self.warn, number))
        return records


def open_proc(path: str) -> BinaryIO:
    """Open a /proc file, unbuffered; raises OSError as open() does (netstat's notices)."""
    return procio.open_binary(path)


def text_chunks(handle: BinaryIO, size: int = 1 << 16) -> Iterator[bytes]:
    """A /proc file's text without its title line, read as it is consumed, in chunks of whole
    lines (about `size` bytes), each starting with the file line number of its first line
    ("37\n...").

    Reading as we go lets the kernel print the next part of the file (its share of the work,
    as large as netstat's whole parse) while a formatting helper works on the last one. A
    read() of a seq_file gives one page at most, so pages are gathered: a chunk per page
    would cost its fixed overhead 16 times as often.
    """
    with handle:
        line = 1
        pending = b""
        while True:
            blocks = [pending]
            gathered = 0
            while gathered < size:
                block = handle.read(size)
                if not block:
                    break
                blocks.append(block)
                gathered += len(block)
            if not gathered:
                break
            data = b"".join(blocks)
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                pending = data
                continue
            pending = data[cut:]
            body = data[:cut]
            if line == 1:  # drop the title line
                title_end = body.find(b"\n") + 1
                body = body[title_end:]
                line = 2
                if not body:
                    continue
            yield b"%d\n" % line + body
            line += body.count(b"\n")
        if pending and line > 1:
            yield b"%d\n" % line + pending + b"\n"


def split_chunk(chunk: bytes) -> Tuple[int, List[str]]:
    """(first line number, lines) of a text_chunks() chunk."""
    text = chunk.decode("utf-8", "surrogateescape")
    head, _, body = text.partition("\n")
    lines = body.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return int(head), lines


def read_unix(path: str, warn: Optional[Warn] = None) -> Iterator[UnixSocket]:
    return iter(parse_unix(read_lines(path), path, warn))


# -- Each socket once (docs/compat.md, "Each socket is listed once") --------------------------
#
# A /proc/net table is printed a page per read(); between two reads the kernel finds its place
# again by counting entries (seq_file's position, tcp_seek_last_pos()'s offset in a bucket), so
# a socket added meanwhile ahead of that place shifts the rest and a row near the page edge is
# printed again (netstat prints it twice). Rows are known by their inode; a row without one
# (inode 0: TIME_WAIT, SYN_RECV; a unix embryo) by what names it: addresses, ports and state for
# inet, the kernel address for unix (%pK; all zeros when hidden, and such rows cannot be told
# apart, so all are kept). Only the keys are kept, never the rows.


def inet_keys(records: List[InetSocket]) -> bytes:
    """A blank-separated key per record, in order (made where the chunk was parsed, which may
    be a helper process; InetSeen.rows() reads them in the process that writes).

    A connected tcp socket is known by its addresses, ports and state, not its inode: one
    waiting in its listener's accept queue has inode 0 until accept() gives it one, which may
    happen between two reads (seen under churn: the same connection printed with inode 0, then
    with its inode). No two live tcp sockets share a 4-tuple and a state.
    """
    if records and records[0][0] == "tcp":
        return " ".join(
            [
                TUPLE_KEY % (r[3], r[4], r[5], r[6], r[2]) if r[6] or not r[10] else str(r[10])
                for r in records
            ]
        ).encode()
    inodes = [record[10] for record in records]  # InetSocket.inode
    if 0 in inodes:
        return " ".join(
            [str(r[10]) if r[10] else TUPLE_KEY % (r[3], r[4], r[5], r[6], r[2]) for r in records]
        ).encode()
    return " ".join(map(str, inodes)).encode()


# local address, port, remote address, port, state: "@127.0.0.1:7001>127.0.0.1:40260/1"
TUPLE_KEY = "@%s:%d>%s:%d/%d"


_Key = TypeVar("_Key", str, bytes)


def _add_new(seen: Set[_Key], keys: Sequence[_Key], zero: _Key) -> bool:
    """Add the keys to `seen` if none is there yet nor twice in `keys` nor equal to `zero`
    (a key that names nothing); else leave `seen` as it was and return False. Two passes over
    the keys where nearly every chunk is new: 100k unix sockets, ~15 ms."""
    if not seen.isdisjoint(keys):
        return False
    size = len(seen)
    seen.update(keys)
    if len(seen) - size == len(keys) and zero not in seen:
        return True
    seen.difference_update(keys)
    return False


class InetSeen:
    """The keys of the rows written so far for one table."""

    def __init__(self) -> None:
        self.seen: Set[bytes] = set()

    def rows(self, keys: bytes, text: bytes) -> bytes:
        """The rendered rows of a chunk (one line per key) less those written before."""
        words = keys.split()
        seen = self.seen
        if _add_new(seen, words, b""):
            return text
        lines = text.splitlines(keepends=True)
        if len(lines) != len(words):  # not one row per socket: nothing can be told
            seen.update(words)
            return text
        kept = []
        for word, line in zip(words, lines):
            if word not in seen:
                seen.add(word)
                kept.append(line)
        return b"".join(kept)


UNIX_KEY = re.compile(r"([0-9a-f]+): .{34} +([0-9]+)")


def unix_key(line: str) -> Optional[str]:
    """The key of a /proc/net/unix row; None when it has none (hidden address, inode 0) or is
    malformed (parse_unix() warns about it)."""
    match = UNIX_KEY.match(line)
    if match is None:
        return None
    address, inode = match.groups()
    if inode != "0":
        return inode
    return "@" + address if address.strip("0") else None
