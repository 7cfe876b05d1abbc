"""tests/run.sh, the README's test command, and .ci/run, which must be that command verbatim.

The script is run for real by bash, with stand-ins for the programs it calls (python3,
dpkg-query, apt-get, id) first on PATH, each recording its arguments: what it installs, when,
and what becomes of pytest's status.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "run.sh"


def readme_commands() -> List[str]:
    """The first code block's commands, comments dropped (what a newcomer copies)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("```")[1].split("\n", 1)[1]
    return [line.split(" #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_gives_the_script_and_ci_runs_it_verbatim() -> None:
    install, tests = readme_commands()
    assert install.startswith("pip install .") and "nlstat -ant" in install
    assert tests == "bash tests/run.sh"
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line for line in ci.splitlines() if line and not line.startswith("#")]
    assert commands[-1] == tests
    # .ci/run installs nothing of its own: everything goes through the README's command.
    assert not any(word in ci for word in ("apt-get", "pip ", "apt "))


def _stub(directory: Path, name: str, body: str) -> None:
    path = directory / name
    record = "" if name in ("id", "dpkg-query") else f'echo "{name} $*" >> "$LOG"\n'
    path.write_text("#!/bin/bash\n" + record + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def run_script(tmp_path: Path, args: Sequence[str] = (), pytest_status: int = 0,
               installed: Sequence[str] = (), uid: int = 0, apt: bool = True,
               ) -> Dict[str, object]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    log = tmp_path / "log"
    log.write_text("")
    _stub(bin_dir, "python3", f'[ "$1 $2" = "-m pytest" ] && exit {pytest_status}; exit 0')
    _stub(bin_dir, "id", f"echo {uid}")
    if apt:
        names = "|".join(installed) or "none"
        _stub(bin_dir, "dpkg-query",
              f'case "${{@: -1}}" in {names}) printf "ii ";; *) printf "un ";; esac')
        _stub(bin_dir, "apt-get", "exit 0")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "LOG": str(log), "HOME": str(tmp_path)}
    if not apt:  # no dpkg-query or apt-get anywhere on PATH
        env["PATH"] = f"{bin_dir}:{_bash_only(tmp_path)}"
    done = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, timeout=60, cwd=tmp_path)
    calls = [tuple(line.split(" ", 1)) if " " in line else (line, "")
             for line in log.read_text().splitlines()]
    return {"status": done.returncode, "stdout": done.stdout, "stderr": done.stderr,
            "calls": calls}


def _bash_only(tmp_path: Path) -> str:
    """A directory with just the coreutils the script needs besides bash (dirname)."""
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in ("dirname", "bash"):
        found: Optional[str] = None
        for directory in ("/usr/bin", "/bin"):
            if os.path.exists(os.path.join(directory, name)):
                found = os.path.join(directory, name)
                break
        assert found is not None, name
        os.symlink(found, tools / name)
    return str(tools)


ALL = ("net-tools", "iproute2", "util-linux", "procps", "man-db", "groff-base", "prometheus",
       "strace")


def test_everything_installed_runs_pip_then_pytest_with_the_arguments(tmp_path: Path) -> None:
    result = run_script(tmp_path, ["-x", "-k", "routes"], installed=ALL)
    assert result["status"] == 0
    assert result["calls"] == [("python3", "-m pip install -q .[test]"),
                               ("python3", "-m pytest -x -k routes")]
    assert "the Debian packages the tests use are installed" in str(result["stdout"])


def test_root_installs_only_what_is_missing(tmp_path: Path) -> None:
    result = run_script(tmp_path, installed=ALL[:-3] + ALL[-1:])
    assert result["status"] == 0
    assert result["calls"][:2] == [
        ("apt-get", "update -qq"),
        ("apt-get", "install -y -qq --no-install-recommends groff-base prometheus")]
    assert result["calls"][2:] == [("python3", "-m pip install -q .[test]"),
                                   ("python3", "-m pytest")]


def test_not_root_says_so_and_goes_on(tmp_path: Path) -> None:
    result = run_script(tmp_path, installed=ALL[1:], uid=1000)
    assert [program for program, _ in result["calls"]] == ["python3", "python3"]
    assert "not root, not installing net-tools" in str(result["stdout"])


def test_without_apt_it_says_so_and_goes_on(tmp_path: Path) -> None:
    result = run_script(tmp_path, apt=False)
    assert result["status"] == 0
    assert [program for program, _ in result["calls"]] == ["python3", "python3"]
    assert "no apt-get here" in str(result["stdout"])


def test_pytest_status_is_the_status_and_no_tests_is_said(tmp_path: Path) -> None:
    result = run_script(tmp_path, ["-k", "nothing"], pytest_status=5, installed=ALL)
    assert result["status"] == 5
    assert "pytest collected no tests (status 5)" in str(result["stderr"])
    failed = run_script(tmp_path / "again", pytest_status=1, installed=ALL)
    assert failed["status"] == 1 and failed["stderr"] == ""
