"""Socket filters on a live namespace: every filter's output is the full listing's rows that
the filter selects, as this test decides it from the printed columns, under
NLSTAT_BACKEND=netlink and proc; the kernel really filters (netlink messages counted); the
API's records are the CLI's rows; kernel bytecode and the Python predicate agree on random
port ranges and prefixes (hypothesis).

The sockets are made by a thread of this process switched into a private namespace: every
state that can be held (LISTEN, ESTABLISHED, SYN_SENT to a blackholed neighbour, FIN_WAIT2,
CLOSE_WAIT, TIME_WAIT), both families (v4-mapped too), udp, raw, unix, a socket bound to
veth0 with SO_BINDTODEVICE, one of another uid, and 150 established connections beside.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import subprocess
import sys
import time
from typing import Callable, Dict, FrozenSet, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlstat.backends.netlink.bytecode import bytecode, tcp_request_parts
from nlstat.backends.netlink.nlsocket import dump_ended, messages
from nlstat.backends.netlink.sockdiag import SockDiag, decode_inet
from nlstat.filters import Filters, PortRange, Prefix, inet_predicate
from nlstat.model.sockets import InetSocket
from tests import netns

pytestmark = pytest.mark.netns

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OTHER_UID = 4343
BULK = 150  # established connections beside the varied sockets
BLACKHOLE = "198.18.0.99"
STATE_NUMBERS = {"ESTABLISHED": 1, "SYN_SENT": 2, "SYN_RECV": 3, "FIN_WAIT1": 4,
                 "FIN_WAIT2": 5, "TIME_WAIT": 6, "CLOSE": 7, "CLOSE_WAIT": 8, "LAST_ACK": 9,
                 "LISTEN": 10, "CLOSING": 11, "": 7}
UNIX_STATES = {"LISTENING": 10, "CONNECTED": 1, "CONNECTING": 2, "DISCONNECTING": 11, "": 7}


class World(NamedTuple):
    ns: netns.Namespace
    held: List[socket.socket]
    bound_inodes: FrozenSet[int]  # sockets bound to veth0 (SO_BINDTODEVICE)
    own_inodes: FrozenSet[int]  # every socket of this process in the namespace
    veth0: int
    probe_pid: int
    probe_inodes: FrozenSet[int]  # the sockets of the process named PROBE


# A process of its own name holding a tcp listener and a unix pair, for --program-name
# (a name no other process on the host has: walking every python3 would be slow on a busy
# host, and would prove less).
PROBE = "nlst-filt-probe"
PROBE_CODE = """
import os, socket, sys
listener = socket.socket()
listener.bind(("127.0.0.1", 7400))
listener.listen(1)
pair = socket.socketpair()
inodes = [os.fstat(s.fileno()).st_ino for s in (listener, *pair)]
print("READY", os.getpid(), *inodes, flush=True)
sys.stdin.read()
"""


def _wait(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _tcp_state(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def _build(scratch: str) -> Tuple[List[socket.socket], List[socket.socket], int]:
    """Runs inside the namespace: make the sockets; (held, bound to veth0, veth0's index)."""
    held: List[socket.socket] = []

    def keep(sock: socket.socket) -> socket.socket:
        held.append(sock)
        return sock

    listener = keep(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    listener.bind(("127.0.0.1", 7001))
    listener.listen(512)
    for _ in range(BULK):
        keep(socket.create_connection(("127.0.0.1", 7001), timeout=5))
        keep(listener.accept()[0])
    # FIN_WAIT2 and CLOSE_WAIT: one side shuts its writing half, the other never closes.
    closing = keep(socket.create_connection(("127.0.0.1", 7001), timeout=5))
    keep(listener.accept()[0])
    closing.shutdown(socket.SHUT_WR)
    _wait(lambda: _tcp_state(closing) == 5, "FIN_WAIT2")
    # TIME_WAIT: the client closes first, then the server (the client's end waits 60 s).
    client = socket.create_connection(("127.0.0.1", 7001), timeout=5)
    server = listener.accept()[0]
    client.close()
    server.close()
    # SYN_SENT: the neighbour's MAC belongs to nobody, the SYNs are dropped.
    pending = keep(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    pending.setblocking(False)
    try:
        pending.connect((BLACKHOLE, 8080))
    except BlockingIOError:
        pass
    # A listener bound to veth0 and one of another uid.
    bound = keep(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    bound.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"veth0")
    bound.bind(("198.18.0.1", 7100))
    bound.listen(4)
    os.seteuid(OTHER_UID)
    try:
        foreign = keep(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    finally:
        os.seteuid(0)
    foreign.bind(("198.19.0.1", 7150))
    foreign.listen(4)
    # IPv6: a listener, a connection over ::1, and a dual-stack listener with a v4-mapped peer.
    doc6 = keep(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
    doc6.bind(("2001:db8::1", 7200))
    doc6.listen(4)
    keep(socket.create_connection(("2001:db8::1", 7200), timeout=5))
    keep(doc6.accept()[0])
    dual = keep(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
    dual.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    dual.bind(("::", 7250))
    dual.listen(4)
    keep(socket.create_connection(("127.0.0.2", 7250), timeout=5))
    keep(dual.accept()[0])
    # udp: bound, and connected; raw; unix: a listener, a pair, a datagram socket.
    udp = keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    udp.bind(("198.18.0.1", 7300))
    udp6 = keep(socket.socket(socket.AF_INET6, socket.SOCK_DGRAM))
    udp6.bind(("::1", 7301))
    udp6.connect(("::1", 7302))
    keep(socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
    unix_listener = keep(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    unix_listener.bind(os.path.join(scratch, "filters.sock"))
    unix_listener.listen(2)
    for end in socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM):
        keep(end)
    keep(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)).bind("\0nlst-filters")
    _wait(lambda: _tcp_state(pending) == 2, "SYN_SENT")
    return held, [bound], socket.if_nametoindex("veth0")


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    netns.skip_unless_root()
    with netns.Namespace(
        prefix="nlst-filt",
        neighbours=[(BLACKHOLE, "02:00:5e:00:00:99", "veth0")],
        sysctls={"net.ipv4.tcp_syn_retries": "100"},
    ) as ns:
        held, bound, veth0 = ns.call_inside(lambda: _build(ns.scratch))
        probe = ns.popen(["bash", "-c", f'exec -a {PROBE} "$0" -c "$1"', sys.executable,
                          PROBE_CODE], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            assert probe.stdout is not None
            ready = probe.stdout.readline().split()
            assert ready[:1] == [b"READY"], ready
            inodes = frozenset(os.fstat(sock.fileno()).st_ino for sock in held)
            bound_inodes = frozenset(os.fstat(sock.fileno()).st_ino for sock in bound)
            yield World(ns, held, bound_inodes, inodes, veth0, int(ready[1]),
                        frozenset(map(int, ready[2:])))
        finally:
            for sock in held:
                sock.close()
            probe.kill()
            probe.wait()
            for stream in (probe.stdin, probe.stdout):
                if stream is not None:
                    stream.close()


# -- the rows, read back from the text --------------------------------------------------------


class Row(NamedTuple):
    line: str
    proto: str  # tcp, tcp6, udp, udp6, raw, raw6, unix
    family: int
    state: int
    local: str
    local_port: int
    remote: str
    remote_port: int
    uid: int
    inode: int


UNIX_ROW = re.compile(
    r"^unix\s+\d+\s+\[[^\]]*\]\s+\S+\s+(?:(LISTENING|CONNECTED|CONNECTING|DISCONNECTING)\s+)?"
    r"(\d+)")


def _endpoint(text: str) -> Tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, 0 if port == "*" else int(port)


def parse_row(line: str) -> Optional[Row]:
    """A row of `nlstat -tuwxanWe` (None for headers)."""
    fields = line.split()
    if not fields or fields[0] not in ("tcp", "tcp6", "udp", "udp6", "raw", "raw6", "unix"):
        return None
    if fields[0] == "unix":
        match = UNIX_ROW.match(line)
        assert match, line
        return Row(line, "unix", socket.AF_UNIX, UNIX_STATES[match.group(1) or ""], "", 0,
                   "", 0, -1, int(match.group(2)))
    if len(fields) == 7:  # udp/raw without a state word
        fields.insert(5, "")
    proto, _rq, _sq, local, remote, state, uid, inode = fields
    family = socket.AF_INET6 if proto.endswith("6") else socket.AF_INET
    local_host, local_port = _endpoint(local)
    remote_host, remote_port = _endpoint(remote)
    number = int(state) if state.isdigit() else STATE_NUMBERS[state]
    return Row(line, proto, family, number, local_host, local_port, remote_host, remote_port,
               int(uid), int(inode))


def in_prefix(address: str, prefix: str) -> bool:
    """The test's own prefix rule: an IPv4 prefix also takes v4-mapped IPv6 addresses."""
    network = ipaddress.ip_network(prefix, strict=False)
    ip = ipaddress.ip_address(address)
    if ip.version == 6 and network.version == 4 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.version == network.version and ip in network


def ports(text: str) -> Tuple[int, int]:
    low, _, high = text.partition("-")
    return int(low), int(high or low)


# -- the cases: options and the test's own selection -----------------------------------------

Keep = Callable[[Row, World], bool]


def inet(keep: Callable[[Row, World], bool]) -> Keep:
    return lambda row, world: row.proto != "unix" and keep(row, world)


def state_in(*names: str) -> Keep:
    numbers = {STATE_NUMBERS[name] for name in names}
    return lambda row, world: row.state in numbers


CASES: List[Tuple[str, Keep]] = [
    ("--state listen", state_in("LISTEN")),
    ("--state LISTEN,Time_Wait", state_in("LISTEN", "TIME_WAIT")),
    ("--state established", state_in("ESTABLISHED")),
    ("--state syn_sent", state_in("SYN_SENT")),
    ("--state fin_wait2,close_wait", state_in("FIN_WAIT2", "CLOSE_WAIT")),
    ("--state close", state_in("CLOSE")),
    ("--sport 7001", inet(lambda row, w: row.local_port == 7001)),
    ("--sport 7100-7300", inet(lambda row, w: 7100 <= row.local_port <= 7300)),
    ("--dport 7001", inet(lambda row, w: row.remote_port == 7001)),
    ("--dport 0-1024", inet(lambda row, w: row.remote_port <= 1024)),
    ("--src 127.0.0.0/8", inet(lambda row, w: in_prefix(row.local, "127.0.0.0/8"))),
    ("--dst 198.18.0.99/32", inet(lambda row, w: in_prefix(row.remote, "198.18.0.99/32"))),
    ("--src 2001:db8::/32", inet(lambda row, w: in_prefix(row.local, "2001:db8::/32"))),
    ("--dst ::1", inet(lambda row, w: in_prefix(row.remote, "::1/128"))),
    ("--src 0.0.0.0/0", inet(lambda row, w: in_prefix(row.local, "0.0.0.0/0"))),
    (f"--uid {OTHER_UID}", inet(lambda row, w: row.uid == OTHER_UID)),
    ("--state established --dport 7001 --src 127.0.0.1",
     inet(lambda row, w: row.state == 1 and row.remote_port == 7001
          and in_prefix(row.local, "127.0.0.1/32"))),
    ("--state listen --sport 7200-7250", inet(lambda row, w: row.state == 10
                                              and 7200 <= row.local_port <= 7250)),
    ("--pid {pid}", lambda row, w: row.inode in w.own_inodes),
    ("--pid {pid} --state listening", lambda row, w: row.inode in w.own_inodes
     and row.state == 10),
    (f"--program-name {PROBE}", lambda row, w: row.inode in w.probe_inodes),
    ("--pid {probe} --state listen", lambda row, w: row.inode in w.probe_inodes
     and row.state == 10),
]
DEV_CASE = ("--dev veth0", inet(lambda row, w: row.inode in w.bound_inodes))
BASE = ["-tuwxanWe"]


def nlstat_argv(args: Sequence[str]) -> List[str]:
    return [sys.executable, "-m", "nlstat", *args]


def run(world: World, args: Sequence[str], backend: str) -> Tuple[int, bytes, bytes]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "PYTHONPATH": REPO,
           "NLSTAT_BACKEND": backend}
    done = world.ns.run(nlstat_argv(args), env=env, timeout=60, cwd="/")
    return done.returncode, done.stdout, done.stderr


def expected(full: bytes, keep: Keep, world: World) -> List[str]:
    lines = full.decode().splitlines()
    kept = []
    for line in lines:
        row = parse_row(line)
        if row is None or keep(row, world):
            kept.append(line)
    return kept


@pytest.mark.parametrize("backend", ["netlink", "proc"])
def test_every_filter_selects_the_rows_of_the_full_listing(world: World, backend: str) -> None:
    cases = list(CASES) + ([DEV_CASE] if backend == "netlink" else [])
    substitutions = {"pid": str(os.getpid()), "probe": str(world.probe_pid)}
    for _attempt in range(3):
        status, full, _ = run(world, BASE, backend)
        assert status == 0
        rows = [row for row in map(parse_row, full.decode().splitlines()) if row]
        # The namespace holds what the test built: every state it meant to make is there.
        assert {1, 2, 5, 6, 7, 8, 10} <= {row.state for row in rows}
        assert {"tcp", "tcp6", "udp", "udp6", "raw", "unix"} <= {row.proto for row in rows}
        outcomes = []
        for options, keep in cases:
            args = BASE + options.format(**substitutions).split()
            status, out, err = run(world, args, backend)
            assert status == 0, (options, err)
            if "--dev" not in options:
                assert b"skipped" not in err
            outcomes.append((options, out, keep))
        status, again, _ = run(world, BASE, backend)
        if again != full:
            continue  # a timer changed the tables meanwhile: take them all again
        for options, out, keep in outcomes:
            want = expected(full, keep, world)
            assert out.decode().splitlines() == want, options
            assert len(want) < len(full.decode().splitlines()), options  # it did select
        return
    pytest.fail("the namespace's tables kept changing")


def test_filters_keep_netstats_listing_rules(world: World) -> None:
    """Without -a a filter selects among what netstat would list (connected sockets)."""
    status, full, _ = run(world, ["-tnWe"], "netlink")
    status2, out, _ = run(world, ["-tnWe", "--dport", "7001"], "netlink")
    assert status == status2 == 0
    assert out.decode().splitlines() == expected(
        full, lambda row, w: row.remote_port == 7001, world)
    _, listeners, _ = run(world, ["-ltnWe", "--state", "listen,established"], "netlink")
    assert listeners.decode().splitlines()[0] == "Active Internet connections (only servers)"
    assert {parse_row(line).state for line in listeners.decode().splitlines()[2:]} == {10}


def test_dev_needs_netlink(world: World) -> None:
    status, out, err = run(world, BASE + ["--dev", "veth0"], "proc")
    assert (status, out) == (1, b"")
    assert err.decode().count("\n") == 1 and "--dev" in err.decode()


def test_verbose_says_where_each_table_was_filtered(world: World) -> None:
    status, _, err = run(world, ["-tuwan", "-v", "--state", "listen", "--uid", "0"], "netlink")
    assert status == 0
    lines = err.decode().splitlines()
    assert "nlstat: tcp (sock_diag, IPv4 and IPv6): in the kernel: state; in user space: uid" \
        in lines
    assert "nlstat: udp (sock_diag): in the kernel: state; in user space: uid" in lines
    # raw_diag never looks at the state mask (and many kernels are built without it: then
    # the table is /proc's, where everything is user space's)
    raw = [line for line in lines if line.startswith("nlstat: raw (")]
    assert raw and raw[0].endswith("): in the kernel: nothing; in user space: state, uid")
    status, _, err = run(world, ["-tn", "-v", "--dport", "7001"], "proc")
    assert "nlstat: tcp (/proc/net/tcp): in the kernel: nothing; in user space: dport" \
        in err.decode().splitlines()


# -- the kernel really filters -----------------------------------------------------------------


def _messages(world: World, argv: Sequence[str]) -> int:
    """How many sockets the kernel sends for the CLI's own tcp request: the query is parsed
    by the CLI's parser and sent by its SocketSource, in the namespace. The first chunk is
    counted in records (one message each), the others in messages."""
    from nlstat import cli
    from nlstat.backends.sockets import SocketSource
    from nlstat.env import Environment
    from nlstat.kernel.sockdiag import TCPDIAG_GETSOCK

    def inside() -> int:
        import io

        env = Environment(stderr=io.StringIO(), backend="netlink")
        query = cli.parse(list(argv), env)
        assert not isinstance(query, int)
        source = SocketSource(query, env)
        try:
            table = source.tcp_both()
            assert table is not None and table.decoder is not None
            count = len(table.first) + len(table.decoder.others)
            if not table.decoder.done:
                for chunk in table.chunks:
                    count += sum(1 for message in messages([chunk])
                                 if message[3] == TCPDIAG_GETSOCK)
                    if dump_ended(chunk):
                        break
            return count
        finally:
            source.close()

    return world.ns.call_inside(inside)


def test_the_kernel_sends_only_the_selected_sockets(world: World) -> None:
    _, full, _ = run(world, ["-tanWe"], "netlink")
    rows = [row for row in map(parse_row, full.decode().splitlines()) if row]
    assert len(rows) > 2 * BULK
    listeners = sum(1 for row in rows if row.state == 10)
    assert 0 < listeners < 10
    assert _messages(world, ["-tan", "--state", "listen"]) == listeners
    assert _messages(world, ["-tln"]) == listeners
    to_7250 = sum(1 for row in rows if row.remote_port == 7250)
    assert _messages(world, ["-tan", "--dport", "7250"]) == to_7250 == 1
    assert _messages(world, ["-tan", "--dev", "veth0"]) == 1
    # The same request unfiltered brings every socket (TIME_WAIT may expire meanwhile).
    assert _messages(world, ["-tan"]) >= len(rows) - 1


# -- the API ---------------------------------------------------------------------------------

API_SCRIPT = r"""
import json, sys
import nlstat
kwargs = json.loads(sys.argv[1])
for name in ("sport", "dport"):
    if isinstance(kwargs.get(name), list):
        kwargs[name] = tuple(kwargs[name])  # a (low, high) range
out = []
for record in nlstat.sockets(**kwargs):
    if isinstance(record, nlstat.UnixSocket):
        out.append(["unix", record.inode])
    else:
        out.append([record.protocol + ("6" if record.family == 10 else ""), record.state,
                    record.local_address, record.local_port, record.remote_address,
                    record.remote_port, record.uid, record.inode])
print(json.dumps(out))
"""

API_CASES = [
    ({}, []),
    ({"state": "listen"}, ["--state", "listen"]),
    ({"kind": "tcp", "state": ["established"], "dport": 7001, "src": "127.0.0.0/8"},
     ["--state", "established", "--dport", "7001", "--src", "127.0.0.0/8"]),
    ({"kind": ["udp", "raw"], "sport": [7300, 7301]}, ["--sport", "7300-7301"]),
    ({"family": 6}, []),
]


@pytest.mark.parametrize("backend", ["netlink", "proc"])
def test_api_records_are_the_cli_rows(world: World, backend: str) -> None:
    for _attempt in range(3):
        mismatch = []
        for kwargs, options in API_CASES:
            call = dict(kwargs, backend=backend)
            if isinstance(call.get("sport"), list):
                call["sport"] = tuple(call["sport"])
            done = world.ns.run([sys.executable, "-c", API_SCRIPT, json.dumps(call)],
                                env={"PYTHONPATH": REPO, "LC_ALL": "C"}, cwd="/")
            assert done.returncode == 0, done.stderr
            # netstat prints a v4-mapped IPv6 address as its IPv4 part; the record keeps it all.
            records = [tuple(_unmapped(value) for value in item)
                       for item in json.loads(done.stdout)]
            argv = ["-anWe"] + _cli_protocols(kwargs) + options
            _, text, _ = run(world, argv, backend)
            rows = []
            for row in filter(None, map(parse_row, text.decode().splitlines())):
                if row.proto == "unix":
                    rows.append(("unix", row.inode))
                else:
                    rows.append((row.proto, row.state, row.local, row.local_port,
                                 row.remote, row.remote_port, row.uid, row.inode))
            if records != rows:
                mismatch.append((kwargs, set(records) - set(rows), set(rows) - set(records),
                                 len(records), len(rows)))
        if not mismatch:
            return
    raise AssertionError(mismatch[0])


def _unmapped(value: object) -> object:
    if isinstance(value, str) and value.startswith("::ffff:") and "." in value:
        return value[7:]
    return value


def _cli_protocols(kwargs: Dict[str, object]) -> List[str]:
    kind = kwargs.get("kind")
    kinds = [kind] if isinstance(kind, str) else list(kind or ["tcp", "udp", "udplite",
                                                              "raw", "unix"])
    flags = {"tcp": "-t", "udp": "-u", "udplite": "-U", "raw": "-w", "unix": "-x"}
    argv = [flags[name] for name in kinds]
    if kwargs.get("family") == 6:
        argv = [flag for flag in argv if flag != "-x"] + ["-6"]
    return argv


# -- kernel bytecode against the Python predicate ----------------------------------------------

PREFIX_BASES = ["127.0.0.0", "127.0.0.1", "127.0.0.2", "198.18.0.1", "198.19.0.1", "0.0.0.0",
                "::1", "2001:db8::1", "::", "::ffff:127.0.0.1"]


@st.composite
def selections(draw: st.DrawFn) -> Filters:
    def port_range() -> Optional[PortRange]:
        if not draw(st.booleans()):
            return None
        low = draw(st.sampled_from([0, 1, 7000, 7001, 7100, 7200, 7250, 7300, 10000, 40000]))
        if draw(st.booleans()):
            return PortRange(low, low)  # one port: tcp asks for it in the socket id
        high = draw(st.integers(min_value=low, max_value=65535))
        return PortRange(low, high)

    def prefix() -> Optional[Prefix]:
        if not draw(st.booleans()):
            return None
        base = draw(st.sampled_from(PREFIX_BASES))
        family = socket.AF_INET6 if ":" in base else socket.AF_INET
        bits = 128 if family == socket.AF_INET6 else 32
        return Prefix(family, socket.inet_pton(family, base),
                      draw(st.integers(min_value=0, max_value=bits)))

    states = draw(st.none() | st.frozensets(st.sampled_from(sorted(STATE_NUMBERS.values())),
                                            min_size=1))
    dev = draw(st.sampled_from([None, None, 1, VETH0]))  # lo, or veth0 (its index later)
    return Filters(states=states, sport=port_range(), dport=port_range(), src=prefix(),
                   dst=prefix(), dev=dev)


# Drawn for --dev and replaced by veth0's index in the namespace.
VETH0 = -1
# Every state but TIME_WAIT, which expires on its own between two dumps.
STEADY_STATES = ((1 << 13) - 1) & ~(1 << 6)


def _dump(world: World, protocol: str, family: int, program: bytes = b"",
          states: int = STEADY_STATES, ports: Tuple[int, int] = (0, 0)) -> List[InetSocket]:
    """The kernel's answer to one request with this filter program, state mask and exact
    ports in the socket id."""

    def inside() -> List[InetSocket]:
        diag = SockDiag()
        try:
            first, decoder, chunks = diag.inet_stream(protocol, family, states & STEADY_STATES,
                                                      False, program, ports=ports)
            records = list(first)
            if not decoder.done:
                records += list(decode_inet(chunks, protocol))
            return records
        finally:
            diag.close()

    return world.ns.call_inside(inside)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(selection=selections(), protocol=st.sampled_from(["tcp", "udp"]),
       family=st.sampled_from([socket.AF_INET, socket.AF_INET6]))
def test_kernel_bytecode_agrees_with_the_python_predicate(
    world: World, selection: Filters, protocol: str, family: int
) -> None:
    if selection.dev == VETH0:
        selection = selection._replace(dev=world.veth0)
    keep = inet_predicate(selection, selection.parts())
    # tcp's requests as SocketSource makes them: exact ports in the socket id, the rest as
    # a program; both must select what the predicate selects.
    ports, program = tcp_request_parts(selection) if protocol == "tcp" else ((0, 0), b"")
    for _attempt in range(3):
        full = _dump(world, protocol, family)
        filtered = [record.inode for record in _dump(world, protocol, family,
                                                     bytecode(selection),
                                                     selection.state_mask())]
        wanted = [record.inode for record in full if keep is None or keep(record)]
        if protocol == "tcp":
            by_id = [record.inode for record in _dump(world, protocol, family, program,
                                                      selection.state_mask(), ports)]
        else:
            by_id = filtered
        if filtered == wanted and by_id == wanted:
            return
        if [record.inode for record in _dump(world, protocol, family)] == [
                record.inode for record in full]:
            assert filtered == wanted, selection
            assert by_id == wanted, (selection, ports)
    pytest.fail("the namespace's tables kept changing")
