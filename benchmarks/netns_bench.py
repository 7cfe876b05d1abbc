#!/usr/bin/env python3
"""`nlstat --all-netns -ant` over N namespaces of K sockets against one `nlstat -ant` over N*K.

    python3 benchmarks/netns_bench.py [--namespaces 20] [--sockets 2000] [--runs 5]

Phase 1 builds N namespaces with benchmarks/loadgen.py (K tcp sockets each, loopback only)
and times `nlstat --all-netns -ant` from the host; phase 2 removes them, builds one namespace
with N*K sockets and times `nlstat -ant` inside it (nsenter: no fork of ours in between).
Both write to /dev/null; the figure is the median wall time of --runs runs after one warm-up.
--all-netns also lists every other namespace on the host (the host's own, other test runs'):
their blocks and rows are counted and printed, so the comparison can be judged. Root only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def start_loads(names: List[str], sockets: int) -> List[subprocess.Popen[bytes]]:
    loads = []
    for name in names:
        loads.append(subprocess.Popen(
            [sys.executable, os.path.join(HERE, "loadgen.py"), "--tcp", str(sockets),
             "--netns", name, "--hold", "900"],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL))
    for load in loads:
        assert load.stdout is not None
        line = load.stdout.readline()
        if not line.startswith(b"READY "):
            stop_loads(loads)
            raise SystemExit(f"loadgen failed: {line!r}")
    return loads


def stop_loads(loads: List[subprocess.Popen[bytes]]) -> None:
    for load in loads:
        if load.poll() is None:
            load.terminate()
    for load in loads:
        load.wait()


def timed(argv: Sequence[str], env: Dict[str, str], runs: int) -> List[float]:
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)  # warm-up
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
        seconds.append(time.perf_counter() - started)
    return seconds


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 2
    env = dict(os.environ, PYTHONPATH=REPO, LC_ALL="C")
    nlstat = [sys.executable, "-m", "nlstat"]
    prefix = f"nlst-nsb-{os.getpid()}"

    loads = start_loads([f"{prefix}-{i}" for i in range(args.namespaces)], args.sockets)
    try:
        listing = subprocess.run([*nlstat, "--all-netns", "-ant"], env=env,
                                 capture_output=True, check=True).stdout.splitlines()
        blocks = sum(line.startswith(b"netns: ") for line in listing)
        rows = sum(line.startswith(b"tcp") for line in listing)
        across = timed([*nlstat, "--all-netns", "-ant"], env, args.runs)
    finally:
        stop_loads(loads)

    total = args.namespaces * args.sockets
    loads = start_loads([f"{prefix}-one"], total)
    try:
        inside = ["nsenter", f"--net=/run/netns/{prefix}-one"]
        one_rows = sum(line.startswith(b"tcp") for line in subprocess.run(
            [*inside, *nlstat, "-ant"], env=env, capture_output=True, check=True
        ).stdout.splitlines())
        single = timed([*inside, *nlstat, "-ant"], env, args.runs)
    finally:
        stop_loads(loads)

    a, b = statistics.median(across), statistics.median(single)
    print(f"--all-netns -ant: {blocks} namespaces ({args.namespaces} x {args.sockets} sockets "
          f"built), {rows} rows: median {a * 1000:.0f} ms of {args.runs}")
    print(f"-ant in one namespace: {one_rows} rows: median {b * 1000:.0f} ms of {args.runs}")
    print(f"ratio: {a / b:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
