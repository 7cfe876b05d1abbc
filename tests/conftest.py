"""Shared test set-up: the repo's own code first on sys.path, root-only tests skipped otherwise."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
for path in (str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "system")):
    if path not in sys.path:
        sys.path.insert(0, path)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root: builds private network namespaces")
    for item in items:
        if "netns" in item.keywords:
            item.add_marker(skip)
