"""A raw netlink socket that sends one request and hands back the kernel's answer as raw chunks.

Decoders walk the chunks themselves (see sockdiag.py) so that a hot dump is walked once; the
chunks are the kernel's bytes untouched, which is what --save/--load will record and replay.
"""

from __future__ import annotations

import _socket
import errno as errno_mod
import os
import struct
import sys
from typing import Callable, Iterable, Iterator, List, Optional, TypeVar

from nlstat.errors import BackendUnavailable
from nlstat.kernel.netlink import (
    NLA_TYPE_MASK,
    NLATTR,
    NLM_F_DUMP,
    NLM_F_DUMP_INTR,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSGERR,
    NLMSGHDR,
)

# The kernel sizes each dump skb from the largest recvmsg() buffer it has seen, capped at
# 32 KiB (net/netlink/af_netlink.c, max_recvmsg_len); a bigger buffer gains nothing.
RECV_SIZE = 32768
# A bigger socket buffer lets the kernel queue several skbs while we format.
SO_RCVBUF_SIZE = 1 << 20
# Each recv() makes the kernel fill the next skb at once, so a silent socket means something
# is wrong: never hang a scripted snapshot on it.
RECV_TIMEOUT = struct.pack("=qq", 30, 0)
# A dump that ran while its table changed is flagged NLM_F_DUMP_INTR; it is asked for again,
# this many times in all (dump_all(), consistent()), then kept and said to be inconsistent.
DUMP_ATTEMPTS = 3

# The dumps of this run that stayed flagged NLM_F_DUMP_INTR after DUMP_ATTEMPTS tries, by name
# ("IPv4 routes", "links"): the hook for output formats that can say so (JSON's
# "inconsistent"); the text listing says it once on stderr (see mark_inconsistent()).
inconsistent: List[str] = []
# Every such mark, a repeat included (a -c pass may mark a table again): a JSON document
# takes the marks made since it began (modes/structured.py dump_marks()).
marks: List[str] = []


def _to_stderr(line: str) -> None:
    sys.stderr.write(line + "\n")


# Where mark_inconsistent() says it (a test may catch it here).
notify: Callable[[str], None] = _to_stderr
# What opens the netlink socket: a test substitutes a stand-in that fails on cue
# (tests/faults.py); nothing else changes it.
socket_factory: Callable[[int, int, int], _socket.socket] = _socket.socket


def mark_inconsistent(what: str) -> None:
    """A dump stayed interrupted: keep its last answer, remember it and say so once."""
    marks.append(what)
    if what not in inconsistent:
        inconsistent.append(what)
        notify(
            f"nlstat: the kernel's {what} changed during every one of {DUMP_ATTEMPTS} dumps;"
            " this snapshot may be inconsistent"
        )


class DumpInterrupted(Exception):
    """A dump's answer carried NLM_F_DUMP_INTR: what was built from it must be thrown away and
    the dump asked for again (see consistent())."""


_T = TypeVar("_T")


def consistent(read: Callable[[bool], _T]) -> _T:
    """read(last) up to DUMP_ATTEMPTS times while it raises DumpInterrupted; on the last try
    `last` is True and read() keeps an interrupted answer (checked() marks it instead)."""
    for _attempt in range(DUMP_ATTEMPTS - 1):
        try:
            return read(False)
        except DumpInterrupted:
            continue
    return read(True)


def checked(chunks: Iterable[bytes], what: str, last: bool) -> Iterator[bytes]:
    """The chunks of one dump, passed on as they come (so a consumer may stream them to a
    helper process), each header read here in the reading process; when the dump has ended
    flagged NLM_F_DUMP_INTR, DumpInterrupted is raised (or, if `last`, the dump is marked
    inconsistent). Consumers must hold their output until the iteration ends."""
    interrupted = False
    for chunk in chunks:
        if not interrupted and dump_interrupted((chunk,)):
            interrupted = True
        yield chunk
        if dump_ended(chunk):
            break
    if interrupted:
        if not last:
            raise DumpInterrupted(what)
        mark_inconsistent(what)


