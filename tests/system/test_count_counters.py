"""`--count` of tcp by proto and state with ESTABLISHED taken from the kernel's counters
(backends/established.py, modes/count.py _tally_by_subtraction), against a full dump, on
real sockets of every kind the subtraction must tell apart.

The namespace holds, over both families: listeners, ESTABLISHED pairs, a half-closed pair
(FIN_WAIT2 and CLOSE_WAIT, full sockets), TIME_WAIT, an orphaned FIN_WAIT2 (a timewait socket
whose message says FIN_WAIT2, not counted in sockstat's inuse), SYN_SENT (SYNs to a
neighbour that does not exist) and a SYN_RECV request socket (a SYN written by a raw socket
from that neighbour's address: the SYN-ACK goes nowhere). Checked: the counts equal the full
dump's, through the function and the CLI, for each family and for --state; counters that
disagree with the dump, or that are missing, give no counts; filters other than --state and
a captured /proc leave the path to the dumps.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import tempfile
import time
from collections import Counter
from typing import Callable, Iterator, List, NamedTuple, Optional, Tuple

import pytest

from nlstat.backends.netlink.nlsocket import NetlinkSocket
from nlstat.backends.netlink.sockdiag import InetDecoder, tcp_both_request
from nlstat.kernel.netlink import NETLINK_SOCK_DIAG
from nlstat.kernel.sockdiag import TCPDIAG_GETSOCK
from tests import netns

pytestmark = pytest.mark.netns

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ALL_STATES = (1 << 12) - 1
NOBODY_V4 = "198.18.0.99"  # a permanent neighbour with a MAC nobody has (veth0)
NOBODY_V6 = "2001:db8::99"
LOCAL_V4 = "198.18.0.1"
SYN_RECV_PORT = 4444
STATE_NAMES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
               6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
               11: "CLOSING"}
ATTEMPTS = 3
PATH_TAKEN = b"tcp counted without its ESTABLISHED messages"


class World(NamedTuple):
    ns: netns.Namespace
    held: List[socket.socket]


def _state(sock: socket.socket) -> int:
    return int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0])


def _wait(predicate: Callable[[], bool], what: str, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _wait_state(sock: socket.socket, state: int, what: str) -> None:
    """Until tcp_info says `state` (a loaded host may run the loopback ACK's softirq late)."""
    _wait(lambda: _state(sock) == state, what)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def send_syn(source: str, target: str, port: int) -> None:
    """A bare SYN from `source` (not an address of this host) to a local listener, through a
    raw socket that writes its own IPv4 header."""
    src, dst = socket.inet_aton(source), socket.inet_aton(target)
    tcp = struct.pack("!HHIIBBHHH", 40000, port, 1000, 0, 5 << 4, 0x02, 65535, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp)) + tcp[18:]
    # Total length, id and header checksum are the kernel's to fill (raw(7), IP_HDRINCL).
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 0, 0, 0, 64, socket.IPPROTO_TCP, 0, src, dst)
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as raw:
        raw.sendto(ip + tcp, (target, 0))


def make_sockets() -> List[socket.socket]:
    held: List[socket.socket] = []
    for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        server = socket.socket(family, socket.SOCK_STREAM)
        server.bind((address, 0))
        server.listen(64)
        held.append(server)
        port = server.getsockname()[1]
        for _ in range(5):  # ESTABLISHED on both sides
            client = socket.create_connection((address, port))
            accepted, _peer = server.accept()
            held += [client, accepted]
        # FIN_WAIT2 / CLOSE_WAIT: a client that shut down its side (full sockets).
        half = socket.create_connection((address, port))
        other, _peer = server.accept()
        half.shutdown(socket.SHUT_WR)
        _wait_state(half, 5, "FIN_WAIT2")
        held += [half, other]
        # An orphaned FIN_WAIT2: the same, then closed; a timewait socket takes its place.
        orphan = socket.create_connection((address, port))
        waiting, _peer = server.accept()
        orphan.shutdown(socket.SHUT_WR)
        _wait_state(orphan, 5, "FIN_WAIT2 before the orphan")
        orphan.close()
        held.append(waiting)  # CLOSE_WAIT
        # TIME_WAIT: the server closes first, then the client.
        gone = socket.create_connection((address, port))
        closer, _peer = server.accept()
        closer.close()
        gone.recv(1)
        gone.close()
    # SYN_SENT on both families.
    for source, target in ((LOCAL_V4, NOBODY_V4), ("2001:db8::1", NOBODY_V6)):
        sock = socket.socket(socket.AF_INET6 if ":" in target else socket.AF_INET,
                             socket.SOCK_STREAM)
        sock.bind((source, 0))
        sock.setblocking(False)
        try:
            sock.connect((target, 80))
        except BlockingIOError:
            pass
        held.append(sock)
    # SYN_RECV: a request socket on a listener of the veth address.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((LOCAL_V4, SYN_RECV_PORT))
    listener.listen(16)
    held.append(listener)
    send_syn(NOBODY_V4, LOCAL_V4, SYN_RECV_PORT)
    _wait(lambda: any(state == 3 for _f, state, _full in dump()), "SYN_RECV")
    return held


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    netns.skip_unless_root()
    neighbours = ((NOBODY_V4, "02:00:5e:00:00:99", "veth0"),
                  (NOBODY_V6, "02:00:5e:00:00:99", "veth0"))
    with netns.Namespace(prefix="nlst-counters", neighbours=neighbours) as ns, \
            netns.holding(ns, make_sockets) as held:
        yield World(ns, held)


