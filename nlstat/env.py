"""The outside world a run sees: output streams, the /proc root, the backend choice, the clock.

Tests build their own `Environment` (captured streams, a directory of captured /proc files);
nothing below `app` reads `os.environ` or `sys.stdout` directly.
"""

from __future__ import annotations

import errno
import io
import os
import sys
import time
from typing import Any, BinaryIO, Callable, Mapping, Optional, TextIO, cast

from nlstat.errors import OutputError
from nlstat.query import BACKEND_AUTO


class _Descriptor(io.RawIOBase):
    """Descriptor 1 or 2 as the buffered streams of a run write to it.

    A failed write to stdout becomes an OutputError, which `app` reports as a write error
    however the run was going (a plain OSError could be taken for a /proc file that failed).
    stderr is `quiet`: a message that cannot be written is dropped, as netstat's stdio drops
    it. A broken pipe stays a BrokenPipeError on both: it ends the run as SIGPIPE ends
    netstat. `fd` None stands for a descriptor that was closed when Python started.
    """

    def __init__(self, fd: Optional[int], quiet: bool) -> None:
        super().__init__()
        self.fd = fd
        self.quiet = quiet

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        if self.fd is None:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        return self.fd

    def write(self, data: Any) -> int:
        try:
            if self.fd is None:
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))
            return os.write(self.fd, data)
        except BrokenPipeError:
            raise
        except OSError as err:
            if self.quiet:
                return len(memoryview(data))
            raise OutputError(err) from None


def _descriptor(stream: Optional[TextIO]) -> Optional[int]:
    """The descriptor under sys.stdout or sys.stderr; None when Python found it closed
    (`nlstat >&-`: the stream is None); -1 when the stream was replaced by one without a
    descriptor (a test's capture), which is then used as it is."""
    if stream is None:
        return None
    try:
        return stream.fileno()
    except (OSError, ValueError):
        return -1


def standard_output() -> BinaryIO:
    """The run's stdout: buffered as Python buffers it (st_blksize), whatever
    PYTHONUNBUFFERED says, and every write or flush error an OutputError."""
    fd = _descriptor(sys.stdout)
    if fd == -1:
        return cast(BinaryIO, sys.stdout.buffer)
    size = io.DEFAULT_BUFFER_SIZE
    if fd is not None:
        try:
            blksize = os.fstat(fd).st_blksize
        except OSError:
            blksize = 0
        if blksize > 1:
            size = blksize
    return cast(BinaryIO, io.BufferedWriter(_Descriptor(fd, quiet=False), size))


def standard_error() -> TextIO:
    """The run's stderr: line by line, and a message that cannot be written is dropped."""
    fd = _descriptor(sys.stderr)
    if fd == -1:
        return sys.stderr
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    return io.TextIOWrapper(
        io.BufferedWriter(_Descriptor(fd, quiet=True)),
        encoding=encoding,
        errors="backslashreplace",
        line_buffering=True,
        write_through=True,
    )


class Environment:
    """Streams and settings for one run (a plain class: dataclasses cost 6 ms to import)."""

    def __init__(
        self,
        stdout: Optional[BinaryIO] = None,
        stderr: Optional[TextIO] = None,
        proc_root: str = "/proc",
        backend: str = BACKEND_AUTO,
        debug: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        posixly_correct: bool = False,
        replay: Optional[bool] = None,
    ) -> None:
        self.stdout: BinaryIO = stdout if stdout is not None else standard_output()
        self.stderr: TextIO = stderr if stderr is not None else standard_error()
        # NLSTAT_PROC_ROOT: where /proc is; a directory of captured files in tests.
        self.proc_root = proc_root
        # A /proc root other than /proc is a captured /proc being replayed: under auto every
        # table is read from it, netlink is not asked (nlstat.backends). Tests that pair
        # captured files with a live or faked netlink say replay=False.
        self.replay = os.path.normpath(proc_root) != "/proc" if replay is None else replay
        # NLSTAT_BACKEND: auto | netlink | proc (the --backend option overrides it).
        self.backend = backend
        # NLSTAT_DEBUG=1: say which backend was chosen and why, and what was ignored.
        self.debug = debug
        self.sleep = sleep
        # POSIXLY_CORRECT set (even empty): glibc getopt stops at the first operand.
        self.posixly_correct = posixly_correct

    @classmethod
    def from_os(cls, environ: Mapping[str, str] = os.environ) -> Environment:
        return cls(
            proc_root=environ.get("NLSTAT_PROC_ROOT") or "/proc",
            backend=environ.get("NLSTAT_BACKEND") or BACKEND_AUTO,
            debug=environ.get("NLSTAT_DEBUG", "") not in ("", "0"),
            posixly_correct="POSIXLY_CORRECT" in environ,
        )

    def proc(self, *parts: str) -> str:
        """Path under the /proc root: env.proc("net", "tcp") -> "/proc/net/tcp"."""
        return os.path.join(self.proc_root, *parts)

    def warn(self, line: str) -> None:
        """One line to stderr (netstat's notices and warnings)."""
        self.stderr.write(line + "\n")

    def trace(self, line: str) -> None:
        """A debug line, only under NLSTAT_DEBUG=1."""
        if self.debug:
            self.stderr.write("nlstat: debug: " + line + "\n")
