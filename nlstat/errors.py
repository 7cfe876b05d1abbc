"""Errors that cross layers. `app` is the one place that maps them to stderr lines and statuses."""

from __future__ import annotations


class NlstatError(Exception):
    """Base class: a condition nlstat reports in one line and exits with `status`."""

    status = 1


class BackendUnavailable(NlstatError):
    """The kernel refused a netlink request (EPROTONOSUPPORT, EPERM, EINVAL, ...).

    `errno` is the kernel's error; callers fall back to procfs and say so under -v.
    """

    def __init__(self, what: str, errno: int = 0) -> None:
        super().__init__(what)
        self.errno = errno


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

    status = 70
