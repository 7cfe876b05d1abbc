"""Test helpers for `-M`: a private three-namespace NAT network and traffic with known ports.

    inner 198.18.1.2 --veth-- 198.18.1.1 nat 198.19.2.1 --veth-- 198.19.2.2 outer

nftables in `nat` (sent over netlink by tests/nftables.py, no `nft` binary): masquerade out of
n1 to ports 61000-61999 (so the translated port always differs from the client's), and a port
forward 198.19.2.1:7000 -> 198.18.1.2:7001 (DNAT only).

All traffic stays inside these namespaces. Sockets are made by this process in threads switched
into a namespace (tests.netns.Namespace.call_inside), so the test holds them and knows their
ports: the client's source port, and the translated port the server saw (masq's "mport").

Capture the unit-test data (root):  python3 tests/masquerade_support.py capture
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List, NamedTuple, Sequence, Tuple

from tests import nftables as nft
from tests.echo import exchange
from tests.netns import Namespace, namespace

REPO = Path(__file__).resolve().parent.parent

DATA = REPO / "tests" / "data" / "conntrack"

INNER = "198.18.1.2"
NAT_INSIDE = "198.18.1.1"
NAT_OUTSIDE = "198.19.2.1"
OUTER = "198.19.2.2"
TCP_PORT = 8080  # http-alt in Debian's /etc/services
UDP_PORT = 5353  # mdns
FORWARD_PORT = 7000  # on NAT_OUTSIDE, forwarded to INNER:FORWARDED_TO
FORWARDED_TO = 7001
MASQ_PORTS = (61000, 61999)
HOSTS = (
    "127.0.0.1\tlocalhost\n"
    f"{INNER}\tinner-host\n"
    f"{OUTER}\touter-host.example\touter\n"
)


class Flow(NamedTuple):
    """One exchange through the NAT: what the client used and what the server saw."""

    protocol: str
    source: str
    source_port: int
    destination: str
    destination_port: int
    translated_port: int  # the source port the server saw (the NAT's masquerade port)


class NatNetwork(NamedTuple):
    inner: Namespace
    nat: Namespace
    outer: Namespace


def nat_rules() -> nft.Batch:
    """The nat namespace's rules, as nft would write them:

        table ip nlstnat {
          chain post { type nat hook postrouting priority 100;
            oifname "n1" meta l4proto tcp masquerade to :61000-61999
            oifname "n1" meta l4proto udp masquerade to :61000-61999
            oifname "n1" masquerade }
          chain pre { type nat hook prerouting priority -100;
            iifname "n1" meta l4proto tcp tcp dport 7000 dnat to 198.18.1.2:7001 } }
    """
    batch = nft.Batch()
    batch.table("nlstnat")
    batch.chain("nlstnat", "post", hook=nft.NF_INET_POST_ROUTING, priority=100, kind="nat")
    for protocol in (socket.IPPROTO_TCP, socket.IPPROTO_UDP):
        batch.rule("nlstnat", "post", [*nft.oifname_is("n1"), *nft.l4proto_is(protocol),
                                       *nft.masquerade(MASQ_PORTS)])
    batch.rule("nlstnat", "post", [*nft.oifname_is("n1"), *nft.masquerade()])
    batch.chain("nlstnat", "pre", hook=nft.NF_INET_PRE_ROUTING, priority=-100, kind="nat")
    batch.rule("nlstnat", "pre", [*nft.iifname_is("n1"), *nft.l4proto_is(socket.IPPROTO_TCP),
                                  *nft.dport_is(FORWARD_PORT),
                                  *nft.dnat(INNER, FORWARDED_TO)])
    return batch


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def nat_network() -> Iterator[NatNetwork]:
    """The three namespaces, addressed and routed, with masquerade in `nat`; always removed."""
    options = dict(prefix="nlst-masq", veth=False, addresses={"lo": ()}, hosts=HOSTS)
    with namespace(**options) as inner, namespace(**options) as nat, namespace(**options) as outer:
        _ip("-n", inner.name, "link", "add", "i0", "type", "veth", "peer", "name", "n0",
            "netns", nat.name)
        _ip("-n", nat.name, "link", "add", "n1", "type", "veth", "peer", "name", "o0",
            "netns", outer.name)
        for ns, dev, address in (
            (inner, "i0", f"{INNER}/24"),
            (nat, "n0", f"{NAT_INSIDE}/24"),
            (nat, "n1", f"{NAT_OUTSIDE}/24"),
            (outer, "o0", f"{OUTER}/24"),
        ):
            _ip("-n", ns.name, "addr", "add", address, "dev", dev)
            _ip("-n", ns.name, "link", "set", dev, "up")
        _ip("-n", inner.name, "route", "add", "default", "via", NAT_INSIDE)
        nat.check(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        nat.call_inside(nat_rules().commit)
        yield NatNetwork(inner, nat, outer)


class Traffic:
    """Listeners in `outer`, clients in `inner`; every socket is closed by `close()`."""

    def __init__(self, network: NatNetwork) -> None:
        self.network = network
        self.sockets: List[socket.socket] = []
        self.flows: List[Flow] = []

        def listeners() -> Tuple[socket.socket, socket.socket]:
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((OUTER, TCP_PORT))
            tcp.listen(16)
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind((OUTER, UDP_PORT))
            return tcp, udp

        def forward_listener() -> socket.socket:
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.bind((INNER, FORWARDED_TO))
            tcp.listen(16)
            return tcp

        self.tcp_listener, self.udp_listener = network.outer.call_inside(listeners)
        self.forward_listener = network.inner.call_inside(forward_listener)
        self.sockets += [self.tcp_listener, self.udp_listener, self.forward_listener]
        for sock in self.sockets:
            sock.settimeout(5)

    def tcp(self) -> Flow:
        """A TCP connection through the NAT, left open (ESTABLISHED in conntrack)."""

        def connect() -> socket.socket:
            return socket.create_connection((OUTER, TCP_PORT), timeout=5)

        client = self.network.inner.call_inside(connect)
        server, (seen_host, seen_port) = self.tcp_listener.accept()
        client.sendall(b"hello")
        assert server.recv(16) == b"hello"
        server.sendall(b"hi")
        assert client.recv(16) == b"hi"
        self.sockets += [client, server]
        assert seen_host == NAT_OUTSIDE
        flow = Flow("tcp", INNER, client.getsockname()[1], OUTER, TCP_PORT, seen_port)
        self.flows.append(flow)
        return flow

    def forwarded(self) -> Flow:
        """A TCP connection from outside to the NAT's forwarded port (destination NAT only)."""

        def connect() -> socket.socket:
            return socket.create_connection((NAT_OUTSIDE, FORWARD_PORT), timeout=5)

        client = self.network.outer.call_inside(connect)
        server, (seen_host, seen_port) = self.forward_listener.accept()
        client.sendall(b"knock")
        assert server.recv(16) == b"knock"
        self.sockets += [client, server]
        assert (seen_host, seen_port) == (OUTER, client.getsockname()[1])
        flow = Flow("tcp", OUTER, seen_port, NAT_OUTSIDE, FORWARD_PORT, FORWARDED_TO)
        self.flows.append(flow)
        return flow

    def udp(self) -> Flow:
        """A UDP request and its answer through the NAT."""

        def client_socket() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.settimeout(5)
            sock.bind((INNER, 0))
            return sock

        client = self.network.inner.call_inside(client_socket)
        client.sendto(b"ping", (OUTER, UDP_PORT))
        data, (seen_host, seen_port) = self.udp_listener.recvfrom(64)
        assert data == b"ping" and seen_host == NAT_OUTSIDE
        self.udp_listener.sendto(b"pong", (seen_host, seen_port))
        assert client.recvfrom(64)[0] == b"pong"
        self.sockets.append(client)
        flow = Flow("udp", INNER, client.getsockname()[1], OUTER, UDP_PORT, seen_port)
        self.flows.append(flow)
        return flow

    def close(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self.sockets = []


def udp_burst(network: NatNetwork, first_port: int, count: int) -> int:
    """`count` datagrams from one inner socket to consecutive closed outer ports (one conntrack
    entry each); the outer namespace drops them quietly. Returns the client's source port."""
    # table ip nlstdrop { chain in { type filter hook input priority 0;
    #   meta l4proto udp udp dport FIRST-LAST drop } }
    batch = nft.Batch()
    batch.table("nlstdrop")
    batch.chain("nlstdrop", "in", hook=nft.NF_INET_LOCAL_IN, priority=0, kind="filter")
    batch.rule("nlstdrop", "in", [*nft.l4proto_is(socket.IPPROTO_UDP),
                                  *nft.dport_within(first_port, first_port + count - 1),
                                  nft.verdict(nft.NF_DROP)])
    network.outer.call_inside(batch.commit)

    def send() -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((INNER, 0))
            for port in range(first_port, first_port + count):
                sock.sendto(b"x", (OUTER, port))
            return int(sock.getsockname()[1])
        finally:
            sock.close()

    return network.inner.call_inside(send)


def dump_chunks(ns: Namespace) -> List[bytes]:
    """The raw ctnetlink answer to a CT_GET dump, taken inside `ns` (up to NLMSG_DONE)."""
    from nlstat.backends.netlink.conntrack import CT_GET, dump_request
    from nlstat.backends.netlink.nlsocket import NetlinkSocket
    from nlstat.kernel.netlink import NETLINK_NETFILTER, NLMSG_DONE, NLMSG_ERROR

    def take() -> List[bytes]:
        chunks: List[bytes] = []
        with NetlinkSocket(NETLINK_NETFILTER) as nl:
            for chunk in nl.dump(CT_GET, dump_request(socket.AF_INET)):
                chunks.append(chunk)
                kinds = _message_types(chunk)
                if NLMSG_DONE in kinds or NLMSG_ERROR in kinds:
                    break
        return chunks

    return ns.call_inside(take)


def _message_types(chunk: bytes) -> List[int]:
    import struct

    kinds: List[int] = []
    offset = 0
    while offset + 16 <= len(chunk):
        length, kind = struct.unpack_from("=IH", chunk, offset)
        kinds.append(kind)
        if length < 16:
            break
        offset += (length + 3) & ~3
    return kinds


AS_NOBODY = ("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups")


def run_nlstat_in(ns: Namespace, argv: Sequence[str], backend: str = "auto",
                  user: bool = False) -> subprocess.CompletedProcess[bytes]:
    """`python -m nlstat ARGV` inside `ns` (as nobody when `user`, see nobodys_nlstat)."""
    env = {"LC_ALL": "C", "PYTHONPATH": str(REPO), "NLSTAT_BACKEND": backend,
           "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    python = sys.executable
    if user:
        python, env["PYTHONPATH"] = nobodys_nlstat(ns)
    prefix = list(AS_NOBODY) if user else []
    return ns.run([*prefix, python, "-m", "nlstat", *argv], env=env, timeout=120)


def nobodys_nlstat(ns: Namespace) -> Tuple[str, str]:
    """(interpreter, PYTHONPATH) that uid 65534 can use: the tree and the venv may sit in
    root's private directories (a fresh clone in a 0700 mktemp directory), so the package is
    copied under the namespace's scratch directory (0755) and the venv's base interpreter is
    used (-M imports nothing outside the standard library)."""
    tree = os.path.join(ns.scratch, "nobody")
    if not os.path.isdir(os.path.join(tree, "nlstat")):
        shutil.copytree(REPO / "nlstat", os.path.join(tree, "nlstat"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        for directory, _dirs, files in os.walk(tree):
            os.chmod(directory, 0o755)
            for name in files:
                os.chmod(os.path.join(directory, name), 0o644)
    return os.path.realpath(sys.executable), tree


def capture(dest: Path = DATA) -> None:
    """tests/data/conntrack/: a dump and /proc/net/nf_conntrack taken together, an EPERM answer."""
    dest.mkdir(parents=True, exist_ok=True)
    with nat_network() as network:
        traffic = Traffic(network)
        try:
            for _ in range(3):
                traffic.tcp()
                traffic.udp()
            traffic.forwarded()
            exchange(network.inner, [(OUTER, 1, 56)])
            for _attempt in range(5):
                proc_before = network.nat.check(["cat", "/proc/net/nf_conntrack"]).stdout
                chunks = dump_chunks(network.nat)
                proc_after = network.nat.check(["cat", "/proc/net/nf_conntrack"]).stdout
                if proc_before == proc_after:
                    break
            (dest / "nat.dump").write_bytes(b"".join(chunks))
            (dest / "nat.nf_conntrack").write_bytes(proc_before)
            flows = "".join(" ".join(map(str, flow)) + "\n" for flow in traffic.flows)
            (dest / "nat.flows").write_text(flows)
        finally:
            traffic.close()
        # The kernel's answer to an unprivileged dump: NLMSG_ERROR with EPERM.
        script = "from tests.masquerade_support import _eperm_answer; _eperm_answer()"
        done = network.nat.run(["env", f"PYTHONPATH={REPO}", *AS_NOBODY, sys.executable, "-c",
                                script])
        (dest / "eperm.dump").write_bytes(done.stdout)


def _eperm_answer() -> None:
    from nlstat.backends.netlink.conntrack import CT_GET, dump_request
    from nlstat.backends.netlink.nlsocket import NetlinkSocket
    from nlstat.kernel.netlink import NETLINK_NETFILTER

    with NetlinkSocket(NETLINK_NETFILTER) as nl:
        chunk = next(iter(nl.dump(CT_GET, dump_request(socket.AF_INET))))
    sys.stdout.buffer.write(chunk)


if __name__ == "__main__":
    if sys.argv[1:] == ["capture"]:
        capture()
        print(f"captured into {DATA}")
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
