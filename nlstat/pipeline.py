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

import itertools
import os
import select
import struct
from collections import deque
from typing import Callable, Deque, Iterable, Iterator, NamedTuple, Optional, Protocol, Union

from nlstat.errors import BackendUnavailable, HelperDied, NlstatError, OutputError

# Chunks formatted in the parent before forking: a fork (about 2 ms) pays from about 1,000 rows.
WARMUP_CHUNKS = 4
# Chunks buffered (sent or formatted, not yet written) before the parent waits for the helper.
MAX_SLOTS = 4
# Frames on the pipes: a u32 length, then the bytes. ERROR_FRAME carries the helper's error,
# REFUSED_FRAME a BackendUnavailable (its errno, then its text): the caller falls back on it
# as if the parent had raised it. OUTPUT_FRAME (the same layout) carries an OutputError: a
# stdout the helper could not write is the write error it would have been in the parent.
FRAME = struct.Struct("=I")
STOP_FRAME = 0
ERROR_FRAME = 0xFFFFFFFF
REFUSED_FRAME = 0xFFFFFFFE
OUTPUT_FRAME = 0xFFFFFFFD
ERRNO = struct.Struct("=i")
# fcntl F_SETPIPE_SZ: 1 MiB pipes hold several chunks, so neither side waits on the other's
# reads while both are busy formatting.
F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20
# False in the children of a run over several network namespaces (netns_run): they already
# run two at a time, so a helper per child only adds a fork and a third process per core.
HELPERS = True

Work = Callable[[bytes], bytes]
# Signal numbers on Linux, kept here so that `signal` is imported by the helper only.
SIGINT = 2
SIGKILL = 9
SIGPIPE = 13
PR_SET_PDEATHSIG = 1


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
        # EPERM past /proc/sys/fs/pipe-user-pages-soft for an unprivileged user: the pipes
        # stay at 64 KiB. Only more waiting: the parent never blocks on one pipe while the
        # helper may be blocked on the other (_Helper.send).
        pass


def _die_with(parent: int) -> None:
    """In the helper: be killed when the parent dies (SIGTERM, SIGKILL), even while blocked on a
    write to a stdout nobody reads. prctl(PR_SET_PDEATHSIG) through ctypes (1 ms to import, in
    the helper only, while it waits for its first chunk anyway); a parent already gone is
    noticed by the parent pid that changed."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
    except (OSError, AttributeError, ImportError):
        pass  # no prctl: the helper still ends on EOF of its chunks or EPIPE on its results
    if os.getppid() != parent:
        os._exit(0)


def _helper(work: Work, chunks_in: int, results_out: int, sink: Optional[Sink]) -> None:
    """The forked helper: format each chunk it is sent, in order, and send the bytes back, or
    give them to `sink` (then, at the end, flush it and say so with a STOP_FRAME)."""
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
    except KeyboardInterrupt:
        raise  # not a failure of the helper's: see _Helper.__init__
    except (BackendUnavailable, OutputError) as err:
        kind = REFUSED_FRAME if isinstance(err, BackendUnavailable) else OUTPUT_FRAME
        text = str(err) if isinstance(err, BackendUnavailable) else err.strerror
        message = text.encode("utf-8", "replace")
        try:
            _write_all(
                results_out,
                FRAME.pack(kind) + ERRNO.pack(err.errno or 0) + FRAME.pack(len(message)) + message,
            )
        except OSError:
            pass
    except BaseException as err:  # noqa: BLE001 - reported by the parent, never a traceback
        message = f"{type(err).__name__}: {err}".encode("utf-8", "replace")
        try:
            _write_all(results_out, FRAME.pack(ERROR_FRAME) + FRAME.pack(len(message)) + message)
        except OSError:
            pass


class _Failure(NamedTuple):
    """A frame that carried the helper's error: raised when its turn comes."""

    error: BaseException


