#!/usr/bin/env python3
"""`nlstat -ant --load FILE` against the live `nlstat -ant` over the same sockets.

    python3 benchmarks/save_load.py [--sockets 100000] [--rounds 10] [--args -ant]

Builds one namespace with benchmarks/loadgen.py (--sockets tcp sockets, loopback only), saves
one run of `nlstat ARGS` inside it, checks that loading the file prints the same bytes, then
times the live run and the load interleaved (live, load, load, live, ...: a loaded machine
slows both alike), stdout to /dev/null, and prints each side's minimum and median wall time,
the load's ratio to the live run, and the file's size. Root only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
NETNS = "nlst-savebench"


def timed(argv: Sequence[str], env: Dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: status {done.returncode}: {done.stderr!r}")
    return time.perf_counter() - started


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=100000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--args", default="-ant", help="the nlstat options (one word)")
    options = parser.parse_args(argv)
    env = dict(os.environ, PYTHONPATH=REPO, LC_ALL="C")
    load = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "loadgen.py"), "--tcp", str(options.sockets),
         "--netns", NETNS, "--hold", "900"],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert load.stdout is not None
        line = load.stdout.readline()
        if not line.startswith(b"READY "):
            raise SystemExit(f"loadgen failed: {line!r}")
        inside = ["ip", "netns", "exec", NETNS, sys.executable, "-m", "nlstat", options.args]
        with tempfile.TemporaryDirectory() as scratch:
            path = os.path.join(scratch, "run.nlstat")
            started = time.perf_counter()
            saved = subprocess.run([*inside, "--save", path], env=env, capture_output=True,
                                   check=True)
            save_seconds = time.perf_counter() - started
            loading = [sys.executable, "-m", "nlstat", options.args, "--load", path]
            loaded = subprocess.run(loading, env=env, capture_output=True, check=True)
            if loaded.stdout != saved.stdout:
                raise SystemExit("the loaded run printed other bytes than the saved one")
            live: List[float] = []
            replayed: List[float] = []
            for index in range(options.rounds):
                pair = [(live, inside), (replayed, loading)]
                for times, command in pair if index % 2 == 0 else pair[::-1]:
                    times.append(timed(command, env))
            size = os.path.getsize(path)
    finally:
        load.terminate()
        load.wait()
    print(f"{options.sockets} tcp sockets, `nlstat {options.args}`, {options.rounds} rounds")
    per_socket = size / options.sockets
    print(f"save: {save_seconds:.3f} s, file {size} bytes ({per_socket:.1f} per socket)")
    for name, times in (("live", live), ("--load", replayed)):
        print(f"{name:7} min {min(times):.3f} s  median {statistics.median(times):.3f} s")
    print(f"--load / live: min {min(replayed) / min(live):.2f}x, "
          f"median {statistics.median(replayed) / statistics.median(live):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
