"""nlstat only reads (issue 12.7): the package's source runs no other program but the
`--compare` peers, never through a shell, and opens nothing for writing but what it is told
to. An audit of the syntax tree of every module under nlstat/, each finding checked against
an allow-list that says why it is there (docs/security.md); tests/system/test_security_live.py
watches the running CLI under strace."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, List, Set, Tuple

PACKAGE = Path(__file__).resolve().parents[2] / "nlstat"

# Modules whose import alone means running programs or terminals.
EXEC_MODULES = {"subprocess", "pty", "commands", "popen2", "multiprocessing", "asyncio"}
# Calls that start a program (os.* and anything spelled like libc's, e.g. through ctypes).
EXEC_CALLS = {"system", "popen", "execl", "execle", "execlp", "execlpe", "execv", "execve",
              "execvp", "execvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv",
              "spawnve", "spawnvp", "spawnvpe", "posix_spawn", "posix_spawnp", "startfile",
              "getoutput", "getstatusoutput", "check_output", "check_call", "Popen", "run"}
# Calls that create, change or remove files.
WRITE_CALLS = {"remove", "unlink", "rmdir", "removedirs", "rename", "renames", "replace",
               "mkdir", "makedirs", "truncate", "chmod", "chown", "link", "symlink", "mkfifo",
               "mknod", "write_text", "write_bytes", "touch", "rmtree", "copy", "copyfile",
               "move", "mkstemp", "mkdtemp", "NamedTemporaryFile", "TemporaryFile",
               "TemporaryDirectory", "SpooledTemporaryFile"}
FILE_MODULES = {"os", "shutil", "tempfile", "pathlib"}
PATH_METHODS = {"write_text", "write_bytes", "touch"}

# (module, what): every program nlstat may start and every file it may write, with the reason.
ALLOWED: Set[Tuple[str, str]] = {
    # --compare runs netstat, ss (and GNU time around each, for the peak RSS) by the absolute
    # path shutil.which() found, with an argument vector: no shell.
    ("compare.py", "call posix_spawn"),
    # --compare: GNU time's report (-o FILE), a temporary file removed when the run ends,
    # and each run's stdout and stderr, unnamed temporary files (gone when closed).
    ("compare.py", "call NamedTemporaryFile"),
    ("compare.py", "call TemporaryFile"),
    # die_of(): stdout pointed at /dev/null before dying of SIGPIPE/SIGINT, so nothing
    # buffered reaches the file netstat would not have written either.
    ("app.py", "os.open write"),
    # --load holds the run's output until it ended well (a memfd, else an unnamed temporary
    # file), so a question the recording cannot answer prints nothing.
    ("app.py", "open write"),
    ("app.py", "call TemporaryFile"),
    # --save FILE: the file the user named, written to an unnamed file in its directory
    # (O_TMPFILE) that is linked under a temporary name beside it at the end (or, where the
    # file system has no O_TMPFILE, that temporary made at once with O_EXCL), then renamed over
    # it; the temporary is removed when the run fails.
    ("recording.py", "os.open write"),
    ("recording.py", "call link"),
    ("recording.py", "open write"),
    ("recording.py", "call unlink"),
    ("recording.py", "call rename"),
}


def findings(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in EXEC_MODULES:
                    yield f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in EXEC_MODULES:
                yield f"import {node.module}"
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else (
                func.id if isinstance(func, ast.Name) else "")
            if name in EXEC_CALLS and name != "run":
                yield f"call {name}"
            elif name == "run" and isinstance(func, ast.Attribute) and isinstance(
                    func.value, ast.Name) and func.value.id == "subprocess":
                yield "call subprocess.run"
            if name in WRITE_CALLS:
                # list.remove, str.replace are not os.remove, os.replace: the module's
                # spelling, or a name imported from it; Path methods whatever their owner
                owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(
                    func.value, ast.Name) else ""
                if (isinstance(func, ast.Name) or owner in FILE_MODULES
                        or name in PATH_METHODS):
                    yield f"call {name}"
            for keyword in node.keywords:
                if keyword.arg == "shell":
                    yield "shell="
            if name == "open" and _opens_for_writing(node):
                owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(
                    func.value, ast.Name) else ""
                yield f"{owner + '.' if owner else ''}open write"


def _opens_for_writing(node: ast.Call) -> bool:
    """open(path, "w"...) or os.open(path, O_WRONLY|O_RDWR|O_CREAT...)."""
    texts = [arg.value for arg in node.args[1:2] if isinstance(arg, ast.Constant)]
    texts += [kw.value.value for kw in node.keywords
              if kw.arg == "mode" and isinstance(kw.value, ast.Constant)]
    if any(isinstance(text, str) and set(text) & set("wax+") for text in texts):
        return True
    flags = ast.dump(node.args[1]) if len(node.args) > 1 else ""
    return any(flag in flags for flag in ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC",
                                          "O_APPEND"))


def audit() -> List[Tuple[str, str]]:
    found: List[Tuple[str, str]] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = str(path.relative_to(PACKAGE))
        found += [(relative, what) for what in findings(path)]
    return found


def test_nlstat_starts_no_program_and_writes_no_file_but_the_allowed_ones() -> None:
    found = audit()
    unexpected = [item for item in found if item not in ALLOWED]
    assert unexpected == [], unexpected
    assert set(found) == ALLOWED  # each allowance still stands for something


def test_the_audit_sees_what_it_looks_for(tmp_path: Path) -> None:
    """Each forbidden spelling is caught (the audit cannot pass by seeing nothing)."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import subprocess\nfrom asyncio import subprocess as s\nimport os, shutil\n"
        "os.system('x')\nos.execvp('x', ['x'])\nos.posix_spawnp('x', ['x'], {})\n"
        "subprocess.run(['x'], shell=True)\nopen('f', 'w')\nos.open('f', os.O_WRONLY)\n"
        "os.replace('a', 'b')\nshutil.rmtree('d')\n'text'.replace('a', 'b')\n"
        "open('f', 'rb')\nlibc.system(b'x')\n[].remove(1)\n", encoding="utf-8")
    assert list(findings(sample)) == [
        "import subprocess", "import asyncio", "call system", "call execvp",
        "call posix_spawnp", "call subprocess.run", "shell=", "open write", "os.open write",
        "call replace", "call rmtree", "call system"]
