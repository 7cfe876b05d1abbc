"""Small-scale runs of the benchmark tools: loadgen, benchmarks/compare.py and `nlstat --compare`.

The load is tiny (hundreds of sockets) so this stays in the default test run; the assertions are
about mechanics (what gets built, what the runner reports, that everything is cleaned up), never
about timings.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Dict, Iterator, List

import pytest

from nlstat import compare

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOADGEN = os.path.join(ROOT, "benchmarks", "loadgen.py")
COMPARE = os.path.join(ROOT, "benchmarks", "compare.py")
SMALL_LOAD = ["--tcp", "200", "--tcp6", "10", "--udp", "20", "--unix", "50", "--routes", "100"]


def c_env(**extra: str) -> Dict[str, str]:
    env = dict(os.environ, LC_ALL="C", PYTHONPATH=ROOT)
    env.update(extra)
    return env


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to build network namespaces")
    if shutil.which("ip") is None or shutil.which("netstat") is None:
        pytest.skip("needs iproute2's ip and net-tools' netstat")


def namespace_exists(name: str) -> bool:
    return os.path.exists(f"/run/netns/{name}")


def process_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_until(check: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return bool(check())


class Load:
    """One loadgen run in the background; `stop()` ends it the way a user would."""

    def __init__(self, tmp: str, extra: List[str]) -> None:
        self.netns = f"nlst-bsmoke-{os.getpid()}-{secrets.token_hex(3)}"
        self.ready_file = os.path.join(tmp, f"{self.netns}.ready")
        self.proc = subprocess.Popen(
            [sys.executable, LOADGEN, *extra, "--netns", self.netns, "--hold", "300",
             "--ready-file", self.ready_file],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.info: Dict[str, Any] = {}

    def wait_ready(self) -> Dict[str, Any]:
        if not wait_until(lambda: os.path.exists(self.ready_file) or self.proc.poll() is not None,
                          60):
            raise AssertionError("loadgen not ready within 60 s")
        if not os.path.exists(self.ready_file):
            out, err = self.proc.communicate()
            raise AssertionError(f"loadgen exited {self.proc.returncode}: {out} {err}")
        with open(self.ready_file) as f:
            self.info = json.load(f)
        return self.info

    def stop(self, sig: int = signal.SIGTERM) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            _out, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _out, err = self.proc.communicate()
        return err

    def force_cleanup(self) -> None:
        """Last resort after a failed test: nothing may be left behind."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid in self.info.get("workers", []):
            if not process_gone(pid):
                os.kill(pid, signal.SIGKILL)
        if namespace_exists(self.netns):
            subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)
        shutil.rmtree(f"/etc/netns/{self.netns}", ignore_errors=True)

    def inside(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.netns, *cmd], capture_output=True,
                              text=True, env=c_env(), timeout=120)


@pytest.fixture(scope="module")
def load(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Load]:
    needs_root()
    gen = Load(str(tmp_path_factory.mktemp("bench")), SMALL_LOAD)
    try:
        gen.wait_ready()
        yield gen
        err = gen.stop(signal.SIGTERM)
        assert gen.proc.returncode == 0, err
        assert not namespace_exists(gen.netns), "namespace left behind after SIGTERM"
        assert all(process_gone(pid) for pid in gen.info["workers"])
    finally:
        gen.force_cleanup()


# ------------------------------------------------------------------------------- loadgen


