"""`nlstat -rn` against `netstat -rn` on a namespace holding N routes (root only).

    python3 benchmarks/routes_load.py --routes 100000 [--routes6 100000] [--runs 9]

builds a private namespace (tests/netns.py) whose veth0 carries N IPv4 /32 routes through one
gateway (198.18.64.0 upwards) and optionally M IPv6 /128s, all added with one `ip -batch`
(100k routes in about 2 s), then times the commands in alternation (netstat, nlstat, ...) so
that load from other processes hits both alike. Reported per command: median and minimum wall
time, median CPU time (user + system of the child), and the ratio of medians to netstat's.
`build_route_namespace()` is the reusable part: a context manager yielding the namespace.
The namespace and its /etc/netns directory are removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.netns import Namespace, namespace  # noqa: E402
from tests.routes_support import NETSTAT, add_bulk_routes  # noqa: E402


@contextmanager
def build_route_namespace(routes: int, routes6: int = 0) -> Iterator[Namespace]:
    """A namespace with `routes` IPv4 and `routes6` IPv6 host routes on veth0; deleted after."""
    with namespace(prefix="nlst-routesbench") as ns:
        if routes:
            add_bulk_routes(ns, routes, socket.AF_INET)
        if routes6:
            add_bulk_routes(ns, routes6, socket.AF_INET6)
        yield ns


def timed(argv: Sequence[str], env: Dict[str, str]) -> Tuple[float, float]:
    """(wall seconds, child CPU seconds) of one run, output discarded."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise RuntimeError(f"{' '.join(argv)}: wait status {status}")
    return wall, usage.ru_utime + usage.ru_stime


def compare(ns: Namespace, args: Sequence[str], runs: int) -> List[str]:
    env = dict(os.environ, LC_ALL="C", PYTHONPATH=str(REPO))
    commands = {
        "netstat": ns.argv([NETSTAT, *args]),
        "nlstat": ns.argv([sys.executable, "-m", "nlstat", *args]),
        "nlstat, python -S": ns.argv([sys.executable, "-S", "-m", "nlstat", *args]),
        "python -c pass": ns.argv([sys.executable, "-c", "pass"]),
    }
    results: Dict[str, List[Tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            results[name].append(timed(argv, env))
    base = statistics.median(wall for wall, _ in results["netstat"])
    lines = [f"`{' '.join(args)}`, {runs} alternating runs:", "",
             "| command | wall median | wall min | CPU median | wall / netstat |",
             "|---|---|---|---|---|"]
    for name, samples in results.items():
        walls = [wall for wall, _ in samples]
        cpus = [cpu for _, cpu in samples]
        lines.append(
            f"| {name} | {statistics.median(walls):.3f} s | {min(walls):.3f} s | "
            f"{statistics.median(cpus):.3f} s | {statistics.median(walls) / base:.2f} |"
        )
    return lines


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=100000, help="IPv4 host routes")
    parser.add_argument("--routes6", type=int, default=0,
                        help="IPv6 host routes (netstat needs ~5 s for 30k: the kernel re-walks "
                        "the fib6 tree for every 4 KiB of /proc/net/ipv6_route)")
    parser.add_argument("--runs", type=int, default=9, help="runs per command")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (it builds a network namespace)", file=sys.stderr)
        return 2
    # SIGTERM (timeout, kill) unwinds like Ctrl-C, so the namespace is deleted.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    with build_route_namespace(args.routes, args.routes6) as ns:
        print(f"namespace {ns.name}: {args.routes} IPv4 and {args.routes6} IPv6 routes; "
              f"load average {os.getloadavg()[0]:.2f}\n")
        print("\n".join(compare(ns, ["-rn"], args.runs)) + "\n")
        if args.routes6:
            print("\n".join(compare(ns, ["-6", "-rn"], args.runs)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
