"""`nlstat --compare ARGS`: time nlstat against the installed netstat (and ss) on this host.

Each program runs a few times after one untimed warm-up run each, in rounds that alternate
them with the order rotated (nlstat netstat ss, netstat ss nlstat, ss nlstat netstat, ...), so
that load from other processes hits all alike. The table shows median, min and max wall time,
median CPU time, peak RSS, and whether nlstat's stdout was byte-identical to netstat's (with
`-o` timer values masked, since they tick between two runs). benchmarks/compare.py uses the
same engine for the published table.

Only `os` and `sys` are imported at module level: `nlstat` imports this module only for
`--compare`, and the measuring code pulls in what it needs when it runs.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Dict, List, NamedTuple, Optional, Sequence, Set, Tuple

from nlstat.errors import ExitStatus

if TYPE_CHECKING:
    from nlstat.env import Environment

DEFAULT_RUNS = 5
RUN_TIMEOUT = 600.0  # seconds; a run that takes longer is killed and reported
GNU_TIME = "/usr/bin/time"
USAGE = "usage: nlstat --compare [--compare-runs N] [NETSTAT-OPTIONS]"

# netstat letters that ss takes with the same meaning.
SS_SAME = frozenset("tuxwlapeo46")
SS_LONG = {
    "--tcp": "t", "--udp": "u", "--unix": "x", "--raw": "w", "--listening": "l", "--all": "a",
    "--numeric": "n", "--program": "p", "--programs": "p", "--extend": "e", "--timers": "o",
    "--wide": "W", "--verbose": "v", "--route": "r", "--interfaces": "i", "--statistics": "s",
    "--continuous": "c",
}


class Program(NamedTuple):
    """One command to time; `label` is what the table shows."""

    label: str
    argv: List[str]
    env: Optional[Dict[str, str]] = None


class Sample(NamedTuple):
    """One timed run."""

    seconds: float
    max_rss_kib: int
    status: int  # exit status; -N when killed by signal N
    digest: str  # of stdout, timers masked
    lines: int
    timed_out: bool = False
    cpu_seconds: float = 0.0  # user + system, the child and the descendants it waited for


class Result(NamedTuple):
    """All runs of one program; `missing` says why it did not run ("" when it did)."""

    program: Program
    samples: List[Sample]
    missing: str
    first_stdout: bytes  # masked stdout of the warm-up run, for telling what differs
    first_stderr: bytes

    def times(self) -> List[float]:
        return sorted(s.seconds for s in self.samples)

    def median(self) -> float:
        return _median(self.times())

    def median_cpu(self) -> float:
        return _median(sorted(s.cpu_seconds for s in self.samples))

    def peak_rss_kib(self) -> int:
        return max((s.max_rss_kib for s in self.samples), default=0)


def _median(values: List[float]) -> float:
    if not values:
        return 0.0
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


class Missing(Exception):
    """The program is not installed."""


def mask_timers(data: bytes) -> bytes:
    """Replace netstat's `-o` timer values `(7179.92/0/0)` by `(#/#/#)`: they tick between runs."""
    if b"/" not in data:
        return data
    import re

    return re.sub(rb"\(\d+\.\d\d/\d+/\d+\)", b"(#/#/#)", data)


def letters_of(args: Sequence[str]) -> Optional[str]:
    """The option letters of a netstat command line, or None if it has anything else.

    Long options with a one-letter twin count as that letter; `-A`, `--protocol`, `-4`/`-6`
    families spelled as words and other operands make the line too special to translate.
    """
    out = []
    for arg in args:
        if arg.startswith("--"):
            letter = SS_LONG.get(arg)
            if letter is None:
                return None
            out.append(letter)
        elif arg.startswith("-") and len(arg) > 1 and arg[1:].isalnum():
            if "A" in arg:
                return None
            out.extend(arg[1:])
        else:
            return None
    return "".join(out)


def has_continuous(args: Sequence[str]) -> bool:
    """Would these arguments make netstat repeat for ever (-c, --cont, ...)? Read by nlstat's
    own parser, so that abbreviations and option arguments count as netstat counts them."""
    import io

    from nlstat.cli import parse
    from nlstat.env import Environment
    from nlstat.query import Query

    quiet = Environment(stdout=io.BytesIO(), stderr=io.StringIO())
    parsed = parse(args, quiet)
    return isinstance(parsed, Query) and parsed.continuous