class _Helper:
    """The parent's side of a forked helper.

    The chunks pipe is non-blocking: when it is full, the parent collects the helper's
    results instead of waiting, because the helper may itself be blocked writing a result
    into a full results pipe (64 KiB pipes when F_SETPIPE_SZ was refused; a chunk and a
    result larger than that deadlocked). Results are read in whole frames, blocking: once
    the helper has begun a frame it writes the rest without waiting for anything else.
    EPIPE on the chunks or EOF on the results means the helper has ended; the error it
    reported on its way out (read before EOF) comes first, else how it ended, from waitpid,
    decides the error (telling the two apart: a helper killed by SIGPIPE while writing stdout
    is the reader that left, anything else is a helper that died). An error frame read while
    the chunks pipe is full is raised there and then: writing on would meet EPIPE with the
    report already consumed.
    """

    def __init__(self, work: Work, sink: Optional[Sink] = None) -> None:
        chunks_read, self.chunks_write = os.pipe()
        self.results_read, results_write = os.pipe()
        for fd in (self.chunks_write, results_write):
            _grow(fd)
        parent = os.getpid()
        try:
            self.pid = os.fork()
        except OSError:  # EAGAIN, ENOMEM: the caller formats serially, without these pipes
            for fd in (chunks_read, self.chunks_write, self.results_read, results_write):
                os.close(fd)
            raise
        if self.pid == 0:  # pragma: no cover - runs in the child
            # Ctrl-C reaches the whole process group: the helper dies quietly, the parent
            # reports. A reader that left (`| head`) kills it with SIGPIPE, as it would kill
            # netstat.
            import signal  # the helper only: not a start-up cost

            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGPIPE, signal.SIG_DFL)
                os.close(self.chunks_write)
                os.close(self.results_read)
                if sink is not None:
                    # The only helper that may block on something other than its parent's
                    # pipes (stdout); the other ends on EOF or EPIPE when the parent dies.
                    _die_with(parent)
                _helper(work, chunks_read, results_write, sink)
            except KeyboardInterrupt:
                # A Ctrl-C caught by the parent's handler before SIG_DFL was in place (Python
                # raises it at the next bytecode, even after): end as SIG_DFL would have ended
                # the helper, so that the parent reports the interrupt (_ended), not a helper
                # that failed or died with status 0.
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                os.kill(os.getpid(), SIGINT)
            finally:
                os._exit(0)  # never return into the parent's code (no atexit, no flushes)
        os.close(chunks_read)
        os.close(results_write)
        os.set_blocking(self.chunks_write, False)
        # poll, not select: a program using the API may hold descriptors past FD_SETSIZE.
        self.results_poll = select.poll()
        self.results_poll.register(self.results_read, select.POLLIN)
        self.both_poll = select.poll()
        self.both_poll.register(self.results_read, select.POLLIN)
        self.both_poll.register(self.chunks_write, select.POLLOUT)
        self.writes_stdout = sink is not None
        self.early: Deque[bytes] = deque()  # results collected while sending
        self.status: Optional[int] = None  # the wait status, once it has been reaped

    def send(self, chunk: bytes) -> None:
        view = memoryview(FRAME.pack(len(chunk)) + chunk)
        while view:
            try:
                written = os.write(self.chunks_write, view)
            except BlockingIOError:
                self._collect_while_full()
                continue
            except BrokenPipeError:
                raise self._ended() from None
            view = view[written:]

    def _collect_while_full(self) -> None:
        """The chunks pipe is full: wait until it has room, collecting any result meanwhile."""
        for fd, _events in self.both_poll.poll():
            if fd == self.results_read:  # a result, or EOF (POLLHUP): the helper has ended
                item = self._frame()
                if isinstance(item, _Failure):
                    # The helper has stopped reading: raised now, not after the next write's
                    # EPIPE, whose _ended() would find only EOF (the report is read) and say
                    # "exit status 0" instead of the helper's own error.
                    raise item.error
                self.early.append(item)
                return

    def ready(self) -> bool:
        """Has the helper finished a chunk? (never blocks)"""
        return bool(self.early) or bool(self.results_poll.poll(0))

    def result(self) -> bytes:
        if self.early:
            return self.early.popleft()
        item = self._frame()
        if isinstance(item, _Failure):
            raise item.error
        return item

    def _frame(self) -> Union[bytes, _Failure]:
        """The next frame from the helper, blocking until it is whole."""
        try:
            (size,) = FRAME.unpack(_read_exact(self.results_read, FRAME.size))
            return self._body(size)
        except EOFError:
            return _Failure(self._ended())

    def _body(self, size: int) -> Union[bytes, _Failure]:
        read = self.results_read
        if size == STOP_FRAME:
            return b""
        if size in (REFUSED_FRAME, OUTPUT_FRAME):
            (code,) = ERRNO.unpack(_read_exact(read, ERRNO.size))
            (length,) = FRAME.unpack(_read_exact(read, FRAME.size))
            message = _read_exact(read, length).decode("utf-8", "replace")
            if size == OUTPUT_FRAME:
                return _Failure(OutputError(OSError(code, message)))
            return _Failure(BackendUnavailable(message, code))
        if size == ERROR_FRAME:
            (length,) = FRAME.unpack(_read_exact(read, FRAME.size))
            message = _read_exact(read, length).decode("utf-8", "replace")
            return _Failure(NlstatError(f"formatting helper failed: {message}"))
        return _read_exact(read, size)[1:]

    def _ended(self) -> BaseException:
        """The helper closed its pipes before its work was done: the error to raise.

        An error it reported on its way out comes first (its results before that are of no
        use now); else its wait status says why it ended."""
        try:
            while True:
                (size,) = FRAME.unpack(_read_exact(self.results_read, FRAME.size))
                item = self._body(size)
                if isinstance(item, _Failure):
                    return item.error
        except EOFError:
            pass
        self._reap()
        status = self.status
        if status is None:
            return HelperDied("formatting helper ended unexpectedly")
        if os.WIFSIGNALED(status):
            number = os.WTERMSIG(status)
            if number == SIGPIPE and self.writes_stdout:
                return BrokenPipeError()  # the reader of stdout left: netstat's SIGPIPE
            if number == SIGINT:
                return KeyboardInterrupt()  # Ctrl-C reached the process group first there
            return HelperDied(f"formatting helper died (killed by signal {number})")
        return HelperDied(f"formatting helper died (exit status {os.WEXITSTATUS(status)})")

    def finish(self) -> None:
        """Tell a helper with a sink that the chunks have ended; return once it has written
        and flushed everything. A helper killed by SIGPIPE (the reader left) is a broken pipe
        here too."""
        self.send(b"")
        if self.result() != b"":
            raise NlstatError("formatting helper sent a result it should have written")

    def _reap(self) -> None:
        if self.status is None:
            try:
                self.status = os.waitpid(self.pid, 0)[1]
            except ChildProcessError:
                pass

    def close(self) -> None:
        try:
            os.write(self.chunks_write, FRAME.pack(STOP_FRAME))
        except OSError:
            pass  # full (the helper sees EOF instead) or the helper has gone
        for fd in (self.chunks_write, self.results_read):
            try:
                os.close(fd)
            except OSError:
                pass
        self._reap()


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
    # The chunk after the warm-up is looked at before forking: when it ends the dump (a
    # filtered dump's bare NLMSG_DONE, most often), the helper would be forked and reaped
    # for nothing (--dport 443 at 100k sockets: 6-8 ms of a 60 ms run).
    following = next(source, None)
    if following is None:
        return
    if is_last(following):
        yield work(following)
        return
    source = itertools.chain((following,), source)
    helper: Optional[_Helper] = None
    if parallel and HELPERS and (os.cpu_count() or 1) > 1:
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

    For a source that costs more to read than to format (printing /proc/net/unix costs the
    kernel more a socket than parsing and formatting it costs us), so that the reader only
    reads. The sink is flushed before
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
    if HELPERS and (os.cpu_count() or 1) > 1:
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
