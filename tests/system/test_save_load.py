"""--save and --load on live kernel state: every mode and output form run once in a private
namespace holding this test's own sockets (the run's output is the live output), saved; the
file loaded by nobody (setpriv, no root, no netlink asked), inside the namespace (its
/etc/hosts names the addresses) and in the host's namespace with numbers only: the same
bytes on stdout and stderr, the same status. Then the bad inputs: truncated, damaged,
foreign and newer files, a --save path that cannot be written, an existing file, a mode the
file did not record: one line naming the file, status 1, nothing on stdout.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
from typing import Dict, Iterator, List, NamedTuple, Sequence

import pytest

from nlstat import recording
from tests import netns
from tests.cli_support import REPO
from tests.masquerade_support import AS_NOBODY, nobodys_nlstat

pytestmark = pytest.mark.netns

UDPLITE = 136  # IPPROTO_UDPLITE


class Live(NamedTuple):
    ns: netns.Namespace
    held: List[socket.socket]
    directory: str  # 0755, under the namespace's scratch directory: nobody reads files here


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    netns.skip_unless_root()
    with netns.namespace(prefix="nlst-saveload") as ns:
        held: List[socket.socket] = []

        def build() -> None:
            def keep(sock: socket.socket) -> socket.socket:
                held.append(sock)
                return sock

            listener = keep(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            listener.bind(("198.18.0.1", 9000))
            listener.listen(8)
            keep(socket.create_connection(("198.18.0.1", 9000)))
            keep(listener.accept()[0])
            six = keep(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
            six.bind(("2001:db8::1", 8443))
            six.listen(4)
            keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)).bind(("198.18.0.1", 5353))
            keep(socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)).bind(
                ("198.18.0.1", 0))
            keep(socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, UDPLITE)).bind(
                ("2001:db8::1", 5400))
            named = keep(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
            named.bind(os.path.join(ns.scratch, "saved.sock"))
            named.listen(1)
            keep(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)).bind(b"\0nlstat-saved")
            ns.check(["ip", "route", "add", "198.19.0.0/16", "via", "198.18.0.2"])
            ns.check(["ip", "maddr", "add", "33:33:00:00:02:02", "dev", "veth0"])

        ns.call_inside(build)
        directory = os.path.join(ns.scratch, "saved")
        os.makedirs(directory, mode=0o755, exist_ok=True)
        os.chmod(directory, 0o755)
        try:
            yield Live(ns, held, directory)
        finally:
            for sock in held:
                sock.close()


def _environment(backend: str = "auto") -> Dict[str, str]:
    return {"LC_ALL": "C", "PYTHONPATH": str(REPO), "NLSTAT_BACKEND": backend,
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def save(live: Live, argv: Sequence[str], path: str) -> subprocess.CompletedProcess[bytes]:
    """nlstat ARGV --save PATH inside the namespace, as root: the live run."""
    return live.ns.run([sys.executable, "-m", "nlstat", *argv, "--save", path],
                       env=_environment(), timeout=120)


def load(live: Live, argv: Sequence[str], path: str,
         inside: bool = True) -> subprocess.CompletedProcess[bytes]:
    """nlstat ARGV --load PATH as nobody, inside the namespace or in the host's."""
    python, tree = nobodys_nlstat(live.ns)
    env = dict(_environment(), PYTHONPATH=tree)
    command = [*AS_NOBODY, python, "-m", "nlstat", *argv, "--load", path]
    if inside:
        return live.ns.run(command, env=env, timeout=120)
    return subprocess.run(command, env=env, capture_output=True, stdin=subprocess.DEVNULL,
                          timeout=120, check=False)


def _file(live: Live, name: str) -> str:
    path = os.path.join(live.directory, name)
    if os.path.exists(path):
        os.unlink(path)
    return path


# Every mode, and every output form of nlstat's own. Options that change what the kernel is
# asked (the backend) are given as NLSTAT_BACKEND-free --backend options so that the load
# run asks the same.
CASES = [
    ["-a"],
    ["-anW"],
    ["-aenW"],
    ["-anop"],
    ["-tuwn", "-A", "inet6"],
    ["-xn"],
    ["-r"],
    ["-rn", "-A", "inet6"],
    ["-rnC"],
    ["-i"],
    ["-ie"],
    ["-gn"],
    ["-s"],
    ["-Mn"],
    ["-anp", "--json"],
    ["-an", "--ndjson"],
    ["-an", "--count"],
    ["-an", "--count", "--by", "proto,state,user,dev", "--json"],
    ["-ie", "--json"],
    ["-rn", "--json"],
    ["-gn", "--ndjson"],
    ["-s", "--json"],
    ["-Mn", "--json"],
    ["--backend=proc", "-anp"],
    ["--backend=proc", "-ie"],
    ["--backend=proc", "-rn"],
    ["--backend=netlink", "-aen"],
]