def equivalent(args: Sequence[str]) -> Optional[Program]:
    """The ss (or ip/nstat) command that asks the kernel for the same thing, if there is one.

    ss resolves ports but not hosts by default (hosts need -r); netstat without -n resolves both.
    netstat's default protocols are tcp, udp, udplite, raw and unix: `ss -tuwx`.
    """
    letters = letters_of(args)
    if letters is None:
        return None
    flags = set(letters) - {"v", "W"}
    if "r" in flags:
        return Program("ip route", ["ip", "route"]) if flags <= {"r", "n"} else None
    if "i" in flags:
        return Program("ip -s link", ["ip", "-s", "link"]) if flags <= {"i", "n", "a"} else None
    if "s" in flags:
        return Program("nstat -asz", ["nstat", "-asz"]) if flags <= {"s", "n"} else None
    if not flags <= SS_SAME | {"n"}:
        return None
    opts = "".join(sorted(flags & SS_SAME, key="tuwxlapeo46".index))
    if not flags & set("tuxw"):
        opts = "tuwx" + opts
    opts += "n" if "n" in flags else "r"
    return Program("ss", ["ss", "-" + opts])


def _spawn_wait(argv: List[str], env: Optional[Dict[str, str]], out_fd: int, err_fd: int,
                timeout: float) -> Tuple[float, float, int, int, bool]:
    """Run argv with stdout/stderr on the given descriptors.

    Returns (wall seconds, CPU seconds, maxrss KiB, status, killed). CPU is user + system time
    of the child and the descendants it waited for (a helper process included).

    Peak RSS comes from GNU time when it is installed: a child spawned straight from this
    Python process starts its ru_maxrss at OUR resident size (execve records the old mm's
    high-water mark, and posix_spawn's child shares our mm until then), which would hide any
    program smaller than us. time's own small mm is what its child inherits. Without GNU time
    the size is reported as 0 (unknown).
    """
    import select
    import shutil
    import signal
    import tempfile
    import time

    if shutil.which(argv[0], path=(env or os.environ).get("PATH")) is None:
        raise Missing(argv[0])
    gnu_time = GNU_TIME if os.access(GNU_TIME, os.X_OK) else ""
    with tempfile.NamedTemporaryFile("r") as report:
        full = [gnu_time, "-f", "%M", "-o", report.name, *argv] if gnu_time else argv
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, out_fd, 1),
            (os.POSIX_SPAWN_DUP2, err_fd, 2),
        ]
        started = time.perf_counter()
        pid = os.posix_spawn(shutil.which(full[0]) or full[0], full,
                             os.environ if env is None else env,
                             file_actions=actions, setpgroup=0)
        timed_out = False
        try:
            # A pidfd wakes poll() the moment the child exits: the timeout costs no precision.
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pidfd = -1
        if pidfd >= 0:
            try:
                poller = select.poll()
                poller.register(pidfd, select.POLLIN)
                if not poller.poll(int(timeout * 1000)):
                    os.killpg(pid, signal.SIGKILL)
                    timed_out = True
            finally:
                os.close(pidfd)
        _pid, wait_status, usage = os.wait4(pid, 0)
        seconds = time.perf_counter() - started
        cpu = usage.ru_utime + usage.ru_stime
        status = os.waitstatus_to_exitcode(wait_status)
        rss = 0
        if gnu_time:
            said = report.read().splitlines()
            for line in said:
                if line.startswith("Command terminated by signal "):
                    status = -int(line.rsplit(" ", 1)[1])
            if said and said[-1].strip().isdigit():
                rss = int(said[-1])
    return seconds, cpu, rss, status, timed_out


def run_once(program: Program, timeout: float = RUN_TIMEOUT) -> Tuple[Sample, bytes, bytes]:
    """Time one run; return the sample and its (masked) stdout and stderr."""
    import hashlib
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        seconds, cpu, rss, status, timed_out = _spawn_wait(
            program.argv, program.env, out.fileno(), err.fileno(), timeout)
        out.seek(0)
        data = mask_timers(out.read())
        err.seek(0)
        errors = err.read()
    sample = Sample(seconds, rss, status, hashlib.sha1(data).hexdigest(), data.count(b"\n"),
                    timed_out, cpu)
    return sample, data, errors


