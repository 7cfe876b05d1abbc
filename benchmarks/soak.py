#!/usr/bin/env python3
"""Long runs under churn: `nlstat -c` and `nlstat --watch` for N minutes each, their memory and
descriptors sampled, growth reported (the figures of docs/reliability.md).

    python3 benchmarks/soak.py [--minutes 10] [--tcp 100000] [--interval 1] [--sample 5]
                               [--modes continuous,watch] [--args=-ant]

Builds a namespace with benchmarks/loadgen.py (TCP sockets held by its workers), starts the
churn of tests/churn.py inside it (batches of 200 tcp and 200 unix connections opened and
closed, one batch after another, plus 10 long-lived connections of each kind), then runs each
mode for MINUTES: `nlstat -c ARGS` and `nlstat --watch INTERVAL ARGS`, stdout to /dev/null.
Every SAMPLE seconds it reads the nlstat process's VmRSS and its open descriptors
(/proc/PID/status, /proc/PID/fd) and the namespace's tcp sockets, TIME_WAIT included
(/proc/PID/net/sockstat: the churn's closes leave TIME_WAIT sockets, so the count moves with
the churn's pace, and the memory of a --watch tick with it). Growth is measured from the
first sample after a warm-up (a fifth of the run, at least 2 samples) to the last, and as the
slope of a least-squares line through the samples after the warm-up (KiB per minute). The
churn's batch count and the load's socket count are printed too. Root only; everything stays
on the namespace's loopback. Not part of the test run: it takes 2 x MINUTES.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = {"continuous": ["-c"], "watch": ["--watch"]}


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def tcp_sockets(pid: int) -> int:
    """tcp sockets of the process's namespace, TIME_WAIT included (/proc/PID/net/sockstat)."""
    with open(f"/proc/{pid}/net/sockstat", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("TCP:"):
                fields = line.split()
                return int(fields[fields.index("inuse") + 1]) + int(fields[fields.index("tw") + 1])
    return 0


def start_load(netns: str, tcp: int, hold: float) -> Tuple[subprocess.Popen[bytes], str]:
    ready = f"/tmp/{netns}.ready"
    load = subprocess.Popen([sys.executable, os.path.join(REPO, "benchmarks", "loadgen.py"),
                             "--tcp", str(tcp), "--netns", netns, "--hold", str(int(hold)),
                             "--ready-file", ready], stdout=subprocess.PIPE)
    assert load.stdout is not None
    line = load.stdout.readline().decode()
    if not line.startswith("READY"):
        load.wait(30)
        raise SystemExit(f"loadgen did not get ready: {line!r}")
    return load, line.strip()


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def slope(points: Sequence[Tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value), per minute."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return 60.0 * sum((t - mean_t) * (v - mean_v) for t, v in points) / var


def soak(netns: str, mode: str, args: List[str], minutes: float, interval: float,
         every: float) -> Dict[str, object]:
    environ = {**os.environ, "PYTHONPATH": REPO, "LC_ALL": "C"}
    argv = [*MODES[mode], *([str(interval)] if mode == "watch" else []), *args]
    command = ["ip", "netns", "exec", netns, sys.executable, "-m", "nlstat", *argv]
    errors = open(f"/tmp/{netns}-{mode}.stderr", "wb")  # noqa: SIM115
    started = time.monotonic()
    # `ip netns exec` execs the command: the pid is nlstat's own.
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors, env=environ)
    samples: List[Tuple[float, int, int, int]] = []
    try:
        time.sleep(min(every, 2.0))
        while time.monotonic() - started < minutes * 60:
            if process.poll() is not None:
                break
            try:
                samples.append((time.monotonic() - started, status_kib(process.pid, "VmRSS"),
                                descriptors(process.pid), tcp_sockets(process.pid)))
            except OSError:
                break
            time.sleep(every)
        peak = status_kib(process.pid, "VmHWM") if process.poll() is None else 0
    finally:
        alive = process.poll() is None
        stop(process, signal.SIGINT)  # Ctrl-C: both modes end quietly
        errors.close()
    with open(f"/tmp/{netns}-{mode}.stderr", "rb") as handle:
        stderr = handle.read().decode(errors="replace")
    warm = max(2, len(samples) // 5)
    steady = samples[warm:] or samples
    first, last = steady[0], steady[-1]
    return {
        "mode": mode,
        "argv": "nlstat " + " ".join(argv),
        "seconds": round(samples[-1][0] if samples else 0.0),
        "samples": len(samples),
        "ran_to_the_end": alive,
        "exit_status": process.returncode,
        "stderr_lines": len(stderr.splitlines()),
        "rss_kib_first": first[1],
        "rss_kib_last": last[1],
        "rss_kib_min": min(s[1] for s in steady),
        "rss_kib_max": max(s[1] for s in steady),
        "rss_kib_per_minute": round(slope([(t, r) for t, r, _, _ in steady]), 1),
        "tcp_first": first[3],
        "tcp_last": last[3],
        "tcp_min": min(s[3] for s in steady),
        "tcp_max": max(s[3] for s in steady),
        "tcp_per_minute": round(slope([(t, n) for t, _, _, n in steady]), 1),
        "peak_rss_kib": peak,
        "fds_first": first[2],
        "fds_last": last[2],
        "fds_max": max(s[2] for s in steady),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--tcp", type=int, default=100000)
    parser.add_argument("--interval", type=float, default=1.0, help="--watch SECONDS")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--modes", default="continuous,watch")
    parser.add_argument("--args", default="-ant", help="nlstat's listing options")
    parser.add_argument("--netns", default="nlst-soak")
    options = parser.parse_args()
    modes = options.modes.split(",")
    hold = len(modes) * options.minutes * 60 + 300

    load, ready = start_load(options.netns, options.tcp, hold)
    churn: Optional[subprocess.Popen[bytes]] = None
    results = []
    try:
        print(ready, flush=True)
        churn = subprocess.Popen(
            ["ip", "netns", "exec", options.netns, sys.executable,
             os.path.join(REPO, "tests", "churn.py"), str(int(hold))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert churn.stdout is not None
        churn.stdout.readline()  # the long-lived sockets: the churn has begun
        for mode in modes:
            result = soak(options.netns, mode, options.args.split(), options.minutes,
                          options.interval, options.sample)
            results.append(result)
            print(json.dumps(result), flush=True)
    finally:
        batches = ""
        if churn is not None:
            assert churn.stdin is not None and churn.stdout is not None
            churn.stdin.close()  # the churn ends when its stdin closes, and says its batches
            try:
                batches = churn.stdout.read().decode().strip()
                churn.wait(60)
            except subprocess.TimeoutExpired:
                churn.kill()
        stop(load)
    print(f"churn batches (200 tcp + 200 unix connections each): {batches}")
    print("| mode | minutes | samples | tcp sockets first → last (min-max) | RSS first → last"
          " (KiB) | RSS min-max | RSS slope (KiB/min) | fds first → last (max) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| `{r['argv']}` | {int(r['seconds']) / 60:.1f} | {r['samples']}"
              f" | {r['tcp_first']} → {r['tcp_last']} ({r['tcp_min']}-{r['tcp_max']})"
              f" | {r['rss_kib_first']} → {r['rss_kib_last']}"
              f" | {r['rss_kib_min']}-{r['rss_kib_max']} | {r['rss_kib_per_minute']}"
              f" | {r['fds_first']} → {r['fds_last']} ({r['fds_max']}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
