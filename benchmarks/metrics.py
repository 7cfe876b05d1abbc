#!/usr/bin/env python3
"""Time --count, --dport and the Prometheus paths against `nlstat -ant`, and watch the server.

    python3 benchmarks/loadgen.py --tcp 100000 --https 2000 --netns nlst-bench &   # READY
    python3 benchmarks/metrics.py --netns nlst-bench [--runs 9] [--scrapes 1000]
                                  [--python /path/to/venv/bin/python3]

Re-runs itself inside the namespace (`ip netns exec`), starts `nlstat --serve` on 127.0.0.1,
then:

1. alternating rounds, the order rotated each round: whole runs (start-up included) of
   `nlstat -ant`, `nlstat -ant --count --by state`, `nlstat --count --by state` (every
   table, as netstat's default listing), `nlstat --prometheus`, `nlstat -ant --dport 443`
   (1% of the sockets with `--https 2000`), and one scrape of the warm server (a GET of
   /metrics, each one a fresh kernel dump); median (min-max) wall time, ratio of medians to
   -ant, and the median CPU time (user + system, helpers included) of the whole runs;
2. the server's RSS after the rounds and after --scrapes scrapes (VmRSS), and the CPU time
   it uses while idle for --idle seconds afterwards (utime + stime ticks from /proc).
`--against DIR` adds the whole runs of another checkout to the same rounds (before and after
a change, under the same load). `--python` runs nlstat with another interpreter: a venv's
(`python3 -m venv --without-pip`) skips the .pth files of the system's site-packages, for
a start-up as on a plain host.
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
from typing import Dict, List, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
INSIDE = "NLSTAT_METRICS_BENCH_INSIDE"


PYTHON = [sys.executable]


def nlstat(args: Sequence[str]) -> List[str]:
    return [*PYTHON, "-m", "nlstat", *args]


def environ(tree: Path = ROOT) -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def wall(command: Sequence[str], tree: Path = ROOT) -> Tuple[float, float]:
    """Wall time and CPU time (user + system, the process and its helpers) of one run."""
    started = time.perf_counter()
    # cwd: `python -m` puts the working directory first on sys.path, before PYTHONPATH.
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=environ(tree), cwd=str(tree))
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, command)
    return elapsed, usage.ru_utime + usage.ru_stime


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
        "nlstat -ant --dport 443": ["-ant", "--dport", "443"],
    }
    trees = {name: ROOT for name in modes}
    if options.against:
        # The same runs of another checkout (the code before a change), in the same rounds.
        for name, args in list(modes.items()):
            modes[f"{name} (against)"] = args
            trees[f"{name} (against)"] = Path(options.against).resolve()
    scrape_name = "`--serve`: one scrape"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(nlstat(["--serve", f"127.0.0.1:{port}"]), env=environ(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert server.stderr is not None
        server.stderr.readline()  # "serving ..."
        times: Dict[str, List[float]] = {name: [] for name in [*modes, scrape_name]}
        cpu: Dict[str, List[float]] = {name: [] for name in modes}
        for name, args in modes.items():
            wall(nlstat(args), trees[name])  # warm-up: bytecode, page cache
        scrape(port)
        names = [*modes, scrape_name]
        # Alternating rounds, the order rotated each round; the scrapes of the warm server
        # take their turn among the whole runs, so that every ratio compares the same moments
        # of a shared host.
        for round_number in range(options.runs):
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                if name == scrape_name:
                    times[name].append(scrape(port))
                    continue
                elapsed, used = wall(nlstat(modes[name]), trees[name])
                times[name].append(elapsed)
                cpu[name].append(used)
        base = statistics.median(times["nlstat -ant"])
        print(f"{options.runs} alternating rounds with {' '.join(PYTHON)}; median (min-max) "
              "seconds, ratio of medians\n")
        print("| command | wall time | ratio to -ant | CPU s (median) |")
        print("|---|---|---|---|")
        for name in names:
            used = f"{statistics.median(cpu[name]):.3f}" if name in cpu else "(server)"
            label = name if name == scrape_name else f"`{name}`"
            print(f"| {label} | {summary(times[name])} | "
                  f"{statistics.median(times[name]) / base:.2f} | {used} |")

        if options.scrapes:
            early = rss_kib(server.pid)
            for _ in range(max(options.scrapes - 10 - options.runs, 0)):
                scrape(port)
            late = rss_kib(server.pid)
            ticks = cpu_ticks(server.pid)
            time.sleep(options.idle)
            idle = cpu_ticks(server.pid) - ticks
            print(f"\nserver RSS after {11 + options.runs} scrapes {early} KiB, after "
                  f"{options.scrapes}: {late} KiB ({(late - early) / 1024:+.1f} MiB); CPU while "
                  f"idle for {options.idle:.0f} s: {idle} ticks of "
                  f"1/{os.sysconf('SC_CLK_TCK')} s")
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--netns", default="nlst-bench")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--scrapes", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--python", help="the interpreter that runs nlstat (default: this "
                        "one); e.g. a venv's, to time a start-up without this host's .pth files")
    parser.add_argument("--against", metavar="DIR", help="also time the whole runs of the "
                        "nlstat in this checkout (e.g. `git worktree add /tmp/before HEAD~3`), "
                        "in the same rounds")
    options = parser.parse_args()
    if options.python:
        PYTHON[:] = [options.python]
    if os.environ.get(INSIDE):
        inside(options)
        return
    env = dict(os.environ, **{INSIDE: "1"})
    command = ["ip", "netns", "exec", options.netns, sys.executable, __file__, *sys.argv[1:]]
    sys.exit(subprocess.call(command, env=env))


if __name__ == "__main__":
    main()
