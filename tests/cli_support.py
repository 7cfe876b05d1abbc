"""Helpers for the command-line tests: run the parser in-process, run netstat, compare them."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Mapping, NamedTuple, Optional, Sequence, Union

from nlstat import cli
from nlstat.env import Environment
from nlstat.query import Query

REPO = Path(__file__).resolve().parent.parent
NETSTAT = shutil.which("netstat") or "/usr/bin/netstat"

# Placeholders for the two texts that are nlstat's own by design (its help and its version):
# both sides' texts are swapped for these before stdout and stderr are compared byte for byte.
USAGE_TOKEN = b"<USAGE>\n"
VERSION_TOKEN = b"<VERSION>\n"


class Outcome(NamedTuple):
    status: int
    stdout: bytes
    stderr: bytes
    query: Optional[Query]


def parse_in_process(argv: Sequence[str], posixly_correct: bool = False) -> Outcome:
    """cli.parse with captured streams; stderr is a real TextIOWrapper so raw bytes show."""
    out = io.BytesIO()
    err_bytes = io.BytesIO()
    err = io.TextIOWrapper(err_bytes, encoding="utf-8", errors="backslashreplace")
    env = Environment(stdout=out, stderr=err, posixly_correct=posixly_correct)
    result: Union[Query, int] = cli.parse(list(argv), env)
    err.flush()
    if isinstance(result, int):
        return Outcome(result, out.getvalue(), err_bytes.getvalue(), None)
    return Outcome(0, out.getvalue(), err_bytes.getvalue(), result)


def _environ(extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    dropped = ("POSIXLY_CORRECT", "LANGUAGE", "NLSTAT_BACKEND", "NLSTAT_DEBUG")
    environ = {k: v for k, v in os.environ.items() if k not in dropped}
    environ["LC_ALL"] = "C"
    environ["PYTHONPATH"] = str(REPO)
    environ.update(extra or {})
    return environ


def run_netstat(
    argv: Sequence[str], timeout: float = 10.0, extra_env: Optional[Mapping[str, str]] = None
) -> Outcome:
    # argv[0] "netstat": glibc starts its messages with argv[0] exactly as given.
    done = subprocess.run(
        ["netstat", *argv],
        executable=NETSTAT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=_environ(extra_env),
        timeout=timeout,
        check=False,
    )
    return Outcome(done.returncode, done.stdout, done.stderr, None)


def run_nlstat(
    argv: Sequence[str], timeout: float = 20.0, extra_env: Optional[Mapping[str, str]] = None
) -> Outcome:
    done = subprocess.run(
        [sys.executable, "-m", "nlstat", *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=_environ(extra_env),
        timeout=timeout,
        check=False,
        cwd=str(REPO),
    )
    return Outcome(done.returncode, done.stdout, done.stderr, None)


class Texts(NamedTuple):
    netstat_usage: bytes
    netstat_version: bytes
    nlstat_usage: bytes
    nlstat_version: bytes


def reference_texts() -> Texts:
    """netstat's own help and version (from the binary) and nlstat's (from nlstat.help)."""
    from nlstat.help import version_text

    netstat_help = run_netstat(["--help"])
    netstat_version = run_netstat(["--version"])
    nlstat_usage = cli._usage_text().encode()
    # Empty texts would turn the replacement in normalise() into nonsense.
    assert netstat_help.stdout.startswith(b"usage: netstat [")
    assert netstat_version.stdout.startswith(b"net-tools ")
    return Texts(
        netstat_help.stdout,
        netstat_version.stdout,
        nlstat_usage,
        version_text("auto").encode(),
    )


def normalise(outcome: Outcome, usage: bytes, version: bytes) -> Outcome:
    """Swap the program's own usage and version texts for placeholders."""

    def swap(data: bytes) -> bytes:
        return data.replace(usage, USAGE_TOKEN).replace(version, VERSION_TOKEN)

    return Outcome(outcome.status, swap(outcome.stdout), swap(outcome.stderr), None)
