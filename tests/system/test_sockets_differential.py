"""Live differential test: `netstat ARGS` and `nlstat ARGS` in one namespace, byte for byte.

One namespace and one socket population (tests/population.py) serve the whole module. Each
case runs netstat, then nlstat (NLSTAT_BACKEND = netlink, proc, auto), both through
`ip netns exec`, and compares stdout bytes and the exit status, with only the timer seconds
inside `(x.xx/` masked. Because the two runs happen at different instants, a mismatch is
re-checked by running netstat again: if netstat's own output moved in between (churn), the
comparison is retried, at most 3 times; otherwise it fails with a unified diff.
"""

from __future__ import annotations

import difflib
import re
import time
from typing import Callable, Dict, Iterator, List, NamedTuple, Sequence, Tuple

import pytest

from tests import netns, population, sockets_support
from tests.system import sockets_cases as cases

pytestmark = pytest.mark.netns

ATTEMPTS = 3
RUN_TIMEOUT = 120.0
# The population's own safety net; a loaded host (100k foreign sockets make every /proc
# read and -p scan slow) can stretch the module well past its usual minute.
POPULATION_TIMEOUT = 1800.0
CACHE_LIFETIME = 60.0


class Run(NamedTuple):
    status: int
    stdout: bytes
    stderr: bytes


class World(NamedTuple):
    ns: netns.Namespace
    pop: sockets_support.Running
    durations: Dict[str, float]  # seconds one run of a command took, to plan around timers
    # netstat's output per argument list, with the population generation and time it was
    # taken: the three backends of a case compare against one netstat run.
    cache: Dict[Tuple[str, ...], Tuple[int, float, Run]]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    netns.skip_unless_root()
    with netns.Namespace(
        prefix="nlst-sock",
        hosts=population.HOSTS,
        networks=population.NETWORKS,
        addresses=population.ADDRESSES,
        neighbours=population.NEIGHBOURS,
        sysctls=population.SYSCTLS,
    ) as ns, sockets_support.Running(ns, timeout=POPULATION_TIMEOUT) as pop:
        yield World(ns, pop, {}, {})


def run(ns: netns.Namespace, command: Sequence[str], env: Dict[str, str]) -> Run:
    result = ns.run(command, env=env, timeout=RUN_TIMEOUT, cwd="/")
    return Run(result.returncode, result.stdout, result.stderr)


def netstat(ns: netns.Namespace, args: Sequence[str]) -> Run:
    return run(ns, cases.netstat_command(args), cases.base_env())


def nlstat(backend: str) -> Callable[[netns.Namespace, Sequence[str]], Run]:
    def candidate(ns: netns.Namespace, args: Sequence[str]) -> Run:
        return run(ns, cases.nlstat_command(args), cases.nlstat_env(backend))

    return candidate


