"""Socket churn in a test namespace, and the check that a listing shows each socket once.

Run inside a namespace (`python3 tests/churn.py SECONDS`): it first opens the long-lived
sockets (10 loopback tcp connections to 127.0.0.1:7000 and 10 unix stream connections to an
abstract listener, both ends kept), prints them as one JSON line, then until SECONDS have
passed or its stdin closes opens batches of 200 tcp connections to 127.0.0.1:7001 and 200 unix
stream connections, closing each batch once the next is open (tcp: half reset, half closed
normally, which leaves TIME_WAIT rows with inode 0). At the end it prints the number of
batches. Everything stays on loopback.

`check(output)` parses a listing's text (netstat's layout) and returns what it found.
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import sys
import time
from typing import TYPE_CHECKING, Any, Dict, List, NamedTuple, Set, Tuple

if TYPE_CHECKING:
    from tests.netns import Namespace

KEEP_PORT = 7000
CHURN_PORT = 7001
KEEP_UNIX = b"\0nlst-churn-keep"
CHURN_UNIX = b"\0nlst-churn"
KEEP_COUNT = 10
BATCH = 200
LINGER_RESET = struct.pack("ii", 1, 0)


def _pairs(
    listener: socket.socket, family: int, address: object, count: int
) -> List[socket.socket]:
    """`count` connected pairs: both ends, clients then accepted servers."""
    clients = []
    for _ in range(count):
        client = socket.socket(family, socket.SOCK_STREAM)
        client.setblocking(False)
        try:
            client.connect(address)
        except (BlockingIOError, InterruptedError):
            pass
        clients.append(client)
    servers = []
    while len(servers) < count:
        ready, _, _ = select.select([listener], [], [], 5.0)
        if not ready:
            break
        servers.append(listener.accept()[0])
    return clients + servers


def churn(seconds: float) -> None:
    keep_tcp = socket.socket()
    keep_tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    keep_tcp.bind(("127.0.0.1", KEEP_PORT))
    keep_tcp.listen(64)
    keep_unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    keep_unix.bind(KEEP_UNIX)
    keep_unix.listen(64)
    kept = _pairs(keep_tcp, socket.AF_INET, ("127.0.0.1", KEEP_PORT), KEEP_COUNT)
    kept += _pairs(keep_unix, socket.AF_UNIX, KEEP_UNIX, KEEP_COUNT)
    tcp_rows = []
    unix_inodes = [os.fstat(keep_unix.fileno()).st_ino]
    for sock in kept:
        if sock.family == socket.AF_INET:
            local = "%s:%d" % sock.getsockname()
            remote = "%s:%d" % sock.getpeername()
            tcp_rows.append(f"{local} {remote}")
        else:
            unix_inodes.append(os.fstat(sock.fileno()).st_ino)
    print(json.dumps({"tcp": tcp_rows, "unix": unix_inodes}), flush=True)

    churn_tcp = socket.socket()
    churn_tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    churn_tcp.bind(("127.0.0.1", CHURN_PORT))
    churn_tcp.listen(1024)
    churn_unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    churn_unix.bind(CHURN_UNIX)
    churn_unix.listen(1024)
    deadline = time.monotonic() + seconds
    batches = 0
    previous: List[socket.socket] = []
    while time.monotonic() < deadline:
        if select.select([sys.stdin], [], [], 0)[0]:
            break  # stdin closed (or written to): the run is over
        # Each batch lives until the next one is open: about 800 tcp and 800 unix sockets
        # come and go around the long-lived ones at any moment.
        opened = _pairs(churn_tcp, socket.AF_INET, ("127.0.0.1", CHURN_PORT), BATCH)
        opened += _pairs(churn_unix, socket.AF_UNIX, CHURN_UNIX, BATCH)
        for index, sock in enumerate(previous):
            if index % 2 and sock.family == socket.AF_INET:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
            sock.close()
        previous = opened
        batches += 1
    for sock in previous:
        sock.close()
    print(json.dumps({"batches": batches}), flush=True)
    for sock in kept:
        sock.close()


# The long-lived sockets: {"tcp": ["local remote", ...], "unix": [inode, ...]}.
Keep = Dict[str, List[Any]]


class Listing(NamedTuple):
    rows: int  # socket rows
    duplicates: List[str]  # rows (inet) or inodes (unix) listed more than once
    tcp: Set[str]  # "local remote" of ESTABLISHED tcp rows
    unix: Set[int]  # unix inodes listed


def check(text: str) -> Listing:
    """Every socket row of a listing: inet rows are known by protocol, addresses and state (no
    two live sockets share them on this namespace's loopback), unix rows by inode (inode 0,
    an embryo, is not counted)."""
    seen: Dict[Tuple[str, ...], int] = {}
    inodes: Dict[int, int] = {}
    tcp: Set[str] = set()
    rows = 0
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if fields[0] in ("tcp", "tcp6", "udp", "udp6", "udpl", "udpl6", "raw", "raw6"):
            rows += 1
            key = tuple(fields[:1] + fields[3:6])
            seen[key] = seen.get(key, 0) + 1
            if fields[0] == "tcp" and fields[5:6] == ["ESTABLISHED"]:
                tcp.add(f"{fields[3]} {fields[4]}")
        elif fields[0] == "unix":
            rows += 1
            close = next(i for i, field in enumerate(fields) if field.endswith("]"))
            rest = fields[close + 2 :]  # after the type
            inode = int(rest[0]) if rest[0].isdigit() else int(rest[1])
            if inode:
                inodes[inode] = inodes.get(inode, 0) + 1
    duplicates = [" ".join(key) for key, count in seen.items() if count > 1]
    duplicates += [str(inode) for inode, count in inodes.items() if count > 1]
    return Listing(rows, duplicates, tcp, set(inodes))


class Figures(NamedTuple):
    runs: int
    rows: int  # socket rows over all runs
    duplicate_runs: int  # runs that listed some socket twice
    duplicates: int  # sockets listed twice, over all runs
    missing_runs: int  # runs that left out a long-lived socket
    failures: List[str]  # the first few problems, said plainly


# netstat's listings, then nlstat's own outputs of the same sockets: JSON, NDJSON, a count
# whose groups are single sockets (a group counted twice is a socket counted twice), and the
# passes of -c.
NETSTAT_MODES = ("-ant", "-an", "-antp", "-anx", "-c -ant")
MODES = ("-ant", "-an", "-antp", "-anx", "-an --ndjson", "-ant --json", "-ant --count",
         "-c -ant")
COUNT_KEYS = "proto,laddr,lport,raddr,rport,state"
# How long a -c run lasts (netstat's one-second passes): about 3 whole passes.
CONTINUOUS_SECONDS = 3.5
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def command(tool: str, mode: str) -> List[str]:
    """The argv of one listing: nlstat from this tree, or the installed netstat (the control:
    it has no de-duplication, so its figures show the churn is real)."""
    words = mode.split()
    if "--count" in words:
        words += ["--by", COUNT_KEYS]
    if tool == "netstat":
        return ["netstat", *words]
    return [sys.executable, "-m", "nlstat", *words]


def check_records(records: List[Dict[str, Any]]) -> Listing:
    """check() for JSON records: inet sockets known by protocol, addresses and state, unix
    sockets by inode."""
    seen: Dict[Tuple[Any, ...], int] = {}
    inodes: Dict[int, int] = {}
    tcp: Set[str] = set()
    for record in records:
        if record.get("type") == "inet":
            key = (record["proto"], record["family"], record["local_address"],
                   record["local_port"], record["remote_address"], record["remote_port"],
                   record["state"])
            seen[key] = seen.get(key, 0) + 1
            if record["proto"] == "tcp" and record["state"] == "ESTABLISHED":
                tcp.add(f"{record['local_address']}:{record['local_port']} "
                        f"{record['remote_address']}:{record['remote_port']}")
        elif record.get("type") == "unix" and record["inode"]:
            inodes[record["inode"]] = inodes.get(record["inode"], 0) + 1
    duplicates = [" ".join(map(str, key)) for key, count in seen.items() if count > 1]
    duplicates += [str(inode) for inode, count in inodes.items() if count > 1]
    return Listing(sum(seen.values()) + sum(inodes.values()), duplicates, tcp, set(inodes))


def check_count(text: str) -> Listing:
    """check() for `--count --by COUNT_KEYS`: each group is one socket, so a count above 1 is
    a socket counted twice."""
    rows = 0
    duplicates: List[str] = []
    tcp: Set[str] = set()
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) != 7 or not fields[6].isdigit():
            continue
        proto, laddr, lport, raddr, rport, state, count = fields
        rows += int(count)
        if int(count) > 1:
            duplicates.append(" ".join(fields[:6]))
        if proto == "tcp" and state == "ESTABLISHED":
            tcp.add(f"{laddr}:{lport} {raddr}:{rport}")
    return Listing(rows, duplicates, tcp, set())


def passes(text: str) -> List[str]:
    """The whole passes of a -c listing (each opens with netstat's title; the last one, cut by
    the interrupt, is left out)."""
    title = "Active Internet connections"
    parts = text.split(title)[1:]
    return [title + part for part in parts[:-1]]


def listings(tool: str, mode: str, text: str) -> List[Listing]:
    """What one run listed: one listing, or one per whole pass of -c."""
    if mode.startswith("-c "):
        return [check(part) for part in passes(text)]
    if "--count" in mode:
        return [check_count(text)]
    if "--ndjson" in mode:
        return [check_records([json.loads(line) for line in text.splitlines() if line])]
    if "--json" in mode:
        return [check_records(json.loads(text)["records"])]
    return [check(text)]


def measure(ns: Namespace, tool: str, backend: str, mode: str, runs: int, keep: Keep,
            timeout: float = 60.0) -> Figures:
    """`runs` listings of `mode` in namespace `ns` (a tests.netns.Namespace) while churn runs."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": REPO, "LC_ALL": "C",
           "NLSTAT_BACKEND": backend}
    wants_tcp = mode != "-anx"
    wants_unix = mode.split()[0] in ("-an", "-anx")
    rows = duplicate_runs = duplicates = missing_runs = 0
    failures: List[str] = []
    continuous = mode.startswith("-c ")
    listed = 0
    while listed < runs:
        if continuous:
            returncode, stdout, stderr = _interrupted(ns, command(tool, mode), env)
        else:
            done = ns.run(command(tool, mode), env=env, timeout=timeout, cwd=REPO)
            returncode, stdout, stderr = done.returncode, done.stdout, done.stderr
        text = stdout.decode("utf-8", "surrogateescape")
        if returncode != 0 or b"Traceback" in stderr:
            failures.append(f"{tool} {mode} ({backend}): status {returncode}: "
                            + stderr.decode(errors="replace")[-300:])
            listed += 1
            continue
        found = listings(tool, mode, text)
        if not found:
            failures.append(f"{tool} {mode} ({backend}): no whole pass in {len(text)} bytes")
            listed += 1
            continue
        for listing in found[: runs - listed]:
            listed += 1
            rows, duplicate_runs, duplicates, missing_runs = _tally(
                listing, rows, duplicate_runs, duplicates, missing_runs, failures, tool, mode,
                backend, keep, wants_tcp, wants_unix)
    return Figures(listed, rows, duplicate_runs, duplicates, missing_runs, failures)