@pytest.mark.parametrize("argv", CASES, ids=[" ".join(case) for case in CASES])
def test_a_saved_run_replays_byte_for_byte(live: Live, argv: List[str]) -> None:
    path = _file(live, "run.nlstat")
    saved = save(live, argv, path)
    # -M lists nothing here: no masqueraded flows in a quiet namespace (its emptiness replays).
    assert saved.stdout or argv[0] == "-Mn", saved.stderr
    loaded = load(live, argv, path)
    assert (loaded.returncode, loaded.stderr) == (saved.returncode, saved.stderr)
    assert loaded.stdout == saved.stdout


def test_saving_changes_nothing_printed(live: Live) -> None:
    plain = live.ns.run([sys.executable, "-m", "nlstat", "-anW"], env=_environment())
    path = _file(live, "plain.nlstat")
    saved = save(live, ["-anW"], path)
    assert (saved.returncode, saved.stdout, saved.stderr) == (0, plain.stdout, plain.stderr)


def test_load_needs_neither_the_namespace_nor_root(live: Live) -> None:
    """Loaded by nobody in the host's namespace, where none of these sockets, routes or
    interfaces exist: the namespace's tables all the same."""
    for argv in (["-anep"], ["-rn"], ["-ie"]):
        path = _file(live, "elsewhere.nlstat")
        saved = save(live, argv, path)
        loaded = load(live, argv, path, inside=False)
        assert (loaded.returncode, loaded.stdout, loaded.stderr) == (
            saved.returncode, saved.stdout, saved.stderr)
    assert b"198.18.0.1:9000" in saved.stdout or argv != ["-anep"]


def test_json_header_is_the_recorded_one(live: Live) -> None:
    import json

    path = _file(live, "header.nlstat")
    saved = save(live, ["-an", "--json"], path)
    document = json.loads(load(live, ["-an", "--json"], path, inside=False).stdout)
    meta, _body = recording.read_file(path)
    inode = os.stat(f"/run/netns/{live.ns.name}").st_ino
    assert document["netns"] == {"inode": inode, "name": live.ns.name} == meta["netns"]
    assert document["host"] == socket.gethostname() == meta["host"]
    assert document["time"] == json.loads(saved.stdout)["time"]
    assert meta["argv"] == ["-an", "--json"]
    assert meta["kernel"] == os.uname().release
    assert isinstance(meta["nlstat"], str) and isinstance(meta["time"], float)


def test_the_file_holds_no_other_processes_file_names(live: Live) -> None:
    path = _file(live, "private.nlstat")
    save(live, ["-anp"], path)
    _meta, body = recording.read_file(path)
    # This interpreter holds its own source files open? Its executable is mapped, and every
    # process holds /dev/null or a pipe: none of those link targets is kept.
    assert b"/dev/null" not in body and b"pipe:[" not in body
    assert b"socket:[" in body


# -- bad input ----------------------------------------------------------------------------


def _refused(result: subprocess.CompletedProcess[bytes], path: str, words: str) -> None:
    assert result.returncode == 1
    assert result.stdout == b""
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert path in lines[0] and words in lines[0], lines[0]


@pytest.fixture(scope="module")
def recorded(live: Live) -> bytes:
    path = _file(live, "good.nlstat")
    assert save(live, ["-tn"], path).returncode == 0
    with open(path, "rb") as handle:
        return handle.read()


def _written(live: Live, name: str, data: bytes) -> str:
    path = _file(live, name)
    with open(path, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o644)
    return path


@pytest.mark.parametrize("keep", [0, 5, 20, 28, 60, -12, -1])
def test_a_truncated_file(live: Live, recorded: bytes, keep: int) -> None:
    path = _written(live, "cut.nlstat", recorded[:keep])
    _refused(load(live, ["-tn"], path), path, "truncated recording")


def test_a_damaged_file(live: Live, recorded: bytes) -> None:
    damaged = bytearray(recorded)
    damaged[-20] ^= 0xFF
    path = _written(live, "damaged.nlstat", bytes(damaged))
    _refused(load(live, ["-tn"], path), path, "damaged recording")