def visible(data: bytes) -> List[str]:
    """Lines for a diff, with `$` at each end so trailing blanks show."""
    text = data.decode("utf-8", errors="backslashreplace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
        return [line + "$" for line in lines]
    return [line + "$" for line in lines[:-1]] + [lines[-1] + "  (no newline at end)"]


def mismatch_report(args: Sequence[str], label: str, want: Run, got: Run, attempt: int,
                    compare_stderr: bool) -> str:
    shown = " ".join(args) or "(no arguments)"
    parts = [f"`netstat {shown}` vs `{label} {shown}` differ (attempt {attempt}, netstat "
             f"re-run gave the same output, so this is not churn); lines end with $"]
    if want.status != got.status:
        parts.append(f"exit status: netstat {want.status}, {label} {got.status}")
    want_out, got_out = cases.mask_timers(want.stdout), cases.mask_timers(got.stdout)
    if want_out != got_out:
        diff = list(difflib.unified_diff(visible(want_out), visible(got_out),
                                         "netstat", label, n=2, lineterm=""))
        if len(diff) > 240:
            diff = diff[:240] + [f"... ({len(diff) - 240} more diff lines)"]
        parts.append("stdout diff:\n" + "\n".join(diff))
    if compare_stderr and want.stderr != got.stderr:
        parts.append("stderr diff:\n" + "\n".join(difflib.unified_diff(
            visible(want.stderr), visible(got.stderr), "netstat stderr", f"{label} stderr",
            n=2, lineterm="")))
    elif got.stderr:
        parts.append(f"{label} stderr:\n" + got.stderr.decode(errors="replace")[-3000:])
    return "\n".join(parts)


def same(want: Run, got: Run, compare_stderr: bool) -> bool:
    return (
        want.status == got.status
        and cases.mask_timers(want.stdout) == cases.mask_timers(got.stdout)
        and (not compare_stderr or want.stderr == got.stderr)
    )


def timed(world: World, key: str, command: Callable[[], Run]) -> Run:
    started = time.monotonic()
    result = command()
    world.durations[key] = time.monotonic() - started
    return result


def reference(world: World, args: Sequence[str], fresh: bool = False) -> Run:
    """netstat's output for `args`: cached while the population has not moved."""
    key = tuple(args)
    hit = world.cache.get(key)
    now = time.monotonic()
    if (not fresh and hit is not None and hit[0] == world.pop.generation
            and now - hit[1] < CACHE_LIFETIME):
        return hit[2]
    result = timed(world, "netstat " + " ".join(args), lambda: netstat(world.ns, args))
    world.cache[key] = (world.pop.generation, now, result)
    return result


def compare(
    world: World,
    args: Sequence[str],
    candidate: Callable[[netns.Namespace, Sequence[str]], Run],
    label: str = "nlstat",
    compare_stderr: bool = False,
) -> int:
    """Assert candidate == netstat for `args`; returns the attempts it took.

    On a mismatch netstat runs again: the same output means a real difference (fail with a
    diff); a different output means the sockets moved (churn) and the pair is run again.
    """
    churn: List[str] = []
    shown = " ".join(args)
    for attempt in range(1, ATTEMPTS + 1):
        world.pop.ensure_alive()
        # TIME_WAIT expiry (and SYN retransmits, under -o) are predictable: let them pass
        # before starting rather than burn an attempt on them.
        budget = 1.6 * (world.durations.get("netstat " + shown, 1.0)
                        + world.durations.get(f"{label} {shown}", 1.0)) + 0.5
        world.pop.quiet_for(budget, retransmits=shows_timers(args))
        want = reference(world, args)
        got = timed(world, f"{label} {shown}", lambda: candidate(world.ns, args))
        if same(want, got, compare_stderr):
            return attempt
        again = reference(world, args, fresh=True)
        if same(want, again, compare_stderr):
            raise AssertionError(mismatch_report(args, label, want, got, attempt, compare_stderr))
        churn.append("\n".join(difflib.unified_diff(
            visible(cases.mask_timers(want.stdout)), visible(cases.mask_timers(again.stdout)),
            "netstat", "netstat again", n=0, lineterm="")))
    raise AssertionError(
        f"netstat {shown}: its own output changed between runs {ATTEMPTS} times "
        "(churn); last changes:\n" + "\n".join(churn[-2:])
    )


def shows_timers(args: Sequence[str]) -> bool:
    return any(
        arg == "--timers" or (arg.startswith("-") and not arg.startswith("--") and "o" in arg)
        for arg in args
    )


# --- the harness proves itself first ---------------------------------------------------------


def altered(filter_cmd: str) -> Callable[[netns.Namespace, Sequence[str]], Run]:
    """netstat piped through a shell filter: a stand-in for a broken nlstat."""

    def candidate(ns: netns.Namespace, args: Sequence[str]) -> Run:
        line = " ".join([cases.NETSTAT, *args]) + " | " + filter_cmd
        return run(ns, ["/bin/sh", "-c", line], cases.base_env())

    return candidate


def test_population_is_varied(world: World) -> None:
    """The states the differential cases rely on are really there."""
    world.pop.ensure_alive()
    world.pop.quiet_for(2.0)
    out = netstat(world.ns, ["-an"]).stdout.decode(errors="replace")
    rows = out.splitlines()
    for state in ("LISTEN", "ESTABLISHED", "SYN_SENT", "TIME_WAIT", "FIN_WAIT2", "CLOSE_WAIT"):
        assert any(state in row for row in rows), f"no {state} row:\n{out}"
    for proto in ("tcp ", "tcp6", "udp ", "udp6", "raw ", "raw6", "unix"):
        assert any(row.startswith(proto) for row in rows), f"no {proto} row:\n{out}"
    if world.pop.info.get("udplite"):
        assert any(row.startswith("udpl ") for row in rows)
        assert any(row.startswith("udpl6") for row in rows)
    tcp = [r for r in rows if r.startswith("tcp ")]
    assert any("LISTEN" in r and r[6:12].strip() != "0" for r in tcp), "no LISTEN with a Recv-Q"
    assert any(r[13:19].strip() not in ("0", "1") for r in tcp), "no Send-Q"
    assert any("127.0.0.1:5555" in r for r in rows if r.startswith("tcp6")), "no v4-mapped row"
    assert any(r.startswith("raw ") and r.rstrip().endswith("1") for r in rows), "no connected raw"
    symbolic = netstat(world.ns, ["-aWe"]).stdout.decode(errors="replace")
    assert "long-hostname-that-gets-cut.bench.test" in symbolic
    assert "zeronet:7777" in symbolic and "nobody" in symbolic and " 4242 " in symbolic


def test_population_programs_are_varied(world: World) -> None:
    """-p sees the argv[0] forms of spec §3.8 (absolute, relative, long, title, tab, empty)."""
    world.pop.ensure_alive()
    programs = netstat(world.ns, ["-anp"]).stdout.decode(errors="replace")
    assert re.search(r" \d+/ +$", programs, re.M), "no empty argv[0]"
    for name in ("/averyveryvery", "/run ", "/./relative/pr", "/tab\tname"):
        assert name in programs, f"no {name!r} program:\n{programs}"


@pytest.mark.parametrize("args", [["-an"], ["-ae"], ["-ax"]], ids=lambda a: " ".join(a))
def test_harness_accepts_netstat_itself(world: World, args: List[str]) -> None:
    def itself(ns: netns.Namespace, argv: Sequence[str]) -> Run:
        return netstat(ns, argv)

    compare(world, args, itself, label="netstat")


@pytest.mark.parametrize(
    "filter_cmd, expect",
    [
        # one changed byte in one row
        ("sed '0,/LISTEN /s//LISTEn /'", "+tcp"),
        # two rows swapped: the same bytes in another order
        ("awk 'NR==3{keep=$0; next} NR==4{print; print keep; next} {print}'", "@@"),
        # one trailing blank lost
        ("sed '3s/ *$//'", "-tcp"),
        # same output, other exit status
        ("cat; exit 3", "exit status: netstat 0, altered 3"),
    ],
    ids=["byte", "order", "trailing-blank", "status"],
)
def test_harness_rejects_altered_output(world: World, filter_cmd: str, expect: str) -> None:
    with pytest.raises(AssertionError) as failure:
        compare(world, ["-an"], altered(filter_cmd), label="altered")
    message = str(failure.value)
    assert expect in message, message
    assert "not churn" in message, message
    if "status" not in expect:
        assert "--- netstat" in message and "+++ altered" in message, message


def test_mask_hides_only_timer_seconds() -> None:
    row = (b"tcp        0      1 198.18.0.1:48956        198.18.0.99:80          SYN_SENT    "
           b"on (12.26/9/0)\n")
    assert cases.mask_timers(row) == row.replace(b"(12.26/", b"(x.xx/")
    assert cases.mask_timers(b"on (1.00/9/0)") != cases.mask_timers(b"on (1.00/8/0)")
    assert cases.mask_timers(b"127.0.0.1:5432 (12.26)") == b"127.0.0.1:5432 (12.26)"


# --- netstat vs nlstat -----------------------------------------------------------------------


@pytest.mark.parametrize("backend", cases.BACKENDS)
@pytest.mark.parametrize("case", cases.CASES, ids=cases.case_id)
def test_sockets_match_netstat(world: World, case: str, backend: str) -> None:
    compare(world, cases.split(case), nlstat(backend), label=f"nlstat[{backend}]")


@pytest.mark.parametrize("backend", cases.BACKENDS)
@pytest.mark.parametrize("case", cases.PROGRAM_CASES, ids=cases.case_id)
def test_programs_match_netstat(world: World, case: str, backend: str) -> None:
    compare(world, cases.split(case), nlstat(backend), label=f"nlstat[{backend}]")


@pytest.mark.parametrize("backend", cases.BACKENDS)
@pytest.mark.parametrize("case", cases.STDERR_CASES, ids=cases.case_id)
def test_sockets_stderr_matches_netstat(world: World, case: str, backend: str) -> None:
    candidate = nlstat(backend)
    if backend == "netlink":
        # Forced netlink says on stderr when a table has to come from /proc after all (this
        # kernel has no raw_diag handler): nlstat's own documented line (nlstat.backends).
        plain = candidate

        def candidate(ns: netns.Namespace, args: Sequence[str]) -> Run:
            result = plain(ns, args)
            kept = b"".join(line for line in result.stderr.splitlines(keepends=True)
                            if not line.startswith(b"nlstat: sock_diag has no "))
            return Run(result.status, result.stdout, kept)

    compare(world, cases.split(case), candidate, label=f"nlstat[{backend}]", compare_stderr=True)
