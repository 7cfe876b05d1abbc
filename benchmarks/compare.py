#!/usr/bin/env python3
"""Time nlstat against netstat and ss, mode by mode, inside a load namespace; print Markdown.

    python3 benchmarks/compare.py --netns nlst-bench [--runs 5] [--modes=-ant,-antp,-rn]
                                  [--nlstat CMD] [--output FILE] [--profile=-ant]

With --netns the script re-runs itself inside the namespace (`ip netns exec`) once, so the
timed commands pay no `ip netns exec` cost. Each mode runs nlstat, netstat and the equivalent
ss/ip/nstat command alternately (one warm-up each, then `--runs` rounds with the order rotated
each round); see nlstat/compare.py for the measuring engine, shared with `nlstat --compare`.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from nlstat.compare import (  # noqa: E402  (needs ROOT on sys.path)
    GNU_TIME,
    Program,
    Result,
    Sample,
    c_env,
    equivalent,
    measure,
    nlstat_env,
    nlstat_program,
    verdict,
)

DEFAULT_MODES = ["-ant", "-an", "-antp", "-anu", "-anx", "-lnt", "-rn", "-s", "-i", "-ant --json",
                 "-ant --ndjson", "-an --ndjson"]
# Modes whose time is mostly start-up: they should finish within `python3 -c pass` + 25 ms.
SMALL_MODES = {"-s", "-i"}
BUDGET_MS = 25.0
INSIDE = "NLST_COMPARE_INSIDE"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--netns", help="run inside this namespace (made by benchmarks/loadgen.py)")
    p.add_argument("--runs", type=int, default=5, help="timed runs per program (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    p.add_argument("--modes", default=",".join(DEFAULT_MODES),
                   help="comma-separated netstat option sets (write --modes=-ant,-rn)")
    p.add_argument("--nlstat", help="command that runs nlstat (default: python3 -m nlstat "
                                    "from this tree)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per run before a kill")
    p.add_argument("--output", help="also write the Markdown to this file")
    p.add_argument("--profile", help="instead of timing, cProfile `nlstat ARGS` once and print "
                                     "the top functions (write --profile=-ant)")
    p.add_argument("--no-baseline", action="store_true", help="skip timing `python3 -c pass`")
    p.add_argument("--against-ant", action="store_true",
                   help="also time nlstat's own extras against `nlstat -ant` in the same "
                        "rounds: `--dport 443` (load with loadgen.py --https) and the API")
    return p.parse_args(argv)


def reexec_inside(netns: str, argv: Sequence[str]) -> int:
    if not os.path.exists(f"/run/netns/{netns}"):
        sys.stderr.write(f"compare: no namespace {netns}; start benchmarks/loadgen.py first\n")
        return 2
    env = dict(os.environ, **{INSIDE: netns})
    cmd = ["ip", "netns", "exec", netns, sys.executable, os.path.abspath(__file__), *argv]
    return subprocess.call(cmd, env=env)


def nlstat_command(option: Optional[str]) -> Tuple[List[str], Dict[str, str], str]:
    """argv prefix, environment and a description of how nlstat is run: this tree's code
    unless --nlstat says otherwise (an installed console script may be an older version)."""
    if option:
        return shlex.split(option), nlstat_env(), f"`{option}`"
    tree = nlstat_program([])
    return tree.argv, tree.env, f"`python3 -m nlstat` with PYTHONPATH={ROOT}"


def read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def count_lines(path: str) -> int:
    return max(0, len(read(path).splitlines()) - 1)


def tool_version(argv: List[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "missing"
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if text else "?"


def tree_state() -> str:
    """The commit nlstat's tree is at, and whether it has uncommitted changes."""
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "nlstat"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown commit"
    if not head:
        return "unknown commit"
    return f"commit {head}" + (" with uncommitted changes in nlstat/" if dirty else "")


