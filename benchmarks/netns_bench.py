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
import contextlib
import os
import statistics
import subprocess
import sys
import time
from typing import Dict, Iterator, List, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def start_loads(
    names: List[str], sockets: int, nursery: Optional[str] = None
) -> List[subprocess.Popen[bytes]]:
    """loadgen.py per name; with `nursery`, each namespace is made from inside that one (so
    it gets the TCP hash table size the nursery's tcp_child_ehash_entries says)."""
    enter = ["nsenter", f"--net=/run/netns/{nursery}"] if nursery else []
    loads = []
    for name in names:
        loads.append(subprocess.Popen(
            [*enter, sys.executable, os.path.join(HERE, "loadgen.py"), "--tcp", str(sockets),
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


@contextlib.contextmanager
def nursery(name: str, buckets: int) -> Iterator[Optional[str]]:
    """A namespace whose children get their own TCP hash table of `buckets` (0: none, the
    children share the host's table, as every namespace does unless the host says otherwise)."""
    if not buckets:
        yield None
        return
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "sysctl", "-q", "-w",
                        f"net.ipv4.tcp_child_ehash_entries={buckets}"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def timed(argv: Sequence[str], env: Dict[str, str], runs: int) -> List[float]:
    # No status check: under --all-netns, another run's namespace without routes or one
    # gone meanwhile may give 1; the time is what counts here.
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL)  # warm-up
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL)
        seconds.append(time.perf_counter() - started)
    return seconds


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--own-hash", action="store_true",
                        help="give each namespace its own TCP hash table "
                             "(net.ipv4.tcp_child_ehash_entries, Linux 5.19+)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 2
    env = dict(os.environ, PYTHONPATH=REPO, LC_ALL="C")
    nlstat = [sys.executable, "-m", "nlstat"]
    prefix = f"nlst-nsb-{os.getpid()}"

    small = 1 << max(args.sockets - 1, 1).bit_length() if args.own_hash else 0
    with nursery(f"{prefix}-nursery", small) as parent:
        loads = start_loads([f"{prefix}-{i}" for i in range(args.namespaces)], args.sockets,
                            parent)
        try:
            listing = subprocess.run([*nlstat, "--all-netns", "-ant"], env=env,
                                     capture_output=True).stdout.splitlines()
            blocks = sum(line.startswith(b"netns: ") for line in listing)
            rows = sum(line.startswith(b"tcp") for line in listing)
            across = timed([*nlstat, "--all-netns", "-ant"], env, args.runs)
        finally:
            stop_loads(loads)

    total = args.namespaces * args.sockets
    big = 1 << (total - 1).bit_length() if args.own_hash else 0
    with nursery(f"{prefix}-nursery", big) as parent:
        loads = start_loads([f"{prefix}-one"], total, parent)
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
    table = "own TCP hash table per namespace" if args.own_hash else "one host-wide TCP hash table"
    print(f"ratio: {a / b:.2f}x ({table})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