def nlmsg_error(buf: bytes, offset: int) -> int:
    """The positive errno carried by an NLMSG_ERROR message at `offset` (0 is an ACK).

    EBADMSG when the buffer ends before the errno: a damaged answer or file is an error of
    its own, never a struct.error."""
    if offset + DONE_SIZE > len(buf):
        return errno_mod.EBADMSG
    error: int = NLMSGERR.unpack_from(buf, offset + NLMSGHDR.size)[0]
    return -error


# The first 6 bytes of an nlmsghdr: length and type.
LENGTH_TYPE = NLMSGHDR.head("nlmsg_type")
DONE_SIZE = NLMSGHDR.size + NLMSGERR.size


def dump_ended(chunk: bytes) -> bool:
    """Does this chunk end its dump?

    The kernel puts NLMSG_DONE last in the last chunk (netlink_dump()), and without
    NETLINK_EXT_ACK, which nlstat never turns on, it is exactly 20 bytes: the chunk's tail says
    it, with no walk over the messages. A refused dump is one NLMSG_ERROR, first in its chunk.
    """
    size = len(chunk)
    if size < NLMSGHDR.size:
        return True  # nothing sensible can follow a runt
    if LENGTH_TYPE.unpack_from(chunk)[1] in (NLMSG_DONE, NLMSG_ERROR):
        return True  # a refusal, or an empty dump's bare NLMSG_DONE
    return size >= DONE_SIZE and (
        LENGTH_TYPE.unpack_from(chunk, size - DONE_SIZE) == (DONE_SIZE, NLMSG_DONE)
    )


def dump_interrupted(chunks: Iterable[bytes]) -> bool:
    """Does any message of a dump's answer carry NLM_F_DUMP_INTR (its table changed while the
    kernel walked it)? NLMSG_DONE counts: netlink_dump() flags it too, when the change came
    after the last record, so this reads every header rather than going through messages()."""
    unpack = NLMSGHDR.unpack_from
    for buf in chunks:
        offset = 0
        end = len(buf)
        while offset + NLMSGHDR.size <= end:
            length, _msg_type, flags, _seq, _pid = unpack(buf, offset)
            if flags & NLM_F_DUMP_INTR:
                return True
            if length < NLMSGHDR.size:
                break
            offset += (length + 3) & ~3
    return False


