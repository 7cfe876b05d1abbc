"""/proc/net/{tcp,tcp6,udp,udp6,udplite,udplite6,raw,raw6,unix} -> the same records as sock_diag.

Read the way netstat reads them (netstat.c tcp_do_one, udp_do_one, raw_do_one, unix_do_one):
the title line skipped, fields split on blanks, hex where the kernel prints hex. A line that
does not split that way is read again as netstat's sscanf() reads it (`_scan_damaged`), and
if that falls short too it is reported (netstat's warning plus file and line number) and
skipped.
"""

from __future__ import annotations

import _socket
import re
import struct
from typing import BinaryIO, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple, TypeVar

from nlstat import procio
from nlstat.cscan import c_int, to_s32
from nlstat.model.build import specialised, values_of
from nlstat.model.sockets import InetSocket, UnixBatch, UnixKind, UnixSocket

Warn = Callable[[str], None]

# The 32 hex digits of an IPv6 address are four 32-bit words, each printed in host
# (little-endian) order: swap each word's bytes back to network order.
_FOUR_WORDS_LE = struct.Struct("<4I")
_FOUR_WORDS_BE = struct.Struct(">4I")


def ipv6_hex_to_text(hexaddr: str) -> str:
    """ "0000000000000000FFFF00000100007F" -> "::ffff:127.0.0.1"."""
    if len(hexaddr) != 32:
        # A damaged line: a ValueError makes it netstat's "bogus" line (not a struct.error).
        raise ValueError(f"IPv6 address of {len(hexaddr)} hex digits")
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
    retransmits), `%d` the low 32 bits signed (timeout). The uid stays the kernel's unsigned
    32-bit value, as sock_diag gives it (3000000000, not -1294967296): netstat's `%d` of it is
    applied where it is printed (resolve.Names.user)."""

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


def _dec_uid(text: str) -> int:
    return c_int(int(text)) & 0xFFFFFFFF


# A damaged line, read as netstat.c tcp_do_one()/udp_do_one()/raw_do_one() read every line:
# sscanf("%d: %64[0-9A-Fa-f]:%X %64[0-9A-Fa-f]:%X %X %lX:%lX %X:%lX %lX %d %d %lu"). One
# pattern per conversion, each with the literal text before it; scanning stops at the first
# that does not match, and the conversions after it keep the previous line's values (netstat's
# locals sit in the same stack slots on every call; seen on net-tools 2.10).
_HEX = r"([+-]?(?:0[xX](?=[0-9A-Fa-f]))?[0-9A-Fa-f]+)"
_DEC = r"([+-]?[0-9]+)"
_CONVERSIONS = tuple(re.compile(pattern) for pattern in (
    r"\s*" + _DEC,  # sl
    r":\s*([0-9A-Fa-f]{1,64})",  # local address
    r":\s*" + _HEX,  # local port
    r"\s*([0-9A-Fa-f]{1,64})",  # remote address
    r":\s*" + _HEX,  # remote port
    r"\s*" + _HEX,  # state
    r"\s*" + _HEX,  # tx_queue
    r":\s*" + _HEX,  # rx_queue
    r"\s*" + _HEX,  # timer kind
    r":\s*" + _HEX,  # timer ticks
    r"\s*" + _HEX,  # retransmits
    r"\s*" + _DEC,  # uid
    r"\s*" + _DEC,  # timeout (probes)
    r"\s*" + _DEC,  # inode (%lu)
))
# netstat's "if (num < 11)" in tcp_do_one, "if (num < 10)" in udp_do_one and raw_do_one.
_FEWEST_CONVERSIONS = {"tcp": 11, "udp": 10, "raw": 10}


def _scan_damaged(line: str, protocol: str, family: int,
                  previous: Optional[InetSocket]) -> Optional[InetSocket]:
    """The record netstat prints for a line the fast path refused, or None (a bogus line)."""
    texts: List[str] = []
    position = 0
    for pattern in _CONVERSIONS:
        found = pattern.match(line, position)
        if found is None:
            break
        texts.append(found.group(1))
        position = found.end()
    what = "tcp" if protocol == "tcp" else ("raw" if protocol == "raw" else "udp")
    if len(texts) < _FEWEST_CONVERSIONS[what]:
        return None
    # netstat picks the family by the address's length (strlen > 8: IPv6); only the length
    # this file's family prints is followed here, any other stays a bogus line.
    for address in (texts[1], texts[3]):
        if (len(address) > 8) if family == _socket.AF_INET else (len(address) != 32):
            return None
    if family == _socket.AF_INET:
        local = _socket.inet_ntoa(struct.pack("=I", int(texts[1], 16)))
        remote = _socket.inet_ntoa(struct.pack("=I", int(texts[3], 16)))
    else:
        local, remote = ipv6_hex_to_text(texts[1]), ipv6_hex_to_text(texts[3])
    base = previous or InetSocket(
        protocol=protocol, family=family, state=0, local_address="", local_port=0,
        remote_address="", remote_port=0, recv_q=0, send_q=0, uid=0, inode=0)
    count = len(texts)
    return base._replace(
        protocol=protocol, family=family, state=_hex_u32(texts[5]), local_address=local,
        local_port=_hex_port(texts[2]), remote_address=remote, remote_port=_hex_port(texts[4]),
        recv_q=_hex_s64(texts[7]), send_q=_hex_s64(texts[6]), timer=_hex_s32(texts[8]),
        timer_ms=_hex_ticks_ms(texts[9]),
        retransmits=_hex_s64(texts[10]) if count > 10 else base.retransmits,
        uid=_dec_uid(texts[11]) if count > 11 else base.uid,
        probes=_dec_int(texts[12]) if count > 12 else base.probes,
        # netstat repeats the previous line's inode; 0 keeps this row from being taken for
        # that socket listed twice (docs/compat.md, "damaged /proc lines").
        inode=int(texts[13]) % (1 << 64) if count > 13 else 0,
    )


@specialised
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
    uids = CNumbers(_dec_uid)
    timer_kinds = CNumbers(_hex_s32)
    ports = CNumbers(_hex_port)
    times = CNumbers(_hex_ticks_ms)
    what = "tcp" if protocol == "tcp" else ("raw" if protocol == "raw" else "udp")
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
            append(new(inet_socket, values_of(
                InetSocket, protocol=protocol, family=family, state=unsigned[state],
                local_address=local_address, local_port=ports[local_port],
                remote_address=remote_address, remote_port=int(remote_port, 16) & 0xFFFF,
                recv_q=longs[recv_q], send_q=longs[send_q], uid=uids[uid], inode=int(inode),
                timer=timer_kinds[timer], timer_ms=times[timer_ms],
                retransmits=longs[retransmits], probes=ints[probes])))
            # fmt: on
        except (ValueError, IndexError, OSError):
            try:
                scanned = _scan_damaged(line, protocol, family, records[-1] if records else None)
            except (ValueError, OSError, struct.error):
                scanned = None
            if scanned is not None:
                append(scanned)
            elif warn is not None:
                _bogus(warn, what, path, number)
    return records


@specialised
def parse_unix(
    lines: List[str], path: str = "", warn: Optional[Warn] = None, first_line: int = 2
) -> List[UnixSocket]:
    """Rows of /proc/net/unix -> UnixSocket, in file order.

    "0000000000000000: 00000002 00000000 00010000 0001 01 870859 /tmp/srv.sock": RefCount,
    Protocol, Flags, Type and St are hex, Inode decimal. The path is everything after the inode
    (netstat reads it with scanf's %s and so shows it only up to the first blank).
    """
    numbers = HexNumbers()
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
            append(new(unix_socket, values_of(
                UnixSocket, type=numbers[type], socket_state=numbers[socket_state],
                flags=numbers[flags], inode=int(inode), path=path_text, refcnt=numbers[refcnt],
                protocol=numbers[protocol])))
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
                kinds[key] = UnixKind(type=type, socket_state=socket_state, flags=flags,
                                      refcnt=refcnt, protocol=protocol)
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


def _tuple_key(r: InetSocket) -> str:
    return TUPLE_KEY % (r.local_address, r.local_port, r.remote_address, r.remote_port, r.state)


def inet_keys(records: List[InetSocket]) -> bytes:
    """A blank-separated key per record, in order (made where the chunk was parsed, which may
    be a helper process; InetSeen.rows() reads them in the process that writes).

    A connected tcp socket is known by its addresses, ports and state, not its inode: one
    waiting in its listener's accept queue has inode 0 until accept() gives it one, which may
    happen between two reads (seen under churn: the same connection printed with inode 0, then
    with its inode). No two live tcp sockets share a 4-tuple and a state.
    """
    if records and records[0].protocol == "tcp":
        return " ".join(
            [
                _tuple_key(r) if r.remote_port or not r.inode else str(r.inode)
                for r in records
            ]
        ).encode()
    inodes = [record.inode for record in records]
    if 0 in inodes:
        return " ".join([str(r.inode) if r.inode else _tuple_key(r) for r in records]).encode()
    return " ".join(map(str, inodes)).encode()


# local address, port, remote address, port, state: "@127.0.0.1:7001>127.0.0.1:40260/1"
TUPLE_KEY = "@%s:%d>%s:%d/%d"


def inet_key(record: InetSocket) -> str:
    """The key inet_keys() gives one record."""
    if record.protocol == "tcp":
        return _tuple_key(record) if record.remote_port or not record.inode else str(record.inode)
    return str(record.inode) if record.inode else _tuple_key(record)


class InetOnce:
    """Each socket of one /proc table once, for the outputs that take records rather than
    rendered rows (JSON, the API, --count, --watch): the same keys as InetSeen's, since the
    table is read in pieces while the kernel's hash changes (docs/reliability.md)."""

    def __init__(self) -> None:
        self.seen: Set[str] = set()

    def records(self, records: List[InetSocket]) -> List[InetSocket]:
        keys = [inet_key(record) for record in records]
        seen = self.seen
        if _add_new(seen, keys, ""):
            return records
        return _only_new(seen, keys, records)


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


_Item = TypeVar("_Item")


def _only_new(seen: Set[_Key], keys: Sequence[_Key], items: Sequence[_Item]) -> List[_Item]:
    """The items whose key is not in `seen` yet (the first of a key repeated in `keys`), their
    keys added."""
    kept = []
    for key, item in zip(keys, items):
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return kept


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
        return b"".join(_only_new(seen, words, lines))


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
