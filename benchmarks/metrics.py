#!/usr/bin/env python3
"""Time --count and the Prometheus paths against `nlstat -ant`, and watch the server.

    python3 benchmarks/loadgen.py --tcp 100000 --netns nlst-bench &     # wait for READY
    python3 benchmarks/metrics.py --netns nlst-bench [--runs 9] [--scrapes 1000]

Re-runs itself inside the namespace (`ip netns exec`), then:

1. alternating rounds of whole runs (start-up included): `nlstat -ant`,
   `nlstat -ant --count --by state`, `nlstat --count --by state` (every table, as netstat's
   default listing), `nlstat --prometheus`; median (min-max) wall time and ratio to -ant;
2. `nlstat --serve` on 127.0.0.1: the wall time of one scrape (a GET of /metrics, each one
   a fresh kernel dump), median of --runs, and its ratio to -ant;
3. the server's RSS after 10 scrapes and after --scrapes scrapes (VmRSS), and the CPU time
   it uses while idle for --idle seconds afterwards (utime + stime ticks from /proc).
Prints Markdown.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Dict, List, Sequence

ROOT = Path(__file__).resolve().parents[1]
INSIDE = "NLSTAT_METRICS_BENCH_INSIDE"


def nlstat(args: Sequence[str]) -> List[str]:
    return [sys.executable, "-m", "nlstat", *args]


def environ() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def wall(command: Sequence[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   env=environ(), timeout=120)
    return time.perf_counter() - started


def summary(times: List[float]) -> str:
    return f"{statistics.median(times):.3f} ({min(times):.3f}-{max(times):.3f})"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def scrape(port: int) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as answer:
        answer.read()
    return time.perf_counter() - started


def inside(options: argparse.Namespace) -> None:
    modes = {
        "nlstat -ant": ["-ant"],
        "nlstat -ant --count --by state": ["-ant", "--count", "--by", "state"],
        "nlstat --count --by state": ["--count", "--by", "state"],
        "nlstat --prometheus": ["--prometheus"],
    }
    times: Dict[str, List[float]] = {name: [] for name in modes}
    for args in modes.values():
        wall(nlstat(args))  # warm-up: bytecode, page cache
    names = list(modes)
    for round_number in range(options.runs):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(wall(nlstat(modes[name])))
    base = statistics.median(times["nlstat -ant"])
    print(f"{options.runs} alternating rounds; median (min-max) seconds, ratio of medians\n")
    print("| command | wall time | ratio to -ant |")
    print("|---|---|---|")
    for name in names:
        print(f"| `{name}` | {summary(times[name])} | "
              f"{statistics.median(times[name]) / base:.2f} |")

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(nlstat(["--serve", f"127.0.0.1:{port}"]), env=environ(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert server.stderr is not None
        server.stderr.readline()  # "serving ..."
        scrapes = [scrape(port) for _ in range(10)]
        early = rss_kib(server.pid)
        scrape_times = [scrape(port) for _ in range(options.runs)]
        for _ in range(options.scrapes - 10 - options.runs):
            scrape(port)
        late = rss_kib(server.pid)
        ticks = cpu_ticks(server.pid)
        time.sleep(options.idle)
        idle = cpu_ticks(server.pid) - ticks
        print(f"\n| `--serve`: one scrape | {summary(scrape_times)} | "
              f"{statistics.median(scrape_times) / base:.2f} |")
        print(f"\nserver RSS after 10 scrapes {early} KiB, after {options.scrapes}: {late} KiB "
              f"({(late - early) / 1024:+.1f} MiB); CPU while idle for {options.idle:.0f} s: "
              f"{idle} ticks of 1/{os.sysconf('SC_CLK_TCK')} s")
        del scrapes
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--netns", default="nlst-bench")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--scrapes", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=10.0)
    options = parser.parse_args()
    if os.environ.get(INSIDE):
        inside(options)
        return
    env = dict(os.environ, **{INSIDE: "1"})
    command = ["ip", "netns", "exec", options.netns, sys.executable, __file__, *sys.argv[1:]]
    sys.exit(subprocess.call(command, env=env))


if __name__ == "__main__":
    main()
