"""Run nlstat with test hooks around its formatting helper (nlstat/pipeline.py).

    PYTHONPATH=<tree> python3 tests/pipeline_hooks.py NETSTAT-ARGS...

The hooks live here, not in nlstat: the real code runs unchanged, wrapped. Environment:

NLSTAT_TEST_REPORT=1      lines on stderr, each starting with "nlstat-test: ", that say what ran:
                          `fork ordered_map|handed_off PID` when a helper is forked,
                          `helper PID chunks N` when a helper ends its work normally,
                          `parent chunks N` (chunks the parent formatted while a helper lived,
                          after each ordered_map), `reaped PID status S` (the wait status),
                          `one-walk held|overflow` (modes.sockets' one-walk tcp dump).
NLSTAT_TEST_KILL_AT=N     the helper SIGKILLs itself when it is given its Nth chunk (1 = the
                          first); 0: as soon as it starts, before it reads a chunk.
NLSTAT_TEST_SET=a.b.NAME=INT,...   set module constants first (thresholds lowered so that a
                          path runs with fewer sockets; the path itself is the real one).
NLSTAT_TEST_NO_COUNTERS=1 --count never takes tcp's ESTABLISHED from the kernel's counters
                          (modes/count.py _tally_by_subtraction declines), so that the
                          dump paths it would stand in for run on a quiet namespace.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, Callable, Iterator

PREFIX = b"nlstat-test: "


def say(text: str) -> None:
    os.write(2, PREFIX + text.encode() + b"\n")


def install() -> None:
    from nlstat import pipeline
    from nlstat.modes import sockets

    for setting in filter(None, os.environ.get("NLSTAT_TEST_SET", "").split(",")):
        name, _, value = setting.partition("=")
        module_name, _, attribute = name.rpartition(".")
        module = importlib.import_module(module_name)
        assert hasattr(module, attribute), name
        setattr(module, attribute, int(value))

    if os.environ.get("NLSTAT_TEST_NO_COUNTERS", "") not in ("", "0"):
        from nlstat.modes import count

        count._tally_by_subtraction = lambda *args: False  # type: ignore[assignment]

    report = os.environ.get("NLSTAT_TEST_REPORT", "") not in ("", "0")
    kill_at = os.environ.get("NLSTAT_TEST_KILL_AT")
    parent = os.getpid()
    live = {"helpers": 0, "parent_chunks": 0, "kind": "handed_off"}

    real_helper = pipeline._helper

    def helper(work: Any, chunks_in: int, results_out: int, sink: Any) -> None:
        count = 0

        def counted(chunk: bytes) -> bytes:
            nonlocal count
            count += 1
            if kill_at is not None and count == int(kill_at):
                os.kill(os.getpid(), 9)
            return work(chunk)  # type: ignore[no-any-return]

        if kill_at is not None and int(kill_at) == 0:
            os.kill(os.getpid(), 9)
        real_helper(counted, chunks_in, results_out, sink)
        if report:
            say(f"helper {os.getpid()} chunks {count}")

    pipeline._helper = helper

    real_init = pipeline._Helper.__init__
    real_reap = pipeline._Helper._reap

    def init(self: Any, work: Any, sink: Any = None) -> None:
        real_init(self, work, sink)
        live["helpers"] += 1
        if report:
            say(f"fork {'ordered_map' if sink is None else 'handed_off'} {self.pid}")

    def reap(self: Any) -> None:
        known = self.status is not None
        real_reap(self)
        if not known:
            live["helpers"] -= 1
            if report:
                say(f"reaped {self.pid} status {self.status}")

    pipeline._Helper.__init__ = init  # type: ignore[method-assign]
    pipeline._Helper._reap = reap  # type: ignore[method-assign]

    real_map = pipeline.ordered_map

    def ordered_map(chunks: Any, work: Callable[[bytes], bytes], *args: Any,
                    **kwargs: Any) -> Iterator[bytes]:
        counted = 0

        def parent_work(chunk: bytes) -> bytes:
            nonlocal counted
            if os.getpid() == parent and live["helpers"] > 0:
                counted += 1
            return work(chunk)

        yield from real_map(chunks, parent_work, *args, **kwargs)
        if report:
            say(f"parent chunks {counted}")

    pipeline.ordered_map = ordered_map
    sockets.ordered_map = ordered_map  # imported by name there

    real_both = sockets._write_tcp_both

    def write_tcp_both(*args: Any) -> bool:
        held = real_both(*args)
        if report:
            say(f"one-walk {'held' if held else 'overflow'}")
        return held

    sockets._write_tcp_both = write_tcp_both


def main() -> None:
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # tests/ is not nlstat's import root
    install()
    from nlstat.__main__ import main as nlstat_main

    sys.argv[0] = "nlstat"
    nlstat_main()


if __name__ == "__main__":
    main()
