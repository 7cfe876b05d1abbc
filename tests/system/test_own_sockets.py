"""nlstat shows exactly the sockets this test process opened, with their known properties.

The sockets are made by a thread switched into a private namespace, so the namespace holds
nothing else and every row is predictable: addresses, ports, states, queues, uid, inode and
this process's pid/name. Expected rows are built from the spec's printf layouts (§3.6–3.9),
not from nlstat's formatter; only RefCnt of unix sockets (a kernel-internal count) is read
from the namespace's /proc/net/unix.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import termios
import time
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Tuple

import pytest

from tests import netns
from tests.system import sockets_cases as cases

pytestmark = pytest.mark.netns

OTHER_UID = 4242
SIOCOUTQ = 0x5411
TCP_STATES = {1: "ESTABLISHED", 5: "FIN_WAIT2", 8: "CLOSE_WAIT", 10: "LISTEN"}


Plan = List[Tuple[str, socket.socket, Dict[str, Any]]]  # (kind, socket, what its row says)


class Row(NamedTuple):
    head: str  # the expected line up to the PID/Program name column
    path: str  # unix only: the Path column, which comes after PID/Program name
    server: bool  # shown by -l, hidden without -a (spec §3.4)
    unix: bool

    def text(self, programs: bool) -> str:
        """The full expected line (without "\n"), with or without `-p`'s column."""
        line = self.head + (f" {program_text():<20}" if programs else "")
        return line + " " + self.path if self.unix else line


class Own(NamedTuple):
    ns: netns.Namespace
    rows: List[Row]
    held: List[socket.socket]


def program_text() -> str:
    """netstat's PID/Program name for this process (spec §3.8)."""
    with open("/proc/self/cmdline", "rb") as handle:
        argv0 = handle.read(511).split(b"\0", 1)[0].decode(errors="surrogateescape")
    name = argv0.rsplit("/", 1)[1] if argv0.startswith("/") else argv0
    return f"{os.getpid()}/{name}"[:19]


def inet_row(proto: str, family: int, recv_q: int, send_q: int, local: str, remote: str,
             state: str, uid: int, inode: int) -> str:
    head = f"{proto:<4}  " if proto in ("tcp", "tcp6", "raw", "raw6") else f"{proto:<5} "
    return (f"{head}{recv_q:6d} {send_q:6d} {local:<23} {remote:<23} {state:<11}"
            f" {uid!s:<10} {inode:<10}")


def unix_row(refcnt: int, flags: str, kind: str, state: str, inode: int) -> str:
    return f"{'unix':<5} {refcnt:<6} {flags:<11} {kind:<10} {state:<13} {inode:<8}"


def addr_text(address: Tuple[object, ...]) -> str:
    host, port = str(address[0]), int(address[1])  # type: ignore[call-overload]
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return f"{host}:{port if port else '*'}"


def inode_of(sock: socket.socket) -> int:
    return os.fstat(sock.fileno()).st_ino