def _interrupted(ns: Namespace, argv: List[str], env: Dict[str, str]) -> Tuple[int, bytes, bytes]:
    """A -c run ended by SIGINT after CONTINUOUS_SECONDS (status 0 when it died of it)."""
    import signal
    import subprocess

    process = ns.popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        stdout, stderr = process.communicate(timeout=CONTINUOUS_SECONDS)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        try:
            stdout, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
    status = process.returncode
    return (0 if status == -signal.SIGINT else status), stdout, stderr


def _tally(listing: Listing, rows: int, duplicate_runs: int, duplicates: int,
           missing_runs: int, failures: List[str], tool: str, mode: str, backend: str,
           keep: Keep, wants_tcp: bool, wants_unix: bool) -> Tuple[int, int, int, int]:
    rows += listing.rows
    if listing.duplicates:
        duplicate_runs += 1
        duplicates += len(listing.duplicates)
        if len(failures) < 5:
            failures.append(f"{tool} {mode} ({backend}) listed twice: {listing.duplicates[:3]}")
    missing = []
    if wants_tcp:
        missing += [row for row in keep["tcp"] if row not in listing.tcp]
    if wants_unix:
        missing += [str(inode) for inode in keep["unix"] if inode not in listing.unix]
    if missing:
        missing_runs += 1
        if len(failures) < 5:
            failures.append(f"{tool} {mode} ({backend}) left out {missing[:3]}")
    return rows, duplicate_runs, duplicates, missing_runs


class Churn:
    """The churn process in a namespace, started on entry and stopped on exit."""

    def __init__(self, ns: Namespace, seconds: float) -> None:
        self.ns = ns
        self.seconds = seconds
        self.batches = 0

    def __enter__(self) -> Keep:
        import subprocess

        self.process = self.ns.popen(
            [sys.executable, os.path.abspath(__file__), str(self.seconds)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(10)
            raise RuntimeError("the churn process did not start")
        keep: Keep = json.loads(line)
        return keep

    def __exit__(self, *exc: object) -> None:
        self.process.stdin.close()
        try:
            line = self.process.stdout.readline()
            if line:
                self.batches = json.loads(line)["batches"]
            self.process.wait(30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()


if __name__ == "__main__":
    churn(float(sys.argv[1]))
