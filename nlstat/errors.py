"""Errors that cross layers, and the exit statuses. `app` is the one place that maps errors to
stderr lines and statuses."""

from __future__ import annotations


class ExitStatus:
    """Every status nlstat exits with (docs/nlstat.1, EXIT STATUS, lists the same).

    A class of int constants rather than an IntEnum: on Python 3.13 `typing` no longer imports
    `re` (and with it `enum`), so an IntEnum would add `enum`'s 1.2 ms to the start-up of
    `-s`, `-V` and `-i`, which import nothing else that needs it.
    """

    # Success, also for -h, -V and -s with a statistics file missing.
    OK = 0
    # netstat's failures: an unknown address family, -Z, a protocol or family asked for that
    # the system lacks, -M without conntrack, Bluetooth; and nlstat's own: standard output
    # that cannot be written (netstat exits 0 with its output lost, docs/compat.md), a bad
    # socket filter value (InvalidFilter: --state, --dport, ...).
    ERROR = 1
    # netstat's E_OPTERR: a command-line error, more than one of -r -i -s -M, -r with a family
    # that has no routing table; and nlstat's own bad values (--backend, NLSTAT_BACKEND,
    # --compare's options).
    USAGE = 3
    # sysexits.h EX_SOFTWARE: an internal error of nlstat (a bug), said in one line.
    SOFTWARE = 70
    # 128 + SIGINT: what a shell reports when Ctrl-C kills the process, as it kills netstat.
    SIGINT = 130
    # 128 + SIGPIPE: the reader of standard output went away (`nlstat -an | head -1`).
    SIGPIPE = 141
    # A step's `return -1` in netstat.c after perror(path): a /proc file that exists but
    # cannot be read (an error other than ENOENT or EACCES).
    READ_ERROR = 255


def statuses() -> dict[str, int]:
    """ExitStatus's names and values, in the order above."""
    return {name: value for name, value in vars(ExitStatus).items() if name.isupper()}


class NlstatError(Exception):
    """Base class: a condition nlstat reports in one line and exits with `status`."""

    status = ExitStatus.ERROR


class OutputError(NlstatError):
    """Standard output cannot be written: closed, a full disk, an I/O error (a broken pipe
    stays a BrokenPipeError: that one ends the run as SIGPIPE ends netstat).

    Not an OSError, so that no `except OSError` meant for reading /proc catches it."""

    def __init__(self, err: OSError) -> None:
        super().__init__(f"write error: {err.strerror or err}")
        self.errno = err.errno


class BackendUnavailable(NlstatError):
    """The kernel refused a netlink request (EPROTONOSUPPORT, EPERM, EINVAL, ...).

    `errno` is the kernel's error; callers fall back to procfs and say so under -v.
    """

    def __init__(self, what: str, errno: int = 0) -> None:
        super().__init__(what)
        self.errno = errno


class InvalidArgument(NlstatError, ValueError):
    """An argument of the Python API that nlstat cannot use (a socket kind, a family, a
    backend name)."""


class InvalidFilter(InvalidArgument):
    """A filter value nlstat cannot use: an unknown state, user, interface or program, a
    malformed port range or prefix. The message names the value; the CLI exits with 1."""


class MalformedInput(NlstatError):
    """A /proc file or a netlink message that does not parse; names the file and line."""

    def __init__(self, path: str, line_number: int, line: str, reason: str = "") -> None:
        detail = f": {reason}" if reason else ""
        super().__init__(f"{path}:{line_number}: malformed line {line!r}{detail}")
        self.path = path
        self.line_number = line_number


class Exit(Exception):
    """Stop now with this status (netstat returns from deep inside its steps)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class HelperDied(NlstatError):
    """The formatting helper process (pipeline.py) ended before its work was done: killed
    (the OOM killer, a signal) or crashed. Its rows are missing, so this is an internal error
    (EX_SOFTWARE), never a silent truncation."""

    status = ExitStatus.SOFTWARE