def queued(sock: socket.socket, request: int = termios.FIONREAD) -> int:
    return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), request, b"\0\0\0\0"))[0])


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 5
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def build(scratch: str) -> Tuple[List[socket.socket], Plan]:
    """Runs inside the namespace: make the sockets, return them with what each row must say."""
    held: List[socket.socket] = []
    plan: Plan = []

    def keep(sock: socket.socket) -> socket.socket:
        held.append(sock)
        return sock

    def tcp(sock: socket.socket, state: int, uid: int = 0, recv_q: int = 0) -> None:
        remote = sock.getpeername() if state != 10 else (
            ("0.0.0.0", 0) if sock.family == socket.AF_INET else ("::", 0))
        plan.append(("tcp", sock, {"state": TCP_STATES[state], "uid": uid, "recv_q": recv_q,
                                   "remote": remote}))

    listener = keep(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    listener.bind(("127.0.0.1", 7001))
    listener.listen(4)
    tcp(listener, 10)
    client = keep(socket.create_connection(("127.0.0.1", 7001), timeout=5))
    server = keep(listener.accept()[0])
    client.sendall(b"q" * 123)
    wait_until(lambda: queued(server) == 123 and queued(client, SIOCOUTQ) == 0, "123 bytes")
    tcp(client, 1)
    tcp(server, 1, recv_q=123)
    closing = keep(socket.create_connection(("127.0.0.1", 7001), timeout=5))
    closed_side = keep(listener.accept()[0])
    closing.shutdown(socket.SHUT_WR)
    wait_until(lambda: queued(closed_side) == 0 and tcp_state_of(closing) == 5, "FIN_WAIT2")
    tcp(closing, 5)
    tcp(closed_side, 8, recv_q=1)  # the FIN counts as one byte in Recv-Q (spec samples)

    any6 = keep(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
    any6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    any6.bind(("::", 7002))
    any6.listen(4)
    tcp(any6, 10)
    doc6 = keep(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
    doc6.bind(("2001:db8::1", 7003))
    doc6.listen(4)
    tcp(doc6, 10)
    dual = keep(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
    dual.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    dual.bind(("::", 7008))
    dual.listen(4)
    tcp(dual, 10)
    mapped_client = keep(socket.create_connection(("127.0.0.1", 7008), timeout=5))
    mapped_server = keep(dual.accept()[0])  # a tcp6 socket talking IPv4: v4-mapped row
    tcp(mapped_client, 1)
    tcp(mapped_server, 1)

    # A socket's uid is the creator's fsuid: switch euid just around socket().
    os.seteuid(OTHER_UID)
    try:
        foreign = keep(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    finally:
        os.seteuid(0)
    foreign.bind(("127.0.0.1", 7007))
    foreign.listen(1)
    tcp(foreign, 10, uid=OTHER_UID)

    udp4 = keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    udp4.bind(("198.18.0.1", 7004))
    plan.append(("udp", udp4, {"state": "", "remote": ("0.0.0.0", 0)}))
    peer6 = keep(socket.socket(socket.AF_INET6, socket.SOCK_DGRAM))
    peer6.bind(("::1", 7006))
    plan.append(("udp", peer6, {"state": "", "remote": ("::", 0)}))
    udp6 = keep(socket.socket(socket.AF_INET6, socket.SOCK_DGRAM))
    udp6.bind(("::1", 7005))
    udp6.connect(("::1", 7006))
    plan.append(("udp", udp6, {"state": "ESTABLISHED", "remote": ("::1", 7006)}))

    icmp = keep(socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
    icmp.setsockopt(255, 1, struct.pack("I", 0xFFFFFFFF))  # ICMP_FILTER: queue nothing
    plan.append(("raw", icmp, {"state": "7", "local": ("0.0.0.0", 1), "remote": ("0.0.0.0", 0)}))

    path = os.path.join(scratch, "own.sock")
    unix_listener = keep(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    unix_listener.bind(path)
    unix_listener.listen(2)
    plan.append(("unix", unix_listener, {"flags": "[ ACC ]", "kind": "STREAM",
                                         "state": "LISTENING", "path": path, "server": True}))
    abstract = keep(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
    abstract.bind("\0nlst-own-dgram")
    plan.append(("unix", abstract, {"flags": "[ ]", "kind": "DGRAM", "state": "",
                                    "path": "@nlst-own-dgram", "server": False}))
    for end in socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET):
        keep(end)
        plan.append(("unix", end, {"flags": "[ ]", "kind": "SEQPACKET", "state": "CONNECTED",
                                   "path": "", "server": False}))
    return held, plan


def tcp_state_of(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    return info[0]


def unix_refcounts(ns: netns.Namespace) -> Dict[int, int]:
    table = ns.check(["cat", "/proc/net/unix"]).stdout.decode()
    counts: Dict[int, int] = {}
    for line in table.splitlines()[1:]:
        fields = line.split()
        counts[int(fields[6])] = int(fields[1], 16)
    return counts


def expected_rows(ns: netns.Namespace, plan: Plan) -> List[Row]:
    refcounts = unix_refcounts(ns)
    rows: List[Row] = []
    for kind, sock, want in plan:
        inode = inode_of(sock)
        if kind == "unix":
            rows.append(Row(unix_row(refcounts[inode], want["flags"], want["kind"], want["state"],
                                     inode), want["path"], want["server"], True))
            continue
        six = sock.family == socket.AF_INET6
        proto = kind + ("6" if six else "")
        local = addr_text(want.get("local") or sock.getsockname())
        remote = addr_text(want["remote"])
        if kind == "tcp":
            server = remote.endswith(":*")
        else:
            server = want["remote"][0] in ("0.0.0.0", "::")
        rows.append(Row(inet_row(proto, sock.family, want.get("recv_q", 0), 0, local, remote,
                                 want["state"], want.get("uid", 0), inode), "", server, False))
    return rows


@pytest.fixture(scope="module")
def own() -> Iterator[Own]:
    netns.skip_unless_root()
    with netns.namespace(prefix="nlst-own") as ns:
        held, plan = ns.call_inside(lambda: build(ns.scratch))
        try:
            yield Own(ns, expected_rows(ns, plan), held)
        finally:
            for sock in held:
                sock.close()


INET_HEAD = ("Proto Recv-Q Send-Q Local Address           Foreign Address         State      "
             " User       Inode     ")
UNIX_HEAD = "Proto RefCnt Flags       Type       State         I-Node  "


def headers(title: str, programs: bool) -> List[str]:
    return [
        f"Active Internet connections {title}",
        INET_HEAD + (" PID/Program name    " if programs else ""),
        f"Active UNIX domain sockets {title}",
        UNIX_HEAD + (" PID/Program name    " if programs else "") + " Path",
    ]


def split_sections(text: str) -> Tuple[List[str], List[str], List[str]]:
    """(headers, inet rows, unix rows) of a listing."""
    heads: List[str] = []
    inet: List[str] = []
    unix: List[str] = []
    for line in text.split("\n")[:-1]:
        if line.startswith(("Active ", "Proto ")):
            heads.append(line)
        elif line.startswith("unix"):
            unix.append(line)
        else:
            inet.append(line)
    return heads, inet, unix


SELECTIONS = [
    ("a", "(servers and established)", lambda row: True),
    ("l", "(only servers)", lambda row: row.server),
    ("", "(w/o servers)", lambda row: not row.server),
]


def check_listing(own: Own, backend: str, args: List[str], title: str,
                  keep: Callable[[Row], bool], programs: bool) -> None:
    result = own.ns.run(cases.nlstat_command(args), env=cases.nlstat_env(backend), cwd="/")
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    text = result.stdout.decode(errors="surrogateescape")
    heads, inet, unix = split_sections(text)
    assert heads == headers(title, programs), text
    want_inet = sorted(r.text(programs) for r in own.rows if keep(r) and not r.unix)
    want_unix = sorted(r.text(programs) for r in own.rows if keep(r) and r.unix)
    assert sorted(inet) == want_inet, _diff(want_inet, sorted(inet))
    assert sorted(unix) == want_unix, _diff(want_unix, sorted(unix))
    # the kernel's order is kept: inet rows come before unix rows, tcp before udp before raw
    protos = [line.split()[0] for line in inet]
    order = {"tcp": 0, "tcp6": 1, "udp": 2, "udp6": 3, "raw": 4, "raw6": 5}
    assert protos == sorted(protos, key=order.__getitem__), text


@pytest.mark.parametrize("backend", cases.BACKENDS)
@pytest.mark.parametrize("flag, title, keep", SELECTIONS, ids=["all", "listening", "connected"])
def test_rows_are_exactly_my_sockets(own: Own, backend: str, flag: str, title: str,
                                     keep: Callable[[Row], bool]) -> None:
    check_listing(own, backend, [f"-{flag}ne"], title, keep, programs=False)


@pytest.mark.parametrize("backend", cases.BACKENDS)
def test_programs_name_this_process(own: Own, backend: str) -> None:
    """-p: every row names this process (one /proc scan per backend: slow on busy hosts)."""
    flag, title, keep = SELECTIONS[0]
    check_listing(own, backend, [f"-{flag}nep"], title, keep, programs=True)


def _diff(want: List[str], got: List[str]) -> str:
    import difflib

    return "rows (sorted) differ; lines end with $\n" + "\n".join(
        difflib.unified_diff([w + "$" for w in want], [g + "$" for g in got],
                             "expected", "nlstat", lineterm=""))


@pytest.mark.parametrize("programs", [False, True], ids=["ane", "programs-anep"])
def test_expectations_agree_with_netstat(own: Own, programs: bool) -> None:
    """The expected rows are right: netstat itself prints exactly them."""
    args = ["-anep" if programs else "-ane"]
    result = own.ns.run(cases.netstat_command(args), env=cases.base_env(), cwd="/")
    heads, inet, unix = split_sections(result.stdout.decode(errors="surrogateescape"))
    assert heads == headers(SELECTIONS[0][1], programs)
    assert sorted(inet) == sorted(r.text(programs) for r in own.rows if not r.unix)
    assert sorted(unix) == sorted(r.text(programs) for r in own.rows if r.unix)