def iter_attrs(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """Yield (type, payload start, payload end) for each netlink attribute in buf[start:end].

    The walk ends at an attribute shorter than its header or running past `end` (the kernel's
    nla_ok()), and never reads past the buffer: every decoder's one guard against damaged
    attribute lengths."""
    unpack = NLATTR.unpack_from
    end = min(end, len(buf))
    while start + 4 <= end:
        length, kind = unpack(buf, start)
        if length < 4 or start + length > end:
            return
        yield kind & NLA_TYPE_MASK, start + 4, start + length
        start += (length + 3) & ~3


class NetlinkSocket:
    """One NETLINK_* socket, opened lazily and closed with the object (or `with`)."""

    def __init__(self, protocol: int) -> None:
        self.protocol = protocol
        self.seq = 0
        try:
            self.sock = socket_factory(
                _socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, protocol
            )
        except OSError as err:
            raise BackendUnavailable(
                f"netlink protocol {protocol}: {err.strerror}", err.errno or 0
            ) from err
        try:
            self.sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF, SO_RCVBUF_SIZE)
            self.sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVTIMEO, RECV_TIMEOUT)
            self.sock.bind((0, 0))
        except OSError as err:
            self.sock.close()
            raise BackendUnavailable(f"netlink bind: {err.strerror}", err.errno or 0) from err

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> NetlinkSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, msg_type: int, payload: bytes, flags: int = NLM_F_REQUEST | NLM_F_DUMP) -> int:
        """Send one request; return its sequence number."""
        self.seq += 1
        header = NLMSGHDR.pack(NLMSGHDR.size + len(payload), msg_type, flags, self.seq, 0)
        try:
            self.sock.sendto(header + payload, (0, 0))
        except OSError as err:
            raise BackendUnavailable(f"netlink send: {err.strerror}", err.errno or 0) from err
        return self.seq

    def chunks(self) -> Iterator[bytes]:
        """Everything the kernel sends, one recv() at a time; the decoder decides when to stop."""
        recv = self.sock.recv
        while True:
            try:
                chunk = recv(RECV_SIZE)
            except InterruptedError:
                continue
            except OSError as err:
                if err.errno in (errno_mod.EAGAIN, errno_mod.EWOULDBLOCK):
                    raise BackendUnavailable("netlink: no answer from the kernel", 0) from err
                if err.errno == errno_mod.ENOBUFS:
                    raise BackendUnavailable("netlink receive overrun", err.errno or 0) from err
                raise BackendUnavailable(
                    f"netlink receive: {err.strerror}", err.errno or 0
                ) from err
            if not chunk:
                return
            yield chunk

    def dump(self, msg_type: int, payload: bytes) -> Iterator[bytes]:
        """Send a dump request and return the raw chunks of its answer."""
        self.send(msg_type, payload)
        return self.chunks()

    def dump_all(self, msg_type: int, payload: bytes, what: str = "") -> list[bytes]:
        """The whole answer to one dump request, up to the chunk that ends it (recv() would
        block after it), for low-volume dumps: a few chunks per host. An answer flagged
        NLM_F_DUMP_INTR is asked for again, up to DUMP_ATTEMPTS times; the last one is kept
        and, when still flagged, marked inconsistent under `what`."""

        def read(last: bool) -> list[bytes]:
            return list(checked(self.dump(msg_type, payload), what or f"dump {msg_type}", last))

        return consistent(read)


def messages(
    chunks: Iterable[bytes], family_header: int = 0
) -> Iterator[tuple[bytes, int, int, int, int]]:
    """Generic walker for low-volume dumps: yield (buf, offset, length, type, flags) per message.

    Stops at NLMSG_DONE, and at a message cut short (shorter than its header, or running past
    the end of its chunk); raises BackendUnavailable on NLMSG_ERROR (EBADMSG when it is too
    short to hold its errno). Every yielded message lies within its chunk and holds at least
    `family_header` bytes after its nlmsghdr (ifinfomsg, ifaddrmsg, ...): a shorter one is
    skipped, as the kernel's own parsers (nlmsg_parse) refuse it. Hot paths inline this loop.
    """
    unpack = NLMSGHDR.unpack_from
    header = NLMSGHDR.size
    shortest = header + family_header
    for buf in chunks:
        offset = 0
        end = len(buf)
        while offset + header <= end:
            length, msg_type, flags, _seq, _pid = unpack(buf, offset)
            if length < header or offset + length > end:
                return
            if msg_type == NLMSG_DONE:
                # A dump that failed before its first record ends with an errno in DONE.
                code = nlmsg_error(buf, offset) if length >= DONE_SIZE else 0
                if code:
                    raise BackendUnavailable(f"netlink dump: {os.strerror(code)}", code)
                return
            if msg_type == NLMSG_ERROR:
                if length < DONE_SIZE:  # not even the errno that starts struct nlmsgerr
                    raise BackendUnavailable("netlink: error message cut short", errno_mod.EBADMSG)
                code = nlmsg_error(buf, offset)
                if code:
                    raise BackendUnavailable(f"netlink: {os.strerror(code)}", code)
            elif length >= shortest:
                yield buf, offset, length, msg_type, flags
            offset += (length + 3) & ~3


def read_chunks(path: str, limit: Optional[int] = None) -> Iterator[bytes]:
    """Chunks from a file of concatenated netlink messages (captured answers, tests, --load)."""
    with open(path, "rb") as handle:
        data = handle.read() if limit is None else handle.read(limit)
    yield data
