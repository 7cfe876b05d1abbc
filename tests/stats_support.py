"""Test helpers for `-s`: run the real netstat on captured or crafted /proc files, keep goldens.

netstat always reads /proc/net/..., but inside a private mount namespace (`unshare -m`) a case
directory can be bind-mounted over /proc, so the real binary reads exactly the files nlstat reads
through NLSTAT_PROC_ROOT. That makes every golden output here netstat's own, crafted files too.

Layout of a case, tests/data/stats/<case>/:
    net/snmp, net/netstat, net/snmp6, net/sctp/snmp   the /proc files (any may be missing)
    expected/index.tsv                                 slug, status, argv (one line per run)
    expected/<slug>.stdout, expected/<slug>.stderr     netstat's bytes

Regenerate the goldens (root; uses the installed netstat):
    python3 -m tests.stats_support regenerate [case ...]
Capture a live case from a quiet private namespace (root):
    python3 -m tests.stats_support capture-netns
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

if TYPE_CHECKING:
    from tests.netns import Namespace

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "stats"
NETSTAT = shutil.which("netstat") or "/usr/bin/netstat"
UNSHARE = shutil.which("unshare") or "/usr/bin/unshare"

# The argument sets every case is run with. -sx and "-s -4 -6" need no files but are kept so
# that the refusal is checked against the binary too.
GOLDEN_ARGS: Tuple[Tuple[str, ...], ...] = (
    ("-s",),
    ("-st",),
    ("-su",),
    ("-sw",),
    ("-sS",),
    ("-sU",),
    ("-stu",),
    ("-s", "-6"),
    ("-s6t",),
    ("-s6u",),
    ("-s6w",),
    ("-s6U",),
    ("-A", "inet6", "-s"),
)
REFUSED_ARGS: Tuple[Tuple[str, ...], ...] = (("-sx",), ("-s", "-4", "-6"))


class Outcome(NamedTuple):
    status: int
    stdout: bytes
    stderr: bytes


def environ(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NLSTAT_")}
    env.pop("POSIXLY_CORRECT", None)
    env["LC_ALL"] = "C"
    env["PYTHONPATH"] = str(REPO)
    env.update(extra or {})
    return env


def can_fake_proc() -> bool:
    """Root with unshare and netstat: the real netstat can be pointed at a case directory."""
    return os.geteuid() == 0 and os.path.exists(UNSHARE) and os.path.exists(NETSTAT)


def netstat_on_files(proc_root: Path, argv: Sequence[str], timeout: float = 20.0) -> Outcome:
    """The real netstat with `proc_root` bind-mounted over /proc in a private mount namespace."""
    script = 'mount --bind "$1" /proc && shift && exec "$@"'
    done = subprocess.run(
        [UNSHARE, "-m", "--propagation", "private", "sh", "-c", script, "sh", str(proc_root),
         NETSTAT, *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=environ(),
        timeout=timeout,
        check=False,
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def nlstat_in_process(argv: Sequence[str], proc_root: Path, backend: str = "auto") -> Outcome:
    """nlstat's app.main with captured streams and NLSTAT_PROC_ROOT = proc_root."""
    from nlstat.app import main
    from nlstat.env import Environment

    out = io.BytesIO()
    err_bytes = io.BytesIO()
    err = io.TextIOWrapper(err_bytes, encoding="utf-8", errors="backslashreplace")
    env = Environment(stdout=out, stderr=err, proc_root=str(proc_root), backend=backend)
    status = main(list(argv), env)
    err.flush()
    return Outcome(status, out.getvalue(), err_bytes.getvalue())


def nlstat_command(argv: Sequence[str]) -> List[str]:
    return [sys.executable, "-m", "nlstat", *argv]


def slug(argv: Sequence[str]) -> str:
    """["-A", "inet6", "-s"] -> "A_inet6_s"."""
    return "_".join(arg.lstrip("-").replace(" ", "") or "dash" for arg in argv)


class Golden(NamedTuple):
    argv: Tuple[str, ...]
    outcome: Outcome


def cases() -> List[str]:
    return sorted(p.name for p in DATA.iterdir() if (p / "expected" / "index.tsv").exists())


def read_goldens(case: str) -> List[Golden]:
    expected = DATA / case / "expected"
    goldens: List[Golden] = []
    for line in (expected / "index.tsv").read_text().splitlines():
        name, status, args = line.split("\t", 2)
        goldens.append(
            Golden(
                tuple(args.split(" ")),
                Outcome(
                    int(status),
                    (expected / f"{name}.stdout").read_bytes(),
                    (expected / f"{name}.stderr").read_bytes(),
                ),
            )
        )
    return goldens


def write_goldens(case: str, argv_sets: Sequence[Sequence[str]]) -> None:
    root = DATA / case
    expected = root / "expected"
    shutil.rmtree(expected, ignore_errors=True)
    expected.mkdir(parents=True)
    index: List[str] = []
    for argv in argv_sets:
        outcome = netstat_on_files(root, argv)
        name = slug(argv)
        (expected / f"{name}.stdout").write_bytes(outcome.stdout)
        (expected / f"{name}.stderr").write_bytes(outcome.stderr)
        index.append(f"{name}\t{outcome.status}\t{' '.join(argv)}")
    (expected / "index.tsv").write_text("\n".join(index) + "\n")


def _regenerate(names: Sequence[str]) -> None:
    all_cases = sorted(p.name for p in DATA.iterdir() if (p / "net").is_dir())
    for case in names or all_cases:
        write_goldens(case, GOLDEN_ARGS + REFUSED_ARGS)
        print(f"{case}: {len(GOLDEN_ARGS) + len(REFUSED_ARGS)} goldens")


