"""nlstat only reads, watched while it runs (issue 12.7): every mode under
`strace -f -e trace=execve,...` runs no program (no shell, nothing) but, under `--compare`,
netstat, ss and GNU time by absolute path and this very nlstat; and opens no file for writing,
creates, renames or removes none, but /dev/null (die_of) and --compare's temporary files.
The source-level audit is tests/unit/test_security.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, NamedTuple

import pytest

REPO = Path(__file__).resolve().parents[2]
STRACE = shutil.which("strace")

MODES = [
    ["-an"], ["-anp"], ["-ane"], ["-a"], ["-rn"], ["-r"], ["-i"], ["-ie"], ["-s"], ["-gn"],
    ["-M"], ["-V"], ["-h"], ["--json", "-anp"], ["--ndjson", "-rn"], ["--count"],
    ["--count", "--by", "user,program", "-ap"], ["--prometheus"], ["-an", "--uid", "0"],
    ["-y"], ["--bogus"],
]
CALLS = ("execve,execveat,open,openat,openat2,creat,rename,renameat,renameat2,unlink,"
         "unlinkat,mkdir,mkdirat,rmdir,truncate,link,linkat,symlink,symlinkat,mknod,mknodat")
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND", "O_TMPFILE")
CALL = re.compile(r'^(?P<pid>\d+) +(?P<name>\w+)\((?P<args>.*)\) += (?P<result>-?\d+|\?)')
STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


class Call(NamedTuple):
    pid: int
    name: str
    args: str
    ok: bool

    def path(self) -> str:
        found = STRING.search(self.args)
        return found.group(1) if found else ""


def traced(args: List[str], tmp_path: Path) -> List[Call]:
    if STRACE is None:
        pytest.skip("needs strace (tests/run.sh installs it)")
    log = tmp_path / "strace.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NLSTAT_")}
    # The interpreter's own byte-code cache is not nlstat's writing.
    env.update(LC_ALL="C", PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run(
        [STRACE, "-f", "-qq", "-s", "256", "-e", f"trace={CALLS}", "-o", str(log),
         sys.executable, "-m", "nlstat", *args],
        env=env, cwd=str(tmp_path), stdin=subprocess.DEVNULL, capture_output=True,
        timeout=300)
    assert b"Traceback" not in done.stderr, done.stderr
    calls: List[Call] = []
    for line in log.read_text(errors="replace").splitlines():
        match = CALL.match(line)
        if match:
            result = match["result"]
            ok = result != "?" and not result.startswith("-")
            calls.append(Call(int(match["pid"]), match["name"], match["args"], ok))
    assert calls and calls[0].name == "execve" and calls[0].path() == sys.executable, calls[:1]
    return calls


def writes(calls: List[Call]) -> List[Call]:
    found = []
    for call in calls:
        if call.name.startswith("open") and any(flag in call.args for flag in WRITE_FLAGS):
            if call.path() != "/dev/null":
                found.append(call)
        elif not call.name.startswith(("open", "exec")):
            found.append(call)
    return found


@pytest.mark.parametrize("args", MODES, ids=" ".join)
def test_a_mode_runs_nothing_and_writes_nothing(args: List[str], tmp_path: Path) -> None:
    calls = traced(args, tmp_path)
    assert [c for c in calls if c.name.startswith("exec")][1:] == []  # no program, no shell
    assert writes(calls) == []
    assert sorted(os.listdir(tmp_path)) == ["strace.log"]  # nothing left in the cwd


def test_compare_runs_its_peers_by_absolute_path_and_no_shell(tmp_path: Path) -> None:
    if shutil.which("ss") is None or shutil.which("netstat") is None:
        pytest.skip("needs netstat and ss")
    calls = traced(["--compare", "--compare-runs", "1", "-ant"], tmp_path)
    started = [c.path() for c in calls if c.name.startswith("exec") and c.ok][1:]
    allowed = {shutil.which("netstat"), shutil.which("ss"), "/usr/bin/time", sys.executable}
    assert started and set(started) <= allowed, started
    assert all(path.startswith("/") for path in started)
    assert not any(os.path.basename(path) in ("sh", "bash", "dash") for path in started)
    # its writes: the peers' own (none expected) and nlstat's temporary files, all removed
    temporary = (os.environ.get("TMPDIR") or "/tmp").rstrip("/") + "/"
    for call in writes(calls):
        assert call.path().startswith(temporary) or "O_TMPFILE" in call.args, call
    assert sorted(os.listdir(tmp_path)) == ["strace.log"]
