"""Counting the examples each fuzz test runs, for benchmarks/fuzz.py's figures.

The fuzz tests run hypothesis through inner `@given` functions (one per parameter), which
hypothesis's own statistics do not report; each example calls `count()`, which appends the
running test's id to the file NLSTAT_FUZZ_TALLY names (nothing when it is unset).
"""

from __future__ import annotations

import os

TALLY = os.environ.get("NLSTAT_FUZZ_TALLY")


def count() -> None:
    if TALLY:
        test = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
        with open(TALLY, "a", encoding="utf-8") as sink:
            sink.write(test + "\n")