def measure(programs: Sequence[Program], runs: int, warmup: int = 1,
            timeout: float = RUN_TIMEOUT) -> List[Result]:
    """Warm-up runs, then `runs` rounds; each round runs every program once, rotating the order."""
    samples: List[List[Sample]] = [[] for _ in programs]
    first: List[Tuple[bytes, bytes]] = [(b"", b"")] * len(programs)
    missing = [""] * len(programs)
    for i, program in enumerate(programs):
        for n in range(max(1, warmup)):
            try:
                _sample, data, errors = run_once(program, timeout)
            except Missing:
                missing[i] = "not installed"
                break
            if n == 0:
                first[i] = (data, errors)
    live = [i for i in range(len(programs)) if not missing[i]]
    for r in range(runs):
        shift = r % len(live) if live else 0
        for i in live[shift:] + live[:shift]:
            sample, _data, _errors = run_once(programs[i], timeout)
            samples[i].append(sample)
    return [Result(p, samples[i], missing[i], first[i][0], first[i][1])
            for i, p in enumerate(programs)]


def verdict(mine: Result, reference: Result) -> str:
    """Does `mine` print what `reference` prints? One short phrase."""
    name = reference.program.label
    if mine.missing or not mine.samples:
        return ""
    if reference.missing or not reference.samples:
        return f"({name} not run)"
    if any(s.timed_out for s in mine.samples):
        return "timed out"
    my_status = {s.status for s in mine.samples}
    ref_status = {s.status for s in reference.samples}
    if my_status != ref_status:
        return f"status {_set(my_status)}, {name} {_set(ref_status)}"
    mine_d = {s.digest for s in mine.samples}
    ref_d = {s.digest for s in reference.samples}
    if mine_d == ref_d and len(ref_d) == 1:
        code = next(iter(ref_status))
        return f"identical to {name}" + (f" (status {code})" if code else "")
    if len(ref_d) > 1:
        agree = len(mine_d & ref_d)
        return f"{name}'s own output varied; {agree} of nlstat's outputs matched one"
    return _difference(mine.first_stdout, reference.first_stdout, name)


def _set(values: Set[int]) -> str:
    return "/".join(str(v) for v in sorted(values))


def _difference(mine: bytes, ref: bytes, name: str) -> str:
    from collections import Counter

    a = Counter(mine.splitlines())
    b = Counter(ref.splitlines())
    only_mine = sum((a - b).values())
    only_ref = sum((b - a).values())
    if not only_mine and not only_ref:
        return f"same lines as {name}, different order"
    return f"differs from {name}: {only_mine} lines only in nlstat, {only_ref} only in {name}"


def mib(kib: int) -> str:
    if not kib:
        return "?"
    return f"{kib / 1024:.1f} MiB" if kib < 10240 else f"{kib / 1024:.0f} MiB"


def table_rows(results: Sequence[Result]) -> List[List[str]]:
    """[program, median, min, max, CPU, peak RSS, output] for each result (nlstat first)."""
    nlstat, reference = results[0], _netstat(results)
    rows = []
    for r in results:
        if r.missing:
            rows.append([r.program.label, r.missing, "", "", "", "", ""])
            continue
        t = r.times()
        note = verdict(nlstat, reference) if r is nlstat and reference is not None else ""
        if r is not nlstat and {s.status for s in r.samples} != {0}:
            note = f"status {_set({s.status for s in r.samples})}"
        rows.append([r.program.label, f"{r.median():.3f}s", f"{t[0]:.3f}s", f"{t[-1]:.3f}s",
                     f"{r.median_cpu():.2f}s", mib(r.peak_rss_kib()), note])
    return rows


def _netstat(results: Sequence[Result]) -> Optional[Result]:
    for r in results[1:]:
        if r.program.label == "netstat":
            return r
    return None


