"""--netns and --all-netns against netstat run inside each namespace (`ip netns exec`).

Two private namespaces hold known sockets: `blue` those of this test process (opened by a
thread switched into it), `green` those of a helper process started inside it, which also
serves `--netns pid:PID` and `-p`. Only loopback carries addresses, so no counter of -i or -s
moves between the two runs being compared. Every block nlstat prints for a namespace must be
byte for byte what netstat prints inside it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Dict, Iterator, List, NamedTuple, Tuple

import pytest

from tests import netns
from tests.cli_support import _environ, run_nlstat
from tests.masquerade_support import nobodys_nlstat

pytestmark = pytest.mark.netns

ADDRESSES = {"lo": ("198.18.7.1/24", "2001:db8:7::1/64")}
HOSTS = "127.0.0.1\tlocalhost\n198.18.7.1\tblue-host\n"

HELPER = r"""
import socket, sys, time
listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
listener.bind(("::1", 7300))
listener.listen()
client = socket.create_connection(("::1", 7300))
server, _ = listener.accept()
unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
unix.bind("\0nlstat-netns-green")
unix.listen()
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("198.18.7.1", 7301))
print("ready", flush=True)
sys.stdin.read()
"""


class Scene(NamedTuple):
    blue: netns.Namespace
    green: netns.Namespace
    helper: subprocess.Popen[bytes]
    held: List[socket.socket]


def _blue_sockets() -> List[socket.socket]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("198.18.7.1", 7200))
    listener.listen()
    client = socket.create_connection(("198.18.7.1", 7200))
    server, _ = listener.accept()
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    unix.bind("\0nlstat-netns-blue")
    joined = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    joined.bind(("0.0.0.0", 7201))
    membership = socket.inet_aton("239.1.2.3") + socket.inet_aton("198.18.7.1")
    joined.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    return [listener, client, server, unix, joined]


@pytest.fixture(scope="module")
def scene() -> Iterator[Scene]:
    netns.skip_unless_root()
    options = {"prefix": "nlst-netns", "veth": False, "addresses": ADDRESSES}
    with netns.namespace(hosts=HOSTS, **options) as blue, netns.namespace(**options) as green:
        blue.check(["ip", "route", "add", "198.18.9.0/24", "dev", "lo", "metric", "7"])
        held = blue.call_inside(_blue_sockets)
        helper = green.popen([sys.executable, "-c", HELPER], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
        try:
            assert helper.stdout is not None and helper.stdout.readline() == b"ready\n"
            yield Scene(blue, green, helper, held)
        finally:
            helper.kill()
            helper.wait()
            for sock in held:
                sock.close()


def _pid_in(scene: Scene) -> int:
    """The helper's pid (`ip netns exec` execs the command in place)."""
    return scene.helper.pid


def netstat_inside(ns: netns.Namespace, argv: List[str]) -> Tuple[int, bytes, bytes]:
    done = ns.run(["netstat", *argv], env=_environ())
    return done.returncode, done.stdout, done.stderr


MODES = [["-ant"], ["-anx"], ["-anu"], ["-rn"], ["-rn", "-6"], ["-i"], ["-ie"], ["-s"],
         ["-g"], ["-antp"], ["-a"], ["-r"]]


@pytest.mark.parametrize("argv", MODES, ids=lambda argv: " ".join(argv))
@pytest.mark.parametrize("how", ["name", "path", "pid"])
def test_one_namespace_is_netstat_inside_it(scene: Scene, how: str, argv: List[str]) -> None:
    ns = scene.green if how == "pid" else scene.blue
    spec = {"name": ns.name, "path": f"/run/netns/{ns.name}", "pid": f"pid:{_pid_in(scene)}"}[how]
    for _ in range(3):  # -i and -s: a counter may move between the two runs (IGMP on lo)
        if how == "pid":
            # Only `ip netns exec NAME` puts /etc/netns/NAME over /etc; for a process's
            # namespace the oracle is netstat moved into that namespace alone.
            done = subprocess.run(["nsenter", f"--net=/proc/{_pid_in(scene)}/ns/net",
                                   "netstat", *argv], capture_output=True, env=_environ())
            expected = (done.returncode, done.stdout, done.stderr)
        else:
            expected = netstat_inside(ns, argv)
        got = run_nlstat(["--netns", spec, *argv])
        if (got.status, got.stdout, got.stderr) == expected or argv[0] not in ("-i", "-ie", "-s"):
            break
    assert (got.status, got.stdout, got.stderr) == expected
    # The rows are really the namespace's own, not the host's.
    if argv == ["-ant"]:
        assert (b"198.18.7.1:7200" in got.stdout) == (ns is scene.blue)
        assert (b"::1:7300" in got.stdout) == (ns is scene.green)


