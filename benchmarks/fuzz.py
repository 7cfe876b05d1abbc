#!/usr/bin/env python3
"""Every fuzzer at length, and a survey of where damaged /proc files make netstat and nlstat
print differently: the figures of docs/reliability.md.

    python3 benchmarks/fuzz.py [--examples 1500] [--survey 40]

1. Runs the fuzz tests (tests/unit/test_fuzz_netlink.py, tests/unit/test_fuzz_procfs.py,
   tests/system/test_fuzz_argv.py) with NLSTAT_FUZZ_EXAMPLES=EXAMPLES (random, not
   derandomised, above 200); prints one row per test: the inputs it ran (counted through
   tests/fuzz_tally.py), its result, its seconds. A failure is a bug: its falsifying example is in
   the pytest output (the log path is printed).
2. The survey (root, netstat installed): SURVEY damaged copies per table and kind of damage,
   each printed by netstat (the file bind-mounted over /proc) and by nlstat; counts the copies
   whose stdout or status differ. Not pass/fail: it measures how far netstat's sscanf()
   reading of broken lines (values kept from the line before, or uninitialised) is followed.

Root for the namespace and netstat parts. Not part of the test run.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

FUZZ_TESTS = (
    "tests/unit/test_fuzz_netlink.py",
    "tests/unit/test_fuzz_procfs.py",
    "tests/system/test_fuzz_argv.py",
)
_RESULT = re.compile(r"^(\S+::\S+) (PASSED|FAILED|SKIPPED|ERROR)")
_SECONDS = re.compile(r"^\s*([\d.]+)s call\s+(\S+)")


def run_fuzzers(examples: int, log: str, tests: Tuple[str, ...] = FUZZ_TESTS) -> int:
    tally = log + ".tally"
    if os.path.exists(tally):
        os.unlink(tally)
    env = dict(os.environ, NLSTAT_FUZZ_EXAMPLES=str(examples), PYTHONPATH=REPO,
               NLSTAT_FUZZ_TALLY=tally)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "-v",
               "--durations=0", "--durations-min=0", *tests]
    started = time.monotonic()
    with open(log, "w") as sink:
        done = subprocess.run(command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)
    elapsed = time.monotonic() - started
    # Inputs each test ran (tests/fuzz_tally.py), shrinking of a failure included.
    inputs: Dict[str, int] = collections.Counter()
    if os.path.exists(tally):
        with open(tally) as counted:
            for test_id in counted:
                inputs[test_id.strip()] += 1
    seconds: Dict[str, float] = {}
    outcome: Dict[str, str] = {}
    with open(log) as source:
        for line in source:
            timed = _SECONDS.match(line)
            if timed:
                seconds[timed.group(2)] = float(timed.group(1))
            result = _RESULT.match(line)
            if result:
                outcome[result.group(1)] = result.group(2)
    print(f"NLSTAT_FUZZ_EXAMPLES={examples}; {elapsed:.0f} s; pytest status {done.returncode};"
          f" log {log}\n")
    print("| fuzz test | inputs | result | seconds |")
    print("|---|---|---|---|")
    totals: Dict[str, List[int]] = collections.defaultdict(lambda: [0, 0, 0])
    for test in sorted(set(inputs) | set(outcome)):
        name = test.split("::", 1)[1]
        print(f"| {name} | {inputs.get(test, 0)} | {outcome.get(test, '?')} "
              f"| {seconds.get(test, 0):.1f} |")
        module = totals[test.split("::", 1)[0]]
        module[0] += inputs.get(test, 0)
        module[1] += 1
        module[2] += outcome.get(test) == "FAILED"
    print()
    for module_name, (count, tests_run, failed) in totals.items():
        print(f"{module_name}: {count} inputs in {tests_run} tests, {failed} failed")
    print()
    return done.returncode


def survey(per_kind: int, seed: int) -> None:
    from tests.proc_fuzz import KINDS, SEED_FILES, TABLES, TOKENS, mutate, seed_tree
    from tests.unit.test_fuzz_procfs import cli_in_process, netstat_on

    rng = random.Random(seed)
    started = time.monotonic()
    rows: List[Tuple[str, str, int, int]] = []
    with tempfile.TemporaryDirectory(prefix="nlstat-survey-") as scratch:
        root = os.path.join(scratch, "proc")
        for table in TABLES:
            if not table.netstat_argvs:
                continue
            argv = table.netstat_argvs[0]
            seed_bytes = SEED_FILES[table.file].read_bytes()
            for kind in KINDS:
                differ = 0
                for _ in range(per_kind):
                    junk = bytes(rng.randrange(256) for _ in range(rng.randrange(24)))
                    damage = [(kind, rng.randrange(1 << 16), rng.randrange(65),
                               rng.randrange(len(TOKENS)), junk)]
                    seed_tree(root, {table.file: mutate(seed_bytes, damage)})
                    expected = netstat_on(root, argv)
                    got = cli_in_process(argv, root)
                    if (expected.status, expected.stdout) != (got.status, got.stdout):
                        differ += 1
                rows.append((table.file, kind, per_kind, differ))
    elapsed = time.monotonic() - started
    total = sum(r[2] for r in rows)
    differing = sum(r[3] for r in rows)
    print(f"Survey: {total} damaged files, {differing} printed differently ({elapsed:.0f} s)\n")
    by_table: Dict[str, List[int]] = collections.defaultdict(lambda: [0, 0])
    by_kind: Dict[str, List[int]] = collections.defaultdict(lambda: [0, 0])
    for table_name, kind, count, differ in rows:
        by_table[table_name][0] += count
        by_table[table_name][1] += differ
        by_kind[kind][0] += count
        by_kind[kind][1] += differ
    print("| table | damaged files | differ |")
    print("|---|---|---|")
    for name, (count, differ) in by_table.items():
        print(f"| {name} | {count} | {differ} |")
    print("\n| damage | damaged files | differ |")
    print("|---|---|---|")
    for name, (count, differ) in by_kind.items():
        print(f"| {name} | {count} | {differ} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1500,
                        help="NLSTAT_FUZZ_EXAMPLES for the fuzz tests (default 1500)")
    parser.add_argument("--survey", type=int, default=40,
                        help="damaged copies per table and kind for the netstat survey (0: none)")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--only", default="",
                        help="run only the fuzz test files whose path holds this text")
    parser.add_argument("--log", default=os.path.join(tempfile.gettempdir(), "nlstat-fuzz.log"))
    args = parser.parse_args()
    tests = tuple(path for path in FUZZ_TESTS if args.only in path)
    status = run_fuzzers(args.examples, args.log, tests) if args.examples > 0 else 0
    if args.survey > 0:
        survey(args.survey, args.seed)
    return 1 if status else 0


if __name__ == "__main__":
    sys.exit(main())
