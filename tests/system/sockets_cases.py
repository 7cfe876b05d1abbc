"""Argument sets for the socket-table differential tests, and how to run both programs.

Each case is a netstat command line (split on blanks). The differential test runs every case
under each backend in BACKENDS; PROGRAM_CASES are the -p ones; STDERR_CASES also compare
stderr (notices, errors).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parents[2]
NETSTAT = "/usr/bin/netstat" if os.path.exists("/usr/bin/netstat") else "netstat"
BACKENDS = ("netlink", "proc", "auto")

CASES: List[str] = [
    # the plain listings and their -n forms
    "",
    "-n",
    "-a",
    "-an",
    "-l",
    "-ln",
    "-l -a",
    # protocols
    "-t",
    "-at",
    "-ant",
    "-lnt",
    "-u",
    "-lu",
    "-lnu",
    "-aun",
    "-tu",
    "-tun -a",
    "-U",
    "-aU",
    "-anU",
    "-w",
    "-aw",
    "-anw",
    "--tcp --udp -an",
    "--raw --udplite -a",
    # families
    "-4",
    "-6",
    "-6 -an",
    "-4 -ant",
    "-4 -6 -an",
    "--inet",
    "--inet6 -a",
    "-A inet6 -an",
    "-A inet,unix -ln",
    "--protocol=inet,unix -ln",
    "-A inet,inet6,unix -a",
    "-t -6 -a",
    "-4 -u -an",
    "-A unix -t -a",
    # unix
    "-x",
    "-ax",
    "-anx",
    "-lx",
    "--unix -a",
    # extended, timers
    "-e",
    "-ae",
    "-aen",
    "-anee",
    "-aute",
    "-ano",
    "-ao",
    # wide and partial numeric switches
    "-W",
    "-W -a",
    "-anW",
    "-atW",
    "-aeW",
    "--numeric-hosts -a",
    "--numeric-ports -a",
    "--numeric-users -ae",
    "--numeric-hosts --numeric-ports -ae",
    "-aN",
    # notices on stderr, stdout compared here
    "-v",
    "-anv",
]

# -p cases: each run scans every /proc/PID/fd of the host, slow when the host holds many
# descriptors, so they have their own test (deselect with -k "not programs").
PROGRAM_CASES: List[str] = [
    "-antp",
    "-lntp",
    "-tunlp",
    "-axp",
    "-aenp",
    "-anteep",
    "-ntpo",
    "-aWeop",
]

# Cases whose stderr must match too (notices and failures of absent families).
STDERR_CASES: List[str] = [
    "-v",
    "-av",
    "-anv",
    "-tS",
    "-anS",
    "--ipx",
    "-t --ax25",
    "-f",
]

_TIMER_RE = re.compile(rb"\(\d+\.\d\d/")


def split(case: str) -> List[str]:
    return case.split()


def case_id(case: str) -> str:
    return case if case else "(none)"


def mask_timers(output: bytes) -> bytes:
    """Hide the seconds inside `(x.xx/`, the only part of a row that moves between two runs."""
    return _TIMER_RE.sub(b"(x.xx/", output)


def base_env(extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """A clean environment: LC_ALL=C, no inherited NLSTAT_* or locale variables."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("NLSTAT_", "LC_", "PYTHON")) and key not in ("LANG", "LANGUAGE")
    }
    env["LC_ALL"] = "C"
    env.update(extra or {})
    return env


def netstat_command(args: Sequence[str]) -> List[str]:
    return [NETSTAT, *args]


def nlstat_command(args: Sequence[str]) -> List[str]:
    return [sys.executable, "-m", "nlstat", *args]


def nlstat_env(backend: str) -> Dict[str, str]:
    return base_env({"PYTHONPATH": str(REPO_ROOT), "NLSTAT_BACKEND": backend})