def test_names_come_from_the_namespace_etc(scene: Scene) -> None:
    # ip netns exec binds /etc/netns/NAME/hosts over /etc/hosts; so does --netns NAME.
    got = run_nlstat(["--netns", scene.blue.name, "-at"])
    assert b"blue-host:7200" in got.stdout
    assert (got.status, got.stdout, got.stderr) == netstat_inside(scene.blue, ["-at"])


def blocks(stdout: bytes) -> Dict[str, bytes]:
    """--all-netns output cut at its `netns: LABEL (inode N)` lines: header -> block."""
    # Lines are gathered and joined once: another test run's namespace may hold 100k
    # sockets, and adding line by line to bytes copies the block at every line.
    found: Dict[str, List[bytes]] = {}
    lines: List[bytes] = []
    for line in stdout.splitlines(keepends=True):
        if line.startswith(b"netns: "):
            header = line.decode().rstrip("\n")
            assert header not in found, header
            lines = found[header] = []
        else:
            assert found, line
            lines.append(line)
    return {header: b"".join(block) for header, block in found.items()}


def header_of(ns: netns.Namespace) -> str:
    return f"netns: {ns.name} (inode {os.stat('/run/netns/' + ns.name).st_ino})"


@pytest.mark.parametrize("argv", [["-an"], ["-antp"], ["-i"], ["-rn"], ["-s"], ["-ng"]],
                         ids=lambda argv: " ".join(argv))
def test_all_namespaces_one_block_each(scene: Scene, argv: List[str]) -> None:
    got = run_nlstat(["--all-netns", *argv])
    # Other test runs' namespaces come and go (a gone one is skipped, not an error), and one
    # without routes makes netstat -rn fail inside it: the status is checked elsewhere.
    assert got.status in (0, 1), got.stderr
    found = blocks(got.stdout)
    own = os.stat("/proc/self/ns/net").st_ino
    headers = list(found)
    assert headers[0].endswith(f" (inode {own})")
    inodes = [int(h.rsplit("inode ", 1)[1].rstrip(")")) for h in headers]
    assert len(set(inodes)) == len(inodes)
    assert inodes[1:] == sorted(inodes[1:])
    for ns in (scene.blue, scene.green):
        status, stdout, _ = netstat_inside(ns, argv)
        assert status == 0
        if argv[0] in ("-i", "-s") and found[header_of(ns)] != stdout:
            # A counter moved between the two runs (IGMP on lo): once more, that block only.
            found = blocks(run_nlstat(["--all-netns", *argv]).stdout)
            status, stdout, _ = netstat_inside(ns, argv)
        assert found[header_of(ns)] == stdout


def test_programs_are_named_in_every_namespace(scene: Scene) -> None:
    found = blocks(run_nlstat(["--all-netns", "-antp"]).stdout)
    pid = _pid_in(scene)
    assert f" {pid}/python".encode() in found[header_of(scene.green)]
    assert f" {os.getpid()}/".encode() in found[header_of(scene.blue)]


def test_process_without_a_name_is_labelled_by_pid(scene: Scene) -> None:
    # A namespace reached only through a process: unshare a fresh one for a sleeping child.
    child = subprocess.Popen(["unshare", "-n", "sleep", "30"])
    try:
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{child.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        inode = os.stat(f"/proc/{child.pid}/ns/net").st_ino
        got = run_nlstat(["--all-netns", "-anx"])
        found = blocks(got.stdout)
        assert found[f"netns: pid:{child.pid} (inode {inode})"] == (
            b"Active UNIX domain sockets (servers and established)\n"
            b"Proto RefCnt Flags       Type       State         I-Node   Path\n"
        )
        assert run_nlstat(["--netns", f"pid:{child.pid}", "-ant"]).stdout == (
            b"Active Internet connections (servers and established)\n"
            b"Proto Recv-Q Send-Q Local Address           Foreign Address         State      \n"
        )
    finally:
        child.kill()
        child.wait()


def test_continuous_repeats_every_namespace(scene: Scene) -> None:
    command = [sys.executable, "-m", "nlstat", "--all-netns", "-ic"]
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed with the process below
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, env=_environ())
    assert process.stdout is not None
    passes: List[List[Tuple[bytes, bytes]]] = [[]]
    try:
        while True:
            line = process.stdout.readline()
            if not line:
                errors.seek(0)
                pytest.fail(f"ended early: {passes!r}, stderr {errors.read()!r}")
            if line.startswith(b"netns: "):
                if any(line == header for header, _ in passes[-1]):
                    if len(passes) == 2:
                        break
                    passes.append([])
                passes[-1].append((line, b""))
            else:
                header, block = passes[-1][-1]
                passes[-1][-1] = (header, block + line)
        children = _children_of(process.pid)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate()
    first, second = (dict(one_pass) for one_pass in passes)
    # As netstat -ic prints its passes: the title only in the first one. (Other test runs'
    # namespaces may come and go meanwhile: a new one starts with its own first pass.)
    ours = [header_of(ns).encode() + b"\n" for ns in (scene.blue, scene.green)]
    assert all(first[header].startswith(b"Kernel Interface table\nIface ") for header in ours)
    assert second[ours[0]].startswith(b"Iface ")
    assert b"\nlo " in second[ours[0]]
    assert process.returncode == -signal.SIGINT
    # One child per namespace (at least ours) waited for its next pass; none outlives the run.
    assert len(children) >= 2
    deadline = time.monotonic() + 5
    while any(os.path.exists(f"/proc/{pid}") for pid in children):
        assert time.monotonic() < deadline, children
        time.sleep(0.02)