@pytest.mark.parametrize("content", [b"root:x:0:0:root:/root:/bin/bash\n", b"\x1f\x8b\x08\0" * 8,
                                     b"NLSTAT-RECORDIN"[:6] + b"x" * 40])
def test_a_foreign_file(live: Live, content: bytes) -> None:
    path = _written(live, "foreign.nlstat", content)
    _refused(load(live, ["-tn"], path), path, "not an nlstat recording")


def test_a_file_from_a_newer_format(live: Live, recorded: bytes) -> None:
    newer = recorded[:16] + struct.pack(">H", recording.VERSION + 1) + recorded[18:]
    path = _written(live, "newer.nlstat", newer)
    _refused(load(live, ["-tn"], path), path, f"format version {recording.VERSION + 1} is newer")


def test_a_missing_file(live: Live) -> None:
    path = os.path.join(live.directory, "absent.nlstat")
    _refused(load(live, ["-tn"], path), path, "cannot read")


def test_a_mode_the_file_did_not_record(live: Live, recorded: bytes) -> None:
    path = _written(live, "tcp-only.nlstat", recorded)
    # -tun: the tcp answer is there, the udp one is not: not even the tcp rows are printed.
    for argv in (["-tun"], ["-rn"], ["-tnp"], ["-s"], ["-i"], ["-gn"], ["-Mn"]):
        _refused(load(live, argv, path), path, "did not read")


def test_other_forms_of_the_same_questions(live: Live) -> None:
    """A file answers any run that asks the kernel the same: -tn's dumps serve -t, -tne,
    --json and --count as well as the live kernel does."""
    path = _file(live, "forms.nlstat")
    assert save(live, ["-tn"], path).returncode == 0
    for argv in (["-t"], ["-tne"], ["-tn", "--json"], ["-tn", "--count"]):
        live_run = live.ns.run([sys.executable, "-m", "nlstat", *argv], env=_environment())
        loaded = load(live, argv, path)
        assert loaded.returncode == 0 and loaded.stderr == b""
        if "--json" in argv:
            import json

            doc, live_doc = json.loads(loaded.stdout), json.loads(live_run.stdout)
            assert doc["records"] == live_doc["records"]
        else:
            assert loaded.stdout == live_run.stdout


def test_save_refuses_an_existing_file(live: Live) -> None:
    path = _written(live, "exists.nlstat", b"keep me")
    result = save(live, ["-tn"], path)
    _refused(result, path, "file exists")
    with open(path, "rb") as handle:
        assert handle.read() == b"keep me"
    replaced = live.ns.run([sys.executable, "-m", "nlstat", "-tn", "--save", path, "--overwrite"],
                           env=_environment())
    assert replaced.returncode == 0 and replaced.stdout
    assert load(live, ["-tn"], path).stdout == replaced.stdout


@pytest.mark.parametrize("where", ["no/such/directory/x.nlstat", "."])
def test_save_to_a_path_that_cannot_be_written(live: Live, where: str) -> None:
    path = os.path.join(live.directory, where)
    before = sorted(os.listdir(live.directory))
    _refused(save(live, ["-tn"], path), path.rstrip("/."), "")
    assert sorted(os.listdir(live.directory)) == before  # no temporary file left behind


def test_save_as_nobody_into_roots_directory(live: Live) -> None:
    python, tree = nobodys_nlstat(live.ns)
    path = os.path.join("/root", "nlstat-nobody.nlstat")
    result = live.ns.run([*AS_NOBODY, python, "-m", "nlstat", "-tn", "--save", path],
                         env=dict(_environment(), PYTHONPATH=tree))
    _refused(result, path, "cannot write")
    assert not os.path.exists(path)


@pytest.mark.parametrize("argv, words", [
    (["--save", "a", "--load", "b"], "--save and --load exclude each other"),
    (["--overwrite", "-tn"], "--overwrite goes with --save"),
    (["-c", "--load", "x"], "does not go with -c"),
    (["--watch", "--save", "x"], "does not go with --watch"),
    (["-ant", "--watch", "2", "--load", "x"], "does not go with --watch"),
    (["--netns", "x", "--load", "x"], "does not go with --netns"),
])
def test_options_that_do_not_go_together(argv: List[str], words: str) -> None:
    from tests.cli_support import run_nlstat

    outcome = run_nlstat(argv)
    assert outcome.status == 1 and outcome.stdout == b""
    assert outcome.stderr.decode().splitlines() == [outcome.stderr.decode().strip()]
    assert words in outcome.stderr.decode()


