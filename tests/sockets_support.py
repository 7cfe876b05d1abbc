"""The harness side of tests/population.py: start it inside a namespace, talk to it, stop it.

`Running(ns)` starts the population in a tests/netns.py `Namespace`, waits for READY, and
before each comparison `quiet_for(seconds)` keeps TIME_WAIT expiry (and SYN retransmits)
out of the comparison's window.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
from typing import Dict, List, Optional

from tests import netns, population


class Running:
    """A population started inside `namespace` (a tests/netns.py Namespace), stopped on exit.

    `with Running(ns) as pop:` waits for READY (`pop.info` has its description);
    `pop.quiet_for(seconds)` before a comparison keeps timers from firing during it.
    """

    def __init__(self, namespace: netns.Namespace, timeout: float = 600.0, bulk: int = 30,
                 ready_within: float = 60.0) -> None:
        self.namespace = namespace
        self.timeout = timeout
        self.bulk = bulk
        self.ready_within = ready_within
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.info: Dict[str, object] = {}
        self._timers: Optional[Dict[str, List[float]]] = None
        self._timers_at = 0.0
        # Bumped whenever the tables are known to change (fresh TIME_WAIT, a timer waited
        # out, a restart): outputs captured under an older generation are stale.
        self.generation = 0
        self.restarts = 0

    def __enter__(self) -> Running:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Running:
        command = [sys.executable, population.__file__,
                   "--dir", self.namespace.scratch,
                   "--timeout", str(self.timeout), "--bulk", str(self.bulk)]
        self.process = self.namespace.popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            line = self._line(self.ready_within)
            if not line.startswith("READY "):
                raise RuntimeError(f"population did not start: {line!r}: {self._stderr()}")
            self.info = json.loads(line[6:])
        except BaseException:
            self.stop()
            raise
        return self

    def _line(self, limit: float) -> str:
        assert self.process is not None and self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], limit)
        if not ready:
            raise RuntimeError(f"population silent for {limit:.0f} s")
        return self.process.stdout.readline().decode(errors="replace").strip()

    def _stderr(self) -> str:
        if self.process is None or self.process.stderr is None:
            return ""
        if self.process.poll() is None:
            return "(still running)"
        return self.process.stderr.read().decode(errors="replace")[-4000:]

    def command(self, text: str, limit: float = 20.0) -> str:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(text.encode() + b"\n")
        self.process.stdin.flush()
        return self._line(limit)

    def timers(self) -> Dict[str, List[float]]:
        answer = self.command("timers")
        if not answer.startswith("OK "):
            raise RuntimeError(f"timers query failed: {answer!r}")
        return json.loads(answer[3:])  # type: ignore[no-any-return]

    def quiet_for(self, budget: float, retransmits: bool = False) -> None:
        """Return when no table-changing timer should fire in the next `budget` seconds.

        TIME_WAIT sockets about to expire are waited out, then a fresh pair is made (so a
        TIME_WAIT row exists for every comparison); with `retransmits`, a SYN_SENT
        retransmission due within the budget is waited out too (when it is due soon).
        Timers are read from the population only when the last reading, aged, says a
        decision is near (reading /proc/net/tcp costs ~0.2 s on a host with 100k sockets).
        The wait is bounded: past it the caller's churn check takes over.
        """
        slack = 2.5
        deadline = time.monotonic() + 90
        fresh = False
        while time.monotonic() < deadline:
            if self._timers is None or time.monotonic() - self._timers_at > 30:
                self._read_timers()
                fresh = True
            assert self._timers is not None
            aged = time.monotonic() - self._timers_at
            (tw_count, tw_left), (syn_count, syn_left) = self._timers["tw"], self._timers["syn"]
            tw_left -= aged
            syn_left -= aged
            waits = []
            # A comparison longer than a TIME_WAIT's life can't avoid its expiry: then only
            # make sure one exists, and leave the rest to the churn check.
            if tw_count and tw_left < budget + slack and budget + slack < 50:
                waits.append(tw_left + slack)
            if retransmits and syn_count and syn_left < budget + slack and syn_left < 15:
                waits.append(syn_left + slack)
            if not waits and tw_count:
                return
            if not fresh:
                self._read_timers()  # decide on a real reading, not an estimate
                fresh = True
                continue
            if not tw_count:
                answer = self.command("timewait")
                if not answer.startswith("OK"):
                    raise RuntimeError(f"timewait refresh failed: {answer!r}")
                self._timers = None
                self.generation += 1
                continue
            time.sleep(max(0.05, min(max(waits), 20.0)))
            self._timers = None
            fresh = False
            self.generation += 1

    def ensure_alive(self) -> None:
        """Start the population again if it ended (hard timeout, crash)."""
        if self.alive():
            return
        stderr = self._stderr()
        self.stop()
        self.restarts += 1
        population.log(f"population had ended ({stderr.strip()[-300:]!r}); starting it again")
        self._timers = None
        self.generation += 1
        self.start()

    def _read_timers(self) -> None:
        self._timers = self.timers()
        self._timers_at = time.monotonic()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()  # end of input: the population closes everything
            process.wait(10)
        except BaseException:  # timeout, broken pipe, or Ctrl-C: do not leave it behind
            process.kill()
            process.wait()
            if not isinstance(sys.exc_info()[1], (OSError, subprocess.TimeoutExpired)):
                raise
        finally:
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
