"""`--count` of tcp by proto and state from two concurrent dumps split by port (modes/count.py
_tally_in_halves, bytecode.port_halves), against the one-dump path, on real sockets.

The sockets are made by a thread of this process switched into a private namespace: tcp
listeners and connections of both families on ports on either side of every 4,096 boundary
the split tests (and 0-side and 1-side ports on both ends), in ESTABLISHED, FIN_WAIT2,
CLOSE_WAIT, LISTEN and TIME_WAIT (whose message has no attributes: the counting's odd
message). Checked: the kernel accepts both programs; their answers are disjoint and together
are exactly the full dump's sockets (by cookie); both are not empty; the counts from the two
dumps equal the full dump's counts, and so does `nlstat --count`'s output.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from collections import Counter
from typing import Iterator, List, NamedTuple, Set, Tuple

import pytest

from nlstat.backends.netlink.bytecode import port_halves
from nlstat.backends.netlink.nlsocket import NetlinkSocket
from nlstat.backends.netlink.sockdiag import InetDecoder, tcp_both_request
from nlstat.kernel.netlink import NETLINK_SOCK_DIAG
from nlstat.kernel.sockdiag import TCPDIAG_GETSOCK
from tests import netns

pytestmark = pytest.mark.netns

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOOKS = os.path.join(REPO, "tests", "pipeline_hooks.py")
ALL_STATES = (1 << 12) - 1
# Server ports on both sides of the split's boundaries (bit 12: 4095 | 4096, ...).
SERVER_PORTS = (4095, 4096, 8191, 8192, 32767, 32768, 61439, 61440, 65535)
# Client ports, bound explicitly: one of each side per server.
CLIENT_PORTS = (12287, 12288, 36863, 36864)
STATE_NAMES = {1: "ESTABLISHED", 5: "FIN_WAIT2", 6: "TIME_WAIT", 8: "CLOSE_WAIT", 10: "LISTEN"}
ATTEMPTS = 3


class World(NamedTuple):
    ns: netns.Namespace
    held: List[socket.socket]


def make_sockets() -> List[socket.socket]:
    held: List[socket.socket] = []
    for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        for number, port in enumerate(SERVER_PORTS):
            server = socket.socket(family, socket.SOCK_STREAM)
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind((address, port))
            server.listen(16)
            held.append(server)
            for client_port in CLIENT_PORTS:
                client = socket.socket(family, socket.SOCK_STREAM)
                client.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                client.bind((address, client_port + number))
                client.connect((address, port))
                accepted, _peer = server.accept()
                held += [client, accepted]
            # FIN_WAIT2 / CLOSE_WAIT: a client that shut down its side.
            half = socket.socket(family, socket.SOCK_STREAM)
            half.connect((address, port))
            other, _peer = server.accept()
            half.shutdown(socket.SHUT_WR)
            _wait_for_state(half, 5)  # FIN_WAIT2 once the peer's ACK of the FIN is processed
            held += [half, other]
            # TIME_WAIT: the server closes first, then the client.
            gone = socket.socket(family, socket.SOCK_STREAM)
            gone.connect((address, port))
            closer, _peer = server.accept()
            closer.close()
            gone.recv(1)  # the server's FIN has arrived
            gone.close()
    return held


def _wait_for_state(sock: socket.socket, state: int, seconds: float = 5.0) -> None:
    """Until the socket's tcp_info says `state` (a loopback ACK is handled in softirq, which
    a loaded host may run after the next dump), or `seconds` passed."""
    deadline = time.monotonic() + seconds
    while sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != state:
        if time.monotonic() > deadline:
            return
        time.sleep(0.01)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    netns.skip_unless_root()
    with netns.Namespace(prefix="nlst-halves") as ns, netns.holding(ns, make_sockets) as held:
        yield World(ns, held)


def dump(program: bytes) -> List[Tuple[int, int, int]]:
    """(cookie, family, state) of every tcp socket the request with `program` returns."""
    found: List[Tuple[int, int, int]] = []
    decoder = InetDecoder("tcp", False, None, TCPDIAG_GETSOCK)
    with NetlinkSocket(NETLINK_SOCK_DIAG) as netlink:
        for chunk in netlink.dump(TCPDIAG_GETSOCK, tcp_both_request(ALL_STATES, False, program)):
            found += [(record.cookie, record.family, record.state)
                      for record in decoder.chunk(chunk)]
            if decoder.done:
                break
    return found


def sides() -> Tuple[List[Tuple[int, int, int]], List[Tuple[int, int, int]],
                     List[Tuple[int, int, int]]]:
    first, second = port_halves()
    return dump(b""), dump(first), dump(second)


def test_the_halves_split_every_socket_exactly_once(world: World) -> None:
    for _attempt in range(ATTEMPTS):  # a TIME_WAIT socket may expire between the dumps
        full, first, second = world.ns.call_inside(sides)
        if len(full) == len(first) + len(second):
            break
    one: Set[int] = {cookie for cookie, _f, _s in first}
    other: Set[int] = {cookie for cookie, _f, _s in second}
    assert not one & other
    assert one | other == {cookie for cookie, _f, _s in full}
    assert len(one) == len(first) and len(other) == len(second)
    # Both sides hold sockets of every kind made here.
    for half in (first, second):
        assert {STATE_NAMES.get(state) for _c, _f, state in half} >= {
            "ESTABLISHED", "LISTEN", "TIME_WAIT"}, half
        assert {family for _c, family, _s in half} == {socket.AF_INET, socket.AF_INET6}
    states = Counter(STATE_NAMES.get(state) for _c, _f, state in full)
    assert states["TIME_WAIT"] and states["FIN_WAIT2"] and states["CLOSE_WAIT"], states


def count_both_ways() -> Tuple[Counter[Tuple[int, int]], Counter[Tuple[int, int]]]:
    from nlstat.aggregate import Tally
    from nlstat.backends.sockets import SocketSource
    from nlstat.cli import parse
    from nlstat.env import Environment
    from nlstat.modes import count
    from nlstat.query import Query

    env = Environment()
    query = parse(["-ant", "--count", "--by", "proto,state"], env)
    assert isinstance(query, Query)
    tally = Tally(("proto", "state"))
    source = SocketSource(query, env)
    core_free = count._core_free
    count._core_free = lambda: True  # the halves whatever the host's load at this moment
    try:
        assert count._tally_in_halves(tally, source, env)
    finally:
        count._core_free = core_free
        source.close()
    full = Counter((family, state) for _cookie, family, state in dump(b""))
    return tally.states["tcp"], full


def test_counts_from_the_halves_equal_the_full_dump(world: World) -> None:
    for _attempt in range(ATTEMPTS):
        halves, full = world.ns.call_inside(count_both_ways)
        if halves == full:
            break
    assert halves == full
    assert sum(full.values()) > 4 * len(SERVER_PORTS) * len(CLIENT_PORTS)


def cli_counts(world: World, prefix: List[str], families: Tuple[int, ...] = (
        socket.AF_INET, socket.AF_INET6)) -> Tuple[bytes, Counter[Tuple[str, str]],
                                                   Counter[Tuple[str, str]]]:
    """stderr and counts of `nlstat -ant --count --by proto,state --json` (run after
    `prefix`; -4 or -6 for one of `families`), and the full dump's counts taken right after."""
    # Under the hooks that turn the kernel's counters off (modes/count.py): on this quiet
    # namespace they would stand in for the dumps tested here (test_count_counters.py).
    env = dict(os.environ, PYTHONPATH=REPO, NLSTAT_DEBUG="1", NLSTAT_TEST_NO_COUNTERS="1")
    only = [] if len(families) == 2 else ["-4" if families == (socket.AF_INET,) else "-6"]
    for _attempt in range(ATTEMPTS):
        result = world.ns.run([*prefix, sys.executable, HOOKS, "-ant", *only,
                               "--count", "--by", "proto,state", "--json"], env=env,
                              timeout=60, cwd="/")
        assert result.returncode == 0, result.stderr
        full = world.ns.call_inside(lambda: dump(b""))
        expected = Counter(("tcp" if family == socket.AF_INET else "tcp6",
                            STATE_NAMES.get(state, "")) for _c, family, state in full
                           if family in families)
        counted = Counter({(record["proto"], record["state"]): record["count"]
                           for record in json.loads(result.stdout)})
        if counted == expected:
            break
    return result.stderr, counted, expected


@pytest.mark.parametrize("families", [(socket.AF_INET, socket.AF_INET6), (socket.AF_INET,),
                                      (socket.AF_INET6,)])
def test_cli_count_equals_the_full_dump(world: World, families: Tuple[int, ...]) -> None:
    # One family: SOCK_DIAG_BY_FAMILY requests and answers, not TCPDIAG_GETSOCK's.
    stderr, counted, expected = cli_counts(world, [], families)
    assert counted == expected and counted
    if len(os.sched_getaffinity(0)) > 1:
        # the halves, or one dump when the other core was busy at that moment
        assert b"two concurrent dumps" in stderr or b"no core is idle now" in stderr, stderr


def test_one_core_counts_from_one_dump(world: World) -> None:
    if not shutil.which("taskset"):
        pytest.skip("needs taskset (util-linux)")
    stderr, counted, expected = cli_counts(world, ["taskset", "-c", "0"])
    assert counted == expected
    assert b"two concurrent dumps" not in stderr, stderr