def fd_census() -> str:
    """What a -p walk of /proc/*/fd covers: every process on the machine, not only ours."""
    processes = descriptors = sockets = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            dir_fd = os.open(f"/proc/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue
        try:
            names = os.listdir(dir_fd)
            processes += 1
            descriptors += len(names)
            for name in names:
                try:
                    sockets += os.readlink(name, dir_fd=dir_fd).startswith("socket:[")
                except OSError:
                    pass
        finally:
            os.close(dir_fd)
    return (f"* `-p` walks /proc/*/fd of the whole machine: {processes} processes, "
            f"{descriptors} descriptors, {sockets} of them sockets (all namespaces)")


def machine_lines(nlstat_how: str, runs: int, warmup: int) -> List[str]:
    cpu = "?"
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    # "inuse N" only: sockstat's alloc and mem fields count the whole machine.
    sockstat = {name: " ".join(rest.split()[:2]) for name, rest in (
        line.split(": ", 1) for line in (read("/proc/net/sockstat") + read("/proc/net/sockstat6"))
        .splitlines() if ": " in line)}
    where = os.environ.get(INSIDE, "")
    return [
        f"* Machine: {cpu}, {os.cpu_count()} CPUs, {mem_kib / 1048576:.1f} GiB; "
        f"kernel {platform.release()}; Python {platform.python_version()}; "
        f"{tool_version(['netstat', '-V'])}; {tool_version(['ss', '-V'])}",
        f"* Namespace: {where or '(the host itself)'}; TCP {sockstat.get('TCP', '?')}; "
        f"TCP6 {sockstat.get('TCP6', '?')}; UDP {sockstat.get('UDP', '?')}; "
        f"{count_lines('/proc/net/unix')} unix sockets; "
        f"{count_lines('/proc/net/route')} IPv4 routes",
        f"* nlstat run as {nlstat_how}; tree at {tree_state()}",
        f"* {warmup} untimed warm-up run per program, then {runs} rounds alternating the "
        "programs (order rotated each round); wall time includes process start-up; "
        + ("peak RSS from GNU time" if os.access(GNU_TIME, os.X_OK) else "peak RSS unknown"),
    ]


def cell(r: Result) -> str:
    if r.missing:
        return r.missing
    if not r.samples:
        return "-"
    t = r.times()
    return f"{r.median():.3f} ({t[0]:.3f}–{t[-1]:.3f})"


def rss(r: Optional[Result]) -> str:
    if r is None or r.missing or not r.samples or not r.peak_rss_kib():
        return "-"
    return f"{r.peak_rss_kib() / 1024:.1f}"


def cpu(r: Optional[Result]) -> str:
    if r is None or r.missing or not r.samples:
        return "-"
    return f"{r.median_cpu():.2f}"


def ratio(a: Result, b: Optional[Result]) -> str:
    if b is None or a.missing or b.missing or not a.samples or not b.samples or not b.median():
        return "-"
    return f"{a.median() / b.median():.2f}"


BASELINE = Program("python3 -c pass", [sys.executable, "-c", "pass"], c_env())


def compare_mode(mode: str, prefix: List[str], env: Dict[str, str], args: argparse.Namespace,
                 baselines: List[Sample]) -> List[str]:
    """One table row. `python3 -c pass` takes part in the same alternating rounds, so the
    start-up share is measured under the same load as nlstat; its samples go to `baselines`."""
    words = mode.split()
    nl = Program("nlstat", [*prefix, *words], env)
    programs = [nl]
    structured = bool({"--json", "--ndjson"} & set(words))
    if not structured:
        programs.append(Program("netstat", ["netstat", *words], c_env()))
        alternative = equivalent(words)
        if alternative is not None:
            programs.append(alternative._replace(env=c_env()))
    if not args.no_baseline:
        programs.append(BASELINE)
    started = time.monotonic()
    results = measure(programs, args.runs, args.warmup, args.timeout)
    spent = time.monotonic() - started
    baseline = results.pop() if not args.no_baseline else None
    if baseline is not None:
        baselines.extend(baseline.samples)
    mine = results[0]
    netstat = results[1] if len(results) > 1 else None
    other = results[2] if len(results) > 2 else None
    statuses = {s.status for s in mine.samples}
    if structured and statuses - {0}:
        return [f"| `{mode}` | rejected by nlstat (status {'/'.join(map(str, statuses))}) "
                "| | | | | | | | | | |"]
    note = verdict(mine, netstat) if netstat is not None else "no netstat equivalent"
    if baseline is not None and baseline.samples and mine.samples:
        over = (mine.median() - baseline.median()) * 1000
        note += f"; {over:+.0f} ms vs `python3 -c pass`"
        if mode in SMALL_MODES:
            within = over <= BUDGET_MS
            note += " (within budget)" if within else f" (over the {BUDGET_MS:.0f} ms budget)"
    # The size of the task: netstat's line count (nlstat's when netstat is not run or failed).
    counted = [r.samples[0].lines for r in (netstat, mine)
               if r is not None and r.samples and r.samples[0].status == 0]
    rows = counted[0] if counted else 0
    sys.stderr.write(f"compare: {mode}: {spent:.1f} s\n")
    return [
        f"| `{mode}` | {rows} | {cell(mine)} | {cell(netstat) if netstat else '-'} | "
        f"{ratio(mine, netstat)} | {other.program.label if other else '-'} | "
        f"{cell(other) if other else '-'} | {ratio(mine, other)} | "
        f"{cpu(mine)} / {cpu(netstat)} / {cpu(other)} | "
        f"{rss(mine)} / {rss(netstat)} / {rss(other)} | {note} |"
    ]


# nlstat's own extras, timed against `nlstat -ant` in the same alternating rounds:
# (label, nlstat arguments or None for the API loop, the target ratio to `nlstat -ant`).
API_LOOP = "import nlstat\nfor _ in nlstat.sockets('tcp'):\n    pass\n"
AGAINST_ANT: List[Tuple[str, Optional[List[str]], float]] = [
    ("nlstat -ant --dport 443", ["-ant", "--dport", "443"], 0.3),
    ("API: for _ in nlstat.sockets('tcp')", None, 1.5),
]


def against_ant_rows(prefix: List[str], env: Dict[str, str], args: argparse.Namespace
                     ) -> List[str]:
    """`nlstat -ant` and each extra, alternating; one row per extra with its ratio."""
    ant = Program("nlstat -ant", [*prefix, "-ant"], env)
    api_env = dict(env, PYTHONPATH=ROOT)
    extras = [Program(label, [*prefix, *argv] if argv is not None
                      else [sys.executable, "-c", API_LOOP], env if argv is not None else api_env)
              for label, argv, _target in AGAINST_ANT]
    results = measure([ant, *extras], args.runs, args.warmup, args.timeout)
    base = results[0]
    rows = ["", "nlstat's own extras against `nlstat -ant`, alternating in the same rounds:", "",
            "| what | lines | time | `nlstat -ant` | ratio | target | CPU s | peak RSS |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for (label, _argv, target), result in zip(AGAINST_ANT, results[1:]):
        lines = result.samples[0].lines if result.samples else 0
        value = ratio(result, base)
        met = "-" if value == "-" else ("met" if float(value) <= target else "missed")
        rows.append(f"| {label} | {lines} | {cell(result)} | {cell(base)} | {value} | "
                    f"<= {target} ({met}) | {cpu(result)} | {rss(result)} |")
    return rows


def profile(mode: str, prefix: List[str], env: Dict[str, str]) -> int:
    import pstats
    import tempfile

    if prefix[:2] != [sys.executable, "-m"]:
        prefix = [sys.executable, "-m", "nlstat"]
        env = dict(env, PYTHONPATH=ROOT)
    with tempfile.NamedTemporaryFile(suffix=".prof") as out:
        cmd = [sys.executable, "-m", "cProfile", "-o", out.name, *prefix[1:], *mode.split()]
        started = time.perf_counter()
        status = subprocess.call(cmd, env=env, stdout=subprocess.DEVNULL)
        print(f"# cProfile of `nlstat {mode}`: status {status}, "
              f"{time.perf_counter() - started:.3f} s under the profiler")
        stats = pstats.Stats(out.name)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(25)
    return status


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    if args.netns and os.environ.get(INSIDE) != args.netns:
        return reexec_inside(args.netns, argv)
    prefix, env, how = nlstat_command(args.nlstat)
    if args.profile:
        return profile(args.profile, prefix, env)
    baselines: List[Sample] = []
    rows: List[str] = []
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        rows += compare_mode(mode, prefix, env, args, baselines)
    lines = [f"### nlstat, netstat and ss ({time.strftime('%Y-%m-%d')})", ""]
    lines += machine_lines(how, args.runs, args.warmup)
    if any("p" in word.lstrip("-") for mode in args.modes.split(",") for word in mode.split()
           if word.startswith("-") and not word.startswith("--")):
        lines.append(fd_census())
    if baselines:
        baseline = Result(BASELINE, baselines, "", b"", b"")
        lines.append(f"* `python3 -c pass` (timed in every mode's rounds): {cell(baseline)} s; "
                     f"small modes should stay within its median + {BUDGET_MS:.0f} ms")
    lines += [
        "",
        "Wall times in seconds: median (min–max). CPU: median user+system seconds (a helper "
        "process included). Peak RSS in MiB. Both as nlstat / netstat / other.",
        "",
        "| mode | lines | nlstat | netstat | nlstat/netstat | other | other time "
        "| nlstat/other | CPU s | peak RSS | nlstat's output |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|",
        *rows,
    ]
    if args.against_ant:
        lines += against_ant_rows(prefix, env, args)
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