def ratios(results: Sequence[Result]) -> str:
    nlstat = results[0]
    if nlstat.missing or not nlstat.samples:
        return ""
    parts = []
    for r in results[1:]:
        if not r.missing and r.samples and r.median() > 0:
            parts.append(f"nlstat/{r.program.label} {nlstat.median() / r.median():.2f}")
    return "ratio " + ", ".join(parts) if parts else ""


def aligned(rows: Sequence[Sequence[str]]) -> List[str]:
    """Left-align the first and last columns, right-align the numbers between."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            if i == 0 or i == len(row) - 1:
                cells.append(cell.ljust(widths[i]))
            else:
                cells.append(cell.rjust(widths[i]))
        out.append("  ".join(cells).rstrip())
    return out


def c_env() -> Dict[str, str]:
    """The environment every timed program runs in: the caller's, under LC_ALL=C."""
    return dict(os.environ, LC_ALL="C")


def nlstat_env() -> Dict[str, str]:
    """c_env() for nlstat: an installed package has its bytecode compiled, so the warm-up run
    may write it here too, or every timed run would pay for compiling nlstat
    (PYTHONDONTWRITEBYTECODE=1 in a CI)."""
    env = c_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def nlstat_program(args: Sequence[str]) -> Program:
    """This very nlstat, as a child: the same interpreter and the same package directory."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = nlstat_env()
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return Program("nlstat", [sys.executable, "-m", "nlstat", *args], env)


def programs_for(args: Sequence[str]) -> List[Program]:
    """nlstat, netstat and the ss-like equivalent (if any), all under LC_ALL=C."""
    env = c_env()
    programs = [nlstat_program(args), Program("netstat", ["netstat", *args], env)]
    other = equivalent(args)
    if other is not None:
        programs.append(other._replace(env=env))
    return programs


def parse_runs(args: List[str]) -> Tuple[int, List[str]]:
    """Take `--compare-runs N` / `--compare-runs=N` off the front of args."""
    runs = DEFAULT_RUNS
    if args and args[0].startswith("--compare-runs"):
        head = args.pop(0)
        value = head.partition("=")[2] if "=" in head else (args.pop(0) if args else "")
        if not value.isdigit() or not 1 <= int(value) <= 1000:
            raise ValueError(f"--compare-runs wants a number from 1 to 1000, not {value!r}")
        runs = int(value)
    return runs, args


def run(args: List[str], env: Environment) -> int:
    """Compare `nlstat ARGS` with `netstat ARGS`; args may still start with `--compare`."""
    args = list(args)
    if args and args[0] == "--compare":
        args.pop(0)
    try:
        runs, args = parse_runs(args)
    except ValueError as err:
        env.warn(f"nlstat: {err}")
        env.warn(USAGE)
        return ExitStatus.USAGE
    if has_continuous(args):
        env.warn("nlstat: --compare cannot time -c (it never ends); leave it out")
        return ExitStatus.USAGE
    results = measure(programs_for(args), runs)
    nlstat, netstat = results[0], results[1]
    title = " ".join(["nlstat --compare", *args])
    counted = [r.samples[0].lines for r in (netstat, nlstat) if r.samples]
    rows_count = counted[0] if counted else 0
    lines = [f"{title}   ({runs} runs each, {rows_count} lines of output)"]
    lines += aligned([["program", "median", "min", "max", "CPU", "peak RSS", "output"],
                      *table_rows(results)])
    ratio = ratios(results)
    if ratio:
        lines.append(ratio)
    if len(results) < 3:
        lines.append("ss: no equivalent for these options")
    if netstat.missing:
        lines.append("netstat: not installed (net-tools); nothing to compare the output with")
    if any(r.samples and not r.peak_rss_kib() for r in results):
        lines.append(f"peak RSS unknown: install GNU time ({GNU_TIME}, Debian package time)")
    status = ExitStatus.OK
    if not netstat.missing and netstat.samples and netstat.samples[0].status != 0:
        status = netstat.samples[0].status
        said = netstat.first_stderr.decode(errors="replace").strip().splitlines()
        lines.append(f"netstat exited with status {status}" + (f": {said[0]}" if said else ""))
    env.stdout.write(("\n".join(lines) + "\n").encode())
    return status