# -- a private two-namespace network with some traffic ------------------------------------------

# Addresses of the veth pair between the namespace under test ("inner") and its peer.
INNER_V4, PEER_V4 = "198.18.7.1", "198.18.7.2"
INNER_V6, PEER_V6 = "2001:db8:7::1", "2001:db8:7::2"
# No router solicitations, DAD or RA handling: after the traffic the counters stand still.
QUIET_SYSCTLS = {
    "net.ipv6.conf.default.router_solicitations": "0",
    "net.ipv6.conf.default.dad_transmits": "0",
    "net.ipv6.conf.default.accept_ra": "0",
    "net.ipv6.conf.all.router_solicitations": "0",
}
STATS_FILES = ("snmp", "netstat", "snmp6")

# Run inside the inner namespace: TCP and UDP over loopback (v4 and v6), one datagram to a
# closed port (ICMP port unreachable both ways), all bounded and local.
TRAFFIC_SCRIPT = r"""
import socket
for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    server = socket.socket(family, socket.SOCK_STREAM)
    server.bind((host, 0))
    server.listen(4)
    for _ in range(3):
        client = socket.create_connection(server.getsockname()[:2], timeout=5)
        peer, _addr = server.accept()
        client.sendall(b"x" * 3000)
        received = 0
        while received < 3000:
            received += len(peer.recv(65536))
        peer.sendall(b"ok")
        client.recv(16)
        client.close()
        peer.close()
    server.close()
    receiver = socket.socket(family, socket.SOCK_DGRAM)
    receiver.bind((host, 0))
    sender = socket.socket(family, socket.SOCK_DGRAM)
    for _ in range(5):
        sender.sendto(b"datagram", receiver.getsockname()[:2])
        receiver.recv(64)
    closed = socket.socket(family, socket.SOCK_DGRAM)
    closed.bind((host, 0))
    port = closed.getsockname()[1]
    closed.close()
    sender.sendto(b"nobody", (host, port))
    sender.close()
    receiver.close()
"""


@contextlib.contextmanager
def stats_network() -> Iterator[Tuple[Namespace, Namespace]]:
    """Two namespaces joined by a veth pair (inner 198.18.7.1, peer 198.18.7.2), always removed."""
    from tests.netns import namespace

    # (an empty address map would mean "the defaults" to tests.netns; lo gets no extra address)
    options = dict(veth=False, addresses={"lo": ()}, sysctls=QUIET_SYSCTLS)
    with namespace(prefix="nlst-stats", **options) as inner, namespace(
        prefix="nlst-stats", **options
    ) as peer:
        subprocess.run(
            ["ip", "-n", inner.name, "link", "add", "st0", "type", "veth", "peer", "name", "st1",
             "netns", peer.name],
            check=True, capture_output=True, timeout=30,
        )
        ends = ((inner, "st0", INNER_V4, INNER_V6), (peer, "st1", PEER_V4, PEER_V6))
        for ns, dev, v4, v6 in ends:
            for args in (
                ["addr", "add", f"{v4}/24", "dev", dev],
                ["-6", "addr", "add", f"{v6}/64", "dev", dev, "nodad"],
                ["link", "set", dev, "up"],
            ):
                subprocess.run(["ip", "-n", ns.name, *args], check=True, capture_output=True,
                               timeout=30)
        yield inner, peer


def make_traffic(inner: Namespace) -> None:
    """ICMP echoes to the namespaces' own addresses (tests/echo.py), then TCP and UDP over
    loopback, inside `inner`."""
    from tests.echo import exchange

    exchange(inner, [(target, 3, 56) for target in (PEER_V4, INNER_V4, PEER_V6)])
    inner.check([sys.executable, "-c", TRAFFIC_SCRIPT], timeout=60)


def read_stats_files(ns: Namespace) -> Dict[str, bytes]:
    files: Dict[str, bytes] = {}
    for name in STATS_FILES:
        files[name] = ns.check(["cat", f"/proc/net/{name}"]).stdout
    return files


def wait_quiet(ns: Namespace, timeout: float = 30.0) -> Dict[str, bytes]:
    """Wait (bounded) until two reads of the files one second apart are equal; return them."""
    deadline = time.monotonic() + timeout
    previous = read_stats_files(ns)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        current = read_stats_files(ns)
        if current == previous:
            return current
        previous = current
    raise RuntimeError("the namespace's counters did not stand still")


def capture_quiet_namespace(dest: Path) -> None:
    """Files and netstat's live outputs from a quiet namespace, taken while nothing moves."""
    with stats_network() as (inner, _peer):
        make_traffic(inner)
        for _attempt in range(5):
            before = wait_quiet(inner)
            live = {argv: inner.run([NETSTAT, *argv], env=environ()) for argv in GOLDEN_ARGS}
            if read_stats_files(inner) == before:
                break
        else:
            raise RuntimeError("counters kept moving while netstat ran")
    shutil.rmtree(dest, ignore_errors=True)
    (dest / "net").mkdir(parents=True)
    (dest / "live").mkdir()
    for name, data in before.items():
        (dest / "net" / name).write_bytes(data)
    for argv, done in live.items():
        (dest / "live" / f"{slug(argv)}.stdout").write_bytes(done.stdout)
        (dest / "live" / f"{slug(argv)}.status").write_text(f"{done.returncode}\n")


def main(argv: Sequence[str]) -> int:
    if not can_fake_proc():
        print("needs root, unshare and netstat", file=sys.stderr)
        return 1
    if argv and argv[0] == "regenerate":
        _regenerate(argv[1:])
        return 0
    if argv and argv[0] == "capture-netns":
        capture_quiet_namespace(DATA / "netns")
        _regenerate(["netns"])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
