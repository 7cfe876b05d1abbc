"""Socket cgroups on a live namespace: a process moved into a test cgroup (a directory made
under the cgroup2 mount, its pid written to cgroup.procs, removed afterwards) opens sockets;
they carry that cgroup in --ndjson -e, in --count --by cgroup, in a --prometheus label, and
--cgroup selects exactly them, in the kernel (INET_DIAG_BC_CGROUP_COND) and in Python alike.
Bad input: one line on stderr, status 1, nothing on stdout.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from typing import Dict, FrozenSet, Iterator, List, NamedTuple, Sequence, Tuple

import pytest

from nlstat.backends.netlink.bytecode import bytecode
from nlstat.backends.netlink.sockdiag import SockDiag, decode_inet
from nlstat.cgroups import cgroup2_mount, kernel_reports_cgroups
from nlstat.filters import Filters, inet_predicate
from tests import netns

pytestmark = pytest.mark.netns

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Moves itself into the cgroup first: a socket belongs to the cgroup of the process that
# created it (sk_cgrp_data is set at socket creation), an accepted one to its listener's.
PROBE_CODE = """
import os, socket, sys
print(os.getpid(), flush=True)
sys.stdin.readline()  # moved into the cgroup by then
listener = socket.socket()
listener.bind(("127.0.0.1", 7500))
listener.listen(4)
client = socket.create_connection(("127.0.0.1", 7500))
accepted, _ = listener.accept()
udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
udp.bind(("::1", 7501))
inodes = [os.fstat(s.fileno()).st_ino for s in (listener, client, accepted, udp)]
print("READY", *inodes, flush=True)
sys.stdin.read()
"""


class World(NamedTuple):
    ns: netns.Namespace
    cgroup: str  # the test cgroup's path, relative to the cgroup2 mount
    inodes: FrozenSet[int]  # the sockets of the process in it
    others: FrozenSet[int]  # sockets of this process (not moved) in the namespace
    own_cgroup: str  # this process's cgroup path


def _own_cgroup() -> str:
    with open("/proc/self/cgroup", encoding="utf-8") as file:
        for line in file:
            if line.startswith("0::"):
                return line[3:].rstrip("\n")
    return "/"


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    netns.skip_unless_root()
    mount = cgroup2_mount()
    if mount is None or not kernel_reports_cgroups():
        pytest.skip("needs a cgroup2 mount and Linux 5.7+ (INET_DIAG_CGROUP_ID)")
    name = f"nlst-cgroup-{os.getpid()}-{secrets.token_hex(3)}"
    directory = os.path.join(mount, name)
    os.mkdir(directory)
    try:
        with netns.namespace(prefix="nlst-cgroup") as ns:
            # (written from here: `ip netns exec` mounts a fresh /sys, without the cgroups)
            probe = ns.popen([sys.executable, "-c", PROBE_CODE],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            held: List[socket.socket] = []
            try:
                assert probe.stdout is not None and probe.stdin is not None
                pid = probe.stdout.readline().strip()
                with open(os.path.join(directory, "cgroup.procs"), "wb") as procs:
                    procs.write(pid)
                probe.stdin.write(b"go\n")
                probe.stdin.flush()
                ready = probe.stdout.readline().split()
                assert ready[:1] == [b"READY"], ready
                with open(f"/proc/{os.getpid()}/ns/net") as own:
                    netns.setns(f"/var/run/netns/{ns.name}")
                    try:
                        other = socket.socket()
                        other.bind(("127.0.0.1", 7502))
                        other.listen(1)
                        held.append(other)
                    finally:
                        netns.setns(f"/proc/self/fd/{own.fileno()}")
                yield World(ns, "/" + name, frozenset(map(int, ready[1:])),
                            frozenset(os.fstat(s.fileno()).st_ino for s in held),
                            _own_cgroup())
            finally:
                for sock in held:
                    sock.close()
                probe.kill()
                probe.wait()
                for stream in (probe.stdin, probe.stdout):
                    if stream is not None:
                        stream.close()
    finally:
        deadline = time.monotonic() + 10
        while True:
            try:
                os.rmdir(directory)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # the killed process leaves the cgroup a moment later


def run(world: World, args: Sequence[str], backend: str = "netlink") -> Tuple[int, str, str]:
    """nlstat with --netns: it enters the network namespace only, so the cgroup2 mount stays
    in view (`ip netns exec` would mount a /sys without it)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "PYTHONPATH": REPO,
           "NLSTAT_BACKEND": backend}
    done = subprocess.run([sys.executable, "-m", "nlstat", "--netns", world.ns.name, *args],
                          env=env, timeout=60, cwd="/", capture_output=True, check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def test_json_records_carry_the_cgroup_with_e(world: World) -> None:
    status, out, err = run(world, ["-tuanWe", "--ndjson"])
    assert (status, err) == (0, "")
    records = [json.loads(line) for line in out.splitlines()]
    cgroups: Dict[int, object] = {r["inode"]: r["cgroup"] for r in records
                                  if r["type"] == "inet"}
    assert {cgroups[inode] for inode in world.inodes} == {world.cgroup}
    assert {cgroups[inode] for inode in world.others} == {world.own_cgroup}
    # without -e the field is not there, and nothing is paid for it
    status, out, _ = run(world, ["-tuanW", "--ndjson"])
    assert status == 0 and '"cgroup"' not in out


def test_count_by_cgroup(world: World) -> None:
    status, out, err = run(world, ["-tuan", "--count", "--by", "cgroup", "--json"])
    assert (status, err) == (0, "")
    counts = {row["cgroup"]: row["count"] for row in json.loads(out)}
    assert counts[world.cgroup] == len(world.inodes)
    status, text, _ = run(world, ["-tuan", "--count", "--by", "proto,cgroup"])
    rows = [line.split() for line in text.splitlines()[1:]]
    assert ["tcp", world.cgroup, "3"] in rows and ["udp6", world.cgroup, "1"] in rows


def test_prometheus_cgroup_label(world: World) -> None:
    status, out, _ = run(world, ["-tuan", "--prometheus", "--by", "cgroup"])
    assert status == 0
    # --netns labels every series with the namespace (docs/metrics.md)
    assert (f'nlstat_sockets{{cgroup="{world.cgroup}",netns="{world.ns.name}",proto="tcp",'
            f'state="LISTEN"}} 1.0' in out.splitlines())


def _inode(line: str) -> int:
    return int(line.split()[7 if line.startswith("tcp") else 6])


@pytest.mark.parametrize("extra", [[], ["-v"]])
def test_cgroup_filter_selects_the_sockets_of_that_cgroup(world: World, extra: List[str]) -> None:
    status, full, _ = run(world, ["-tuanWe"])
    assert status == 0
    status, out, err = run(world, ["-tuanWe", "--cgroup", world.cgroup, *extra])
    assert status == 0
    head = full.splitlines()[:2]
    rows = [line for line in full.splitlines()[2:] if _inode(line) in world.inodes]
    assert out.splitlines() == head + rows and len(rows) == len(world.inodes)
    if extra:
        assert "in the kernel: cgroup" in err  # INET_DIAG_BC_CGROUP_COND
    # the whole path under the mount names the same cgroup
    mount = cgroup2_mount()
    assert mount is not None
    status, again, _ = run(world, ["-tuanWe", "--cgroup", mount.rstrip("/") + world.cgroup])
    assert (status, again) == (0, out)


def test_kernel_bytecode_and_python_agree(world: World) -> None:
    """The kernel's cgroup condition and the predicate select the same sockets."""
    from nlstat.cgroups import cgroup_id

    filters = Filters(cgroup=cgroup_id(world.cgroup))
    program = bytecode(filters)
    assert program  # pushed into the kernel
    with open(f"/proc/{os.getpid()}/ns/net") as own:
        netns.setns(f"/var/run/netns/{world.ns.name}")
        try:
            diag = SockDiag()
            try:
                def dump(code: bytes) -> List[object]:
                    from nlstat.backends.netlink.sockdiag import inet_request

                    chunks = diag.netlink.dump(20, inet_request("tcp", socket.AF_INET, 0xFFF,
                                                                bytecode=code))
                    return list(decode_inet(chunks, "tcp", want_cgroup=True))

                kernel = dump(program)
                everything = dump(b"")
            finally:
                diag.close()
        finally:
            netns.setns(f"/proc/self/fd/{own.fileno()}")
    keep = inet_predicate(filters, ["cgroup"])
    assert keep is not None
    assert kernel == [r for r in everything if keep(r)]  # type: ignore[arg-type]
    # the listener, the client and the accepted socket (the udp one is not in a tcp dump)
    assert len(kernel) == 3 and {r.inode for r in kernel} < world.inodes  # type: ignore[attr-defined]


@pytest.mark.parametrize("args", [
    ["-ant", "--cgroup", "/nlst-no-such-cgroup"],
    ["-ant", "--cgroup", "relative/path"],
    ["-ant", "--cgroup", ""],
    ["-r", "--cgroup", "/"],
])
def test_bad_cgroup_is_one_line_and_status_1(world: World, args: List[str]) -> None:
    status, out, err = run(world, args)
    assert (status, out) == (1, "")
    assert len(err.splitlines()) == 1 and err.startswith("nlstat: ")


def test_cgroup_under_proc_is_refused_and_json_says_unknown(world: World) -> None:
    status, out, err = run(world, ["-ant", "--cgroup", world.cgroup], backend="proc")
    assert (status, out) == (1, "")
    assert err == ("nlstat: --cgroup needs sock_diag: /proc/net/* does not say which cgroup "
                   "a socket belongs to (NLSTAT_BACKEND=proc)\n")
    status, out, err = run(world, ["-tanWe", "--ndjson"], backend="proc")
    assert status == 0 and len(err.splitlines()) == 1 and "cgroup left empty" in err
    records = [json.loads(line) for line in out.splitlines()][1:-1]
    assert records and all(r["cgroup"] is None for r in records)
