"""The outside world a run sees: output streams, the /proc root, the backend choice, the clock.

Tests build their own `Environment` (captured streams, a directory of captured /proc files);
nothing below `app` reads `os.environ` or `sys.stdout` directly.
"""

from __future__ import annotations

import os
import sys
import time
from typing import BinaryIO, Callable, Mapping, Optional, TextIO

from nlstat.query import BACKEND_AUTO


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
        self.stdout: BinaryIO = stdout if stdout is not None else sys.stdout.buffer
        self.stderr: TextIO = stderr if stderr is not None else sys.stderr
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
