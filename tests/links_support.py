"""Shared helpers for the `-i` and `-g` tests: a lab of varied interfaces, runners, captures.

`links_lab()` builds a private namespace holding every kind of interface netstat -i treats
differently (veth pairs with their far ends in a second namespace, a bridge, a tun device, an
ifb device and a veth that are down, alias labels, a 15-character name, promisc/allmulti,
site/link/v4-mapped/v4-compatible IPv6 addresses, an unprintable queue length) and multicast
memberships on both families (held by a small process inside, two sockets per group so RefCnt
is 2, plus `ip maddr add`). ICMP echoes between the namespaces (tests/echo.py, Python sockets)
move the counters, then the lab waits until /proc/net/dev stops changing. Documentation
addresses only: 198.18.0.0/15, 2001:db8::/32, site-local fec0::/10 and multicast groups that
stay on the veth links. Device names include a UTF-8 one and one that is not UTF-8 (names are
bytes to the kernel).

Run `python3 -m tests.links_support capture` (as root) to rebuild the captured data under
tests/data/links and tests/data/groups.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from tests.differential import bracketed
from tests.echo import exchange
from tests.netns import Namespace

REPO = Path(__file__).resolve().parents[1]

NETSTAT = "/usr/bin/netstat"
LINKS_DATA = REPO / "tests" / "data" / "links"
GROUPS_DATA = REPO / "tests" / "data" / "groups"

HOSTS = (
    "127.0.0.1\tlocalhost\n"
    "::1\tip6-localhost ip6-loopback\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
    "239.1.2.3\tnlst-group-a\n"
    "ff15::1234\tnlst-group6-a\n"
)

LONG_NAME = "nlsverylongname"  # 15 characters: Debian's get_name() bug zeroes its counters
# Fixed, locally administered MAC addresses for the veth ends that carry traffic.
MAC = {
    "nlsveth0": "02:4e:4c:00:00:01",
    "nlsvethp": "02:4e:4c:00:00:02",
    LONG_NAME: "02:4e:4c:00:01:01",
    "nlsvlpeer": "02:4e:4c:00:01:02",
}

# Run in the peer namespace first: a veth whose lab end moves in after the lab's own devices.
# Its ifindex (50) is below nlsa2's (100), so the kernel's device list (igmp order) and the
# ifindex order of dumps and /proc/net/dev disagree, as they do on hosts with moved devices.
PRE_PEER: Tuple[Tuple[str, ...], ...] = (
    ("ip", "link", "add", "nlsmoved", "index", "50", "type", "veth", "peer", "name", "nlsmovedp"),
)
# (command inside the lab namespace) in order; "{peer}"/"{lab}" are the namespaces' names.
SETUP: Tuple[Tuple[str, ...], ...] = (
    ("ip", "link", "add", "nlsveth0", "address", MAC["nlsveth0"], "type", "veth", "peer", "name",
     "nlsvethp", "address", MAC["nlsvethp"], "netns", "{peer}"),
    ("ip", "link", "add", LONG_NAME, "address", MAC[LONG_NAME], "type", "veth", "peer", "name",
     "nlsvlpeer", "address", MAC["nlsvlpeer"], "netns", "{peer}"),
    ("ip", "link", "add", "nlsdown0", "type", "veth", "peer", "name", "nlsdownp",
     "netns", "{peer}"),
    ("ip", "link", "add", "nlsbr0", "mtu", "1400", "type", "bridge"),
    ("ip", "link", "add", "nlsb01", "type", "bridge"),
    ("ip", "link", "add", "nlsb1", "type", "bridge"),
    ("ip", "link", "add", "nlsa10", "type", "bridge"),
    ("ip", "link", "add", "nlsa2", "index", "100", "type", "bridge"),
    ("ip", "link", "add", "nlsifb0", "type", "ifb"),
    # Names are bytes to the kernel: a UTF-8 one (printf pads by bytes) and an invalid one.
    ("ip", "link", "add", "nlsé0", "type", "bridge"),
    ("ip", "link", "add", "nls\udcff1", "type", "bridge"),
    ("ip", "tuntap", "add", "mode", "tun", "nlstun0"),
    # ip refuses queue lengths above INT_MAX; sysfs takes any u32 (netstat hides 0xffffffff).
    ("sh", "-c", "echo 4294967295 > /sys/class/net/nlsb01/tx_queue_len"),
    ("sh", "-c", "echo 2147483648 > /sys/class/net/nlsa10/tx_queue_len"),
    ("ip", "link", "set", "nlsbr0", "txqueuelen", "0"),
    ("ip", "addr", "add", "127.0.0.77/8", "dev", "lo", "label", "lo:7"),
    ("ip", "addr", "add", "198.18.0.1/24", "brd", "+", "dev", "nlsveth0"),
    ("ip", "addr", "add", "198.18.1.1/24", "dev", "nlsveth0", "label", "nlsveth0:1"),
    ("ip", "addr", "add", "198.18.3.1/24", "dev", "nlsveth0", "label", "nlsveth0:10"),
    ("ip", "addr", "add", "198.18.4.1/24", "dev", "nlsveth0", "label", "nlsveth0:2"),
    ("ip", "addr", "add", "198.18.5.1/24", "dev", "nlsveth0", "label", "nlsveth0:xyz"),
    ("ip", "-6", "addr", "add", "2001:db8:1::1/64", "dev", "nlsveth0", "nodad"),
    ("ip", "-6", "addr", "add", "fec0::1/64", "dev", "nlsveth0", "nodad"),
    ("ip", "-6", "addr", "add", "::ffff:198.18.0.5/128", "dev", "nlsveth0", "nodad"),
    ("ip", "-6", "addr", "add", "::198.18.0.6/128", "dev", "nlsveth0", "nodad"),
    ("ip", "addr", "add", "198.19.0.1/28", "dev", LONG_NAME),
    ("ip", "-6", "addr", "add", "2001:db8:2::1/64", "dev", LONG_NAME, "nodad"),
    ("ip", "addr", "add", "198.18.2.1", "peer", "198.18.2.2", "dev", "nlstun0"),
    ("ip", "addr", "add", "198.18.9.1/24", "dev", "nlsdown0"),
    ("ip", "link", "set", "nlsveth0", "up"),
    ("ip", "link", "set", LONG_NAME, "up", "promisc", "on", "allmulticast", "on"),
    ("ip", "link", "set", "nlsbr0", "up"),
    ("ip", "addr", "add", "198.18.8.1/24", "dev", "nlsé0", "label", "nlsé0:1"),
    ("ip", "link", "set", "nlsé0", "up"),
    ("ip", "link", "set", "nlstun0", "up"),
    ("ip", "maddr", "add", "01:00:5e:01:01:01", "dev", "nlsveth0"),
    ("ip", "-n", "{peer}", "link", "set", "nlsmoved", "netns", "{lab}"),
    ("ip", "addr", "add", "198.18.7.1/24", "dev", "nlsmoved"),
    ("ip", "link", "set", "nlsmoved", "up"),
    # Permanent neighbours: no ARP or neighbour-discovery probes after the echoes.
    ("ip", "neigh", "replace", "198.18.0.2", "lladdr", MAC["nlsvethp"], "dev", "nlsveth0",
     "nud", "permanent"),
    ("ip", "-6", "neigh", "replace", "2001:db8:1::2", "lladdr", MAC["nlsvethp"], "dev",
     "nlsveth0", "nud", "permanent"),
    ("ip", "neigh", "replace", "198.19.0.2", "lladdr", MAC["nlsvlpeer"], "dev", LONG_NAME,
     "nud", "permanent"),
)
PEER_SETUP: Tuple[Tuple[str, ...], ...] = (
    ("ip", "link", "set", "lo", "up"),
    ("ip", "addr", "add", "198.18.0.2/24", "dev", "nlsvethp"),
    ("ip", "-6", "addr", "add", "2001:db8:1::2/64", "dev", "nlsvethp", "nodad"),
    ("ip", "addr", "add", "198.19.0.2/28", "dev", "nlsvlpeer"),
    ("ip", "link", "set", "nlsvethp", "up"),
    ("ip", "link", "set", "nlsvlpeer", "up"),
    ("ip", "addr", "add", "198.18.7.2/24", "dev", "nlsmovedp"),
    ("ip", "link", "set", "nlsmovedp", "up"),
    ("ip", "neigh", "replace", "198.18.0.1", "lladdr", MAC["nlsveth0"], "dev", "nlsvethp",
     "nud", "permanent"),
    ("ip", "-6", "neigh", "replace", "2001:db8:1::1", "lladdr", MAC["nlsveth0"], "dev",
     "nlsvethp", "nud", "permanent"),
    ("ip", "neigh", "replace", "198.19.0.1", "lladdr", MAC[LONG_NAME], "dev", "nlsvlpeer",
     "nud", "permanent"),
)
# Quiet links: no router solicitations (they repeat with backoff for minutes) and no DAD
# probes, so that counters stand still once the echoes and the joins' reports are over.
QUIET_SYSCTLS = {
    "net.ipv6.conf.all.router_solicitations": "0",
    "net.ipv6.conf.default.router_solicitations": "0",
    "net.ipv6.conf.all.dad_transmits": "0",
    "net.ipv6.conf.default.dad_transmits": "0",
}
# Bounded traffic between the two namespaces only: (address, echo requests, payload bytes),
# each request answered before the next (tests/echo.py); permanent neighbours mean no ARP or
# neighbour discovery adds packets of its own.
ECHOES: Tuple[Tuple[str, int, int], ...] = (
    ("198.18.0.2", 4, 56),
    ("198.19.0.2", 3, 1200),
    ("2001:db8:1::2", 3, 56),
)

# The holder joins each group on two sockets (RefCnt 2) and waits for stdin to close.
HOLDER = r"""
import socket, struct, sys
AF6, IP6 = socket.AF_INET6, socket.IPPROTO_IPV6
held = []
def join4(group, device):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mreqn = socket.inet_aton(group) + bytes(4) + struct.pack("@i", socket.if_nametoindex(device))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    held.append(s)
def join6(group, device):
    s = socket.socket(AF6, socket.SOCK_DGRAM)
    mreq = socket.inet_pton(AF6, group) + struct.pack("@I", socket.if_nametoindex(device))
    s.setsockopt(IP6, socket.IPV6_JOIN_GROUP, mreq)
    held.append(s)
