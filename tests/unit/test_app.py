"""app.main: the one place that turns failures into statuses, never a traceback."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

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
