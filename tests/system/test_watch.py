"""--watch in a test namespace: exactly the changes made between two ticks, and no others.

The ticks are driven by the run's own clock: the watch runs in this process (in a thread
switched into the namespace, tests/netns.py call_inside) with an Environment whose sleep()
makes the next step's changes, so every change falls between two known ticks whatever the
machine's load. The sockets are this process's own, over the namespace's loopback. Plus the
command line in the namespace: the first tick is the listing, a quiet tick prints nothing.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import struct
import subprocess
import time
from typing import Callable, Dict, List, Sequence, Tuple

import pytest

from nlstat import app
from nlstat.env import Environment
from tests import json_support as js
from tests.netns import Namespace, netns_fixture

watch_ns = netns_fixture(prefix="nlst-watch", veth=False, addresses={"lo": ()})

LINGER_RESET = struct.pack("ii", 1, 0)
PORT = 7300
SENT = 150_000  # bytes sent over one connection between two ticks


def _pair(listener: socket.socket) -> Tuple[socket.socket, socket.socket]:
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    return client, server


def _endpoints(sock: socket.socket) -> Tuple[str, int, str, int]:
    local = sock.getsockname()
    remote = sock.getpeername()
    return local[0], local[1], remote[0], remote[1]


def _reset(sock: socket.socket) -> None:
    """Close with a RST: the socket is gone at once (no TIME_WAIT left behind)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    sock.close()