def _children_of(pid: int) -> List[int]:
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    if int(handle.read().rsplit(b")", 1)[1].split()[1]) == pid:
                        children.append(int(entry))
            except OSError:
                continue
    return children


# -- bad inputs ---------------------------------------------------------------------------


def _exited_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.mark.parametrize(
    "spec, message",
    [
        ("nlst-netns-none", "nlstat: netns nlst-netns-none: no such network namespace\n"),
        ("/run/netns/nlst-netns-none",
         "nlstat: netns /run/netns/nlst-netns-none: no such network namespace\n"),
        ("/etc/hosts", "nlstat: netns /etc/hosts: not a network namespace\n"),
        ("/proc/self/ns/uts", "nlstat: netns /proc/self/ns/uts: not a network namespace\n"),
        ("pid:x", "nlstat: netns pid:x: not a process id\n"),
        ("", "nlstat: netns '': no such network namespace\n"),
    ],
)
def test_bad_namespace_is_one_line(spec: str, message: str) -> None:
    for argv in (["-ant"], ["-s"], ["-i"]):
        got = run_nlstat(["--netns", spec, *argv])
        assert (got.status, got.stdout, got.stderr.decode()) == (1, b"", message)


def test_exited_process_is_one_line() -> None:
    pid = _exited_pid()
    got = run_nlstat(["--netns", f"pid:{pid}", "-rn"])
    assert (got.status, got.stdout, got.stderr) == (
        1, b"", f"nlstat: netns pid:{pid}: no such process\n".encode())


def test_netns_and_all_netns_exclude_each_other() -> None:
    got = run_nlstat(["--netns", "x", "--all-netns", "-t"])
    assert (got.status, got.stdout) == (3, b"")
    assert got.stderr == b"nlstat: --netns and --all-netns exclude each other\n"


def test_abbreviations_stay_netstat_s() -> None:
    got = run_nlstat(["--all-net"])
    assert got.status == 3
    assert got.stderr.startswith(b"netstat: unrecognized option '--all-net'\n")


def _unprivileged(argv: List[str], scratch: netns.Namespace) -> subprocess.CompletedProcess[bytes]:
    # The tree may sit in root's private directory (a fresh clone in a 0700 mktemp directory):
    # uid 65534 runs a copy of the package under a namespace's 0755 scratch directory.
    python, tree = nobodys_nlstat(scratch)
    env = {**_environ(), "PYTHONPATH": tree}
    command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
               python, "-m", "nlstat", *argv]
    probe = subprocess.run(command[:5] + ["-c", "import nlstat"], capture_output=True,
                           env=env, cwd="/")
    if probe.returncode != 0:
        pytest.skip(f"uid 65534 cannot run {python} (it lies in a private directory): "
                    f"{probe.stderr!r}")
    return subprocess.run(command, capture_output=True, env=env, cwd="/", timeout=20)


def test_user_who_may_not_enter(scene: Scene) -> None:
    got = _unprivileged(["--netns", scene.blue.name, "-ant"], scene.green)
    assert (got.returncode, got.stdout, got.stderr.decode()) == (
        1, b"", f"nlstat: netns {scene.blue.name}: cannot enter: Operation not permitted\n")
    # --all-netns: the user's own namespace is still listed, each other one says why not.
    got = _unprivileged(["--all-netns", "-anx"], scene.green)
    assert got.returncode == 1
    found = blocks(got.stdout)
    own = os.stat("/proc/self/ns/net").st_ino
    assert list(found)[0].endswith(f" (inode {own})")
    assert len(found) == 1
    lines = got.stderr.decode().splitlines()
    assert f"nlstat: netns {scene.blue.name}: cannot enter: Operation not permitted" in lines
    assert all(line.endswith(": cannot enter: Operation not permitted") for line in lines)


