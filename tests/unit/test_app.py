"""app.main: the one place that turns failures into statuses, never a traceback."""

from __future__ import annotations

import errno
import io
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import List, Sequence

import pytest

from nlstat.errors import NlstatError

REPO = Path(__file__).resolve().parents[2]

# An error whose report needs a flush of stdout, when the reader of stdout has gone.
SCRIPT = """
import io, sys
from nlstat import app
from nlstat.env import Environment
from nlstat.errors import NlstatError

class Gone(io.BytesIO):
    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")

def failing(argv, env):
    raise NlstatError("rtnetlink refused the dump")

app._main = failing
sys.exit(app.main(["-rn"], Environment(stdout=Gone())))
"""


def test_broken_pipe_while_reporting_an_error_dies_of_sigpipe() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=str(REPO), capture_output=True,
                          timeout=30)
    assert done.returncode == -signal.SIGPIPE
    assert b"Traceback" not in done.stderr


def test_an_unknown_nlstat_backend_is_refused_unless_the_option_overrides_it() -> None:
    import os

    env = dict(os.environ, NLSTAT_BACKEND="bogus", PYTHONPATH=str(REPO))
    refused = subprocess.run([sys.executable, "-m", "nlstat", "-s"], cwd=str(REPO), env=env,
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 3 and refused.stdout == ""
    assert refused.stderr == (
        "nlstat: invalid NLSTAT_BACKEND 'bogus' (choose auto, netlink or proc)\n"
    )
    chosen = subprocess.run([sys.executable, "-m", "nlstat", "--backend=proc", "-s"],
                            cwd=str(REPO), env=env, capture_output=True, text=True, timeout=30)
    assert chosen.returncode == 0 and chosen.stdout.startswith("Ip:")


class FullStdout(io.BytesIO):
    def flush(self) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize(
    "outcome, status, lines",
    [
        ("0", 1, []),
        ("3", 3, []),
        ("exit", 255, []),
        ("error", 1, ["nlstat: rtnetlink refused the dump"]),
    ],
)
def test_a_failed_last_flush_is_a_write_error_that_keeps_a_failing_status(
    monkeypatch: pytest.MonkeyPatch, outcome: str, status: int, lines: List[str]
) -> None:
    """The flush that ends every run (and the one before an error's line) is checked: a run
    that had succeeded fails with 1, one that had failed keeps its status."""
    from nlstat import app
    from nlstat.env import Environment
    from nlstat.errors import Exit

    def mode(argv: Sequence[str], env: Environment) -> int:
        env.stdout.write(b"rows\n")
        if outcome == "error":
            raise NlstatError("rtnetlink refused the dump")
        if outcome == "exit":
            raise Exit(255)
        return int(outcome)

    monkeypatch.setattr(app, "_main", mode)
    err = io.StringIO()
    assert app.main([], Environment(stdout=FullStdout(), stderr=err)) == status
    assert err.getvalue().splitlines() == ["nlstat: write error: No space left on device", *lines]


def test_a_write_error_is_not_an_oserror() -> None:
    """Modes catch OSError around /proc reads and take it for netstat's perror() and status
    255; a failed write must pass those by and reach app as a write error."""
    from nlstat.errors import OutputError

    assert not issubclass(OutputError, OSError)
    assert str(OutputError(OSError(28, "No space left on device"))) == (
        "write error: No space left on device"
    )