def dump() -> List[Tuple[int, int, bool]]:
    """(family, state, whether the message has any attribute) of every tcp socket."""
    found: List[Tuple[int, int, bool]] = []
    decoder = InetDecoder("tcp", False, None, TCPDIAG_GETSOCK)
    with NetlinkSocket(NETLINK_SOCK_DIAG) as netlink:
        for chunk in netlink.dump(TCPDIAG_GETSOCK, tcp_both_request(ALL_STATES)):
            found += [(record.family, record.state, record.inode != 0)
                      for record in decoder.chunk(chunk)]
            if decoder.done:
                break
    return found


def counts_and_dump(
    states: int, proc_net: str = "/proc/thread-self/net",
) -> Tuple[Optional[Counter[Tuple[int, int]]], str, Counter[Tuple[int, int]]]:
    from nlstat.backends.established import tcp_state_counts

    counted, why = tcp_state_counts(proc_net, states)
    full = Counter((family, state) for family, state, _inode in dump()
                   if states & (1 << state))
    return counted, why, full


def test_the_namespace_holds_every_kind(world: World) -> None:
    kinds = Counter((STATE_NAMES[state], family) for family, state, _i in world.ns.call_inside(
        dump))
    for name in ("LISTEN", "ESTABLISHED", "FIN_WAIT2", "CLOSE_WAIT", "TIME_WAIT", "SYN_SENT"):
        for family in (socket.AF_INET, socket.AF_INET6):
            assert kinds[(name, family)], (name, family, kinds)
    assert kinds[("SYN_RECV", socket.AF_INET)], kinds
    # The orphaned FIN_WAIT2 is a timewait socket: a FIN_WAIT2 row with no inode.
    fin_wait2 = [inode for family, state, inode in world.ns.call_inside(dump) if state == 5]
    assert False in fin_wait2 and True in fin_wait2, fin_wait2


@pytest.mark.parametrize("states", [ALL_STATES, ALL_STATES & ~(1 << 10), (1 << 1) | (1 << 3)])
def test_counts_from_the_counters_equal_the_full_dump(world: World, states: int) -> None:
    for _attempt in range(ATTEMPTS):  # a TIME_WAIT may expire between the two
        counted, why, full = world.ns.call_inside(lambda: counts_and_dump(states))
        if counted == full:
            break
    assert counted == full, why
    assert counted[(socket.AF_INET, 1)] == 10 and counted[(socket.AF_INET6, 1)] == 10