def _bytes_acked(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int(struct.unpack_from("=Q", info, 120)[0])


def _state(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def _wait(condition: Callable[[], bool]) -> None:
    for _ in range(500):  # at most 5 s: loopback delivers in microseconds
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("the kernel did not get there in 5 s")


class World:
    """The sockets of one run and the record of what the steps changed."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", PORT))
        self.listener.listen(64)
        self.pairs = [_pair(self.listener) for _ in range(5)]
        self.opened: List[Tuple[str, int, str, int]] = []
        self.closed: List[Tuple[str, int, str, int]] = []
        self.state: List[Tuple[Tuple[str, int, str, int], str, str]] = []
        self.sender: Tuple[str, int, str, int] = ("", 0, "", 0)
        self.receiver: Tuple[str, int, str, int] = ("", 0, "", 0)
        self.steps = 0
        self.new_pairs: List[Tuple[socket.socket, socket.socket]] = []

    def step(self, _seconds: float) -> None:
        """The fake sleep between ticks: the first makes the churn, later ones nothing."""
        self.steps += 1
        if self.steps != 1:
            return
        for _ in range(3):  # three connections opened: six sockets
            client, server = _pair(self.listener)
            self.new_pairs.append((client, server))
            self.opened += [_endpoints(client), _endpoints(server)]
        for client, server in self.pairs[:2]:  # two closed: four sockets
            self.closed += [_endpoints(client), _endpoints(server)]
            _reset(client)
            _reset(server)
        client, server = self.pairs[2]  # one half-closed: two sockets change state
        client.shutdown(socket.SHUT_WR)
        _wait(lambda: _state(client) == 5 and _state(server) == 8)
        self.state += [(_endpoints(client), "ESTABLISHED", "FIN_WAIT2"),
                       (_endpoints(server), "ESTABLISHED", "CLOSE_WAIT")]
        client, server = self.pairs[3]  # one moves data, acknowledged and read
        before = _bytes_acked(client)
        client.sendall(b"x" * SENT)
        received = 0
        while received < SENT:
            received += len(server.recv(1 << 20))
        _wait(lambda: _bytes_acked(client) == before + SENT)
        self.sender, self.receiver = _endpoints(client), _endpoints(server)

    def close(self) -> None:
        for client, server in self.pairs[2:] + self.new_pairs:
            _reset(client)
            _reset(server)
        self.listener.close()


def _watch(ns: Namespace, args: Sequence[str]) -> Tuple[World, bytes, str, int]:
    """`nlstat ARGS` in this process inside the namespace, its sleeps making the changes."""

    def body() -> Tuple[World, bytes, str, int]:
        world = World()
        try:
            out = io.BytesIO()
            err = io.StringIO()
            env = Environment(stdout=out, stderr=err, sleep=world.step)
            status = app.main(list(args), env)
            return world, out.getvalue(), err.getvalue(), status
        finally:
            world.close()

    return ns.call_inside(body)


def _key(record: Dict[str, object]) -> Tuple[object, ...]:
    return (record["local_address"], record["local_port"], record["remote_address"],
            record["remote_port"])


def test_ndjson_reports_exactly_the_changes_made(watch_ns: Namespace) -> None:
    world, out, err, status = _watch(
        watch_ns, ["--watch", "0.01", "--ticks", "3", "-antp", "--ndjson"])
    assert status == 0 and err == ""
    lines = [json.loads(line) for line in out.decode().splitlines()]
    validator = js.validator("watch", line=True)
    for line in lines:
        assert list(validator.iter_errors(line)) == [], line
    assert lines[0]["type"] == "header" and lines[0]["mode"] == "watch"
    assert lines[-1] == {"type": "end", "ticks": 3}
    ticks = [line for line in lines if line["type"] == "tick"]
    assert [tick["tick"] for tick in ticks] == [1, 2, 3]
    events = [line for line in lines if line["type"] == "event"]
    listed = [event["socket"] for event in events if event["tick"] == 1]
    # The listing: the listener and the ten sockets of five connections, ours (-p).
    assert len(listed) == ticks[0]["sockets"] == 11
    assert all(event["event"] == "listed" for event in events if event["tick"] == 1)
    assert {socket_["program"] for socket_ in listed} == {"python3"} or all(
        socket_["pid"] == os.getpid() for socket_ in listed)

    second = [event for event in events if event["tick"] == 2]
    by_kind: Dict[str, List[Dict[str, object]]] = {}
    for event in second:
        by_kind.setdefault(str(event["event"]), []).append(event)
    assert sorted(_key(e["socket"]) for e in by_kind["opened"]) == sorted(world.opened)
    assert sorted(_key(e["socket"]) for e in by_kind["closed"]) == sorted(world.closed)
    assert sorted((_key(e["socket"]), e["old_state"], e["socket"]["state"])
                  for e in by_kind["state"]) == sorted(world.state)
    traffic = {_key(e["socket"]): e for e in by_kind["traffic"]}
    assert set(traffic) == {world.sender, world.receiver}
    assert set(by_kind) == {"opened", "closed", "state", "traffic"}
    assert (ticks[1]["opened"], ticks[1]["closed"], ticks[1]["state"], ticks[1]["traffic"]) == (
        6, 4, 2, 2)
    # The byte counters: exactly the bytes sent and read, and the rates over the interval.
    sender, receiver = traffic[world.sender], traffic[world.receiver]
    assert (sender["bytes_acked"], sender["bytes_received"]) == (SENT, 0)
    assert (receiver["bytes_acked"], receiver["bytes_received"]) == (0, SENT)
    seconds = ticks[1]["seconds"]
    assert seconds > 0
    assert sender["acked_rate"] == pytest.approx(SENT / seconds, rel=1e-3)
    assert receiver["received_rate"] == pytest.approx(SENT / seconds, rel=1e-3)
    # A quiet connection half-closed: the kernel counts the FIN as one byte, acked on the
    # side that sent it, received on the other; new connections count their SYN at most.
    counted = sorted((e["socket"]["state"], e["bytes_acked"], e["bytes_received"])
                     for e in by_kind["state"])
    assert counted == [("CLOSE_WAIT", 0, 1), ("FIN_WAIT2", 1, 0)]
    for event in by_kind["opened"]:
        assert event["bytes_received"] == 0 and event["bytes_acked"] in (0, 1)
        assert event["socket"]["pid"] == os.getpid()
    # Nothing happened before the third tick: it reports nothing.
    assert [event for event in events if event["tick"] == 3] == []
    assert (ticks[2]["opened"], ticks[2]["closed"], ticks[2]["state"], ticks[2]["traffic"]) == (
        0, 0, 0, 0)


def test_text_marks_each_change(watch_ns: Namespace) -> None:
    world, out, err, status = _watch(watch_ns, ["--watch", "0.01", "--ticks", "3", "-ant"])
    assert status == 0 and err == ""
    lines = out.decode().splitlines()
    assert lines[0] == "Active Internet connections (servers and established)"
    listing = lines[2:13]
    assert len(listing) == 11 and all(line.startswith("tcp ") for line in listing)
    assert lines[13].startswith("--- tick 2, ")
    assert lines[13].endswith(": 6 opened, 4 closed, 2 changed state, 2 with traffic")
    changes = lines[14:]
    assert len(changes) == 14  # and nothing for tick 3

    def endpoints(line: str) -> Tuple[str, int, str, int]:
        local, remote = line.split()[4:6]
        return (local.rsplit(":", 1)[0], int(local.rsplit(":", 1)[1]),
                remote.rsplit(":", 1)[0], int(remote.rsplit(":", 1)[1]))

    marked: Dict[str, List[str]] = {}
    for line in changes:
        marked.setdefault(line[:2], []).append(line)
    assert sorted(map(endpoints, marked["- "])) == sorted(world.closed)
    assert sorted(map(endpoints, marked["+ "])) == sorted(world.opened)
    states = sorted((endpoints(line), line.split("  state ")[1].split("->")[0],
                     line.split("->")[1].split()[0]) for line in marked["~ "])
    assert states == sorted(world.state)
    traffic = {endpoints(line): line for line in marked["> "]}
    assert set(traffic) == {world.sender, world.receiver}
    assert f"acked +{SENT} B (" in traffic[world.sender]
    assert "received +0 B (" in traffic[world.sender]
    assert f"received +{SENT} B (" in traffic[world.receiver]


def test_filters_choose_what_is_watched(watch_ns: Namespace) -> None:
    """--dport 7300 (in the kernel's bytecode): the client ends only, their changes only."""
    world, out, err, status = _watch(
        watch_ns, ["--watch", "0.01", "--ticks", "2", "-ant", "--dport", str(PORT), "--ndjson"])
    assert status == 0 and err == ""
    events = [json.loads(line) for line in out.decode().splitlines()]
    events = [event for event in events if event["type"] == "event"]
    assert len([event for event in events if event["tick"] == 1]) == 5
    changes = {(str(e["event"]), _key(e["socket"])) for e in events if e["tick"] == 2}
    clients = {key for key in world.opened + world.closed if key[3] == PORT}
    assert {key for _, key in changes} == clients | {world.state[0][0], world.sender}
    assert ("state", world.state[0][0]) in changes and ("traffic", world.sender) in changes


def _hold(ns: Namespace) -> List[socket.socket]:
    def hold() -> List[socket.socket]:
        listener = socket.socket()
        listener.bind(("127.0.0.1", PORT + 1))
        listener.listen(8)
        client, server = _pair(listener)
        unix_listener = socket.socket(socket.AF_UNIX)
        unix_listener.bind(b"\0nlst-watch-test")
        unix_listener.listen(8)
        return [listener, client, server, unix_listener, *socket.socketpair()]

    return ns.call_inside(hold)


def _release(held: List[socket.socket]) -> None:
    for sock in held:
        if sock.family == socket.AF_INET and sock.type == socket.SOCK_STREAM:
            _reset(sock)  # no TIME_WAIT row for the next test to see
        else:
            sock.close()


@pytest.mark.parametrize("args, backend", [
    (["-ant"], "auto"),
    (["-ant"], "proc"),
    (["-antp"], "auto"),
    (["-ax"], "auto"),
    (["-ax"], "netlink"),
])
def test_cli_first_tick_is_the_listing(watch_ns: Namespace, args: List[str],
                                       backend: str) -> None:
    """The command line in the namespace: tick one prints the listing of the same options
    byte for byte (either backend), and ticks over sockets that do not change print nothing
    more."""
    held = _hold(watch_ns)
    try:
        environ = js.environ({"NLSTAT_BACKEND": backend})
        listing = watch_ns.run(js.nlstat_argv(args), env=environ)
        watched = watch_ns.run(js.nlstat_argv([*args, "--watch", "0.05", "--ticks", "3"]),
                               env=environ)
    finally:
        _release(held)
    assert listing.returncode == 0 and watched.returncode == 0, watched.stderr
    assert watched.stderr == b""
    assert watched.stdout == listing.stdout
    assert listing.stdout.count(b"\ntcp ") == (3 if "-ant" in args[0] else 0)
    assert listing.stdout.count(b"\nunix ") == (0 if "-ant" in args[0] else 3)


def test_netns_option_watches_inside(watch_ns: Namespace) -> None:
    """`--netns NAME --watch` from outside: the namespace's listing, nothing of the host's."""
    held = _hold(watch_ns)
    try:
        environ = js.environ()
        listing = watch_ns.run(js.nlstat_argv(["-ant"]), env=environ)
        watched = subprocess.run(
            js.nlstat_argv(["--netns", watch_ns.name, "-ant", "--watch", "0.05", "--ticks", "2"]),
            env=environ, capture_output=True, timeout=60)
    finally:
        _release(held)
    assert watched.returncode == 0 and watched.stderr == b""
    assert watched.stdout.endswith(listing.stdout)
    assert watched.stdout.count(b"\ntcp ") == 3


def test_interrupt_ends_quietly_as_netstat_c_does() -> None:
    """Ctrl-C during --watch: nothing on stderr, killed by SIGINT, as `netstat -c` is."""
    statuses = []
    for argv in (js.nlstat_argv(["-ant", "--watch", "0.2"]), ["netstat", "-ant", "-c"]):
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=js.environ())
        assert process.stdout is not None
        process.stdout.readline()  # the first tick has begun
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
        statuses.append((process.returncode, err))
    assert statuses[0] == statuses[1] == (-signal.SIGINT, b"")
