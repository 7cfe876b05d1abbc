"""Other Python interpreters for the test run: find one, give it a private venv with the test
dependencies, cached between runs.

`requires-python` in pyproject.toml names the oldest Python nlstat claims; tests/system/
test_pythons.py runs the unit tests and a smoke of every mode under it and under the newest
Python tested. Interpreters are found by name, never by one machine's paths: `python3.N` on
PATH when it runs (a pyenv shim for a version that is not selected does not), else the newest
`python3.N` under `pyenv root`/versions. `find()` returns the reason when there is none.

The venv lives under the temporary directory, keyed on the interpreter's full version and the
dependency list, so a rerun reuses it; it holds the dependencies only (the tree is used through
PYTHONPATH, as everywhere in the tests), never nlstat itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator, List, NamedTuple, Optional, Tuple, Union

REPO = Path(__file__).resolve().parents[1]
NEWEST_TESTED = (3, 13)
CACHE = Path(tempfile.gettempdir()) / "nlstat-test-venvs"
PIP_TIMEOUT = 900.0


class Found(NamedTuple):
    path: str
    version: str  # sys.version's first word: "3.9.18"


def floor() -> Tuple[int, int]:
    """The oldest Python pyproject.toml's requires-python admits (">=3.9" -> (3, 9))."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^requires-python\s*=\s*">=\s*(\d+)\.(\d+)', text, re.M)
    if not match:
        raise ValueError("pyproject.toml: requires-python is not of the form \">=3.N\"")
    return int(match.group(1)), int(match.group(2))


def requirements() -> List[str]:
    """The project's dependencies and its `test` extra, as `pip install '.[test]'` reads them
    (the arrays are simple enough for a pattern; tomllib is 3.11+)."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    found: List[str] = []
    for key in ("dependencies", "test"):
        match = re.search(rf"^{key}\s*=\s*\[(.*?)\]", text, re.M | re.S)
        if not match:
            raise ValueError(f"pyproject.toml: no {key} = [...]")
        found += re.findall(r'"([^"]+)"', match.group(1))
    return found


def _version_of(path: str) -> Optional[str]:
    try:
        done = subprocess.run([path, "-c", "import sys; print(sys.version.split()[0])"],
                              capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _pyenv_candidates(name: str) -> Tuple[List[str], str]:
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return [], "no pyenv on PATH"
    try:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as err:
        return [], f"`pyenv root` failed: {err}"
    paths = glob.glob(os.path.join(root, "versions", "*", "bin", name))

    def release(path: str) -> Tuple[int, ...]:
        parts = re.findall(r"\d+", Path(path).parents[1].name)
        return tuple(int(p) for p in parts)

    return sorted(paths, key=release, reverse=True), f"none under {root}/versions"


def find(version: Tuple[int, int]) -> Union[Found, str]:
    """An interpreter for `version`, or a sentence saying why there is none."""
    name = "python%d.%d" % version
    wanted = "%d.%d." % version
    reasons: List[str] = []
    on_path = shutil.which(name)
    candidates: List[str] = []
    if on_path is None:
        reasons.append(f"no {name} on PATH")
    else:
        candidates.append(on_path)
    from_pyenv, why_not = _pyenv_candidates(name)
    candidates += from_pyenv
    if not from_pyenv:
        reasons.append(why_not)
    for path in candidates:
        got = _version_of(path)
        if got is not None and got.startswith(wanted):
            return Found(path, got)
        reasons.append(f"{path} does not run as Python {version[0]}.{version[1]}")
    return f"Python {version[0]}.{version[1]} not found: " + "; ".join(reasons)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Several test runs on one machine may want the same venv at once: one builds, the others wait.
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def venv(interpreter: Found) -> str:
    """The python of a venv for `interpreter` holding requirements(); built once, then reused."""
    wanted = requirements()
    key = hashlib.sha256("\n".join(wanted).encode()).hexdigest()[:10]
    home = CACHE / f"py{interpreter.version}-{key}"
    python = str(home / "bin" / "python")
    ready = home / "ready"
    with _locked(CACHE / f"py{interpreter.version}-{key}.lock"):
        if ready.exists() and _version_of(python) == interpreter.version:
            return python
        shutil.rmtree(home, ignore_errors=True)
        steps = [[interpreter.path, "-m", "venv", str(home)],
                 [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *wanted]]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, timeout=PIP_TIMEOUT,
                                  stdin=subprocess.DEVNULL)
            if done.returncode != 0:
                shutil.rmtree(home, ignore_errors=True)
                raise RuntimeError(f"{' '.join(step)}: status {done.returncode}\n"
                                   + (done.stdout + done.stderr)[-3000:])
        ready.write_text(" ".join(wanted) + "\n")
    return python


def main(argv: List[str]) -> int:
    """`python3 tests/pythons.py`: say which interpreters the test run will use."""
    for version in (floor(), NEWEST_TESTED):
        found = find(version)
        print(found if isinstance(found, str) else f"{found.version}: {found.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