for group, device in (("239.1.2.3", "nlsveth0"), ("239.1.2.4", "%(long)s")):
    join4(group, device); join4(group, device)
join4("239.1.2.5", "nlsveth0")
for group, device in (("ff15::1234", "nlsveth0"), ("ff15::abcd", "%(long)s")):
    join6(group, device); join6(group, device)
join6("ff05::5", "%(long)s")
print("ready", flush=True)
sys.stdin.read()
""" % {"long": LONG_NAME}


class Outcome(NamedTuple):
    stdout: bytes
    stderr: bytes
    status: int


class Lab:
    """The built namespaces and what runs in them."""

    def __init__(self, ns: Namespace, peer: Namespace) -> None:
        self.ns = ns
        self.peer = peer
        self.holder: Optional[subprocess.Popen[bytes]] = None

    @property
    def name(self) -> str:
        return self.ns.name

    def netstat(self, args: Sequence[str]) -> Outcome:
        result = self.ns.run(["env", "LC_ALL=C", NETSTAT, *args])
        return Outcome(result.stdout, result.stderr, result.returncode)

    def nlstat(self, args: Sequence[str], backend: str,
               extra: Optional[Mapping[str, str]] = None) -> Outcome:
        settings = [f"PYTHONPATH={REPO}", "LC_ALL=C", f"NLSTAT_BACKEND={backend}"]
        settings += [f"{key}={value}" for key, value in (extra or {}).items()]
        result = self.ns.run(["env", *settings, sys.executable, "-m", "nlstat", *args])
        return Outcome(result.stdout, result.stderr, result.returncode)

    def python(self, code: str, backend: str = "auto") -> Outcome:
        """Run Python code inside the lab with nlstat importable."""
        settings = [f"PYTHONPATH={REPO}", "LC_ALL=C", f"NLSTAT_BACKEND={backend}"]
        result = self.ns.run(["env", *settings, sys.executable, "-c", code])
        return Outcome(result.stdout, result.stderr, result.returncode)

    def read(self, path: str) -> bytes:
        return self.ns.check(["cat", path]).stdout

    def stop(self) -> None:
        if self.holder is not None:
            with contextlib.suppress(OSError, ValueError):
                if self.holder.stdin is not None:
                    self.holder.stdin.close()
            try:
                self.holder.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.holder.kill()
                self.holder.wait(timeout=5)
            self.holder = None


def _run_all(ns: Namespace, commands: Sequence[Sequence[str]], lab: Lab) -> None:
    for command in commands:
        ns.check([part.format(peer=lab.peer.name, lab=lab.ns.name) for part in command])


def wait_quiet(ns: Namespace, settle: float = 1.5, limit: float = 20.0) -> None:
    """Wait until /proc/net/dev and the group files stay the same for `settle` seconds
    (IGMP/MLD reports and neighbour discovery fade out after joins and echoes)."""
    deadline = time.monotonic() + limit
    files = ["/proc/net/dev", "/proc/net/igmp", "/proc/net/igmp6"]
    last = ns.check(["cat", *files]).stdout
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = ns.check(["cat", *files]).stdout
        if now != last:
            last = now
            stable_since = time.monotonic()
        elif time.monotonic() - stable_since >= settle:
            return


@contextlib.contextmanager
def links_lab() -> Iterator[Lab]:
    """The lab, built and always removed (both namespaces, their /etc/netns, the holder)."""
    # addresses={"lo": ()}: no default veth addresses (an empty mapping means the defaults).
    peer = Namespace(prefix="nlst-linkp", veth=False, hosts=HOSTS, addresses={"lo": ()},
                     sysctls=QUIET_SYSCTLS)
    ns = Namespace(prefix="nlst-links", veth=False, hosts=HOSTS, addresses={"lo": ()},
                   sysctls=QUIET_SYSCTLS)
    lab = Lab(ns, peer)
    try:
        peer.create()
        ns.create()
        _run_all(peer, PRE_PEER, lab)
        _run_all(ns, SETUP, lab)
        _run_all(peer, PEER_SETUP, lab)
        lab.holder = ns.popen(
            [sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert lab.holder.stdout is not None
        if lab.holder.stdout.readline().strip() != b"ready":
            raise RuntimeError("multicast holder did not start")
        exchange(ns, ECHOES)
        wait_quiet(ns)
        yield lab
    finally:
        lab.stop()
        ns.delete()
        peer.delete()


def compare_runs(theirs: Callable[[], Outcome], ours: Callable[[], Outcome],
                 settle: Callable[[], None], attempts: int = 4) -> Tuple[Outcome, Outcome]:
    """netstat, nlstat, netstat; when netstat's two runs differ something moved: try again.

    Returns (netstat, nlstat) of the last attempt, netstat's run being the one nlstat matches
    if either does.
    """
    before, mine, after, _ = bracketed(
        theirs, ours, attempts + 1, lambda attempt: settle(),
        judged=lambda before, mine, after: mine.stdout in (before.stdout, after.stdout))
    if mine.stdout == after.stdout:
        return after, mine
    return before, mine


def compare_live(lab: Lab, args: Sequence[str], backend: str, attempts: int = 4
                 ) -> Tuple[Outcome, Outcome]:
    """`netstat ARGS` against `nlstat ARGS` in the lab (see compare_runs)."""
    return compare_runs(lambda: lab.netstat(args), lambda: lab.nlstat(args, backend),
                        lambda: wait_quiet(lab.ns, settle=0.5, limit=5.0), attempts)


# -- captures for the unit tests -----------------------------------------------------------------

CAPTURE_CODE = r"""
import socket, sys
from pathlib import Path
from nlstat.backends.netlink.links import address_request, link_request
from nlstat.backends.netlink.nlsocket import NetlinkSocket
from nlstat.kernel.link import RTM_GETADDR, RTM_GETLINK, RTM_GETMULTICAST
out = Path(sys.argv[1])
with NetlinkSocket(0) as sock:
    files = {
        "links.nl": sock.dump_all(RTM_GETLINK, link_request()),
        "addr4.nl": sock.dump_all(RTM_GETADDR, address_request(socket.AF_INET)),
        "addr6.nl": sock.dump_all(RTM_GETADDR, address_request(socket.AF_INET6)),
        "mcast4.nl": sock.dump_all(RTM_GETMULTICAST, address_request(socket.AF_INET)),
        "mcast6.nl": sock.dump_all(RTM_GETMULTICAST, address_request(socket.AF_INET6)),
    }
