#!/usr/bin/env python3
"""Each socket once under churn, at length: the figures of docs/reliability.md.

    python3 benchmarks/churn.py [--runs 50]

In a private namespace, batches of 200 tcp and 200 unix connections open and close
(tests/churn.py) while `-ant`, `-an`, `-antp`, `-anx`, `-an --ndjson`, `-ant --json`,
`-ant --count` (grouped by the whole socket) and `-c -ant` (each whole pass a run) run RUNS
times each through nlstat
with NLSTAT_BACKEND=proc and =netlink, and through the installed netstat as the control (it
lists sockets as /proc prints them, repeats included). Prints one line per tool, backend and
mode: runs, socket rows, runs with a socket twice, sockets twice, runs missing a long-lived
socket. Root only; everything stays on the namespace's loopback. Not part of the test run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.churn import MODES, NETSTAT_MODES, Churn, measure  # noqa: E402
from tests.netns import namespace  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    started = time.monotonic()
    print("| tool | backend | mode | runs | socket rows | runs with a repeat | repeats"
          " | runs missing a long-lived socket |")
    print("|---|---|---|---|---|---|---|---|")
    problems = 0
    with namespace(prefix="nlst-churn") as ns:
        churn = Churn(ns, 3600)
        with churn as keep:
            for tool, backend in (("nlstat", "proc"), ("nlstat", "netlink"), ("netstat", "-")):
                for mode in (NETSTAT_MODES if tool == "netstat" else MODES):
                    figures = measure(ns, tool, backend, mode, args.runs, keep)
                    print(f"| {tool} | {backend} | {mode} | {figures.runs} | {figures.rows}"
                          f" | {figures.duplicate_runs} | {figures.duplicates}"
                          f" | {figures.missing_runs} |", flush=True)
                    if tool == "nlstat":
                        problems += len(figures.failures)
                        for failure in figures.failures:
                            print("   ", failure, file=sys.stderr)
    print(f"\n{churn.batches} batches of 200 tcp + 200 unix connections in"
          f" {time.monotonic() - started:.0f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
