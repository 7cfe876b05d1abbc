#!/usr/bin/env python3
"""One --watch tick against one `nlstat -ant`, in a loaded namespace, with 1% of it changing.

    python3 benchmarks/loadgen.py --tcp 100000 --netns nlst-bench &     # wait for READY
    python3 benchmarks/watch_bench.py [--netns nlst-bench] [--ticks 10] [--pairs 250]

Inside the namespace (this process joins it), between two ticks PAIRS loopback connections
of this process are reset and PAIRS new ones opened (4 x PAIRS sockets changing: 1,000 of
100,000 with the default), and the sockets of one more connection move data. Timed, in this
process and with the same clock: the listing `nlstat -ant` makes (modes.sockets.list_once,
written to /dev/null, its second core included) and a --watch tick (the dump with the tcp_info
counters, the comparison, the change lines written to /dev/null). Also the wall time of whole
`nlstat -ant` runs (start-up included). Prints medians and the ratio. Root only; loopback
only. Not part of the test run.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import struct
import subprocess
import sys
import time
from typing import Callable, List, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from nlstat import cli  # noqa: E402
from nlstat.backends.sockets import SocketSource  # noqa: E402
from nlstat.env import Environment  # noqa: E402
from nlstat.modes.sockets import list_once  # noqa: E402
from nlstat.modes.watch import TextPrinter, collect  # noqa: E402
from nlstat.query import Query  # noqa: E402
from nlstat.resolve import Names  # noqa: E402
from nlstat.watchdiff import compare_all  # noqa: E402
from tests.netns import setns  # noqa: E402

LINGER_RESET = struct.pack("ii", 1, 0)
PORT = 7390

Pair = Tuple[socket.socket, socket.socket]


def _query(args: List[str], env: Environment) -> Query:
    parsed = cli.parse(args, env)
    assert isinstance(parsed, Query), parsed
    return parsed


class Churn:
    """PAIRS connections of this process, replaced at each step, and one that moves data."""

    def __init__(self, pairs: int) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", PORT))
        self.listener.listen(4096)
        self.count = pairs
        self.pairs = self._open(pairs)
        self.talk = self._open(1)[0]

    def _open(self, count: int) -> List[Pair]:
        made = []
        for _ in range(count):
            client = socket.create_connection(self.listener.getsockname())
            server, _ = self.listener.accept()
            made.append((client, server))
        return made

    def step(self) -> None:
        for client, server in self.pairs:
            for sock in (client, server):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
                sock.close()
        self.pairs = self._open(self.count)
        client, server = self.talk
        client.sendall(b"z" * 65536)
        got = 0
        while got < 65536:
            got += len(server.recv(1 << 20))

    def close(self) -> None:
        for client, server in self.pairs + [self.talk]:
            client.close()
            server.close()
        self.listener.close()


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--netns", default="nlst-bench")
    parser.add_argument("--ticks", type=int, default=10)
    parser.add_argument("--pairs", type=int, default=250)
    args = parser.parse_args()

    environ = {**os.environ, "PYTHONPATH": REPO, "LC_ALL": "C"}
    whole = []
    for _ in range(args.ticks):
        started = time.perf_counter()
        subprocess.run(["ip", "netns", "exec", args.netns, sys.executable, "-m", "nlstat",
                        "-ant"], stdout=subprocess.DEVNULL, env=environ, check=True)
        whole.append(time.perf_counter() - started)

    setns(f"/run/netns/{args.netns}")
    sink = open(os.devnull, "wb")  # noqa: SIM115 - held for the whole run
    env = Environment(stdout=sink)  # type: ignore[arg-type]
    listing = _query(["-ant"], env)
    source = SocketSource(listing, env)
    names = Names(True, True, True)
    churn = Churn(args.pairs)
    try:
        listings = [timed(lambda: list_once(listing, env, source, names))
                    for _ in range(args.ticks)]
        source.close()
        watch = _query(["-ant", "--watch", "1"], env)
        source = SocketSource(watch, env)
        printer = TextPrinter(watch, env, Names(True, True, True), None)
        counters: dict = {}
        source.byte_counters = counters
        tables = collect(watch, env, source)
        printer.listing(1, tables)
        ticks = []
        changes = []
        for tick in range(2, args.ticks + 2):
            churn.step()
            started = time.perf_counter()
            new_counters: dict = {}
            source.byte_counters = new_counters
            new_tables = collect(watch, env, source, tables, counters)
            closed, changed = compare_all(tables, new_tables, counters, new_counters)
            printer.changes(tick, 1.0, new_tables, closed, changed)
            sink.flush()
            ticks.append(time.perf_counter() - started)
            changes.append(len(closed) + len(changed))
            tables, counters = new_tables, new_counters
        sockets = sum(map(len, tables))
    finally:
        churn.close()
        source.close()

    tick = statistics.median(ticks)
    listed = statistics.median(listings)
    run = statistics.median(whole)
    print(f"sockets listed per tick: {sockets}; changes per tick: {min(changes)}-{max(changes)}")
    print(f"`nlstat -ant` run (wall, start-up included): median {run * 1000:.0f} ms")
    print(f"`-ant` listing in process:                 median {listed * 1000:.0f} ms")
    print(f"--watch tick:                              median {tick * 1000:.0f} ms "
          f"(min {min(ticks) * 1000:.0f}, max {max(ticks) * 1000:.0f})")
    print(f"tick / listing: {tick / listed:.2f}x; tick / whole run: {tick / run:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
