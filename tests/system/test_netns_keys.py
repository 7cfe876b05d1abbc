"""Namespaces as data: the `netns` of JSON records, `--count --by netns`, the `netns` label of
`--prometheus`/`--serve --all-netns`, and `--dev` looked up inside the namespace listed.

Two private namespaces hold known sockets: `red` those of this test process (a tcp listener
with a connection, a listener bound to its own veth0 with SO_BINDTODEVICE, a unix socket),
`amber` a udp socket and a tcp listener. The oracle is netstat run inside each one (`ip netns
exec`): its rows counted per protocol and state.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from typing import Dict, Iterator, List, NamedTuple, Tuple

import pytest

from tests import netns
from tests.cli_support import _environ, run_nlstat
from tests.json_support import errors

pytestmark = pytest.mark.netns

DEVICE = "veth0"  # inside the namespaces only (tests/netns.py); not on the host
# The test's sockets by local port: other tests' namespaces may hold 100k churning sockets,
# so listings are narrowed to these (in the kernel) and the oracle's rows likewise.
PORTS = ["--sport", "7400-7403"]
SO_BINDTODEVICE = 25


class Scene(NamedTuple):
    red: netns.Namespace
    amber: netns.Namespace
    held: List[socket.socket]


def _red_sockets() -> List[socket.socket]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 7400))
    listener.listen()
    client = socket.create_connection(("127.0.0.1", 7400))
    server, _ = listener.accept()
    bound = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    bound.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, DEVICE.encode())
    bound.bind(("198.18.0.1", 7401))
    bound.listen()
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    unix.bind("\0nlstat-netns-keys-red")
    return [listener, client, server, bound, unix]


def _amber_sockets() -> List[socket.socket]:
    udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp.bind(("::1", 7402))
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.bind(("::1", 7403))
    listener.listen()
    return [udp, listener]


@pytest.fixture(scope="module")
def scene() -> Iterator[Scene]:
    netns.skip_unless_root()
    with netns.namespace(prefix="nlst-keys") as red, netns.namespace(prefix="nlst-keys") as amber:
        held = red.call_inside(_red_sockets) + amber.call_inside(_amber_sockets)
        try:
            yield Scene(red, amber, held)
        finally:
            for sock in held:
                sock.close()


def inode_of(ns: netns.Namespace) -> int:
    return os.stat(f"/run/netns/{ns.name}").st_ino


def netstat_counts(ns: netns.Namespace, argv: List[str]) -> Counter[Tuple[str, str]]:
    """(Proto, State) of each row netstat lists inside the namespace with a local port of
    PORTS."""
    done = ns.run(["netstat", *argv], env=_environ())
    assert done.returncode == 0, done.stderr
    counts: Counter[Tuple[str, str]] = Counter()
    for line in done.stdout.decode(errors="replace").splitlines():
        fields = line.split()
        if not fields or fields[0] not in ("tcp", "tcp6", "udp", "udp6", "raw", "raw6"):
            continue
        if not 7400 <= int(fields[3].rsplit(":", 1)[1]) <= 7403:
            continue
        counts[(fields[0], fields[5] if len(fields) > 5 else "")] += 1
    return counts


# -- JSON: netns on every record -----------------------------------------------------------------


@pytest.mark.parametrize("argv", [["-ant", *PORTS], ["-anx"], ["-rn"], ["-i"], ["-s"]],
                         ids=lambda argv: " ".join(argv))
def test_every_record_names_its_namespace(scene: Scene, argv: List[str]) -> None:
    got = run_nlstat(["--all-netns", *argv, "--ndjson"])
    assert got.status in (0, 1), got.stderr  # -rn: a namespace without routes (compat.md)
    header: Dict[str, object] = {}
    seen = set()
    for text in got.stdout.splitlines():
        line = json.loads(text)
        mode = "sockets" if argv[0] in ("-ant", "-anx") else {
            "-rn": "routes", "-i": "interfaces", "-s": "statistics"}[argv[0]]
        assert errors(mode, line, line=True) == [], line
        if line["type"] == "header":
            header = line
        elif line["type"] != "end":
            assert line["netns"] == header["netns"], line
            seen.add(line["netns"]["name"])
    assert {scene.red.name, scene.amber.name} <= seen or argv[0] == "-anx"


def test_netns_records_are_the_plain_records_plus_netns(scene: Scene) -> None:
    document = json.loads(run_nlstat(["--netns", scene.red.name, "-ant", "--json"]).stdout)
    assert errors("sockets", document) == []
    inside = scene.red.run([sys.executable, "-m", "nlstat", "-ant", "--json"], env=_environ())
    plain = json.loads(inside.stdout)
    want = {"inode": inode_of(scene.red), "name": scene.red.name}
    assert document["netns"] == want
    assert [dict(record, netns=want) for record in plain["records"]] == document["records"]
    assert "netns" not in plain["records"][0]  # only under --netns / --all-netns


# -- --count --by netns --------------------------------------------------------------------------


def count_table(stdout: bytes) -> Dict[Tuple[str, ...], int]:
    lines = stdout.decode().splitlines()
    assert lines[0].split()[-1] == "COUNT"
    return {tuple(line.split()[:-1]): int(line.split()[-1]) for line in lines[1:]}


def test_count_by_netns_is_one_table_matching_netstat_in_each(scene: Scene) -> None:
    for _attempt in range(3):  # another test's namespace may come or go meanwhile
        got = run_nlstat(["--all-netns", "--count", "--by", "netns,proto,state", "-at", *PORTS])
        assert got.status == 0, got.stderr
        table = count_table(got.stdout)
        total = count_table(run_nlstat(["--all-netns", "--count", "-at", *PORTS]).stdout)
        summed: Counter[Tuple[str, ...]] = Counter()
        for (_netns, proto, state), count in table.items():
            summed[(proto, state)] += count
        if dict(summed) == total:
            break
    else:
        raise AssertionError(f"{dict(summed)} != {total}")
    for ns in (scene.red, scene.amber):
        want = netstat_counts(ns, ["-atn"])
        mine = {(proto, state): count for (label, proto, state), count in table.items()
                if label == ns.name}
        assert mine == dict(want)
    assert table[(scene.red.name, "tcp", "LISTEN")] == 2
    assert table[(scene.amber.name, "tcp6", "LISTEN")] == 1


def test_count_by_netns_in_json(scene: Scene) -> None:
    got = run_nlstat(["--all-netns", "--count", "--by", "state,netns", "-au", "--json", *PORTS])
    assert got.status == 0, got.stderr
    records = json.loads(got.stdout)
    amber = [record for record in records
             if record["netns"] == {"inode": inode_of(scene.amber), "name": scene.amber.name}]
    assert amber == [{"state": "", "netns": amber[0]["netns"], "count": 1}]
    one = json.loads(run_nlstat(["--netns", scene.amber.name, "--count", "--by", "state,netns",
                                 "-au", "--json", *PORTS]).stdout)
    assert one == amber


def test_count_in_one_namespace_labels_it(scene: Scene) -> None:
    got = run_nlstat(["--netns", scene.red.name, "--count", "--by", "netns", "-lt"])
    assert got.stdout.decode().splitlines() == ["NETNS" + " " * (len(scene.red.name) - 3)
                                                + "COUNT", f"{scene.red.name}      2"]


# -- --prometheus / --serve with --all-netns -----------------------------------------------------


def promtool_check(text: bytes) -> None:
    from tests.system.test_metrics import PROMTOOL

    if not os.path.exists(PROMTOOL):
        pytest.skip("needs promtool (Debian package prometheus)")
    done = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")


def labelled(text: bytes, name: str) -> List[Tuple[Dict[str, str], float]]:
    from tests.system.test_metrics import samples

    return samples(text, name)


def check_exposition(scene: Scene, body: bytes) -> None:
    promtool_check(body)
    sockets = labelled(body, "nlstat_sockets")
    assert all(labels.keys() == {"proto", "state", "netns"} for labels, _ in sockets)
    for ns in (scene.red, scene.amber):
        want = netstat_counts(ns, ["-atn"])
        mine = {(labels["proto"], labels["state"]): value for labels, value in sockets
                if labels["netns"] == ns.name}
        assert mine == {key: float(count) for key, count in want.items()}
    queues = {(labels["netns"], labels["laddr"], labels["lport"])
              for labels, _ in labelled(body, "nlstat_listen_queue_max")}
    assert (scene.red.name, "127.0.0.1", "7400") in queues
    assert (scene.amber.name, "::1", "7403") in queues
    assert (scene.amber.name, "127.0.0.1", "7400") not in queues


def test_prometheus_over_every_namespace(scene: Scene) -> None:
    pytest.importorskip("prometheus_client")
    got = run_nlstat(["--all-netns", "--prometheus", "-t", *PORTS])
    assert got.status == 0, got.stderr
    check_exposition(scene, got.stdout)


def test_serve_over_every_namespace(scene: Scene) -> None:
    pytest.importorskip("prometheus_client")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "nlstat", "--all-netns", "-t", *PORTS, "--serve",
         f"127.0.0.1:{port}"],
        env=_environ(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert server.stderr is not None
        assert server.stderr.readline().startswith(b"nlstat: serving http://127.0.0.1:")
        bodies = []
        for _scrape in range(2):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
                bodies.append(answer.read())
        for body in bodies:
            check_exposition(scene, body)
        dumps = [labelled(body, "nlstat_kernel_dumps_total")[0][1] for body in bodies]
        assert dumps == [1.0, 2.0]  # a fresh dump of every namespace per scrape
    finally:
        server.terminate()
        server.wait(timeout=20)
    # Its helper (which forks the namespaces' children) died with it.
    deadline = time.monotonic() + 10
    while any(f"127.0.0.1:{port}".encode() in _command_line(pid)
              for pid in os.listdir("/proc") if pid.isdigit()):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def _command_line(pid: str) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:  # gone meanwhile
        return b""


# -- --dev inside the namespace ------------------------------------------------------------------


def test_dev_is_the_namespaces_own_device(scene: Scene) -> None:
    assert DEVICE not in os.listdir("/sys/class/net")  # the host has no such device
    got = run_nlstat(["--netns", scene.red.name, "-tln", "--dev", DEVICE])
    assert got.status == 0, got.stderr
    rows = got.stdout.decode().splitlines()[2:]
    assert [row.split()[3] for row in rows] == ["198.18.0.1:7401"]
    # Only red has a socket on its veth0; the other namespaces select nothing, no error.
    every = run_nlstat(["--all-netns", "-tln", "--dev", DEVICE, *PORTS])
    assert every.status == 0, every.stderr
    listed = [line for line in every.stdout.decode().splitlines()
              if line.startswith("tcp")]
    assert [row.split()[3] for row in listed] == ["198.18.0.1:7401"]


def test_dev_unknown_in_the_namespace_is_one_line(scene: Scene) -> None:
    got = run_nlstat(["--netns", scene.amber.name, "-tln", "--dev", "nlst-nodev0"])
    assert (got.status, got.stdout) == (1, b"")
    assert got.stderr.decode().splitlines() == ["nlstat: unknown interface 'nlst-nodev0'"]


def test_repeated_states_combine_live(scene: Scene) -> None:
    both = run_nlstat(["--netns", scene.red.name, "-tn", "--state", "listen",
                       "--state", "established"])
    one = run_nlstat(["--netns", scene.red.name, "-tn", "--state", "listen,established"])
    assert both.status == one.status == 0
    assert both.stdout == one.stdout
    states = Counter(line.split()[5] for line in both.stdout.decode().splitlines()[2:])
    assert states == Counter({"LISTEN": 2, "ESTABLISHED": 2})


def test_real_prometheus_scrapes_every_namespace(scene: Scene) -> None:
    """A real Prometheus (inside red, as nlstat --serve --all-netns is) stores every
    namespace's counts under its netns label, equal to netstat's rows in each."""
    pytest.importorskip("prometheus_client")
    from tests.system import test_metrics as metrics

    for tool in (metrics.PROMTOOL, metrics.PROMETHEUS):
        if not os.path.exists(tool):
            pytest.skip(f"needs {tool} (Debian package prometheus)")
    world = metrics.World(scene.red, [])
    with metrics.Served(world, ["--all-netns", "-t", *PORTS]) as served:
        server = metrics.PrometheusServer(world, served.port)
        try:
            assert server.wait_for('up{job="nlstat"} == 1')
            for ns in (scene.red, scene.amber):
                want = {key: float(count) for key, count in netstat_counts(ns, ["-atn"]).items()}
                found = server.wait_for(f'nlstat_sockets{{netns="{ns.name}"}}')
                stored = {(str(item["metric"]["proto"]),  # type: ignore[index]
                           str(item["metric"].get("state", ""))):  # type: ignore[attr-defined]
                          float(item["value"][1])  # type: ignore[index]
                          for item in found}
                assert stored == want, ns.name
            backlog = server.wait_for(
                f'nlstat_listen_queue_max{{netns="{scene.amber.name}",lport="7403"}}')
            assert float(backlog[0]["value"][1]) > 0  # type: ignore[index]
        finally:
            server.stop()
            assert not os.path.exists(server.directory)
