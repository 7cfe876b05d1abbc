"""Standard output that cannot be written: closed, full (/dev/full), or a reader that left.

netstat's stdio drops a failed write and exits 0 with its output lost; nlstat says
`nlstat: write error: <strerror>` in one line and exits 1 (docs/compat.md), in every mode and
whether the error comes from a write or from the last flush. A reader that left is the one
case where both end alike: killed by SIGPIPE, nothing said. No case prints a traceback, and a
closed or failing stderr changes no status.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence

import pytest

REPO = Path(__file__).resolve().parents[2]
NETSTAT = "netstat"

# Every mode, each once; `-c` ones end at their first failed flush (a timeout fails them).
MODES = [
    ["-an"], ["-anx"], ["-r"], ["-rn"], ["-i"], ["-g"], ["-s"], ["-M"], ["-V"], ["-h"],
    ["-c", "-ant"], ["-c", "-i"], ["-c", "-rn"], ["-c", "-g"],
    ["--compare", "--compare-runs", "1", "-V"],
    ["--json", "-an"], ["--ndjson", "-an"], ["--json", "-s"], ["--json", "-rn"],
]
# Modes that write to stdout in netstat too: their EPIPE status is compared with netstat's.
BOTH_WRITE = [["-an"], ["-anx"], ["-rn"], ["-i"], ["-g"], ["-s"], ["-V"], ["-h"]]

ENOSPC_LINE = "nlstat: write error: No space left on device"
EBADF_LINE = "nlstat: write error: Bad file descriptor"


class Run(NamedTuple):
    status: int
    stdout: bytes
    stderr: str


def _environ(unbuffered: bool) -> Dict[str, str]:
    dropped = ("POSIXLY_CORRECT", "NLSTAT_BACKEND", "NLSTAT_DEBUG", "PYTHONUNBUFFERED")
    environ = {k: v for k, v in os.environ.items() if k not in dropped}
    environ.update(LC_ALL="C", PYTHONPATH=str(REPO))
    if unbuffered:
        environ["PYTHONUNBUFFERED"] = "1"
    return environ


def _command(program: str, args: Sequence[str]) -> List[str]:
    if program == NETSTAT:
        return [NETSTAT, *args]
    return [sys.executable, "-m", "nlstat", *args]


def run(
    args: Sequence[str],
    stdout: str,
    stderr: str = "pipe",
    program: str = "nlstat",
    unbuffered: bool = False,
) -> Run:
    """Run with stdout "pipe", "full" (/dev/full), "closed" or "gone" (a pipe whose reader
    has closed it), and stderr "pipe", "full" or "closed"."""
    redirections = {"closed": ">&-", "full": ">/dev/full"}
    shell = 'exec "$@"'
    if stdout in redirections:
        shell += " " + redirections[stdout]
    if stderr in ("closed", "full"):
        shell += " 2" + redirections[stderr]
    out_fd: Optional[int] = None
    stdout_arg = subprocess.PIPE
    if stdout == "gone":
        read_end, out_fd = os.pipe()
        os.close(read_end)
        stdout_arg = out_fd
    try:
        done = subprocess.run(
            ["sh", "-c", shell, "sh", *_command(program, args)],
            stdin=subprocess.DEVNULL,
            stdout=stdout_arg,
            stderr=subprocess.PIPE,
            env=_environ(unbuffered),
            cwd=str(REPO),
            timeout=60,
            check=False,
        )
    finally:
        if out_fd is not None:
            os.close(out_fd)
    return Run(done.returncode, done.stdout or b"", done.stderr.decode("utf-8", "replace"))


def _name(args: Sequence[str]) -> str:
    return " ".join(args)


_REFERENCE: Dict[str, Run] = {}


def reference(args: Sequence[str]) -> Run:
    """The same mode with a working stdout (-c modes: never run, they write every time)."""
    if "-c" in args:
        return Run(0, b"(rows)", "")
    key = _name(args)
    if key not in _REFERENCE:
        _REFERENCE[key] = run(args, "pipe")
    return _REFERENCE[key]


def assert_write_error(args: Sequence[str], done: Run, line: str) -> None:
    normal = reference(args)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stdout == b""
    if not normal.stdout:
        # Nothing to write (-M without NAT'd connections): the run is as it always is.
        assert (done.status, done.stderr) == (normal.status, normal.stderr)
        return
    lines = done.stderr.splitlines()
    assert lines[-1] == line, done.stderr
    assert lines.count(line) == 1, done.stderr
    # Any other line is one the run prints anyway (-h's family list, notices).
    assert set(lines[:-1]) <= set(normal.stderr.splitlines()), done.stderr
    assert done.status == (normal.status or 1)


@pytest.mark.parametrize("args", MODES, ids=_name)
def test_a_full_stdout_is_one_line_and_status_1(args: List[str]) -> None:
    assert_write_error(args, run(args, "full"), ENOSPC_LINE)


@pytest.mark.parametrize("args", MODES, ids=_name)
def test_a_closed_stdout_is_one_line_and_status_1(args: List[str]) -> None:
    assert_write_error(args, run(args, "closed"), EBADF_LINE)


@pytest.mark.parametrize("args", [["-V"], ["-an"], ["-s"]], ids=_name)
def test_pythonunbuffered_changes_nothing(args: List[str]) -> None:
    """Unbuffered, the error came from a write (status 1); buffered, from the last flush,
    which was swallowed (status 0). Both are the same write error now."""
    assert_write_error(args, run(args, "full", unbuffered=True), ENOSPC_LINE)
    assert_write_error(args, run(args, "full", unbuffered=False), ENOSPC_LINE)


@pytest.mark.parametrize("args", BOTH_WRITE, ids=_name)
def test_a_reader_that_left_ends_both_by_sigpipe(args: List[str]) -> None:
    theirs = run(args, "gone", program=NETSTAT)
    mine = run(args, "gone")
    assert theirs.status == -signal.SIGPIPE  # the shell would say 141
    assert mine.status == theirs.status
    assert "Traceback" not in mine.stderr and "write error" not in mine.stderr
    assert set(mine.stderr.splitlines()) <= set(reference(args).stderr.splitlines())


@pytest.mark.parametrize(
    "args, stdout, status",
    [
        (["-an"], "closed", 1),
        (["-an"], "full", 1),
        (["-V"], "closed", 1),
        (["-c", "-ant"], "full", 1),
        (["-y"], "closed", 3),  # a usage error whose usage text has nowhere to go
        (["-A", "bogus"], "full", 1),
        (["-Z"], "pipe", 1),
        (["-h"], "pipe", 0),
    ],
)
def test_a_closed_or_full_stderr_keeps_the_status(args: List[str], stdout: str,
                                                  status: int) -> None:
    for stderr in ("closed", "full"):
        done = run(args, stdout, stderr=stderr)
        assert done.status == status, (stderr, done)
        assert done.stderr == ""
    if args == ["-h"]:
        assert run(args, "pipe", stderr="closed").stdout == reference(args).stdout


def test_a_reader_that_left_with_stderr_closed_still_ends_by_sigpipe() -> None:
    done = run(["-an"], "gone", stderr="closed")
    assert done.status == -signal.SIGPIPE


@pytest.mark.parametrize("args", [["-an"], ["-rn"], ["-s"]], ids=_name)
def test_netstat_loses_its_output_on_a_full_disk(args: List[str]) -> None:
    """The other side of docs/compat.md's difference, on the installed netstat: its stdio
    drops the failed writes, so `netstat > /dev/full` says nothing and exits 0; nlstat says
    `write error` and exits 1 (the tests above), so a script can tell."""
    theirs = run(args, "full", program=NETSTAT)
    assert (theirs.status, theirs.stdout, theirs.stderr) == (0, b"", "")
    assert run(args, "full").status == 1
