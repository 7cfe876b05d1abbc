"""Formats a long kernel dump on two cores while keeping its order (used for big socket tables).

One Python process decodes and formats about 800k sockets a second; netstat's C is faster
than that. A dump, though, arrives as independent chunks (one recv() each, whole messages
only), so after a few chunks the listing forks one helper, gives it its share of the chunks
through a pipe, formats the rest itself, and writes the results strictly in chunk order
(ordered_map); or gives it every chunk and lets it write them itself (handed_off). The
helper inherits the renderer (name caches, the -p map) through fork, so nothing is set up
twice. Small dumps never fork: the warm-up chunks cover them.
"""

from __future__ import annotations

import os
import select
import struct
from collections import deque
from typing import Callable, Deque, Iterable, Iterator, Optional, Protocol, Union

from nlstat.errors import BackendUnavailable, NlstatError

# Chunks formatted in the parent before forking: a fork (about 2 ms) pays from about 1,000 rows.
WARMUP_CHUNKS = 4
# Chunks buffered (sent or formatted, not yet written) before the parent waits for the helper.
MAX_SLOTS = 4
# Frames on the pipes: a u32 length, then the bytes. ERROR_FRAME carries the helper's error,
# REFUSED_FRAME a BackendUnavailable (its errno, then its text): the caller falls back on it
# as if the parent had raised it.
FRAME = struct.Struct("=I")
STOP_FRAME = 0
ERROR_FRAME = 0xFFFFFFFF
REFUSED_FRAME = 0xFFFFFFFE
ERRNO = struct.Struct("=i")
# fcntl F_SETPIPE_SZ: 1 MiB pipes hold several chunks, so neither side waits on the other's
# reads while both are busy formatting.
F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20

Work = Callable[[bytes], bytes]
# SIGPIPE's number (13 on Linux), kept here so that `signal` is imported by the helper only.
SIGPIPE = 13


class Sink(Protocol):
    """Where a helper writes its results itself: the run's binary stdout."""

    def write(self, data: bytes) -> object: ...

    def flush(self) -> object: ...


def _write_all(fd: int, data: Union[bytes, memoryview]) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exact(fd: int, size: int) -> bytes:
    parts = []
    while size:
        part = os.read(fd, min(size, PIPE_SIZE))
        if not part:
            raise EOFError
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


