"""Shared test set-up: root-only tests skipped without root.

The tests import like a package: tests/, tests/unit/ and tests/system/ have an __init__.py,
so pytest puts the repository root (the first directory up without one) on sys.path and
`import nlstat`, `from tests import netns`, `from tests.system import sockets_cases` resolve
from this tree, each module once. No test edits sys.path; a subprocess that needs the tree
gets PYTHONPATH.
"""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root: builds private network namespaces")
    for item in items:
        if "netns" in item.keywords:
            item.add_marker(skip)
