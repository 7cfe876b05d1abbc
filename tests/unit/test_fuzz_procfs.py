"""Fuzzing every /proc table nlstat reads with damaged copies of captured files (issue 12,
item 3).

Each table's captured file (tests/proc_fuzz.py: columns dropped, doubled, replaced by
non-hex, huge or non-UTF-8 tokens, lines cut, repeated, joined, binary junk, the file emptied
or cut anywhere) is put in a substitute /proc tree (NLSTAT_PROC_ROOT) and read:

* through the Python API (`nlstat.sockets/routes/interfaces/groups/statistics/masquerade`
  with backend="proc"): records or an NlstatError, never another exception, never a hang;
* through the command line in-process (`app.main`, the run's whole path with formatting):
  netstat's statuses only (0, 1, 255), never nlstat's internal-error status 70, every stderr
  line one line naming its source;
* through `python -m nlstat` as a subprocess (fewer examples), with a timeout;
* and where netstat reads the same file (it has /proc compiled in: the tree is bind-mounted
  over /proc in a private mount namespace, root only): stdout and status byte for byte.

`/proc/PID/{fd,cmdline}` for -p: random PID directories with odd command lines and odd
descriptor links.

Budget: NLSTAT_FUZZ_EXAMPLES scales every count here (default 120: about 15 s in all);
benchmarks/fuzz.py runs the same tests with a large budget.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nlstat
from nlstat.errors import NlstatError
from tests.cli_support import NETSTAT
from tests.fuzz_tally import count
from tests.netns import (
    NETNS_RUN_DIR,
    Namespace,
    have_privileges,
    namespace,
    on_proc_tree,
    setns,
)
from tests.proc_fuzz import (
    BY_NAME,
    MUTATIONS,
    PROCESSES,
    SEED_FILES,
    TABLES,
    Table,
    mutate,
    parity_mutations,
    seed_tree,
    write_processes,
)
from tests.stats_support import Outcome, nlstat_in_process

EXAMPLES = int(os.environ.get("NLSTAT_FUZZ_EXAMPLES", "120"))
WATCHDOG_SECONDS = 10
# netstat's statuses for a listing: 0, 1 (a table it could not read, -M with no source)
# and 255 (perror() on a /proc file, docs/compat.md). 70 is nlstat's internal error: a bug.
STATUSES = (0, 1, 255)
# Tables whose rows need the interfaces they name (SIOCGIFFLAGS): read inside the namespace
# the seeds were captured in (veth0, veth1, lo), so that undamaged names are found.
NEEDS_LINKS = ("dev", "if_inet6")
API_TABLES = [t for t in TABLES if t.file not in ("rt_cache", "if_inet6")]
CLI_CASES = [(t.file, argv) for t in TABLES for argv in t.argvs]
NETSTAT_CASES = [(t.file, argv) for t in TABLES for argv in t.netstat_argvs]


def _settings(examples: int) -> settings:
    return settings(max_examples=max(examples, 1), deadline=None,
                    derandomize=EXAMPLES <= 200, database=None,
                    suppress_health_check=list(HealthCheck))


class Hang(Exception):
    """A reader still running after WATCHDOG_SECONDS on one input."""


def _expired(_signum: int, _frame: object) -> None:
    raise Hang(f"still running after {WATCHDOG_SECONDS} s on one input: a hang")


def watched(work: Iterable[object]) -> List[object]:
    """Every record of `work` (an API iterator); an NlstatError is an accepted ending."""
    count()
    previous = signal.signal(signal.SIGALRM, _expired)
    signal.alarm(WATCHDOG_SECONDS)
    try:
        return list(work)
    except NlstatError as err:
        assert str(err) and "\n" not in str(err), "an nlstat error says what in one line"
        return []
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def cli_in_process(argv: Sequence[str], root: str) -> Outcome:
    count()
    previous = signal.signal(signal.SIGALRM, _expired)
    signal.alarm(WATCHDOG_SECONDS)
    try:
        return nlstat_in_process(argv, Path(root), "proc")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def assert_clean_ending(outcome: Outcome, argv: Sequence[str], silent: bool = False) -> None:
    """netstat's statuses, no traceback, a failure said on stderr (unless `silent`: netstat
    itself fails without a word there)."""
    err = outcome.stderr.decode(errors="replace")
    assert "Traceback" not in err and "internal error" not in err, (argv, err)
    assert outcome.status in STATUSES, (argv, outcome.status, err)
    if outcome.status != 0 and not silent:
        assert err.strip(), f"{argv}: status {outcome.status} without a word on stderr"


def _silent(file: str, data: bytes) -> bool:
    """netstat fails without a word on an empty /proc/net/route (netstat.c rprint_fib():
    no title line to read, `return 1`), and so does nlstat (the crafted "empty" case of
    tests/routes_support.py, compared with netstat)."""
    return file == "route" and data == b""


@pytest.fixture(scope="module")
def links_ns() -> Iterator[Namespace]:
    """A quiet namespace with the interfaces the dev and if_inet6 seeds name."""
    if not have_privileges():
        pytest.skip("needs root: the interface tables are read in a private namespace")
    with namespace(prefix="nlst-fuzzproc") as ns:
        yield ns


@contextlib.contextmanager
def _entered(ns: Optional[Namespace]) -> Iterator[None]:
    """This thread in `ns` (the interface tables' rows are looked up by ioctl there), and back;
    the main thread itself, so that the watchdog's alarm can still be armed."""
    if ns is None:
        yield
        return
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(os.path.join(NETNS_RUN_DIR, ns.name))
        try:
            yield
        finally:
            setns(f"/proc/self/fd/{own}")
    finally:
        os.close(own)


def _maybe_ns(request: pytest.FixtureRequest, table: str) -> Optional[Namespace]:
    if table in NEEDS_LINKS:
        ns: Namespace = request.getfixturevalue("links_ns")
        return ns
    return None


# -- the seeds themselves ------------------------------------------------------------------------


@pytest.mark.parametrize("table", API_TABLES, ids=lambda t: t.file)
def test_seed_reads_to_records(table: Table, tmp_path: Path,
                               request: pytest.FixtureRequest) -> None:
    """Undamaged, every seed gives records: the fuzzers start from files that parse."""
    ns = _maybe_ns(request, table.file)
    root = seed_tree(tmp_path / "proc", {})
    with _entered(ns):
        records = list(table.read(root))
    assert records, table.file


@pytest.mark.parametrize("file,argv", CLI_CASES, ids=[f"{f}:{''.join(a)}" for f, a in CLI_CASES])
def test_seed_prints_without_warnings(file: str, argv: Tuple[str, ...], tmp_path: Path,
                                      request: pytest.FixtureRequest) -> None:
    ns = _maybe_ns(request, file)
    root = seed_tree(tmp_path / "proc", {})
    with _entered(ns):
        outcome = cli_in_process(argv, root)
    assert (outcome.status, outcome.stderr) == (0, b""), argv
    assert outcome.stdout.count(b"\n") > 2


# -- the API -----------------------------------------------------------------------------------


@pytest.mark.parametrize("table", API_TABLES, ids=lambda t: t.file)
def test_api_on_damaged_file(table: Table, tmp_path: Path,
                             request: pytest.FixtureRequest) -> None:
    ns = _maybe_ns(request, table.file)
    seed = SEED_FILES[table.file].read_bytes()
    root = str(tmp_path / "proc")

    @_settings(EXAMPLES // 3)
    @given(MUTATIONS)
    def check(mutations: List[Tuple[str, int, int, int, bytes]]) -> None:
        seed_tree(root, {table.file: mutate(seed, mutations)})
        with _entered(ns):
            records = watched(table.read(root))
        for record in records:
            assert isinstance(record, tuple), record  # the immutable records (NamedTuples)

    check()


def test_api_on_random_bytes(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Not a /proc file at all: random bytes in place of any table."""
    root = str(tmp_path / "proc")
    names = [t.file for t in API_TABLES if t.file not in NEEDS_LINKS]

    @_settings(EXAMPLES // 2)
    @given(st.sampled_from(names), st.binary(max_size=400))
    def check(name: str, data: bytes) -> None:
        seed_tree(root, {name: data})
        watched(BY_NAME[name].read(root))

    check()


@_settings(EXAMPLES // 3)
@given(processes=PROCESSES, argv=st.sampled_from([("-antp",), ("-anxp",), ("-anwp",)]))
def test_process_walk(processes: List[Tuple[str, object, dict]],  # type: ignore[type-arg]
                      argv: Tuple[str, ...], tmp_path_factory: pytest.TempPathFactory) -> None:
    """/proc/PID trees with odd command lines (none, empty, NULs, non-UTF-8, 300 bytes) and
    odd descriptor links (socket:[] with no number, a huge one, not a socket): -p and the
    API's processes=True end in rows."""
    root = seed_tree(tmp_path_factory.getbasetemp() / "walk", {})
    write_processes(root, processes)
    for owned in watched(nlstat.sockets(backend="proc", proc_root=root, processes=True)):
        assert isinstance(owned, nlstat.OwnedSocket)
    assert_clean_ending(cli_in_process(argv, root), argv)


# -- the command line ----------------------------------------------------------------------------


@pytest.mark.parametrize("file,argv", CLI_CASES, ids=[f"{f}:{''.join(a)}" for f, a in CLI_CASES])
def test_cli_on_damaged_file(file: str, argv: Tuple[str, ...], tmp_path: Path,
                             request: pytest.FixtureRequest) -> None:
    ns = _maybe_ns(request, file)
    seed = SEED_FILES[file].read_bytes()
    root = str(tmp_path / "proc")

    @_settings(EXAMPLES // 12)
    @given(MUTATIONS)
    def check(mutations: List[Tuple[str, int, int, int, bytes]]) -> None:
        damaged = mutate(seed, mutations)
        seed_tree(root, {file: damaged})
        with _entered(ns):
            outcome = cli_in_process(argv, root)
        assert_clean_ending(outcome, argv, silent=_silent(file, damaged))

    check()


LONG_CASES = [("tcp", ("-ant",)), ("tcp6", ("-ante",)), ("udp", ("-anu",)), ("unix", ("-anx",))]


def _long(seed: bytes, rows: int) -> bytes:
    """The seed's rows repeated to `rows` rows: long enough for the listing to fork its helper
    (nlstat/pipeline.py), so that damage also meets the rows parsed in the second process."""
    title, _, body = seed.partition(b"\n")
    lines = body.splitlines(keepends=True)
    return title + b"\n" + b"".join(lines[i % len(lines)] for i in range(rows))


@pytest.mark.parametrize("file,argv", LONG_CASES, ids=[f"{f}:{''.join(a)}" for f, a in LONG_CASES])
def test_cli_on_long_damaged_file(file: str, argv: Tuple[str, ...], tmp_path: Path) -> None:
    seed = _long(SEED_FILES[file].read_bytes(), 3000)
    root = str(tmp_path / "proc")

    @_settings(max(EXAMPLES // 24, 3))
    @given(MUTATIONS)
    def check(mutations: List[Tuple[str, int, int, int, bytes]]) -> None:
        damaged = mutate(seed, mutations)
        seed_tree(root, {file: damaged})
        assert_clean_ending(cli_in_process(argv, root), argv)

    check()


def test_cli_subprocess_on_damaged_file(tmp_path: Path) -> None:
    """The real command, a new process per input (fewer inputs: each costs a Python start)."""
    root = str(tmp_path / "proc")
    cases = [(f, a) for f, a in CLI_CASES if f not in NEEDS_LINKS]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NLSTAT_")}
    env.update({"NLSTAT_BACKEND": "proc", "NLSTAT_PROC_ROOT": root, "LC_ALL": "C",
                "PYTHONPATH": str(Path(__file__).resolve().parents[2])})

    @_settings(max(EXAMPLES // 12, 4))
    @given(st.sampled_from(cases), MUTATIONS)
    def check(case: Tuple[str, Tuple[str, ...]],
              mutations: List[Tuple[str, int, int, int, bytes]]) -> None:
        file, argv = case
        damaged = mutate(SEED_FILES[file].read_bytes(), mutations)
        seed_tree(root, {file: damaged})
        count()
        done = subprocess.run([sys.executable, "-m", "nlstat", *argv], env=env, timeout=60,
                              capture_output=True, stdin=subprocess.DEVNULL)
        assert_clean_ending(Outcome(done.returncode, done.stdout, done.stderr), argv,
                            silent=_silent(file, damaged))

    check()


# -- against netstat on the same bytes -----------------------------------------------------------


def netstat_on(root: str, argv: Sequence[str], ns: Namespace = None) -> Outcome:  # type: ignore[assignment]
    command = on_proc_tree(root, [NETSTAT, *argv])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    if ns is not None:
        command = ns.argv(command)
    done = subprocess.run(command, env=env, timeout=30, capture_output=True,
                          stdin=subprocess.DEVNULL)
    return Outcome(done.returncode, done.stdout, done.stderr)


@pytest.mark.netns
@pytest.mark.skipif(not os.access(NETSTAT, os.X_OK), reason="netstat (net-tools) not installed")
@pytest.mark.parametrize("file,argv", NETSTAT_CASES,
                         ids=[f"{f}:{''.join(a)}" for f, a in NETSTAT_CASES])
def test_same_as_netstat_on_damaged_file(file: str, argv: Tuple[str, ...], tmp_path: Path) -> None:
    seed = SEED_FILES[file].read_bytes()
    root = str(tmp_path / "proc")

    @_settings(max(EXAMPLES // 15, 4))
    @given(parity_mutations(file))
    def check(mutations: List[Tuple[str, int, int, int, bytes]]) -> None:
        seed_tree(root, {file: mutate(seed, mutations)})
        expected = netstat_on(root, argv)
        got = cli_in_process(argv, root)
        assert (got.status, got.stdout) == (expected.status, expected.stdout), (
            expected.stderr, got.stderr)

    check()
