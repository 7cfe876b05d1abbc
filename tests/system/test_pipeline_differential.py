"""Live differential test of the two-process paths: netstat and nlstat on ~19,500 sockets.

tests/system/test_sockets_differential.py's population is about 30 sockets, below the point
where nlstat forks its formatting helper (nlstat/pipeline.py), so ordered_map and handed_off
would be compared with netstat only in manual benchmarks. Here a quiet namespace holds
thousands of sockets of each kind (tests/bulk_population.py, three processes), enough that the
helper starts for tcp over both families (one-walk dump and its IPv6 hold; /proc text),
udp and unix, under each backend. Each comparison is byte for byte with the retry of the
other module (`compare`); nlstat runs under tests/pipeline_hooks.py, whose report says what ran,
so a case cannot pass on the one-process path. The one-walk hold's overflow and the
per-family dumps run with their thresholds lowered through that hook (the paths are the
real ones; only the limit that sends a listing there is smaller).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence

import pytest

from tests import netns
from tests.system import sockets_cases as cases
from tests.system.test_sockets_differential import Run, World, compare

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parents[2]
HOOKS = ROOT / "tests" / "pipeline_hooks.py"
BULK = ROOT / "tests" / "bulk_population.py"
# Sockets per process (each well under 20,000 descriptors). Sized from the chunks: the helper
# starts after 4 chunks (32 KiB of sock_diag messages, ~300 sockets; 64 KiB of /proc text,
# ~430 tcp, ~510 udp, ~380 udp6, ~1,100 unix lines) and must get several more of each table.
PROCESSES = (
    {"tcp4": 4000},
    {"tcp6": 2000, "udp4": 3000, "udp6": 2500},
    {"unix": 8000},
)
RUN_TIMEOUT = 120.0


class Population:
    """The bulk population's processes; quiet: nothing in it has a timer that changes a row."""

    generation = 0

    def __init__(self, ns: netns.Namespace) -> None:
        self.processes: List[subprocess.Popen[bytes]] = []
        for number, counts in enumerate(PROCESSES):
            options = [f"--{name}={count}" for name, count in counts.items()]
            process = ns.popen(
                [sys.executable, str(BULK), *options,
                 f"--port4={9000 + 2 * number}", f"--port6={9001 + 2 * number}"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            self.processes.append(process)
        for process in self.processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line.startswith(b"ready "):
                self.stop()
                raise RuntimeError(f"bulk population did not start: {line!r}")

    def ensure_alive(self) -> None:
        assert all(p.poll() is None for p in self.processes), "a bulk process ended"

    def quiet_for(self, budget: float, retransmits: bool = False) -> None:
        pass  # no TIME_WAIT, no SYN_SENT: nothing to wait out

    def stop(self) -> None:
        for process in self.processes:
            if process.stdin is not None:
                process.stdin.close()
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    netns.skip_unless_root()
    with netns.Namespace(prefix="nlst-bulk") as ns:
        population = Population(ns)
        try:
            yield World(ns, population, {}, {})  # type: ignore[arg-type]
        finally:
            population.stop()


class Hooked:
    """nlstat under tests/pipeline_hooks.py: the hook lines of its last run are kept apart."""

    def __init__(self, backend: str, settings: Optional[Mapping[str, str]] = None) -> None:
        self.env = cases.nlstat_env(backend)
        self.env["NLSTAT_TEST_REPORT"] = "1"
        self.env.update(settings or {})
        self.report: List[str] = []

    def __call__(self, ns: netns.Namespace, args: Sequence[str]) -> Run:
        result = ns.run([sys.executable, str(HOOKS), *args], env=self.env,
                        timeout=RUN_TIMEOUT, cwd="/")
        lines = result.stderr.splitlines(keepends=True)
        self.report = [line.decode().split(": ", 1)[1].strip() for line in lines
                       if line.startswith(b"nlstat-test: ")]
        stderr = b"".join(line for line in lines if not line.startswith(b"nlstat-test: "))
        return Run(result.returncode, result.stdout, stderr)

    def count(self, word: str) -> int:
        return sum(1 for line in self.report if line.startswith(word))

    def helper_chunks(self) -> int:
        return sum(int(line.split()[-1]) for line in self.report if line.startswith("helper "))


class Case(NamedTuple):
    args: str
    backend: str
    # What must have run: helpers forked by ordered_map and by handed_off (one per table), and
    # the one-walk tcp dump's outcome ("held", "overflow", or "" when it must not run).
    ordered: int
    handed: int
    one_walk: str = ""
    settings: Dict[str, str] = {}


def cases_for(args: str, ordered: Dict[str, int], handed: Dict[str, int],
              one_walk: Dict[str, str]) -> List[Case]:
    return [Case(args, backend, ordered[backend], handed[backend], one_walk.get(backend, ""))
            for backend in cases.BACKENDS]


NETLINK_HOLDS = {"auto": "held", "netlink": "held"}
CASES: List[Case] = [
    # tcp: one walk for both families over netlink (IPv6 held), two /proc files with proc
    *cases_for("-ant", {"auto": 1, "netlink": 1, "proc": 2}, {"auto": 0, "netlink": 0, "proc": 0},
               NETLINK_HOLDS),
    *cases_for("-antp", {"auto": 1, "netlink": 1, "proc": 2},
               {"auto": 0, "netlink": 0, "proc": 0}, NETLINK_HOLDS),
    *cases_for("-anu", {"auto": 2, "netlink": 2, "proc": 2}, {"auto": 0, "netlink": 0, "proc": 0},
               {}),
    # unix: /proc/net/unix read by this process, formatted and written by the helper; under
    # netlink unix_diag's records are joined with /proc (one process)
    *cases_for("-anx", {"auto": 0, "netlink": 0, "proc": 0}, {"auto": 1, "netlink": 0, "proc": 1},
               {}),
    *cases_for("-an", {"auto": 3, "netlink": 3, "proc": 4}, {"auto": 1, "netlink": 0, "proc": 1},
               NETLINK_HOLDS),
    # the hold overflows (2,000 IPv6 rows are ~160 KB): IPv4 written, IPv6 asked on its own
    *[Case("-ant", backend, 2, 0, "overflow",
           {"NLSTAT_TEST_SET": "nlstat.modes.sockets.HELD_IPV6_LIMIT=65536"})
      for backend in ("auto", "netlink")],
    # more IPv6 sockets in use than the one-walk limit: one dump per family from the start
    Case("-ant", "netlink", 2, 0, "",
         {"NLSTAT_TEST_SET": "nlstat.backends.sockets.ONE_WALK_IPV6_LIMIT=1000"}),
]


def case_id(case: Case) -> str:
    extra = "-" + case.settings["NLSTAT_TEST_SET"].split(".")[-1].split("=")[0] \
        if case.settings else ""
    return f"{case.args}-{case.backend}{extra}"


def test_population_is_large(world: World) -> None:
    """The tables really hold thousands of rows each (what the helper thresholds need)."""
    out = world.ns.run([cases.NETSTAT, "-an"], env=cases.base_env(), timeout=RUN_TIMEOUT).stdout
    rows = out.splitlines()
    assert sum(row.startswith(b"tcp ") for row in rows) >= 4000
    assert sum(row.startswith(b"tcp6 ") for row in rows) >= 2000
    assert sum(row.startswith(b"udp ") for row in rows) >= 3000
    assert sum(row.startswith(b"udp6 ") for row in rows) >= 2500
    assert sum(row.startswith(b"unix ") for row in rows) >= 8000


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_two_process_paths_match_netstat(world: World, case: Case) -> None:
    candidate = Hooked(case.backend, case.settings)
    compare(world, case.args.split(), candidate, label=f"nlstat[{case.backend}]")
    report = candidate.report
    assert candidate.count("fork ordered_map") == case.ordered, report
    assert candidate.count("fork handed_off") == case.handed, report
    forks = case.ordered + case.handed
    if forks:
        # every helper did part of the work and ended normally (wait status 0)
        assert candidate.count("helper ") == candidate.count("fork "), report
        assert candidate.helper_chunks() >= forks, report
        assert all(line.endswith(" status 0") for line in report if line.startswith("reaped")), \
            report
    walks = [line.split()[-1] for line in report if line.startswith("one-walk")]
    assert walks == ([case.one_walk] if case.one_walk else []), report
    # Which process formats a given chunk past the fork (the adaptive share) depends on the
    # two cores' speeds: "parent chunks N" in the report, not asserted.


# -- a reader that leaves: `nlstat -an | head -1` on thousands of rows (issue 12.6) -----------


def _reader_leaves(ns: netns.Namespace, argv: Sequence[str], env: Mapping[str, str],
                   take: int) -> Run:
    """Run argv, read `take` bytes of stdout (a first line when take is 0, as `head -1`),
    close the pipe, collect stderr and the status."""
    process = ns.popen(list(argv), env=dict(env), cwd="/", stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    try:
        taken = process.stdout.read(take) if take else process.stdout.readline()
        assert taken
        process.stdout.close()
        stderr = process.stderr.read()
        process.wait(RUN_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return Run(process.returncode, taken, stderr)


# Bytes read before leaving: 0 is a first line. Mid-stream is past the warm-up's output (the
# helper is at work) and short of the end by more than a pipe holds (netstat must be writing):
# -anx's 8,000 rows are ~560 KB, the helper starts after ~300 KB of them.
READERS = {"head-1": 0, "mid-stream": 1 << 18}
MID_STREAM = {"-anx": 400 << 10}
ONE_PROCESS = {"NLSTAT_TEST_SET": "nlstat.pipeline.HELPERS=0"}


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("args, backend, settings", [
    *[("-an", backend, {}) for backend in cases.BACKENDS],
    ("-anx", "proc", {}),
    ("-an", "auto", ONE_PROCESS),
], ids=lambda value: ("one-process" if value else "") if isinstance(value, dict) else value)
def test_a_reader_that_leaves_ends_both_by_sigpipe(world: World, args: str, backend: str,
                                                   settings: Dict[str, str],
                                                   reader: str) -> None:
    """The reader leaves at the first line, or mid-stream (when the formatting helper is
    writing or handing results back): netstat and nlstat are both killed by SIGPIPE (a shell
    says 141), nothing on stderr, and no helper outlives nlstat."""
    take = READERS[reader] and MID_STREAM.get(args, READERS[reader])
    theirs = _reader_leaves(world.ns, cases.netstat_command(args.split()), cases.base_env(),
                            take)
    assert (theirs.status, theirs.stderr) == (-signal.SIGPIPE, b"")
    env = {**cases.nlstat_env(backend), "NLSTAT_TEST_REPORT": "1", **settings}
    mine = _reader_leaves(world.ns, [sys.executable, str(HOOKS), *args.split()], env, take)
    lines = mine.stderr.splitlines()
    hooks = [line for line in lines if line.startswith(b"nlstat-test: ")]
    # quietly: nothing but forced netlink's note on a kernel without raw_diag (always said)
    assert [line for line in lines if line not in hooks
            and not line.startswith(b"nlstat: sock_diag has no ")] == []
    assert mine.status == -signal.SIGPIPE
    assert mine.stdout == theirs.stdout[:len(mine.stdout)] or reader != "head-1"
    forks = [int(line.split()[-1]) for line in hooks if line.startswith(b"nlstat-test: fork ")]
    if settings:
        assert forks == []  # the one-process path
    elif reader != "head-1":
        assert forks, hooks  # past the warm-up: a helper was at work when the reader left
    for pid in forks:
        assert _gone_within(pid, 30), f"helper {pid} outlived nlstat"


def _gone_within(pid: int, seconds: float) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                if handle.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False
