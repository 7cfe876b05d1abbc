"""The Pythons nlstat claims: the oldest one pyproject.toml's requires-python admits, and 3.13.

Each interpreter (found by tests/pythons.py: `python3.N` on PATH, else under `pyenv root`)
gets a cached venv with the project's dependencies and test extra. Under it: the unit tests,
mypy (strict) targeting that version, and a smoke of every mode run inside one private
namespace (a NAT network with our own sockets, so every mode has rows to print), each
compared byte for byte, status included, with the same command under the interpreter running
this test. When an interpreter is not found its tests skip and the summary says why.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Sequence, Tuple

import pytest

from tests import pythons
from tests.links_support import Outcome, compare_runs
from tests.masquerade_support import NatNetwork, Traffic, nat_network
from tests.netns import Namespace, skip_unless_root

REPO = Path(__file__).resolve().parents[2]

VERSIONS = sorted({pythons.floor(), pythons.NEWEST_TESTED})

# Every mode once: sockets, routes, interfaces, groups, statistics, masquerade, version, help,
# and bad options (netstat's statuses 1 for an invalid option value... and the rest).
SMOKE: Tuple[Tuple[str, ...], ...] = (
    ("-ant",), ("-anx",), ("-an",), ("-tulpn",), ("-r",), ("-rn",), ("-6rn",), ("-i",),
    ("-ie",), ("-g",), ("-s",), ("-M",), ("-Mne",), ("-V",), ("-h",), ("-Z",), ("--bogus",),
    ("-A", "nosuch"),
)


class Interpreter(NamedTuple):
    version: Tuple[int, int]
    python: str  # the venv's python


@pytest.fixture(scope="module", params=VERSIONS, ids=lambda v: "python%d.%d" % v)
def interpreter(request: pytest.FixtureRequest) -> Interpreter:
    version: Tuple[int, int] = request.param
    found = pythons.find(version)
    if isinstance(found, str):
        pytest.skip(found)
    return Interpreter(version, pythons.venv(found))


def _tail(done: subprocess.CompletedProcess[str]) -> str:
    return (done.stdout + done.stderr)[-4000:]


def test_unit_tests(interpreter: Interpreter) -> None:
    # The fuzzers with a small budget: here they show that they run on this Python; the
    # default run's own interpreter gives them their full budget.
    env = dict(os.environ, NLSTAT_FUZZ_EXAMPLES="24")
    done = subprocess.run(
        [interpreter.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit"],
        cwd=REPO, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
        env=env)
    assert done.returncode == 0, _tail(done)
    summary = done.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary, summary


def test_mypy_targets_this_version(interpreter: Interpreter) -> None:
    """mypy --strict with python_version set to this interpreter's: `X | Y` evaluated at run
    time (NamedTuple fields), stdlib calls newer than the version, and the like."""
    mypy = str(Path(interpreter.python).parent / "mypy")
    cache = str(Path(interpreter.python).parents[1] / "mypy-cache")
    done = subprocess.run(
        [mypy, "--python-version", "%d.%d" % interpreter.version, "--cache-dir", cache],
        cwd=REPO, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, _tail(done)


# -- every mode, in one namespace ---------------------------------------------------------------


class Scene(NamedTuple):
    network: NatNetwork
    ns: Namespace  # the NAT namespace: two veths, routes, forwarded flows, our own sockets


@pytest.fixture(scope="module")
def scene() -> Iterator[Scene]:
    skip_unless_root()
    with nat_network() as network:
        traffic = Traffic(network)
        held: List[socket.socket] = []

        def own_sockets() -> List[socket.socket]:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.bind(("127.0.0.1", 0))
            listener.listen(4)
            client = socket.create_connection(listener.getsockname())
            server = listener.accept()[0]
            listener6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            listener6.bind(("::1", 0))
            listener6.listen(4)
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            unix.bind(os.path.join(network.nat.scratch, "smoke.sock"))
            unix.listen(1)
            return [listener, client, server, listener6, udp, unix]

        try:
            # An answered UDP flow leaves conntrack 30 s after its last packet: keep it for the
            # whole module, however slowly a loaded machine gets through it.
            for key in ("nf_conntrack_udp_timeout", "nf_conntrack_udp_timeout_stream"):
                network.nat.check(["sysctl", "-q", "-w", f"net.netfilter.{key}=3600"])
            traffic.tcp()
            traffic.udp()
            traffic.forwarded()
            held = network.nat.call_inside(own_sockets)
            yield Scene(network, network.nat)
        finally:
            for sock in held:
                with contextlib.suppress(OSError):
                    sock.close()
            traffic.close()


def _environ() -> Dict[str, str]:
    return {"LC_ALL": "C", "PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def _nlstat(ns: Namespace, python: str, argv: Sequence[str]) -> Outcome:
    done = ns.run([python, "-m", "nlstat", *argv], env=_environ(), timeout=60)
    return Outcome(done.stdout, done.stderr, done.returncode)


def _settle() -> None:
    time.sleep(0.5)  # IPv6 link-local set-up (DAD, MLD) moves -i/-s counters for a moment


@pytest.mark.netns
@pytest.mark.parametrize("argv", SMOKE, ids=" ".join)
def test_every_mode(interpreter: Interpreter, scene: Scene, argv: Tuple[str, ...]) -> None:
    reference, other = compare_runs(lambda: _nlstat(scene.ns, sys.executable, argv),
                                    lambda: _nlstat(scene.ns, interpreter.python, argv), _settle)
    assert other == reference
    if argv[0] in ("-Z", "--bogus", "-A"):
        assert other.status != 0 and other.stdout == b""
    elif argv[0] == "-h":  # netstat's usage text ends with the families list on stderr
        assert other.status == 0 and other.stdout and other.stderr
    else:
        assert (other.status, other.stderr) == (0, b"") and other.stdout, other


def test_the_scene_has_rows_in_every_mode(scene: Scene) -> None:
    """The comparisons above are not about empty tables: each listing shows our objects."""
    def show(*argv: str) -> bytes:
        return _nlstat(scene.ns, sys.executable, argv).stdout

    assert b"127.0.0.1" in show("-ant") and b"ESTABLISHED" in show("-ant")
    assert b"smoke.sock" in show("-anx")
    assert b"n0" in show("-i") and b"198.19.2.0" in show("-rn")
    assert show("-Mn").count(b"\n") == 2 + 3  # title, header, the three translated flows
    assert b"Tcp:" in show("-s") and b"224.0.0.1" in show("-gn")


def _first_iteration(ns: Namespace, python: str, argv: Sequence[str], marker: bytes) -> Outcome:
    """`nlstat -c ...` until its second iteration starts (or 20 s), then SIGINT, as a user's
    Ctrl-C: the first iteration's bytes and the status."""
    process = ns.popen([python, "-m", "nlstat", *argv], env=_environ(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert process.stdout is not None
    output = b""
    deadline = time.monotonic() + 20.0
    try:
        while output.count(marker) < 2 and time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:
                    break
                output += chunk
    finally:
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=20)
    first = (output + rest).split(marker)[1] if marker in output else b""
    return Outcome(marker + first, errors, process.returncode)


@pytest.mark.netns
def test_continuous(interpreter: Interpreter, scene: Scene) -> None:
    marker = b"Active Internet connections"
    argv = ("-ctn",)
    reference, other = compare_runs(
        lambda: _first_iteration(scene.ns, sys.executable, argv, marker),
        lambda: _first_iteration(scene.ns, interpreter.python, argv, marker), _settle)
    assert other == reference
    assert b"ESTABLISHED" in other.stdout
