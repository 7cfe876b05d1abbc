"""Faults injected, never a traceback: the documented fallback or netstat's own message, with
netstat's status (issue 12, docs/reliability.md).

A quiet test namespace holds a few sockets (a tcp listener and a connection, a udp socket, a
unix listener), so the installed netstat, run in the same namespace, is the oracle for what a
fallback must print. sock_diag and rtnetlink are made to fail through the netlink socket
stand-in of tests/faults.py (`python -m tests.faults CUES ARGS`); the CLI also runs as uid
65534 through setpriv, and in a namespace whose loopback is down.
"""

from __future__ import annotations

import errno
import json
import socket
import subprocess
import sys
from typing import Dict, Iterator, List

import pytest

from tests.masquerade_support import AS_NOBODY, REPO, nobodys_nlstat, run_nlstat_in
from tests.netns import Namespace, netns_fixture

HOLDER = """
import socket, sys
listener = socket.socket(); listener.bind(("127.0.0.1", 7100)); listener.listen(8)
client = socket.create_connection(("127.0.0.1", 7100)); server = listener.accept()[0]
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(("127.0.0.1", 7101))
unix = socket.socket(socket.AF_UNIX); unix.bind(b"\\0nlst-fault"); unix.listen(8)
print("ready", flush=True)
sys.stdin.read()
"""

# Loopback only: no veth whose counters move on their own (IPv6 router solicitations), so
# `-i` is as stable as the sockets between netstat's run and nlstat's.
fault_ns = netns_fixture(prefix="nlst-fault", veth=False, addresses={"lo": ()})


@pytest.fixture(scope="module")
def quiet(fault_ns: Namespace) -> Iterator[Namespace]:
    holder = fault_ns.popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"ready\n"
        yield fault_ns
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)


def environ(backend: str) -> Dict[str, str]:
    return {"LC_ALL": "C", "PYTHONPATH": str(REPO), "NLSTAT_BACKEND": backend,
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def with_faults(ns: Namespace, cues: Dict[int, Dict[str, int]], argv: List[str],
                backend: str) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "tests.faults", json.dumps(cues), *argv]
    return ns.run(command, env=environ(backend), cwd=str(REPO), timeout=60)


def netstat(ns: Namespace, argv: List[str]) -> subprocess.CompletedProcess[bytes]:
    return ns.run(["netstat", *argv], env={"LC_ALL": "C"})


SOCK_DIAG = socket.NETLINK_SOCK_DIAG if hasattr(socket, "NETLINK_SOCK_DIAG") else 4
ROUTE = 0

REFUSALS = {
    "no sock_diag (EPROTONOSUPPORT)": {"socket_errno": errno.EPROTONOSUPPORT},
    "sock_diag denied (EPERM)": {"request_errno": errno.EPERM},
    "udp refused (EINVAL)": {"protocol": socket.IPPROTO_UDP, "errno": errno.EINVAL},
    "tcp refused (EINVAL)": {"protocol": socket.IPPROTO_TCP, "errno": errno.EINVAL},
    "raw refused (ENOENT, no raw_diag)": {"protocol": socket.IPPROTO_RAW, "errno": errno.ENOENT},
    "receive overrun (ENOBUFS)": {"recv_errno": errno.ENOBUFS},
}


@pytest.mark.parametrize("backend", ["auto", "netlink"])
@pytest.mark.parametrize("fault", sorted(REFUSALS))
def test_a_refused_sock_diag_falls_back_to_proc_like_netstat(
    quiet: Namespace, fault: str, backend: str
) -> None:
    argv = ["-anw"]
    expected = netstat(quiet, argv)
    done = with_faults(quiet, {SOCK_DIAG: REFUSALS[fault]}, argv, backend)
    notes = done.stderr.decode().splitlines()
    assert b"Traceback" not in done.stderr
    cue = REFUSALS[fault]
    protocol = cue.get("protocol")
    if backend == "netlink" and protocol in (None, socket.IPPROTO_RAW) and (
            cue.get("errno") != errno.ENOENT):
        # Forced to netlink, a refusal of the raw dump (-anw asks for raw only) is an error:
        # one line, status 1, no /proc listing (nlstat.backends).
        assert (done.returncode, done.stdout) == (1, b"")
        assert len(notes) == 1 and notes[0].startswith("nlstat: sock_diag refused ")
        assert notes[0].endswith("; no /proc fallback with the backend netlink")
        return
    assert (done.returncode, done.stdout) == (expected.returncode, expected.stdout)
    if backend == "netlink":
        # A kernel without the raw diag handler (ENOENT, the cue's or this kernel's own) is
        # not a refusal: /proc under every backend, said when netlink was forced.
        assert all(note.startswith("nlstat: sock_diag has no ") for note in notes)
    else:
        assert notes == []


