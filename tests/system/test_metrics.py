"""`--prometheus` and `--serve`, checked by Prometheus's own tools in a private namespace.

* The exposition passes `promtool check metrics` (with --by labels, and past --max-series).
* A real Prometheus server (Debian's `prometheus`) runs inside the namespace with nlstat
  --serve, scraping it every second; its HTTP API must report nlstat_sockets per protocol
  and state equal to the rows netstat lists there, and a listener's queue length equal to
  the Recv-Q netstat shows after the test filled its accept queue.
* The server: concurrent scrapes share dumps, other paths get 404, oversized and stalled
  requests are cut off, a port in use is a one-line error with status 1.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import pytest

from tests import netns
from tests.system import sockets_cases as cases

pytestmark = pytest.mark.netns
pytest.importorskip("prometheus_client")

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
BACKLOG = 3
WAITING = 2  # connections left in the accept queue of the test's listener
LISTEN_PORT = 7001


class World(NamedTuple):
    ns: netns.Namespace
    held: List[socket.socket]


def hold_sockets() -> List[socket.socket]:
    """Sockets with known queues, made inside the namespace (all IPv6 or unix or udp, apart
    from the scrape traffic, which is tcp over 127.0.0.1)."""
    held: List[socket.socket] = []
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.bind(("::1", LISTEN_PORT))
    listener.listen(BACKLOG)
    held.append(listener)
    for _ in range(WAITING):  # connected, never accepted: they wait in the accept queue
        client = socket.create_connection(("::1", LISTEN_PORT), timeout=5)
        held.append(client)
    server = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    server.bind(("::1", 7002))
    server.listen(8)
    held.append(server)
    for _ in range(3):
        client = socket.create_connection(("::1", 7002), timeout=5)
        accepted, _ = server.accept()
        held += [client, accepted]
    lone = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    lone.bind(("::1", 7003))
    held.append(lone)
    pair = socket.socketpair()
    held += list(pair)
    return held


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    netns.skip_unless_root()
    for tool in (PROMTOOL, PROMETHEUS):
        if not os.path.exists(tool):
            pytest.skip(f"needs {tool} (Debian package prometheus)")
    with netns.namespace(prefix="nlst-prom") as ns:
        held = ns.call_inside(hold_sockets)
        try:
            yield World(ns, held)
        finally:
            for sock in held:
                sock.close()


def nlstat(world: World, args: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
    return world.ns.run(cases.nlstat_command(args), env=cases.nlstat_env("auto"), timeout=60,
                        cwd="/")


def promtool_check(text: bytes) -> None:
    result = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr.decode(errors="replace")


def samples(text: bytes, name: str) -> List[Tuple[Dict[str, str], float]]:
    """(labels, value) of every sample of one metric, parsed with prometheus_client."""
    from prometheus_client.parser import text_string_to_metric_families

    found = []
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            if sample.name == name:
                found.append((dict(sample.labels), sample.value))
    return found


@pytest.mark.parametrize("by", [None, "lport,user,program", "laddr,raddr,rport,dev"])
def test_exposition_passes_promtool(world: World, by: Optional[str]) -> None:
    args = ["--prometheus"] + (["--by", by] if by else [])
    result = nlstat(world, args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    promtool_check(result.stdout)
    sockets = samples(result.stdout, "nlstat_sockets")
    assert sockets and all(value > 0 for _, value in sockets)
    labels = ["proto", "state"] + (by.split(",") if by else [])
    assert all(sorted(found) == sorted(labels) for found, _ in sockets)
    queues = {(labels["laddr"], labels["lport"]): value
              for labels, value in samples(result.stdout, "nlstat_listen_queue_length")}
    assert queues[("::1", str(LISTEN_PORT))] == WAITING
    limits = {(labels["laddr"], labels["lport"]): value
              for labels, value in samples(result.stdout, "nlstat_listen_queue_max")}
    assert limits[("::1", str(LISTEN_PORT))] == BACKLOG


def test_series_limit_drops_and_says_so(world: World) -> None:
    full = nlstat(world, ["--prometheus", "--by", "lport,rport,raddr"])
    series = len(samples(full.stdout, "nlstat_sockets"))
    assert series > 3
    result = nlstat(world, ["--prometheus", "--by", "lport,rport,raddr", "--max-series", "3"])
    assert result.returncode == 0
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and "--max-series 3" in lines[0], lines
    promtool_check(result.stdout)
    assert len(samples(result.stdout, "nlstat_sockets")) == 3
    dropped = samples(result.stdout, "nlstat_series_dropped")
    assert dropped[0][1] >= series - 3


def test_bad_values_are_one_line_and_status_1(world: World) -> None:
    for args in (["--prometheus", "--by", "proto,colour"], ["--serve", "localhost:x"],
                 ["--serve", "70000"], ["--prometheus", "--max-series", "0"],
                 ["--serve", "9", "--serve-max-age", "soon"], ["--count", "--prometheus"]):
        result = nlstat(world, args)
        assert result.returncode == 1, args
        assert result.stdout == b""
        assert len(result.stderr.decode().splitlines()) == 1, result.stderr


# --- nlstat --serve -----------------------------------------------------------------------------


def free_port(ns: netns.Namespace) -> int:
    def pick() -> int:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
            return port

    return ns.call_inside(pick)


class Served:
    """`nlstat --serve` running inside the namespace; stopped (and waited for) on exit."""

    def __init__(self, world: World, args: Sequence[str]) -> None:
        self.world = world
        self.port = free_port(world.ns)
        command = cases.nlstat_command(["--serve", f"127.0.0.1:{self.port}", *args])
        self.process = world.ns.popen(command, env=cases.nlstat_env("auto"), cwd="/",
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def __enter__(self) -> Served:
        assert self.process.stderr is not None
        ready, _, _ = select.select([self.process.stderr], [], [], 30)
        line = self.process.stderr.readline().decode() if ready else ""
        if "serving http://" not in line:
            self.stop()
            raise AssertionError(f"nlstat --serve did not start: {line!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def get(self, path: str = "/metrics") -> Tuple[int, bytes]:
        def fetch() -> Tuple[int, bytes]:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}",
                                            timeout=30) as answer:
                    return answer.status, answer.read()
            except urllib.error.HTTPError as err:
                return err.code, err.read()

        return self.world.ns.call_inside(fetch)

    def raw(self, data: bytes, send_more: float = 0.0) -> bytes:
        """Send `data` on a fresh connection and return what comes back until close."""

        def exchange() -> bytes:
            with socket.create_connection(("127.0.0.1", self.port), timeout=30) as conn:
                conn.sendall(data)
                answer = b""
                while True:
                    part = conn.recv(65536)
                    if not part:
                        return answer
                    answer += part

        return self.world.ns.call_inside(exchange)


def dumps_total(body: bytes) -> float:
    return samples(body, "nlstat_kernel_dumps_total")[0][1]


@pytest.mark.parametrize("max_age", [None, "60"])
def test_concurrent_scrapes_share_dumps(world: World, max_age: Optional[str]) -> None:
    threads, scrapes = 20, 5
    args = ["--serve-max-age", max_age] if max_age else []
    with Served(world, args) as served:
        results: List[Tuple[int, bytes]] = []
        lock = threading.Lock()

        def scraper() -> None:
            netns.setns(os.path.join(netns.NETNS_RUN_DIR, world.ns.name))
            for _ in range(scrapes):
                with urllib.request.urlopen(f"http://127.0.0.1:{served.port}/metrics",
                                            timeout=60) as answer:
                    result = (answer.status, answer.read())
                with lock:
                    results.append(result)

        workers = [threading.Thread(target=scraper) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(120)
        assert not any(worker.is_alive() for worker in workers)
        assert len(results) == threads * scrapes
        assert all(status == 200 for status, _ in results)
        for _, body in results[:3]:
            promtool_check(body)
        dumps = max(dumps_total(body) for _, body in results)
        if max_age:
            assert dumps == 1  # one dump answered every scrape of the minute
        else:
            assert dumps < threads * scrapes  # scrapes that waited took the dump in flight
        assert served.process.poll() is None


def test_other_paths_and_bad_requests(world: World) -> None:
    with Served(world, []) as served:
        assert served.get("/")[0] == 404
        assert served.get("/metricsx")[0] == 404
        assert served.get("/metrics?x=1")[0] == 200
        post = served.raw(b"POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc")
        assert post.startswith(b"HTTP/1.0 501"), post[:60]
        huge = served.raw(b"GET /metrics HTTP/1.0\r\nX-Pad: " + b"a" * 100_000 + b"\r\n\r\n")
        assert huge.startswith(b"HTTP/1.0 431"), huge[:60]
        # A request that never ends is dropped by the server: the connection closes (the
        # client would wait 30 s for an answer otherwise, and fail).
        assert served.raw(b"GET /metr") == b""
        # Not HTTP at all: http.server answers as to HTTP/0.9 (a body, no status line).
        garbage = served.raw(b"\x00\xff\r\n\r\n")
        assert b"400 - Bad request" in garbage, garbage[:200]
        assert served.get()[0] == 200
        assert served.process.poll() is None


def test_port_in_use_is_one_line_and_status_1(world: World) -> None:
    def occupy() -> socket.socket:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        return sock

    taken = world.ns.call_inside(occupy)
    try:
        port = taken.getsockname()[1]
        result = nlstat(world, ["--serve", f"127.0.0.1:{port}"])
    finally:
        taken.close()
    assert result.returncode == 1
    assert result.stdout == b""
    assert result.stderr.decode().splitlines() == [
        f"nlstat: cannot listen on 127.0.0.1:{port}: Address already in use"]


# --- a real Prometheus server ---------------------------------------------------------------------


def netstat_counts(world: World) -> Counter[Tuple[str, str]]:
    """(Proto, State) of every row of `netstat -a` in the namespace."""
    result = world.ns.run([cases.NETSTAT, "-a", "-n", "-W"], env=cases.base_env(), timeout=60,
                          cwd="/")
    counts: Counter[Tuple[str, str]] = Counter()
    for line in result.stdout.decode(errors="replace").splitlines():
        if line.startswith("unix "):
            counts[("unix", line[36:49].strip())] += 1
            continue
        fields = line.split()
        if not fields or fields[0] not in ("tcp", "tcp6", "udp", "udp6", "raw", "raw6"):
            continue
        state = fields[5] if len(fields) > 5 else ""
        counts[(fields[0], state)] += 1
    return counts


def still(counts: Counter[Tuple[str, str]]) -> Counter[Tuple[str, str]]:
    """The rows the scrapes do not move: all but tcp over IPv4, whose listeners stay."""
    return Counter({key: count for key, count in counts.items()
                    if key[0] != "tcp" or key[1] == "LISTEN"})


class PrometheusServer:
    """Prometheus inside the namespace, with its own config and data directory."""

    def __init__(self, world: World, target_port: int) -> None:
        self.world = world
        self.directory = tempfile.mkdtemp(prefix="nlst-prom-")
        self.port = free_port(world.ns)
        config = os.path.join(self.directory, "prometheus.yml")
        with open(config, "w", encoding="utf-8") as handle:
            handle.write(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: nlstat\n    scrape_timeout: 1s\n"
                f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n")
        self.process = world.ns.popen(
            [PROMETHEUS, f"--config.file={config}",
             f"--storage.tsdb.path={os.path.join(self.directory, 'data')}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=error"],
            cwd=self.directory, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)

    def query(self, expression: str) -> List[Dict[str, object]]:
        url = (f"http://127.0.0.1:{self.port}/api/v1/query?"
               + urllib.parse.urlencode({"query": expression}))

        def ask() -> List[Dict[str, object]]:
            with urllib.request.urlopen(url, timeout=10) as answer:
                document = json.loads(answer.read())
            assert document["status"] == "success", document
            result: List[Dict[str, object]] = document["data"]["result"]
            return result

        return self.world.ns.call_inside(ask)

    def wait_for(self, expression: str, limit: float = 60.0) -> List[Dict[str, object]]:
        deadline = time.monotonic() + limit
        while True:
            if self.process.poll() is not None:
                raise AssertionError("prometheus ended: " + self.process.stderr.read().decode()
                                     if self.process.stderr else "")
            try:
                found = self.query(expression)
                if found:
                    return found
            except OSError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise AssertionError(f"prometheus never had {expression}")
            time.sleep(0.5)


def test_real_prometheus_scrapes_nlstat(world: World) -> None:
    with Served(world, []) as served:
        server = PrometheusServer(world, served.port)
        try:
            assert server.wait_for('up{job="nlstat"} == 1')
            # The listener the test filled: its queue as Prometheus stored it, and as netstat
            # shows it (Recv-Q of a LISTEN row is its accept queue).
            found = server.wait_for(
                f'nlstat_listen_queue_length{{laddr="::1",lport="{LISTEN_PORT}"}}')
            assert float(found[0]["value"][1]) == WAITING  # type: ignore[index]
            rows = world.ns.run([cases.NETSTAT, "-ltn"], env=cases.base_env(), timeout=60)
            recv_q = [line.split()[1] for line in rows.stdout.decode().splitlines()
                      if line.split()[3:4] == [f"::1:{LISTEN_PORT}"]]
            assert recv_q == [str(WAITING)]
            limit = server.wait_for(
                f'nlstat_listen_queue_max{{laddr="::1",lport="{LISTEN_PORT}"}}')
            assert float(limit[0]["value"][1]) == BACKLOG  # type: ignore[index]

            # Socket counts per protocol and state. The scrapes themselves are tcp over
            # 127.0.0.1 and come and go every second: every other protocol, and tcp's
            # listeners, hold still, and must equal netstat's rows.
            compared = 0
            stored: Dict[Tuple[str, str], float] = {}
            want: Dict[Tuple[str, str], float] = {}
            for _attempt in range(10):
                first = still(netstat_counts(world))
                stored = {
                    (str(item["metric"]["proto"]), str(item["metric"].get("state", ""))):  # type: ignore[index,attr-defined]
                    float(item["value"][1])  # type: ignore[index]
                    for item in server.query(
                        'nlstat_sockets{proto!="tcp"} or nlstat_sockets{state="LISTEN"}')
                }
                if still(netstat_counts(world)) != first:
                    continue  # netstat's rows moved meanwhile
                want = {key: float(count) for key, count in first.items()}
                if stored == want:
                    compared += 1
                    break
                time.sleep(1.0)  # the next scrape
            else:
                raise AssertionError(f"Prometheus {stored} != netstat {want}")
            assert compared == 1
            assert ("tcp6", "ESTABLISHED") in stored and ("unix", "CONNECTED") in stored
        finally:
            server.stop()
            assert not os.path.exists(server.directory)


def test_fleet_docs_rules_and_config_pass_promtool(tmp_path: os.PathLike[str]) -> None:
    """docs/fleet.md's alert rules and scrape configuration, as a reader would copy them."""
    import re

    if not os.path.exists(PROMTOOL):
        pytest.skip("needs promtool (Debian package prometheus)")
    text = (cases.REPO_ROOT / "docs" / "fleet.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    rules = next(block for block in blocks if block.startswith("# nlstat.rules.yml"))
    config = next(block for block in blocks if block.startswith("# prometheus.yml"))
    rules_path = os.path.join(tmp_path, "nlstat.rules.yml")
    config_path = os.path.join(tmp_path, "prometheus.yml")
    with open(rules_path, "w", encoding="utf-8") as handle:
        handle.write(rules)
    with open(config_path, "w", encoding="utf-8") as handle:
        handle.write(config)
    for command in (["check", "rules", rules_path], ["check", "config", config_path]):
        result = subprocess.run([PROMTOOL, *command], capture_output=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
    assert b"2 rules found" in subprocess.run([PROMTOOL, "check", "rules", rules_path],
                                              capture_output=True, timeout=60).stdout
