"""Route tests' shared pieces: the routing lab, bulk route loading, runners and comparisons.

The lab is a private namespace (tests/netns.py) holding, on top of its veth0/veth1 pair:
a veth pair with a 15-character name into a second namespace, a pair that is taken down under
a multipath route, and IPv4 and IPv6 routes of every kind netstat prints differently
(gateways, host routes, unreachable/prohibit/blackhole, metrics, ECMP, local, broadcast,
another table, expiring routes), with /etc/netns hosts and networks files giving long names.
`capture_dataset()` records its kernel answers and netstat's outputs under tests/data/routes
for the offline tests (run `python3 -m tests.routes_support capture` as root to refresh them).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from tests.netns import IP, Namespace, on_proc_tree

REPO = Path(__file__).resolve().parent.parent

DATA = REPO / "tests" / "data" / "routes"
NETSTAT = "/usr/bin/netstat" if os.path.exists("/usr/bin/netstat") else "netstat"

HOSTS = (
    "127.0.0.1\tlocalhost\n"
    "::1\tip6-localhost ip6-loopback\n"
    "198.18.0.254\tgw.nls.test\n"
    "198.18.0.2\trouter-with-a-very-long-name.example.test\n"
    "198.18.11.5\thost5.nls.test\n"
    "2001:db8::2\tv6gw.nls.test\n"
    "2001:db8:cafe::1\ta-rather-long-ipv6-hostname.example.test\n"
)
NETWORKS = (
    "default\t\t0.0.0.0\n"
    "loopback\t127.0.0.0\n"
    "link-local\t169.254.0.0\n"
    "tennet\t\t198.18.0.0\n"
    "net10ten\t198.18.10\n"
    "network-with-a-very-long-name\t198.18.8\n"
)

# Interfaces beyond the namespace's own veth0/veth1 pair.
LONG_NAME = "abcdefghijklmno"  # 15 characters: the longest a device name can be
PEER_PREFIX = "nlst-routespeer"

ROUTES_V4: Tuple[str, ...] = (
    "route add default via 198.18.0.254",
    "route add 198.18.10.0/24 via 198.18.0.2 advmss 1360 window 65535 rtt 100ms",
    "route add 198.18.11.5/32 via 198.18.0.3",
    "route add unreachable 198.18.7.7",
    "route add prohibit 198.18.8.0/24",
    "route add blackhole 198.18.9.9",
    "route add 198.18.12.0/24 dev veth0 metric 1000",
    "route add 198.18.12.0/24 dev veth0 metric 5",
    "route add 198.18.12.0/25 dev veth0",
    "route add 198.18.13.0/24 dev veth1 table 100",
    "route add local 198.18.14.1 dev veth0 table main",
    "route add broadcast 198.18.15.255 dev veth0 table main",
    "route add multicast 224.1.0.0/16 dev veth0 table main",
    f"route add 198.18.16.0/24 dev {LONG_NAME}",
    "route add 198.18.17.0/24 via 198.18.0.2 window 4294967295 metric 4294967295",
    "route add 198.18.18.0/24 nexthop via 198.18.30.2 dev vdown nexthop via 198.18.0.6 dev veth0",
    "route add 198.18.19.0/24 nexthop via 198.18.0.7 dev veth0 nexthop via 198.19.0.7 dev veth1",
    "route add throw 198.18.20.0/24",
    "route add 198.18.21.0/24 via 198.18.0.2 mtu 1400 initcwnd 10 congctl reno",
)
ROUTES_V6: Tuple[str, ...] = (
    "route add 2001:db8:beef::/48 via 2001:db8::2 expires 86400",
    "route add 2001:db8:cafe::1/128 via 2001:db8::3 metric 5",
    "route add unreachable 2001:db8:dead::/48",
    "route add prohibit 2001:db8:dea1::/48",
    "route add blackhole 2001:db8:dea2::/48",
    "route add 2001:db8:100::/48 dev veth1 table 100",
    "route add 2001:db8:77::/48 nexthop via 2001:db8::5 dev veth0"
    " nexthop via 2001:db8::6 dev veth0",
    "route add 2001:db8:78::/48 via 2001:db8::5 mtu 1300 advmss 1200",
    "route add ::/0 via 2001:db8::fe metric 2048",
    f"route add 2001:db8:79::/48 dev {LONG_NAME}",
    "route add local 2001:db8:7a::1 dev veth0 table main",
)


class Outcome(NamedTuple):
    status: int
    stdout: bytes
    stderr: bytes


def environ(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    dropped = ("POSIXLY_CORRECT", "LANGUAGE", "NLSTAT_BACKEND", "NLSTAT_DEBUG",
               "NLSTAT_PROC_ROOT")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env["LC_ALL"] = "C"
    env["PYTHONPATH"] = str(REPO)
    env.update(extra or {})
    return env


def nlstat_argv(args: Sequence[str]) -> List[str]:
    return [sys.executable, "-m", "nlstat", *args]


def run_in(ns: Namespace, argv: Sequence[str], extra: Optional[Dict[str, str]] = None,
           timeout: float = 120.0) -> Outcome:
    done = ns.run(argv, env=environ(extra), timeout=timeout, cwd=str(REPO))
    return Outcome(done.returncode, done.stdout, done.stderr)


def netstat_in(ns: Namespace, args: Sequence[str]) -> Outcome:
    return run_in(ns, [NETSTAT, *args])


def nlstat_in(ns: Namespace, args: Sequence[str], backend: str) -> Outcome:
    return run_in(ns, nlstat_argv(args), {"NLSTAT_BACKEND": backend})


def _ip(ns: Namespace, *args: str) -> None:
    result = subprocess.run([IP, "-n", ns.name, *args], capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"ip -n {ns.name} {' '.join(args)}: {result.stderr.strip()}")


def ip_batch(ns: Namespace, commands: Sequence[str]) -> None:
    """Run `ip -batch` inside the namespace (100k routes in about 2 s)."""
    with tempfile.NamedTemporaryFile("w", suffix=".batch", delete=False) as handle:
        handle.write("\n".join(commands) + "\n")
        path = handle.name
    try:
        _ip(ns, "-batch", path)
    finally:
        os.unlink(path)


@contextmanager
def routes_lab() -> Iterator[Namespace]:
    """The routing lab described in the module docstring; always deleted afterwards."""
    peer = Namespace(prefix="nlst-routespeer", veth=False, addresses={"lo": ()})
    ns = Namespace(prefix="nlst-routes", hosts=HOSTS, networks=NETWORKS)
    peer.create()
    try:
        ns.create()
        try:
            build_lab(ns, peer)
            yield ns
        finally:
            ns.delete()
    finally:
        peer.delete()


def build_lab(ns: Namespace, peer: Namespace) -> None:
    _ip(ns, "link", "add", LONG_NAME, "type", "veth", "peer", "name", "vpeer", "netns",
        peer.name)
    _ip(ns, "link", "add", "vdown", "type", "veth", "peer", "name", "vdown2")
    for device in (LONG_NAME, "vdown", "vdown2"):
        _ip(ns, "link", "set", device, "up")
    _ip(ns, "addr", "add", "198.18.30.1/24", "dev", "vdown")
    _ip(ns, "-6", "addr", "add", "2001:db8:30::1/64", "dev", "vdown", "nodad")
    _ip(ns, "-6", "addr", "add", "2001:db8:31::1/64", "dev", LONG_NAME, "nodad")
    ip_batch(ns, ROUTES_V4 + ROUTES_V6)
    # A multipath route keeps a dead next hop (listed first) when its device goes down.
    _ip(ns, "link", "set", "vdown", "down")


def bulk_commands(count: int, family: int = socket.AF_INET, device: str = "veth0") -> List[str]:
    """`ip -batch` lines adding `count` host routes through one gateway, in documentation
    space: IPv4 /32s from 198.18.64.0 up (at most 114,688), IPv6 /128s in 2001:db8:f::/64."""
    if family == socket.AF_INET:
        if count > 114688:
            raise ValueError("198.18.64.0-198.19.255.255 holds 114,688 host routes")
        base = int.from_bytes(socket.inet_aton("198.18.64.0"), "big")
        return [
            f"route add {socket.inet_ntoa((base + i).to_bytes(4, 'big'))}/32 via 198.18.0.2 "
            f"dev {device}"
            for i in range(count)
        ]
    return [f"route add 2001:db8:f::{i >> 16:x}:{i & 0xFFFF:x}/128 via 2001:db8::2 dev {device}"
            for i in range(1, count + 1)]


def add_bulk_routes(ns: Namespace, count: int, family: int = socket.AF_INET) -> None:
    ip_batch(ns, bulk_commands(count, family))


# -- comparisons ------------------------------------------------------------------------------

_REFCNT = re.compile(rb" (-?\d+)( +-?\d+ [^ \n]*)$", re.MULTILINE)


def mask_ipv6_refcnt(text: bytes) -> bytes:
    """Blank the Ref column of IPv6 route rows (netlink has no fib6_ref; see modes/routes.py).

    Only lines inside "Kernel IPv6 routing ..." blocks are touched.
    """
    out: List[bytes] = []
    in_ipv6 = False
    for line in text.split(b"\n"):
        if line.startswith(b"Kernel "):
            in_ipv6 = line.startswith(b"Kernel IPv6 routing")
        elif in_ipv6 and not line.startswith(b"Destination "):
            line = _REFCNT.sub(rb" R\2", line)
        out.append(line)
    return b"\n".join(out)


def netstat_with_proc(proc_dir: str, args: Sequence[str]) -> Outcome:
    """netstat with `proc_dir` bind-mounted over /proc in a private mount namespace.

    netstat has /proc paths compiled in; this is how it reads crafted files. Root only.
    """
    done = subprocess.run(
        on_proc_tree(proc_dir, [NETSTAT, *args]),
        capture_output=True, env=environ(), timeout=30, stdin=subprocess.DEVNULL,
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def nlstat_with_proc(proc_dir: str, args: Sequence[str]) -> Outcome:
    done = subprocess.run(
        nlstat_argv(args),
        capture_output=True, timeout=60, stdin=subprocess.DEVNULL, cwd=str(REPO),
        env=environ({"NLSTAT_BACKEND": "proc", "NLSTAT_PROC_ROOT": proc_dir}),
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


# -- the offline data set -----------------------------------------------------------------------

# netstat argument sets recorded in tests/data/routes/golden; names are file names.
GOLDEN_ARGS: Dict[str, Tuple[str, ...]] = {
    "rn": ("-rn",),
    "rne": ("-rne",),
    "rnee": ("-rnee",),
    "rneee": ("-rneee",),
    "rneeee": ("-rneeee",),
    "r": ("-r",),
    "re": ("-re",),
    "ree": ("-ree",),
    "rnC": ("-rnC",),
    "rnCF": ("-rnCF",),
    "rneeC": ("-rneeC",),
    "6rn": ("-6", "-rn"),
    "6r": ("-6", "-r"),
    "6rnC": ("-6", "-rnC"),
}


def capture_dataset(directory: Path = DATA) -> None:
    """Build the lab and record, at one moment, what the offline tests need.

    ipv4.bin / ipv6.bin: the kernel's RTM_GETROUTE answers (every table, concatenated chunks);
    proc/net/{route,ipv6_route,rt_cache}: the /proc files, right after; links.txt: "index name"
    lines; hosts, networks: the lab's name files; golden/<name>.out and .status: netstat's
    stdout and status on exactly those /proc files (bind-mounted over /proc inside the lab,
    so the names are the lab's), which keeps the volatile IPv6 Ref column consistent.
    """
    from nlstat.backends.netlink.routes import capture_routes

    proc_net = directory / "proc" / "net"
    proc_net.mkdir(parents=True, exist_ok=True)
    (directory / "golden").mkdir(exist_ok=True)
    with routes_lab() as ns:
        chunks4 = ns.call_inside(lambda: capture_routes(socket.AF_INET))
        chunks6 = ns.call_inside(lambda: capture_routes(socket.AF_INET6))
        for name in ("route", "ipv6_route", "rt_cache"):
            done = ns.check(["cat", f"/proc/net/{name}"])
            (proc_net / name).write_bytes(done.stdout)
        links = ns.call_inside(socket.if_nameindex)
        outcomes = {
            name: run_in(ns, on_proc_tree(directory / "proc", [NETSTAT, *args]))
            for name, args in GOLDEN_ARGS.items()
        }
    (directory / "ipv4.bin").write_bytes(b"".join(chunks4))
    (directory / "ipv6.bin").write_bytes(b"".join(chunks6))
    (directory / "links.txt").write_text("".join(f"{i} {n}\n" for i, n in links))
    (directory / "hosts").write_text(HOSTS)
    (directory / "networks").write_text(NETWORKS)
    for name, outcome in outcomes.items():
        (directory / "golden" / f"{name}.out").write_bytes(outcome.stdout)
        (directory / "golden" / f"{name}.status").write_text(f"{outcome.status}\n")


# Crafted /proc files (NLSTAT_PROC_ROOT for nlstat, bind-mounted over /proc for netstat):
# malformed lines, odd title lines, old layouts. {case: {file under net/: text}}.
_ROUTE_TITLE = ("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow"
                "\tIRTT").ljust(127) + "\n"
_CACHE_TITLE_22 = ("Iface\tDestination\tGateway \tFlags\t\tRefCnt\tUse\tMetric\tSource\t\tMTU"
                   "\tWindow\tIRTT\tTOS\tHHRef\tHHUptod\tSpecDst").ljust(127) + "\n"
_CACHE_TITLE_20 = ("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tSource\t\tMTU"
                   "\tWindow\tIRTT\tHH\tARP\n")
_V6_GOOD = ("fd000000000000000000000000000000 40 00000000000000000000000000000000 00 "
            "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n")
CRAFTED: Dict[str, Dict[str, str]] = {
    "missing": {},
    "empty": {"route": "", "ipv6_route": "", "rt_cache": ""},
    "title_only": {"route": _ROUTE_TITLE, "ipv6_route": "", "rt_cache": _CACHE_TITLE_22},
    "missing_field": {
        "route": "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\n"
        "eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\n",
    },
    "reordered": {
        "route": "Destination\tIface\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow"
        "\tIRTT\n"
        "0000A8C0\teth0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n",
    },
    "extra_columns": {
        "route": "Iface\tX\tDestination\tGateway\tFlags|RefCnt\tUse\tMetric\tMask\tMTU\tWindow"
        "\tIRTT\tMore\n"
        "eth0\tx\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t7\tmore\n"
        "eth1\tx\t0001A8C0\t0100A8C0\t0003\t0\t0\t3\t00FFFFFF\t1400\t5\t6\n",
    },
    "malformed": {
        "route": _ROUTE_TITLE
        + "eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        + "eth0\t0001A8C0\t0100A8C0\t0003\t0\t0\t7\t00FFFFFF\t1500\t0\t12\n"
        + "eth0\t0002A8C0\t0100A8C0\t0003\t0\t0\t7\t00FFFFFF\t1500\t9\n"
        + "short line\n"
        + "eth1\tZZZZZZZZ\t0100A8C0\t0003\t0\t0\t7\t00FFFFFF\t1500\t0\t5\n"
        + "eth1\t0003A8C0\t0100A8C0\t0002\t0\t0\t7\t00FFFFFF\t0\t0\t0\n"
        + "eth1\t0004A8C0\t0100A8C0\t0x3\t-1\t4294967296\t-5\t00FFFFFF\t99999999999\t-1\t3\n"
        + "lo\t0005A8C0\t00000000\t0205\t0\t0\t0\tFFFFFFFF\t0\t0\t0\n"
        + "\n"
        + "eth2\t0006A8C0\t0100A8C0\t3\t0\t0\t0\t00FFFFFF\t0\t0\t0 extra columns here\n"
        + "eth2\t0007A8C0\t0100A8C0\t0003\t12abc\t0\t0\t00FFFFFF\t0\t0\t0\n"
        + "eth2 0008A8C0 0100A8C0 0003 0 0 0 00FFFFFF 0 0 0\n"
        + "abcdefghijklmnopq\t0009A8C0\t0100A8C0\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        + "eth3\t0A\t0100A8C0\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        + "eth3\t000BA8C0FF\t0100A8C0\t4003\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        + "eth3\t000CA8C0\t0100A8C0\tFFFFFFFF\t0\t0\t0\tFFFFFFFF\t0\t0\t0\n"
        + "eth3\t000DA8C0\t0100A8C0\t0003\t0\t0\t-2147483649\t00FFFFFF\t0\t4294967295\t0\n"
        + "eth3\t000EA8C0\t0100A8C0\t0003\t0\t0\t0\t00FFFFFF\t+7\t0\t0",
        "ipv6_route": _V6_GOOD
        + "\n"
        + "garbage\n"
        + "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 "
        "00000000000000000000000000000000 00000100 00000001 00000000 00000001         \n"
        + "fd00 40 00000000000000000000000000000000 00 00000000000000000000000000000000 "
        "00000400 00000001 00000000 00000003 eth1\n"
        + "20010db8000000000000000000000001 80 00000000000000000000000000000000 00 "
        "20010db800000000000000000000zzzz ffffffff 7fffffff 80000000 01000003 eth2\n"
        + "20010db8000000000000000000000002 80 00000000000000000000000000000000 00 "
        "00000000000000000000ffffc6120001 00000000 00000001 00000000 00040003 verylongname0123\n"
        + "00000000000000000000ffffc6120000 60 00000000000000000000000000000000 00 "
        "00000000000000000000000000000000 00000000 00000001 00000000 00000001 eth0\n",
        "rt_cache": _CACHE_TITLE_22
        + "eth0\t0100A8C0\t0100A8C0\t80000000\t0\t0\t0\t0200A8C0\t1500\t0\t0\t00\t-1\t0\t0200A8C0\n"
        + "eth1\t0200A8C0\t0300A8C0\t04000003\t1\t2\t3\t0200A8C0\t0\t0\t0\t10\t1\t1\tZZ\n"
        + "short\n",
    },
    "cache_20": {
        "route": _ROUTE_TITLE,
        "rt_cache": _CACHE_TITLE_20
        + "eth0\t0100A8C0\t0100A8C0\t0007\t0\t0\t0\t0200A8C0\t1500\t0\t0\t-1\t1\n"
        + "eth0\t0200A8C0\t0100A8C0\t0203\t0\t5\t0\t0200A8C0\t1500\t0\t0\t0\n",
    },
    "cache_odd": {"route": _ROUTE_TITLE, "rt_cache": "Iface\tDestination\tGateway\tFlags\n"},
    "long_lines": {
        "route": _ROUTE_TITLE
        + "eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0" + " " * 1100 + "\n"
        + "eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n",
        "ipv6_route": _V6_GOOD.rstrip("\n") + " " * 1000 + "\n" + _V6_GOOD,
    },
}
# The legacy families' files, in the kernels' layouts (net/ax25/ax25_route.c,
# net/netrom/nr_route.c, net/x25/x25_proc.c, net/rose/rose_route.c), with short and odd lines.
CRAFTED["legacy"] = {
    "ax25_route": "callsign  dev  mode digipeaters\n"
    "G4KLX-1   ax0  *   \n"
    "DB0ABC-10 ax1  v    DB0XYZ DB0QRS\n"
    "short\n"
    "N0CALL    ax0  d 77\n",
    "nr_nodes": "callsign  mnemonic w n qual obs neigh qual obs neigh qual obs neigh\n"
    "G4KLX-2   KLX     1 2 200 6 00001 150 5 00002\n"
    "DB0ABC-5  ABC     2 2 200 6 00001 150 5 00002\n"
    "N0CALL-1  NOCALL  1 1 100 6 00009\n",
    # No line shorter than the previous one here: netstat reads the rest of such a line from
    # whatever its stack buffer held, which differs from run to run (seen as a flaky test).
    "nr_neigh": "addr  callsign  dev  qual lock count failed digipeaters\n"
    "00001 G4KLX-3   ax0   200    0     2      0\n"
    "00002 DB0ABC-7  ax1   150    1     1      0 DB0XYZ\n",
    "x25/route": "Address          Digits  Device\n"
    "1234567890       10      x25tap0\n"
    "*                0       x25tap1\n"
    "55501            5       lapb0\n"
    "99               -3      odd\n"
    "1\n",
    "rose_nodes": "address    mask n neigh neigh neigh\n"
    "2080175520 0010 1 00001\n"
    "2080175521 0010 3 00001 00002 00009\n"
    "3\n",
    "rose_neigh": "addr  callsign  dev  count use mode restart  t0  tf digipeaters\n"
    "00001 G4KLX-4   rose0   1   0  DCE     yes   0   0\n"
    "00002 DB0ABC-9  rose1   2   1  DTE      no 180 300\n",
}
CRAFTED["legacy_old_x25"] = {"x25_routes": "Address Digits Device\n4711 4 x25a\n"}
CRAFTED["legacy_half_netrom"] = {"nr_neigh": "addr callsign\n"}
CRAFTED_ARGS: Dict[str, Tuple[str, ...]] = {
    "rn": ("-rn",),
    "rne": ("-rne",),
    "rnee": ("-rnee",),
    "rnC": ("-rnC",),
    "rneeC": ("-rneeC",),
    "rnCF": ("-rnCF",),
    "6rn": ("-6", "-rn"),
    "6rnC": ("-6", "-rnCF"),
    "legacy": ("-rn", "-A", "ax25,netrom,x25,rose"),
    "netrom": ("-r", "--netrom"),
    "x25": ("-rn", "-A", "x25"),
    "rose": ("-rn", "-A", "rose"),
}


def write_crafted(directory: Path, case: str) -> Path:
    """The crafted case as a /proc-like tree under `directory`; returns its root."""
    net = directory / case / "net"
    net.mkdir(parents=True, exist_ok=True)
    for name, text in CRAFTED[case].items():
        (net / name).parent.mkdir(parents=True, exist_ok=True)
        (net / name).write_text(text)
    return directory / case


def capture_crafted(directory: Path = DATA / "crafted") -> None:
    """Write every crafted case and netstat's answers to it (golden/<args>.out/.status)."""
    for case in CRAFTED:
        root = write_crafted(directory, case)
        golden = root / "golden"
        golden.mkdir(exist_ok=True)
        for name, args in CRAFTED_ARGS.items():
            outcome = netstat_with_proc(str(root), args)
            (golden / f"{name}.out").write_bytes(outcome.stdout)
            (golden / f"{name}.status").write_text(f"{outcome.status}\n")


def read_links(directory: Path = DATA) -> Dict[int, str]:
    links: Dict[int, str] = {}
    for line in (directory / "links.txt").read_text().splitlines():
        index, name = line.split()
        links[int(index)] = name
    return links


if __name__ == "__main__":
    if sys.argv[1:] == ["capture"]:
        capture_dataset()
        capture_crafted()
        print(f"captured into {DATA}")
    elif sys.argv[1:] == ["crafted"]:
        capture_crafted()
        print(f"captured into {DATA / 'crafted'}")
    else:
        print("usage: python3 -m tests.routes_support capture|crafted", file=sys.stderr)
        sys.exit(2)