@pytest.mark.parametrize("where", ["--netns", "--all-netns"])
def test_output_that_cannot_be_written_is_said_once(scene: Scene, where: str) -> None:
    argv = [where, scene.blue.name] if where == "--netns" else [where]
    command = [sys.executable, "-m", "nlstat", *argv, "-an"]
    with open("/dev/full", "wb") as full:
        done = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, env=_environ())
    assert (done.returncode, done.stderr) == (1, b"nlstat: write error: No space left on device\n")
    closed = ["sh", "-c", 'exec "$@" >&-', "sh", *command]  # stdout closed
    done = subprocess.run(closed, capture_output=True, env=_environ())
    assert (done.returncode, done.stderr) == (1, b"nlstat: write error: Bad file descriptor\n")


def test_reader_gone_ends_like_netstat(scene: Scene) -> None:
    command = [sys.executable, "-m", "nlstat", "--all-netns", "-an"]
    reader = subprocess.Popen(["head", "-c", "10"], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL)
    done = subprocess.run(command, stdout=reader.stdin, stderr=subprocess.PIPE, env=_environ())
    assert reader.stdin is not None
    reader.stdin.close()
    reader.wait()
    # Killed by SIGPIPE as netstat is, without a word (when the reader left before the end).
    assert (done.returncode, done.stderr) in ((-signal.SIGPIPE, b""), (0, b""))


@pytest.mark.parametrize("argv", [["-ant"], ["-rn"], ["-i"]], ids=lambda argv: " ".join(argv))
def test_all_namespaces_in_json_one_document_each(scene: Scene, argv: List[str]) -> None:
    import json

    got = run_nlstat(["--all-netns", *argv, "--json"])
    documents = [json.loads(line) for line in got.stdout.splitlines()]
    assert all(not line.startswith(b"netns: ") for line in got.stdout.splitlines())
    by_inode = {document["netns"]["inode"]: document for document in documents}
    assert len(by_inode) == len(documents)
    assert documents[0]["netns"]["inode"] == os.stat("/proc/self/ns/net").st_ino
    for ns in (scene.blue, scene.green):
        document = by_inode[os.stat(f"/run/netns/{ns.name}").st_ino]
        assert document["netns"]["name"] == ns.name
        inside = ns.run([sys.executable, "-m", "nlstat", *argv, "--json"], env=_environ())
        expected = json.loads(inside.stdout)
        # The same records, each naming its namespace as the header does.
        assert all(record.pop("netns") == document["netns"] for record in document["records"])
        assert (document["records"], document["sources"]) == (
            expected["records"], expected["sources"])


def test_all_namespaces_in_ndjson_one_group_each(scene: Scene) -> None:
    import json

    lines = [json.loads(line) for line in
             run_nlstat(["--all-netns", "-anx", "--ndjson"]).stdout.splitlines()]
    groups: List[List[Dict[str, object]]] = []
    for line in lines:
        if line["type"] == "header":
            groups.append([])
        groups[-1].append(line)
    assert all(group[-1]["type"] == "end" for group in groups)
    names = [group[0]["netns"]["name"] for group in groups]  # type: ignore[index]
    assert scene.blue.name in names and scene.green.name in names
    blue = groups[names.index(scene.blue.name)]
    green = groups[names.index(scene.green.name)]
    assert any("nlstat-netns-blue" in json.dumps(line) for line in blue)
    assert not any("nlstat-netns-blue" in json.dumps(line) for line in green)


def test_count_over_namespaces_that_may_not_be_entered(scene: Scene) -> None:
    """--count --all-netns as a user who may enter no other namespace: the table still
    comes, with the user's own namespace only, each other one says why not, status 1."""
    got = _unprivileged(["--all-netns", "--count", "--by", "netns", "-x"], scene.green)
    assert got.returncode == 1
    rows = got.stdout.decode().splitlines()
    assert rows[0].split() == ["NETNS", "COUNT"]
    assert len(rows) <= 2 and all(not row.startswith(scene.blue.name) for row in rows)
    lines = got.stderr.decode().splitlines()
    assert f"nlstat: netns {scene.blue.name}: cannot enter: Operation not permitted" in lines
    assert all(line.endswith(": cannot enter: Operation not permitted") for line in lines)