for name, chunks in files.items():
    (out / name).write_bytes(b"".join(chunks))
"""

LINK_ARGS: Tuple[Tuple[str, ...], ...] = (("-i",), ("-ia",), ("-ie",), ("-iea",))
GROUP_ARGS: Tuple[Tuple[str, ...], ...] = (("-g",), ("-gn",))


def capture(lab: Lab) -> None:
    """Write netlink answers, /proc files and netstat's outputs, all from one quiet moment.

    The -g runs come last: their name lookups (DNS to 127.0.0.1, refused) move lo's counters.
    """
    scratch = Path(lab.ns.scratch)
    for _attempt in range(5):
        wait_quiet(lab.ns)
        before = {args: lab.netstat(args).stdout for args in LINK_ARGS}
        proc = {name: lab.read(f"/proc/net/{name}") for name in ("dev", "if_inet6", "igmp",
                                                                 "igmp6")}
        code = f"import sys; sys.argv = ['x', {str(scratch)!r}]\n" + CAPTURE_CODE
        result = lab.ns.run(["env", f"PYTHONPATH={REPO}", sys.executable, "-c", code])
        if result.returncode:
            raise RuntimeError(result.stderr.decode())
        after = {args: lab.netstat(args).stdout for args in LINK_ARGS}
        groups = {args: lab.netstat(args).stdout for args in GROUP_ARGS}
        if before == after and proc["igmp"] + proc["igmp6"] == lab.read("/proc/net/igmp") + (
            lab.read("/proc/net/igmp6")
        ):
            break
    else:
        raise RuntimeError("the lab did not stay quiet long enough to capture it")
    after.update(groups)
    LINKS_DATA.mkdir(parents=True, exist_ok=True)
    GROUPS_DATA.mkdir(parents=True, exist_ok=True)
    for name in ("links.nl", "addr4.nl", "addr6.nl"):
        (LINKS_DATA / name).write_bytes((scratch / name).read_bytes())
    for name in ("mcast4.nl", "mcast6.nl"):
        (GROUPS_DATA / name).write_bytes((scratch / name).read_bytes())
    (LINKS_DATA / "proc_net_dev.txt").write_bytes(proc["dev"])
    (LINKS_DATA / "if_inet6.txt").write_bytes(proc["if_inet6"])
    (GROUPS_DATA / "igmp.txt").write_bytes(proc["igmp"])
    (GROUPS_DATA / "igmp6.txt").write_bytes(proc["igmp6"])
    for args in LINK_ARGS:
        (LINKS_DATA / f"netstat{''.join(args)}.txt").write_bytes(after[args])
    for args in GROUP_ARGS:
        (GROUPS_DATA / f"netstat{''.join(args)}.txt").write_bytes(after[args])
    (GROUPS_DATA / "hosts").write_text(HOSTS)


def main(argv: List[str]) -> int:
    if argv[1:] == ["capture"]:
        with links_lab() as lab:
            capture(lab)
        return 0
    if argv[1:] == ["shell"]:
        with links_lab() as lab:
            print(f"lab namespace {lab.name}, peer {lab.peer.name}; Ctrl-D to tear down")
            sys.stdin.read()
        return 0
    print("usage: python3 -m tests.links_support capture|shell", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

