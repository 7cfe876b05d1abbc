"""Signals during a run, against netstat in the same namespace (issue 12.6).

* Ctrl-C during `-c` (SIGINT to the process group, as a terminal sends it): netstat dies of
  SIGINT with the passes it had flushed on stdout and nothing on stderr; so does nlstat, under
  each backend, and its passes are netstat's.
* SIGTERM during `-c` in another namespace (`--netns`): the child that entered the namespace
  (nlstat/netns_run.py) does not outlive nlstat. The formatting helper's case is
  tests/unit/test_pipeline.py's test_sigterm_during_a_listing_leaves_no_helper.

A reader that leaves (SIGPIPE, EPIPE) is in tests/system/test_bad_outputs.py (small outputs,
every mode) and tests/system/test_pipeline_differential.py (thousands of rows, the one- and
two-process paths); a full disk in test_bad_outputs.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from typing import Iterator, List, NamedTuple, Sequence

import pytest

from tests import netns
from tests.system import sockets_cases as cases

pytestmark = pytest.mark.netns


class Ended(NamedTuple):
    status: int
    stdout: bytes
    stderr: bytes


@pytest.fixture(scope="module")
def quiet() -> Iterator[netns.Namespace]:
    netns.skip_unless_root()
    with netns.namespace(prefix="nlst-signal") as ns:

        def listen() -> socket.socket:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 7300))
            sock.listen(1)
            return sock

        held = ns.call_inside(listen)
        try:
            yield ns
        finally:
            held.close()


def interrupted(ns: netns.Namespace, argv: Sequence[str], env: dict, passes: int = 2) -> Ended:
    """Run `argv` in its own process group, wait until `passes` passes are on stdout (a pass
    starts with the first line's text), then send SIGINT to the group, as Ctrl-C does."""
    process = ns.popen(argv, env=env, cwd="/", stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    assert process.stdout is not None and process.stderr is not None
    try:
        head = process.stdout.readline()
        seen, taken = 1, [head]
        while seen < passes:
            line = process.stdout.readline()
            assert line, b"".join(taken)
            taken.append(line)
            # a pass starts with the first line's text; --json: a document a line
            seen += line == head or line.startswith(b'{"schema"')
        os.killpg(process.pid, signal.SIGINT)
        # Through the same buffered reader: communicate() would read the pipe underneath it
        # and miss what readline() has buffered.
        rest = process.stdout.read()
        stderr = process.stderr.read()
        process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return Ended(process.returncode, b"".join(taken) + rest, stderr)


def passes_of(stdout: bytes) -> List[bytes]:
    """The passes of a -c output (each starts with the first line)."""
    head = stdout.split(b"\n", 1)[0] + b"\n"
    parts = stdout.split(head)
    assert parts[0] == b""
    return [head + part for part in parts[1:]]


@pytest.mark.parametrize("args, backend", [
    (["-c", "-ant"], "auto"), (["-c", "-ant"], "netlink"), (["-c", "-ant"], "proc"),
    (["-c", "-rn"], "auto"), (["-c", "-an", "--json"], "auto"),
], ids=lambda value: " ".join(value) if isinstance(value, list) else value)
def test_ctrl_c_during_c_ends_as_netstat_ends(quiet: netns.Namespace, args: List[str],
                                              backend: str) -> None:
    if "--json" in args:
        theirs = None
    else:
        theirs = interrupted(quiet, cases.netstat_command(args), cases.base_env())
        assert theirs.status == -signal.SIGINT and theirs.stderr == b""
    mine = interrupted(quiet, cases.nlstat_command(args), cases.nlstat_env(backend))
    assert mine.status == -signal.SIGINT  # a shell says 130, as for netstat
    assert mine.stderr == b""  # quietly: no traceback, no word
    assert mine.stdout.endswith(b"\n")
    if theirs is None:  # --json -c: one complete document a pass, nothing cut
        import json

        documents = [json.loads(line) for line in mine.stdout.splitlines()]
        assert len(documents) >= 2 and all(doc["mode"] == "sockets" for doc in documents)
        return
    mine_passes = passes_of(mine.stdout)
    assert len(mine_passes) >= 2
    assert set(mine_passes) == {passes_of(theirs.stdout)[0]}, mine.stdout  # whole passes only


def children_of(pid: int) -> List[int]:
    found: List[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def gone(pid: int) -> bool:
    """Dead: no such process, or a zombie waiting for its new parent to reap it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except FileNotFoundError:
        return True


@contextlib.contextmanager
def reaped(process: subprocess.Popen[bytes], children: List[int]) -> Iterator[None]:
    """Whatever the test ends with, nlstat and the children found (`children`, filled while
    the test runs) are gone afterwards."""
    try:
        yield
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
        for child in children:
            if not gone(child):
                os.kill(child, signal.SIGKILL)


def ends_with_its_children(process: subprocess.Popen[bytes], children: List[int],
                           how: signal.Signals) -> None:
    """Send `how` to nlstat: it dies of it, and every one of its children within 30 s."""
    process.send_signal(how)
    assert process.wait(60) == -how
    deadline = time.monotonic() + 30
    while not all(gone(child) for child in children) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert all(gone(child) for child in children), f"{children} outlived nlstat"


def test_sigterm_during_c_in_a_namespace_leaves_no_child(quiet: netns.Namespace) -> None:
    """`nlstat --netns NAME -c -ant`: the parent drives a child that entered the namespace
    pass by pass; SIGTERM to the parent (between passes, or during one) must end the child
    too, not leave it waiting for a next pass that never comes."""
    process = subprocess.Popen(
        cases.nlstat_command(["--netns", quiet.name, "-c", "-ant"]),
        env=cases.nlstat_env("auto"), cwd="/", stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    children: List[int] = []
    with reaped(process, children):
        assert process.stdout is not None
        assert process.stdout.readline()  # the first pass has begun: its child runs
        children += children_of(process.pid)
        assert children, "no child in the namespace"
        ends_with_its_children(process, children, signal.SIGTERM)


def test_sigkill_leaves_no_namespace_child_blocked_on_stdout(
    quiet: netns.Namespace, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`nlstat --netns NAME -ant` killed outright (SIGKILL: no handler runs) while its child in
    the namespace is blocked writing a listing nobody reads: the child dies with it
    (PR_SET_PDEATHSIG, netns_run._in_child), it does not stay behind holding the pipe. The
    listing is a captured /proc/net/tcp of 40,000 rows (NLSTAT_PROC_ROOT), far past a pipe."""
    from tests.unit.test_pipeline import ROWS, tcp_table

    root = netns.write_proc_tree(tmp_path_factory.mktemp("proc"), {"tcp": tcp_table(ROWS)})
    env = dict(cases.nlstat_env("proc"), NLSTAT_PROC_ROOT=root)
    process = subprocess.Popen(
        cases.nlstat_command(["--netns", quiet.name, "-ant"]), env=env, cwd="/",
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    children: List[int] = []
    with reaped(process, children):
        assert process.stdout is not None
        assert process.stdout.read(1 << 16)  # the child is writing; the pipe fills behind it
        deadline = time.monotonic() + 30
        while not children and time.monotonic() < deadline:
            children += children_of(process.pid)
        assert children, "no child in the namespace"
        time.sleep(0.2)  # blocked on the full pipe by now
        assert not any(gone(child) for child in children)
        ends_with_its_children(process, children, signal.SIGKILL)
