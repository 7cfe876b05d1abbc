"""Build a varied socket population inside a network namespace and hold it until told to stop.

Run it inside the namespace built with the HOSTS/NETWORKS/ADDRESSES/NEIGHBOURS/SYSCTLS below:

    ip netns exec NS python3 tests/population.py --dir /tmp/NS.d [--timeout 600] [--bulk 30]

It prints `READY {json}` on stdout once every socket exists and the kernel's tables have
stopped moving. Then it reads commands on stdin: `timewait` makes fresh TIME_WAIT sockets
(they live 60 s) and answers `OK timewait N`; `timers` answers `OK {json}` with the time
left on the timers that change the tables (see `timers()`); `stop`, end of input, SIGTERM
or the hard timeout close everything, end the helper processes and remove the socket files.
Helper processes (other users, odd argv[0]) are this same file run with `--child`.
Everything stays on loopback and the namespace's own veth pair: the only frames that
leave the stack are SYNs to a permanent neighbour entry, dropped by the other veth end.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

# --- the namespace this population expects (tests pass these to netns.Namespace) -------------

HOSTS = (
    "127.0.0.1\tlocalhost\n"
    "::1\tip6-localhost ip6-loopback\n"
    "198.18.0.1\tgw.bench.test gw\n"
    "198.18.0.2\tlong-hostname-that-gets-cut.bench.test\n"
    "198.18.0.99\tfar.bench.test\n"
    "2001:db8::1\tv6host.bench.test\n"
    "2001:db8::2\tlong-v6-hostname-that-gets-cut.bench.test\n"
    "2001:db8::99\tfar6.bench.test\n"
)
NETWORKS = (
    "default\t\t0.0.0.0\n"
    "loopback\t127.0.0.0\n"
    "link-local\t169.254.0.0\n"
    # netstat looks 0.x.y.z socket addresses up here (lib/inet.c INET_rresolve()'s byte-order bug).
    "zeronet\t\t0.1.2.3\n"
)
LONG_V6 = "2001:db8:1234:5678:9abc:def0:1234:5678"
LINK_LOCAL = "fe80::1234:5678:9abc:def0"
ADDRESSES = {
    "veth0": ("198.18.0.1/24", "198.18.0.2/32", "2001:db8::1/64", "2001:db8::2/128"),
    "veth1": (
        "198.19.0.1/24",
        "198.19.255.254/32",
        "0.1.2.3/32",
        "2001:db8:1::1/64",
        LONG_V6 + "/128",
        LINK_LOCAL + "/64",
    ),
}
# SYNs to these go out of veth0 to a MAC nobody has: the connection stays in SYN_SENT.
NEIGHBOURS = (
    ("198.18.0.99", "02:00:5e:00:00:99", "veth0"),
    ("2001:db8::99", "02:00:5e:00:00:99", "veth0"),
)
SYSCTLS = {
    # SYN_SENT must outlive the population (RTO grows to 120 s: 100 retries last hours).
    "net.ipv4.tcp_syn_retries": "100",
}

# argv[0] of the helper processes, for netstat -p's rules (netstat.c prg_cache_load()).
ARGV0_LONG = "averyveryverylongprogramname-cut-at-19"
ARGV0_TITLE = "/usr/sbin/daemon: worker /var/run"
ARGV0_RELATIVE = "./relative/prog"
ARGV0_TAB = "tab\tname"
ARGV0_BYTES = b"bad\xffname"
ARGV0_EMPTY = ""

SOL_RAW = 255
ICMP_FILTER = 1
SOL_ICMPV6 = 58
ICMP6_FILTER = 1
IPPROTO_UDPLITE = 136
IPPROTO_GRE = 47
IPPROTO_OSPF = 89

HOLD: List[object] = []  # everything that must stay open


def log(text: str) -> None:
    sys.stderr.write(f"population[{os.getpid()}]: {text}\n")
    sys.stderr.flush()


# --- small socket helpers -----------------------------------------------------------------


def family_of(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def sockaddr(address: str, port: int) -> Tuple[object, ...]:
    if address.startswith("fe80:"):
        return (address, port, 0, socket.if_nametoindex("veth1"))
    return (address, port) if ":" not in address else (address, port, 0, 0)


def tcp_listen(address: str, port: int, backlog: int = 16, v6only: Optional[bool] = True,
               rcvbuf: Optional[int] = None) -> socket.socket:
    sock = socket.socket(family_of(address), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if sock.family == socket.AF_INET6 and v6only is not None:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind(sockaddr(address, port))
    sock.listen(backlog)
    HOLD.append(sock)
    return sock


def tcp_connect(address: str, port: int, source: Optional[str] = None,
                family: Optional[int] = None) -> socket.socket:
    sock = socket.socket(family or family_of(address), socket.SOCK_STREAM)
    if source is not None:
        sock.bind(sockaddr(source, 0))
    sock.settimeout(5)
    sock.connect(sockaddr(address, port))
    HOLD.append(sock)
    return sock


def tcp_pair(listener: socket.socket, address: str, port: int,
             source: Optional[str] = None) -> Tuple[socket.socket, socket.socket]:
    client = tcp_connect(address, port, source)
    listener.settimeout(5)
    server, _ = listener.accept()
    HOLD.append(server)
    return client, server


def udp(address: str, port: int, proto: int = 0, connect_to: Optional[Tuple[str, int]] = None,
        v6only: bool = True) -> socket.socket:
    sock = socket.socket(family_of(address), socket.SOCK_DGRAM, proto)
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
    sock.bind(sockaddr(address, port))
    if connect_to is not None:
        sock.connect(sockaddr(*connect_to))
    HOLD.append(sock)
    return sock


def wait_for(predicate: object, what: str, limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


def tcp_state(port: int, state_hex: str, files: Sequence[str] = ("tcp", "tcp6")) -> bool:
    """True if a /proc/net/tcp* row has local or remote port `port` in state `state_hex`."""
    for name in files:
        with open(f"/proc/net/{name}") as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == state_hex:
                    return True
    return False


# --- the population ------------------------------------------------------------------------


class Population:
    def __init__(self, directory: str, bulk: int) -> None:
        self.dir = directory
        self.bulk = bulk
        self.children: Dict[str, subprocess.Popen[bytes]] = {}
        self.files: List[str] = []
        self.listeners: Dict[str, socket.socket] = {}
        self.timewait_rounds = 0
        self.udplite = True

    def build(self) -> None:
        self.tcp4()
        self.tcp6()
        self.udp_sockets()
        self.raw_sockets()
        self.unix_sockets()
        self.helpers()
        self.bulk_pairs()
        # Time-dependent states last, so they are as young as possible when compared.
        self.syn_sent()
        self.timewait()
        settle()

    def tcp4(self) -> None:
        tcp_listen("127.0.0.1", 6000, backlog=8)
        for _ in range(3):  # never accepted: Recv-Q 3 on the LISTEN row, inode-0 server rows
            tcp_connect("127.0.0.1", 6000)
        pg = tcp_listen("127.0.0.1", 5432)
        self.listeners["pg"] = pg
        client, _server = tcp_pair(pg, "127.0.0.1", 5432)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)  # keepalive timer
        http = tcp_listen("0.0.0.0", 8080)
        client, server = tcp_pair(http, "127.0.0.1", 8080)
        client.sendall(b"x" * 3000)  # unread: Recv-Q 3000 on the server row
        wait_for(lambda: server_has(server, 3000), "3000 unread bytes")
        client, server = tcp_pair(http, "127.0.0.1", 8080)
        client.shutdown(socket.SHUT_WR)  # client FIN_WAIT2, server CLOSE_WAIT (Recv-Q 1)
        tcp_listen("198.18.0.1", 22)
        long_listener = tcp_listen("198.18.0.2", 8081)
        tcp_pair(long_listener, "198.18.0.2", 8081, source="198.18.0.1")
        tcp_listen("0.1.2.3", 7777)
        tcp_listen("198.19.255.254", 8990)
        # Peer not reading, small buffers: Send-Q on the client, Recv-Q on the server.
        slow = tcp_listen("127.0.0.1", 7200, rcvbuf=4096)
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        client.connect(("127.0.0.1", 7200))
        HOLD.append(client)
        slow.settimeout(5)
        server, _ = slow.accept()
        HOLD.append(server)
        client.setblocking(False)
        chunk = b"y" * 1024
        for _ in range(4096):
            try:
                client.send(chunk)
            except BlockingIOError:
                break
        self.listeners["shared"] = tcp_listen("127.0.0.1", 9106)

    def tcp6(self) -> None:
        any6 = tcp_listen("::", 8443)
        self.listeners["any6"] = any6
        tcp_pair(any6, "::1", 8443)
        local = tcp_listen("::1", 9000)
        client, server = tcp_pair(local, "::1", 9000)
        client.sendall(b"z" * 777)
        wait_for(lambda: server_has(server, 777), "777 unread bytes")
        tcp_listen("2001:db8::1", 443)
        dual = tcp_listen("::", 5555, v6only=False)
        client = tcp_connect("127.0.0.1", 5555)  # accepted by a tcp6 socket: v4-mapped row
        dual.settimeout(5)
        server, _ = dual.accept()
        HOLD.append(server)
        tcp_listen(LONG_V6, 12345)
        tcp_listen(LONG_V6, 8990)
        long6 = tcp_listen("2001:db8::2", 9000)
        tcp_pair(long6, "2001:db8::2", 9000, source="2001:db8::1")

    def udp_sockets(self) -> None:
        # Not 127.0.0.1/0.0.0.0 port 53: the resolver's queries must find nobody there.
        udp("198.18.0.1", 53)
        mdns = udp("127.0.0.1", 5353)
        sender = udp("127.0.0.1", 40000, connect_to=("127.0.0.1", 5353))
        sender.send(b"hello")
        sender.send(b"again")
        wait_for(lambda: udp_queued(mdns), "unread datagrams")
        udp("0.0.0.0", 6001)
        udp("::1", 123)
        udp("::", 53001)
        udp("::1", 53535)
        udp("::1", 6002, connect_to=("::1", 53535))
        udp(LINK_LOCAL, 7000)
        udp("2001:db8::1", 443)
        try:
            udp("127.0.0.1", 7000, proto=IPPROTO_UDPLITE)
        except OSError as err:
            if err.errno not in (errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT):
                raise
            self.udplite = False
            log("no UDP-Lite on this kernel")
            return
        udp("::1", 7001, proto=IPPROTO_UDPLITE)
        udp("127.0.0.1", 7002, proto=IPPROTO_UDPLITE, connect_to=("127.0.0.1", 7000))

    def raw_sockets(self) -> None:
        icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        # Block every ICMP type: resolver port-unreachables must not queue up here between runs.
        icmp.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", 0xFFFFFFFF))
        HOLD.append(icmp)
        ospf = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_OSPF)
        HOLD.append(ospf)
        icmp6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        icmp6.setsockopt(SOL_ICMPV6, ICMP6_FILTER, b"\xff" * 32)  # block all (ND, MLD...)
        HOLD.append(icmp6)
        gre = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_GRE)
        gre.connect(("127.0.0.1", 0))  # connected raw: state 1, shown without -a
        HOLD.append(gre)
        raw255 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        raw255.bind(("127.0.0.1", 0))
        HOLD.append(raw255)
        ospf6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_OSPF)
        ospf6.bind(("::1", 0))
        HOLD.append(ospf6)

    def unix_path(self, base: str) -> str:
        path = os.path.join(self.dir, base)
        if os.path.exists(path):  # left by a population that was killed
            os.unlink(path)
        self.files.append(path)
        return path

    def unix_sockets(self) -> None:
        stream, dgram, seq = socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_SEQPACKET

        def unix(kind: int, bind: Optional[str] = None, listen: bool = False) -> socket.socket:
            sock = socket.socket(socket.AF_UNIX, kind)
            if bind is not None:
                sock.bind(bind)
            if listen:
                sock.listen(8)
            HOLD.append(sock)
            return sock

        srv_path = self.unix_path("srv.sock")
        srv = unix(stream, srv_path, listen=True)
        for _ in range(2):
            unix(stream).connect(srv_path)
            HOLD.append(srv.accept()[0])
        unix(stream, self.unix_path("with space.sock"), listen=True)
        dg_path = self.unix_path("dg.sock")
        unix(dgram, dg_path)
        unix(dgram).connect(dg_path)
        seq_path = self.unix_path("seq.sock")
        seq_srv = unix(seq, seq_path, listen=True)
        unix(seq).connect(seq_path)
        HOLD.append(seq_srv.accept()[0])
        backlog_path = self.unix_path("backlog.sock")
        unix(stream, backlog_path, listen=True)
        for _ in range(2):  # connected but never accepted
            unix(stream).connect(backlog_path)
        abstract = unix(stream, "\0nlst-abstract", listen=True)
        unix(stream).connect("\0nlst-abstract")
        HOLD.append(abstract.accept()[0])
        unix(dgram, "\0nlst-abstract-dgram")
        for kind in (stream, dgram, seq):
            HOLD.extend(socket.socketpair(socket.AF_UNIX, kind))
        unix(stream)  # unbound, unconnected: empty state, empty path

    def helpers(self) -> None:
        self.spawn("nobody", sys.executable, ["tcp:127.0.0.1:8888", "udp6:::1:8889",
                                               "unix:@nlst-nobody"],
                   uid=65534)
        self.spawn("uid4242", sys.executable, ["tcp:127.0.0.1:9105", "tcp6:::1:9105"], uid=4242)
        self.spawn("long", ARGV0_LONG, ["tcp:127.0.0.1:9101"])
        self.spawn("title", ARGV0_TITLE, ["tcp:127.0.0.1:9102"])
        self.spawn("relative", ARGV0_RELATIVE, ["tcp:127.0.0.1:9103"])
        self.spawn("tab", ARGV0_TAB, ["tcp:127.0.0.1:9104"])
        self.spawn("bytes", ARGV0_BYTES, ["udp:127.0.0.1:9107"])
        self.spawn("empty", ARGV0_EMPTY, ["tcp:127.0.0.1:9108"])
        # A listener shared with a child: netstat -p names the lower pid (this process).
        shared = self.listeners["shared"]
        self.spawn("inherit", sys.executable, [f"fd:{shared.fileno()}"],
                   pass_fds=(shared.fileno(),))

    def spawn(self, role: str, argv0: str | bytes, items: Sequence[str], uid: Optional[int] = None,
              pass_fds: Sequence[int] = ()) -> None:
        command: List[str | bytes] = [argv0, os.path.abspath(__file__), "--child", *items]
        if uid is not None:
            command += ["--setuid", str(uid)]
        # An argv[0] that is not the interpreter's path would make Python look for its library
        # next to that path: tell it where its home is.
        # (the base installation's: in a virtual environment sys.prefix holds no stdlib).
        env = dict(os.environ, PYTHONHOME=f"{sys.base_prefix}:{sys.base_exec_prefix}")
        child = subprocess.Popen(
            command, executable=sys.executable, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            pass_fds=tuple(pass_fds), env=env,
        )
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 20)
        line = child.stdout.readline() if ready else b""
        if line.strip() != b"ok":
            child.kill()
            raise RuntimeError(f"helper {role} did not start: {line!r}")
        self.children[role] = child

    def bulk_pairs(self) -> None:
        listener = tcp_listen("127.0.0.1", 7100, backlog=max(16, self.bulk))
        for _ in range(self.bulk):
            tcp_pair(listener, "127.0.0.1", 7100)

    def syn_sent(self) -> None:
        for source, target, port in (("198.18.0.1", "198.18.0.99", 80),
                                     ("2001:db8::1", "2001:db8::99", 443)):
            sock = socket.socket(family_of(target), socket.SOCK_STREAM)
            sock.bind(sockaddr(source, 0))
            sock.setblocking(False)
            try:
                sock.connect(sockaddr(target, port))
            except BlockingIOError:
                pass
            HOLD.append(sock)
        wait_for(lambda: syn_count() >= 2, "SYN_SENT")

    def timewait(self) -> None:
        """A TIME_WAIT on each family (the client closes first, so the client side waits)."""
        ports = []
        for address, listener_port, listener in (("127.0.0.1", 5432, self.listeners["pg"]),
                                                 ("::1", 8443, self.listeners["any6"])):
            client = socket.socket(family_of(address), socket.SOCK_STREAM)
            client.settimeout(5)
            client.connect(sockaddr(address, listener_port))
            port = client.getsockname()[1]
            listener.settimeout(5)
            server, _ = listener.accept()
            client.close()
            wait_for(lambda p=port: tcp_state(p, "05"), "FIN_WAIT2 before TIME_WAIT")
            server.close()
            wait_for(lambda p=port: tcp_state(p, "06"), "TIME_WAIT")
            ports.append(port)
        self.timewait_rounds += 1

    def describe(self) -> Dict[str, object]:
        return {
            "pid": os.getpid(),
            "dir": self.dir,
            "udplite": self.udplite,
            "children": {role: child.pid for role, child in self.children.items()},
        }

    def close(self) -> None:
        for child in self.children.values():
            if child.stdin is not None:
                try:
                    child.stdin.close()
                except OSError:
                    pass
        deadline = time.monotonic() + 3
        for child in self.children.values():
            try:
                child.wait(max(0.01, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for sock in HOLD:
            try:
                sock.close()  # type: ignore[attr-defined]
            except OSError:
                pass
        for path in self.files:
            try:
                os.unlink(path)
            except OSError:
                pass


def server_has(sock: socket.socket, count: int) -> bool:
    import fcntl
    import termios

    value = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return bool(struct.unpack("i", value)[0] >= count)


def udp_queued(sock: socket.socket) -> bool:
    import fcntl
    import termios

    value = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return bool(struct.unpack("i", value)[0] > 0)


def syn_count() -> int:
    count = 0
    for name in ("tcp", "tcp6"):
        with open(f"/proc/net/{name}") as handle:
            next(handle)
            count += sum(1 for line in handle if line.split()[3] == "02")
    return count


def timers() -> Dict[str, List[float]]:
    """Count and least time left (s) of the timers that change the tables when they fire.

    "tw": TIME_WAIT sockets (the row disappears), "syn": SYN_SENT retransmissions (the
    retransmit count in `-o` moves). The kernel fires a 60 s timer up to ~2 s late (timer
    wheel granularity), so callers add that slack.
    """
    found: Dict[str, List[float]] = {"tw": [0, 0.0], "syn": [0, 0.0]}
    for name in ("tcp", "tcp6"):
        with open(f"/proc/net/{name}") as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                kind = {"06": "tw", "02": "syn"}.get(fields[3])
                if kind is None:
                    continue
                left = int(fields[5].split(":")[1], 16) / 100.0
                entry = found[kind]
                entry[1] = left if not entry[0] else min(entry[1], left)
                entry[0] += 1
    return found


def snapshot() -> List[str]:
    """The tables without their timer columns, to see when the kernel has settled."""
    rows: List[str] = []
    for name in ("tcp", "tcp6", "udp", "udp6", "udplite", "udplite6", "raw", "raw6"):
        try:
            with open(f"/proc/net/{name}") as handle:
                rows.extend(" ".join(line.split()[1:5]) for line in handle)
        except OSError:
            continue
    with open("/proc/net/unix") as handle:
        rows.extend(handle)
    return rows


def settle(limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    previous = snapshot()
    while time.monotonic() < deadline:
        time.sleep(0.3)
        current = snapshot()
        if current == previous:
            return
        previous = current
    log("tables still moving after %.0f s" % limit)


# --- helper processes ----------------------------------------------------------------------


def child_main(items: Sequence[str], setuid: Optional[int]) -> int:
    if setuid is not None:
        os.setgroups([])
        os.setgid(setuid)
        os.setuid(setuid)
    for item in items:
        kind, _, rest = item.partition(":")
        if kind == "fd":
            continue  # inherited; kept open by simply not closing it
        if kind == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind("\0" + rest[1:] if rest.startswith("@") else rest)
            sock.listen(4)
            HOLD.append(sock)
            continue
        address, _, port_text = rest.rpartition(":")
        if kind in ("tcp", "tcp6"):
            tcp_listen(address, int(port_text))
        elif kind in ("udp", "udp6"):
            udp(address, int(port_text))
        else:
            raise SystemExit(f"unknown helper item {item!r}")
    sys.stdout.write("ok\n")
    sys.stdout.flush()
    # Hold until the parent closes our stdin (or dies: the pipe closes with it).
    while sys.stdin.buffer.read(4096):
        pass
    return 0


# --- main ------------------------------------------------------------------------------------


class Stop(Exception):
    pass


def _raise_stop(signum: int, _frame: object) -> None:
    raise Stop(signal.Signals(signum).name)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", help="directory for unix socket files")
    parser.add_argument("--timeout", type=float, default=600.0, help="exit after this (seconds)")
    parser.add_argument("--bulk", type=int, default=30, help="extra loopback TCP pairs")
    parser.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--setuid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        return child_main(args.child, args.setuid)
    if not args.dir:
        parser.error("--dir is required")
    os.makedirs(args.dir, exist_ok=True)
    os.chmod(args.dir, 0o755)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGALRM, _raise_stop)
    signal.alarm(max(1, int(args.timeout)))
    population = Population(args.dir, args.bulk)
    try:
        population.build()
        sys.stdout.write("READY " + json.dumps(population.describe()) + "\n")
        sys.stdout.flush()
        for line in sys.stdin:
            command = line.strip()
            if command == "stop":
                break
            if command == "timewait":
                population.timewait()
                settle(3.0)
                sys.stdout.write(f"OK timewait {population.timewait_rounds}\n")
            elif command == "timers":
                sys.stdout.write("OK " + json.dumps(timers()) + "\n")
            else:
                sys.stdout.write(f"ERR unknown command {command!r}\n")
            sys.stdout.flush()
    except Stop as why:
        log(f"stopping on {why}")
    finally:
        signal.alarm(0)
        population.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