@pytest.mark.netns
def test_loadgen_builds_the_load_it_reports(load: Load) -> None:
    counts = load.info["counts"]
    assert counts["tcp_sockets"] == 200 and counts["tcp6_sockets"] == 10
    assert len(load.info["workers"]) == 1 and load.info["pid"] == load.proc.pid
    listing = load.inside("netstat", "-ant")
    assert listing.returncode == 0
    rows = [line.split() for line in listing.stdout.splitlines()[2:]]
    states: Dict[str, int] = {}
    for row in rows:
        states[row[-1]] = states.get(row[-1], 0) + 1
    # 105 connections, both ends here; IPv4 connection 50 shut its write side; 3 extra + 1 own
    # IPv4 listeners, 1 extra + 1 own IPv6 listener.
    assert states == {"ESTABLISHED": 208, "FIN_WAIT2": 1, "CLOSE_WAIT": 1, "LISTEN": 6}
    recv_q = sorted(int(row[1]) for row in rows if row[-1] == "ESTABLISHED")
    assert recv_q[-3:] == [0, 100, 100]  # connection 3 of each family sent 100 unread bytes
    unix = load.inside("netstat", "-anx").stdout.splitlines()
    assert sum(" CONNECTED " in line for line in unix) == 50
    assert sum("@nlst-bench/" in line for line in unix) == 2
    routes = load.inside("cat", "/proc/net/route").stdout.splitlines()
    assert len(routes) == 1 + 100 + 1  # header, the routes, the device's own subnet
    udp = load.inside("netstat", "-anu").stdout.splitlines()[2:]
    assert len(udp) == 20 + 3


@pytest.mark.netns
def test_loadgen_cleans_up_after_ctrl_c(tmp_path: Any) -> None:
    needs_root()
    gen = Load(str(tmp_path), ["--tcp", "20", "--unix", "4"])
    try:
        info = gen.wait_ready()
        assert namespace_exists(gen.netns)
        err = gen.stop(signal.SIGINT)
        assert "SIGINT: cleaning up" in err
        assert gen.proc.returncode == 0, err
        assert not namespace_exists(gen.netns)
        assert not os.path.exists(f"/etc/netns/{gen.netns}")
        assert not os.path.exists(gen.ready_file)
        assert all(process_gone(pid) for pid in info["workers"])
    finally:
        gen.force_cleanup()


@pytest.mark.netns
def test_loadgen_workers_die_with_it(tmp_path: Any) -> None:
    needs_root()
    gen = Load(str(tmp_path), ["--tcp", "20"])
    try:
        info = gen.wait_ready()
        gen.proc.kill()  # no chance to clean up: the workers must still go (PR_SET_PDEATHSIG)
        gen.proc.wait()
        assert wait_until(lambda: all(process_gone(pid) for pid in info["workers"]), 10)
    finally:
        gen.force_cleanup()


@pytest.mark.netns
def test_loadgen_refuses_an_existing_namespace(load: Load, tmp_path: Any) -> None:
    done = subprocess.run([sys.executable, LOADGEN, "--tcp", "2", "--netns", load.netns,
                           "--ready-file", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"namespace {load.netns} exists" in done.stderr
    assert namespace_exists(load.netns)  # the running load is untouched


# ------------------------------------------------------------------------------- compare.py


def table_rows(markdown: str) -> Dict[str, List[str]]:
    rows = {}
    for line in markdown.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0].strip("`")] = cells
    return rows