@pytest.mark.parametrize("cue", [{"request_errno": errno.EPERM},
                                 {"recv_errno": errno.ENOBUFS},
                                 {"socket_errno": errno.EPROTONOSUPPORT}])
def test_a_refused_route_dump_falls_back_to_proc_like_netstat(
    quiet: Namespace, cue: Dict[str, int]
) -> None:
    for argv in (["-rn"], ["-i"]):
        expected = netstat(quiet, argv)
        done = with_faults(quiet, {ROUTE: cue}, argv, "auto")
        assert (done.returncode, done.stdout, done.stderr) == (
            expected.returncode, expected.stdout, b""
        ), argv


def test_an_interrupted_route_dump_every_time_is_listed_and_said(quiet: Namespace) -> None:
    # The stand-in answers with this namespace's real dump, flagged NLM_F_DUMP_INTR each time.
    from nlstat.backends.netlink.routes import capture_routes

    answer = quiet.call_inside(lambda: capture_routes(socket.AF_INET, 254))
    expected = netstat(quiet, ["-rn"])
    script = (
        "import json, sys; from tests import faults; "
        f"faults.install({{0: faults.Cue(answer={answer!r}, interrupted=99)}}); "
        "sys.argv[1:] = ['-rn']; from nlstat.__main__ import main; sys.exit(main())"
    )
    done = quiet.run([sys.executable, "-c", script], env=environ("auto"), cwd=str(REPO))
    assert (done.returncode, done.stdout) == (expected.returncode, expected.stdout)
    assert done.stderr == (
        b"nlstat: the kernel's IPv4 routes changed during every one of 3 dumps;"
        b" this snapshot may be inconsistent\n"
    )


MODES_AS_NOBODY = [["-ant"], ["-anu"], ["-anx"], ["-antp"], ["-rn"], ["-i"], ["-s"], ["-gn"]]


@pytest.mark.parametrize("backend", ["auto", "netlink", "proc"])
def test_as_nobody_like_netstat(quiet: Namespace, backend: str) -> None:
    python, _tree = nobodys_nlstat(quiet)
    if quiet.run([*AS_NOBODY, python, "-c", "pass"]).returncode != 0:
        pytest.skip(f"uid 65534 cannot run {python} (it lies in a private directory)")
    for argv in MODES_AS_NOBODY:
        expected = quiet.run([*AS_NOBODY, "netstat", *argv], env={"LC_ALL": "C"})
        done = run_nlstat_in(quiet, argv, backend, user=True)
        assert b"Traceback" not in done.stderr
        assert (done.returncode, done.stdout, done.stderr) == (
            expected.returncode, expected.stdout, expected.stderr
        ), (argv, done.stderr)


no_loopback_ns = netns_fixture(prefix="nlst-nolo", veth=False, addresses={"lo": ()})


@pytest.mark.parametrize("backend", ["auto", "netlink", "proc"])
def test_a_namespace_without_loopback_like_netstat(
    no_loopback_ns: Namespace, backend: str
) -> None:
    no_loopback_ns.check(["ip", "link", "set", "lo", "down"])
    # (-M is left out: nlstat lists conntrack NAT entries where netstat always fails,
    # docs/compat.md.)
    for argv in (["-an"], ["-rn"], ["-i"], ["-ia"], ["-gn"], ["-s"]):
        expected = netstat(no_loopback_ns, argv)
        done = no_loopback_ns.run([sys.executable, "-m", "nlstat", *argv], env=environ(backend),
                                  cwd=str(REPO))
        assert b"Traceback" not in done.stderr
        assert (done.returncode, done.stdout) == (expected.returncode, expected.stdout), argv