# -- the kernel's failures replay too -----------------------------------------------------

FAULTS = [
    ({"0": {"recv_errno": 105}}, ["-rn"]),  # ENOBUFS: auto reads /proc/net/route instead
    ({"4": {"socket_errno": 93}}, ["-an"]),  # no sock_diag at all: every table from /proc
    ({"4": {"protocol": 17, "errno": 2}}, ["-aun"]),  # no udp_diag: /proc/net/udp
    ({"0": {"request_errno": 1}}, ["--backend=netlink", "-rn"]),  # refused: error, status 1
    ({"0": {"request_errno": 1}}, ["--backend=netlink", "-ie"]),
]


@pytest.mark.parametrize("cues, argv", FAULTS, ids=[" ".join(case[1]) for case in FAULTS])
def test_a_failing_kernel_replays(live: Live, cues: Dict[str, Dict[str, int]],
                                  argv: List[str]) -> None:
    """Recorded through tests/faults.py's stand-in (the recorder takes whatever opened the
    netlink sockets): the refusals, errnos and fallbacks come back from the file."""
    import json

    path = _file(live, "faulty.nlstat")
    saved = live.ns.run([sys.executable, "-m", "tests.faults", json.dumps(cues), *argv,
                         "--save", path], env=_environment(), cwd=str(REPO))
    assert os.path.exists(path), saved.stderr
    loaded = load(live, argv, path)
    assert (loaded.returncode, loaded.stdout, loaded.stderr) == (
        saved.returncode, saved.stdout, saved.stderr)


@pytest.mark.parametrize("interrupted", [2, 99])
def test_an_interrupted_dump_replays_its_retries(live: Live, interrupted: int) -> None:
    """A route dump flagged NLM_F_DUMP_INTR is asked again; the file keeps each answer in
    order, so the replay retries alike: consistent on the third answer, or said to be
    inconsistent after three."""
    from nlstat.backends.netlink.routes import capture_routes

    answer = live.ns.call_inside(lambda: capture_routes(socket.AF_INET, 254))
    path = _file(live, "interrupted.nlstat")
    script = (
        "import sys; from tests import faults; "
        f"faults.install({{0: faults.Cue(answer={answer!r}, interrupted={interrupted})}}); "
        f"sys.argv[1:] = ['-rn', '--save', {path!r}]; "
        "from nlstat.__main__ import main; sys.exit(main())"
    )
    saved = live.ns.run([sys.executable, "-c", script], env=_environment(), cwd=str(REPO))
    assert saved.returncode == 0 and saved.stdout.count(b"\n") >= 3
    said = b"changed during every one of 3 dumps" in saved.stderr
    assert said == (interrupted > 2)
    player = recording.Player(path, "/proc")
    assert [len(answers) for answers in player.dumps.values()] == [3]
    loaded = load(live, ["-rn"], path)
    assert (loaded.returncode, loaded.stdout, loaded.stderr) == (0, saved.stdout, saved.stderr)


def test_a_save_killed_outright_leaves_no_file(tmp_path_factory: pytest.TempPathFactory) -> None:
    """`--save` writes into an unnamed file (O_TMPFILE) until the run has ended well, so a
    run killed outright leaves no temporary file beside the target: here one blocked on a
    stdout nobody reads (a captured /proc/net/tcp of 40,000 rows), then SIGKILLed."""
    import signal
    import time

    from tests.unit.test_pipeline import ROWS, tcp_table

    root = netns.write_proc_tree(tmp_path_factory.mktemp("proc"), {"tcp": tcp_table(ROWS)})
    directory = str(tmp_path_factory.mktemp("saved"))
    env = dict(_environment("proc"), NLSTAT_PROC_ROOT=root)
    process = subprocess.Popen(
        [sys.executable, "-m", "nlstat", "-ant", "--save", os.path.join(directory, "x.nlstat")],
        env=env, cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None
        assert process.stdout.read(1 << 16)  # the listing runs; the pipe fills behind it
        time.sleep(0.2)
        assert process.poll() is None  # blocked on stdout, its recording still open
        assert os.listdir(directory) == []
        process.send_signal(signal.SIGKILL)
        assert process.wait(60) == -signal.SIGKILL
        assert os.listdir(directory) == []
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