@pytest.mark.netns
def test_compare_runner_mechanics_with_netstat_against_itself(load: Load) -> None:
    done = subprocess.run(
        [sys.executable, COMPARE, "--netns", load.netns, "--runs", "2", "--modes=-ant,-rn",
         "--nlstat", "netstat", "--no-baseline"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = table_rows(done.stdout)
    assert set(rows) == {"-ant", "-rn"}
    assert rows["-ant"][1] == "218"  # 2 title lines + 216 sockets
    assert rows["-ant"][5] == "ss" and rows["-rn"][5] == "ip route"
    assert rows["-ant"][-1] == "identical to netstat"
    assert rows["-rn"][-1] == "identical to netstat"
    assert f"Namespace: {load.netns}" in done.stdout
    assert "101 IPv4 routes" in done.stdout


@pytest.mark.netns
def test_compare_runner_nlstat_matches_netstat(load: Load) -> None:
    done = subprocess.run(
        [sys.executable, COMPARE, "--netns", load.netns, "--runs", "2", "--modes=-ant,-anx"],
        capture_output=True, text=True, timeout=120, env=c_env())
    assert done.returncode == 0, done.stderr
    rows = table_rows(done.stdout)
    assert set(rows) == {"-ant", "-anx"}
    assert rows["-ant"][-1].startswith("identical to netstat;"), rows["-ant"]
    assert rows["-anx"][-1].startswith("identical to netstat;"), rows["-anx"]
    assert " ms vs `python3 -c pass`" in rows["-ant"][-1]
    assert "`python3 -c pass`" in done.stdout


# ------------------------------------------------------------------------------- nlstat --compare

RUN_COMPARE = ("import sys; from nlstat.compare import run; from nlstat.env import Environment; "
               "sys.exit(run(sys.argv[1:], Environment.from_os()))")


@pytest.mark.netns
def test_nlstat_compare_in_the_load(load: Load) -> None:
    done = load.inside(sys.executable, "-c", RUN_COMPARE, "--compare", "--compare-runs", "2",
                       "-ant")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("nlstat --compare -ant   (2 runs each, 218 lines of output)")
    assert lines[1].split() == ["program", "median", "min", "max", "CPU", "peak", "RSS",
                                "output"]
    assert lines[2].startswith("nlstat ") and lines[2].endswith("identical to netstat")
    assert lines[3].startswith("netstat ") and lines[4].startswith("ss ")
    assert lines[5].startswith("ratio nlstat/netstat ") and ", nlstat/ss " in lines[5]


@pytest.mark.netns
def test_nlstat_compare_bad_options_give_netstats_status(load: Load) -> None:
    done = load.inside(sys.executable, "-c", RUN_COMPARE, "--compare-runs=1", "--bogus")
    assert done.returncode == 3
    assert "netstat exited with status 3: netstat: unrecognized option '--bogus'" in done.stdout
    assert "ss: no equivalent for these options" in done.stdout


def test_nlstat_compare_refuses_continuous_and_bad_run_counts() -> None:
    # "--conti" is --continuous abbreviated, as netstat's getopt_long reads it.
    for args in (["-ctn"], ["--continuous"], ["--conti", "-t"], ["--compare-runs", "x", "-ant"],
                 ["--compare-runs=0"]):
        done = subprocess.run([sys.executable, "-c", RUN_COMPARE, *args], capture_output=True,
                              text=True, env=c_env(), timeout=60)
        assert done.returncode == 3, args  # a command-line error, as --backend=x
        assert done.stdout == "", args
        assert done.stderr.startswith("nlstat: "), args


def test_nlstat_compare_says_when_netstat_is_missing(tmp_path: Any) -> None:
    # Through the real command line: app.py hands `--compare ...` to nlstat.compare.run.
    done = subprocess.run([sys.executable, "-m", "nlstat", "--compare", "--compare-runs", "1",
                           "-V"],
                          capture_output=True, text=True, timeout=60,
                          env=c_env(PATH=str(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert "netstat: not installed (net-tools); nothing to compare the output with" in done.stdout
    assert "not installed" in done.stdout.splitlines()[3]


@pytest.mark.parametrize(
    ("args", "label", "argv"),
    [
        (["-ant"], "ss", ["ss", "-tan"]),
        (["-tulpn"], "ss", ["ss", "-tulpn"]),
        (["-a"], "ss", ["ss", "-tuwxar"]),
        (["--tcp", "--listening", "--numeric"], "ss", ["ss", "-tln"]),
        (["-rn"], "ip route", ["ip", "route"]),
        (["-s"], "nstat -asz", ["nstat", "-asz"]),
        (["-i"], "ip -s link", ["ip", "-s", "link"]),
        (["-A", "inet"], None, None),
        (["-rC"], None, None),
        (["-g"], None, None),
        (["-ant", "--bogus"], None, None),
    ],
)
def test_equivalent_commands(args: List[str], label: Any, argv: Any) -> None:
    program = compare.equivalent(args)
    if label is None:
        assert program is None
    else:
        assert program is not None
        assert (program.label, program.argv) == (label, argv)


def test_timer_masking() -> None:
    line = b"tcp 0 0 1.2.3.4:22 5.6.7.8:1 ESTABLISHED keepalive (7179.92/0/0)\n"
    assert compare.mask_timers(line).endswith(b"keepalive (#/#/#)\n")
    assert compare.mask_timers(b"off (0.00/0/0)") == b"off (#/#/#)"
    assert compare.mask_timers(b"/run/x.sock") == b"/run/x.sock"