def test_counters_that_disagree_give_no_counts(world: World) -> None:
    with tempfile.TemporaryDirectory() as directory:
        def files(inuse: int, inuse6: int, established: int) -> None:
            with open(os.path.join(directory, "sockstat"), "w") as handle:
                handle.write(f"sockets: used 9\nTCP: inuse {inuse} orphan 0 tw 2 alloc 9 mem 0\n")
            with open(os.path.join(directory, "sockstat6"), "w") as handle:
                handle.write(f"TCP6: inuse {inuse6}\nUDP6: inuse 0\n")
            with open(os.path.join(directory, "snmp"), "w") as handle:
                handle.write("Ip: Forwarding\nIp: 1\nTcp: RtoAlgorithm CurrEstab InSegs\n"
                             f"Tcp: 1 {established} 5\n")

        live = world.ns.call_inside(lambda: counts_and_dump(ALL_STATES))
        assert live[0] is not None, live[1]
        from nlstat.backends.established import read_counters

        now = world.ns.call_inside(lambda: read_counters("/proc/thread-self/net"))
        assert now is not None
        inuse, inuse6, established = now
        files(inuse + 1, inuse6, established + 1)  # one ESTABLISHED more in both: agrees
        counted, why, _full = world.ns.call_inside(lambda: counts_and_dump(ALL_STATES,
                                                                           directory))
        assert counted is not None and counted[(socket.AF_INET, 1)] == 11, why
        files(inuse + 1, inuse6, established)  # inuse says one more than CurrEstab
        counted, why, _full = world.ns.call_inside(lambda: counts_and_dump(ALL_STATES,
                                                                           directory))
        assert counted is None and "disagree" in why
        files(0, 0, 0)  # fewer sockets than the dump's full ones
        counted, why, _full = world.ns.call_inside(lambda: counts_and_dump(ALL_STATES,
                                                                           directory))
        assert counted is None and "disagree" in why
        os.unlink(os.path.join(directory, "snmp"))
        counted, why, _full = world.ns.call_inside(lambda: counts_and_dump(ALL_STATES,
                                                                           directory))
        assert counted is None and "no tcp counters" in why


def cli(world: World, args: List[str]) -> Tuple[bytes, Counter[Tuple[str, str]]]:
    env = dict(os.environ, PYTHONPATH=REPO, NLSTAT_DEBUG="1")
    result = world.ns.run([sys.executable, "-m", "nlstat", *args, "--count", "--by",
                           "proto,state", "--json"], env=env, timeout=60, cwd="/")
    assert result.returncode == 0, result.stderr
    return result.stderr, Counter({(record["proto"], record["state"]): record["count"]
                                   for record in json.loads(result.stdout)})


def expected(world: World, families: Tuple[int, ...], states: int) -> Counter[Tuple[str, str]]:
    return Counter(("tcp" if family == socket.AF_INET else "tcp6", STATE_NAMES[state])
                   for family, state, _i in world.ns.call_inside(dump)
                   if family in families and states & (1 << state))


@pytest.mark.parametrize("args,families,states", [
    (["-ant"], (socket.AF_INET, socket.AF_INET6), ALL_STATES),
    (["-ant", "-4"], (socket.AF_INET,), ALL_STATES),
    (["-ant", "-6"], (socket.AF_INET6,), ALL_STATES),
    (["-nt"], (socket.AF_INET, socket.AF_INET6), ALL_STATES & ~(1 << 10)),
    (["-ant", "--state", "established,syn_recv"], (socket.AF_INET, socket.AF_INET6),
     (1 << 1) | (1 << 3)),
])
def test_the_cli_counts_from_the_counters(
    world: World, args: List[str], families: Tuple[int, ...], states: int
) -> None:
    for _attempt in range(ATTEMPTS):
        stderr, counted = cli(world, args)
        if counted == expected(world, families, states):
            break
    assert counted == expected(world, families, states)
    assert PATH_TAKEN in stderr, stderr


def test_other_filters_and_captured_proc_leave_it_to_the_dumps(world: World) -> None:
    stderr, counted = cli(world, ["-ant", "--sport", str(SYN_RECV_PORT)])
    assert PATH_TAKEN not in stderr and counted == Counter({("tcp", "LISTEN"): 1,
                                                            ("tcp", "SYN_RECV"): 1})
    stderr, _counted = cli(world, ["-nt", "--state", "listen,time_wait"])  # no ESTABLISHED
    assert PATH_TAKEN not in stderr


def test_prometheus_counts_from_the_counters(world: World) -> None:
    env = dict(os.environ, PYTHONPATH=REPO, NLSTAT_DEBUG="1")
    result = world.ns.run([sys.executable, "-m", "nlstat", "--prometheus", "-t"], env=env,
                          timeout=60, cwd="/")
    assert result.returncode == 0, result.stderr
    assert PATH_TAKEN in result.stderr
    series = {}
    for line in result.stdout.decode().splitlines():
        if line.startswith("nlstat_sockets{"):
            labels, value = line.rsplit(" ", 1)
            series[labels] = float(value)
    assert series['nlstat_sockets{proto="tcp",state="ESTABLISHED"}'] == 10
    assert series['nlstat_sockets{proto="tcp6",state="ESTABLISHED"}'] == 10
