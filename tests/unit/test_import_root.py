"""The tests import like a package: one import root, no sys.path edits (see tests/conftest.py).

A module imported both as `netns` and as `tests.netns` is two modules (two sets of live
namespaces, two exit hooks); this keeps every test and support module on the one root.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import List

TESTS = Path(__file__).resolve().parents[1]
SUPPORT = {path.stem for path in TESTS.rglob("*.py")} - {"conftest", "__init__"}
# Programs the tests start as files (`python3 tests/NAME.py` in a namespace or under a hook),
# not imported: they set up their own path, as any script does.
PROGRAMS = {"bulk_population.py", "pipeline_hooks.py"}


def test_no_test_module_edits_sys_path_or_imports_around_the_root() -> None:
    problems: List[str] = []
    for path in sorted(TESTS.rglob("*.py")):
        if path.name in PROGRAMS:
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr == "path"
                    and isinstance(node.value, ast.Name) and node.value.id == "sys"):
                problems.append(f"{path}:{node.lineno}: sys.path")
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in SUPPORT:
                    problems.append(f"{path}:{node.lineno}: import {name} (use tests.{name})")
    assert problems == []