def _grow(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass  # a smaller pipe only means more waiting, never a wrong order


def _helper(work: Work, chunks_in: int, results_out: int, sink: Optional[Sink]) -> None:
    """The forked helper: format each chunk it is sent, in order, and send the bytes back, or
    give them to `sink` (then, at the end, flush it and say so with a STOP_FRAME)."""
    # Ctrl-C reaches the whole process group: the helper dies quietly, the parent reports.
    # A reader that left (`| head`) kills it with SIGPIPE, as it would kill netstat.
    import signal  # the helper only: not a start-up cost

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        while True:
            (size,) = FRAME.unpack(_read_exact(chunks_in, FRAME.size))
            if size == STOP_FRAME:
                if sink is not None:
                    sink.flush()
                    _write_all(results_out, FRAME.pack(STOP_FRAME))
                return
            result = work(_read_exact(chunks_in, size))
            if sink is None:
                _write_all(results_out, FRAME.pack(len(result) + 1) + b"\0" + result)
            else:
                sink.write(result)
    except EOFError:
        return
    except BackendUnavailable as err:
        message = str(err).encode("utf-8", "replace")
        try:
            _write_all(
                results_out,
                FRAME.pack(REFUSED_FRAME) + ERRNO.pack(err.errno)
                + FRAME.pack(len(message)) + message,
            )
        except OSError:
            pass
    except BaseException as err:  # noqa: BLE001 - reported by the parent, never a traceback
        message = f"{type(err).__name__}: {err}".encode("utf-8", "replace")
        try:
            _write_all(results_out, FRAME.pack(ERROR_FRAME) + FRAME.pack(len(message)) + message)
        except OSError:
            pass


class _Helper:
    def __init__(self, work: Work, sink: Optional[Sink] = None) -> None:
        chunks_read, self.chunks_write = os.pipe()
        self.results_read, results_write = os.pipe()
        for fd in (self.chunks_write, results_write):
            _grow(fd)
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - runs in the child
            try:
                os.close(self.chunks_write)
                os.close(self.results_read)
                _helper(work, chunks_read, results_write, sink)
            finally:
                os._exit(0)  # never return into the parent's code (no atexit, no flushes)
        os.close(chunks_read)
        os.close(results_write)
        self.status: Optional[int] = None  # the wait status, once it has been reaped

    def send(self, chunk: bytes) -> None:
        _write_all(self.chunks_write, FRAME.pack(len(chunk)) + chunk)

    def ready(self) -> bool:
        """Has the helper finished a chunk? (never blocks)"""
        return bool(select.select([self.results_read], [], [], 0)[0])

    def result(self) -> bytes:
        try:
            (size,) = FRAME.unpack(_read_exact(self.results_read, FRAME.size))
            if size == STOP_FRAME:
                return b""
            if size == REFUSED_FRAME:
                (code,) = ERRNO.unpack(_read_exact(self.results_read, ERRNO.size))
                (length,) = FRAME.unpack(_read_exact(self.results_read, FRAME.size))
                message = _read_exact(self.results_read, length).decode("utf-8", "replace")
                raise BackendUnavailable(message, code)
            if size == ERROR_FRAME:
                (length,) = FRAME.unpack(_read_exact(self.results_read, FRAME.size))
                message = _read_exact(self.results_read, length).decode("utf-8", "replace")
                raise NlstatError(f"formatting helper failed: {message}")
            return _read_exact(self.results_read, size)[1:]
        except EOFError:
            raise NlstatError("formatting helper ended unexpectedly") from None

    def finish(self) -> None:
        """Tell a helper with a sink that the chunks have ended; return once it has written
        and flushed everything. A helper killed by SIGPIPE (the reader left) is a broken pipe
        here too."""
        try:
            _write_all(self.chunks_write, FRAME.pack(STOP_FRAME))
            if self.result() != b"":
                raise NlstatError("formatting helper sent a result it should have written")
        except (BrokenPipeError, NlstatError):
            self.close()
            status = self.status
            if status is not None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == SIGPIPE:
                raise BrokenPipeError from None
            raise

    def close(self) -> None:
        try:
            _write_all(self.chunks_write, FRAME.pack(STOP_FRAME))
        except OSError:
            pass
        for fd in (self.chunks_write, self.results_read):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.status is None:
            try:
                self.status = os.waitpid(self.pid, 0)[1]
            except OSError:
                pass


def _never_last(chunk: bytes) -> bool:
    return False


def ordered_map(
    chunks: Iterable[bytes],
    work: Work,
    is_last: Callable[[bytes], bool] = _never_last,
    parallel: bool = True,
    period: int = 3,
    backlog: Optional[int] = None,
) -> Iterator[bytes]:
    """work(chunk) for every chunk, in order, formatted on two cores once the dump is long.

    `is_last(chunk)` tells the parent that a chunk ends the dump, so it stops receiving from a
    source that would not stop by itself (a netlink socket); by default the source's end is
    the end.
    The helper formats `period - 1` chunks of every `period`: the parent also pays for
    fetching them (the kernel builds a dump inside the parent's recv()), so it keeps the
    smaller share. With `backlog`, the share adapts instead: a chunk goes to the helper while
    fewer than `backlog` of its results are outstanding, else the parent formats it, so the
    faster core does more (on a shared host one of them is often slower, or just woken).
    """
    source = iter(chunks)
    for _ in range(WARMUP_CHUNKS):
        chunk = next(source, None)
        if chunk is None:
            return
        yield work(chunk)
        if is_last(chunk):
            return
    helper: Optional[_Helper] = None
    if parallel and (os.cpu_count() or 1) > 1:
        try:
            helper = _Helper(work)
        except OSError:
            helper = None
    if helper is None:
        for chunk in source:
            yield work(chunk)
            if is_last(chunk):
                return
        return
    # Each slot is the parent's own bytes, or None for "the helper's next result".
    slots: Deque[Optional[bytes]] = deque()
    index = 0
    outstanding = 0  # chunks sent to the helper whose results are not collected yet
    try:
        for chunk in source:
            last = is_last(chunk)
            to_helper = (outstanding < backlog) if backlog else (index % period != period - 1)
            if to_helper:
                helper.send(chunk)
                slots.append(None)
                outstanding += 1
            else:
                slots.append(work(chunk))
            index += 1
            while slots:
                head = slots[0]
                if head is None and not last and len(slots) <= MAX_SLOTS and not helper.ready():
                    break  # go and receive the next chunk rather than wait
                slots.popleft()
                if head is None:
                    outstanding -= 1
                    yield helper.result()
                else:
                    yield head
            if last:
                break
        while slots:
            head = slots.popleft()
            yield helper.result() if head is None else head
    finally:
        helper.close()


def handed_off(chunks: Iterable[bytes], work: Work, sink: Sink) -> None:
    """sink.write(work(chunk)) for every chunk, in order; once the source is long, in a helper
    that writes the results itself, while this process only reads and forwards the chunks.

    For a source that costs more to read than to format: printing /proc/net/unix costs the
    kernel 0.75 us a socket, parsing and formatting it 0.55 us (100k sockets: 0.164 s with the
    reader formatting a quarter and writing everything, 0.14 s so). The sink is flushed before
    the fork, so that nothing buffered is written twice, and this returns once the helper has
    written and flushed its last result.
    """
    source = iter(chunks)
    for _ in range(WARMUP_CHUNKS):
        chunk = next(source, None)
        if chunk is None:
            return
        sink.write(work(chunk))
    helper: Optional[_Helper] = None
    if (os.cpu_count() or 1) > 1:
        sink.flush()
        try:
            helper = _Helper(work, sink)
        except OSError:
            helper = None
    if helper is None:
        for chunk in source:
            sink.write(work(chunk))
        return
    try:
        for chunk in source:
            helper.send(chunk)
            if helper.ready():
                helper.result()  # only an error or a refusal comes back early: raise it
        helper.finish()
    finally:
        helper.close()
