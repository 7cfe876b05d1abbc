"""ordered_map and handed_off: two-process formatting must keep the chunk order, stop at the
dump's end, and turn the helper's failures into the parent's."""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

from nlstat import pipeline
from nlstat.errors import BackendUnavailable, HelperDied, NlstatError
from nlstat.pipeline import WARMUP_CHUNKS, handed_off, ordered_map

REPO_ROOT = Path(__file__).resolve().parents[2]


def numbered(count: int, stop_after_last: bool = True) -> Iterator[bytes]:
    for index in range(count):
        yield b"%d" % index + (b" last" if index == count - 1 else b"")
    if stop_after_last:
        raise AssertionError("read past the chunk that ended the dump")


def work(chunk: bytes) -> bytes:
    # Each result names the process that made it, so the test sees the work was shared.
    return chunk.split()[0] + b"@%d;" % os.getpid()


@pytest.mark.parametrize("count", [1, WARMUP_CHUNKS, WARMUP_CHUNKS + 1, WARMUP_CHUNKS + 2, 100,
                                   1001])
def test_order_is_kept_and_the_end_is_honoured(count: int) -> None:
    results = list(ordered_map(numbered(count), work, lambda c: c.endswith(b"last")))
    assert [r.split(b"@")[0] for r in results] == [b"%d" % i for i in range(count)]
    pids = {r.split(b"@")[1] for r in results}
    # No helper is forked for a last chunk right after the warm-up (a filtered dump's bare
    # NLMSG_DONE): the parent formats it.
    if count > WARMUP_CHUNKS + 1 and (os.cpu_count() or 1) > 1:
        assert len(pids) == 2  # the helper did part of the work
    else:
        assert pids == {b"%d;" % os.getpid()}


def test_serial_when_asked() -> None:
    results = list(ordered_map(numbered(50), work, lambda c: c.endswith(b"last"), parallel=False))
    assert {r.split(b"@")[1] for r in results} == {b"%d;" % os.getpid()}


def test_source_without_end_marker_is_drained() -> None:
    results = list(ordered_map(numbered(40, False), work, lambda c: False))
    assert len(results) == 40


def test_helper_failure_is_an_error_not_a_hang() -> None:
    parent = os.getpid()

    def failing(chunk: bytes) -> bytes:
        if os.getpid() != parent:  # only the helper fails: its error must reach the parent
            raise ValueError("bad chunk")
        return chunk

    with pytest.raises(NlstatError, match="bad chunk"):
        list(ordered_map(numbered(60), failing, lambda c: c.endswith(b"last")))


def test_helper_refusal_reaches_the_parent_as_itself() -> None:
    """A BackendUnavailable raised in the helper is raised again in the parent with its errno,
    so that the caller falls back to /proc as if it had decoded the chunk itself."""
    parent = os.getpid()

    def refusing(chunk: bytes) -> bytes:
        if os.getpid() != parent:
            raise BackendUnavailable("route uses nexthop object 7", errno.EOPNOTSUPP)
        return chunk

    with pytest.raises(BackendUnavailable, match="nexthop object 7") as caught:
        list(ordered_map(numbered(60), refusing, lambda c: c.endswith(b"last")))
    assert caught.value.errno == errno.EOPNOTSUPP


@pytest.mark.parametrize("count", [0, 1, WARMUP_CHUNKS, WARMUP_CHUNKS + 1, 300])
def test_handed_off_writes_every_result_in_order(tmp_path: Path, count: int) -> None:
    """The helper writes its results to the sink itself; when handed_off returns they are all
    there, after what the parent wrote before and before what it writes next."""
    path = tmp_path / "out"
    with open(path, "wb") as sink:
        sink.write(b"header;")  # still buffered at the fork: must be written once
        handed_off(numbered(count, False), work, sink)
        sink.write(b"after;")
    fields = path.read_bytes().split(b";")[:-1]
    assert fields[0] == b"header" and fields[-1] == b"after"
    results = fields[1:-1]
    assert [r.split(b"@")[0] for r in results] == [b"%d" % i for i in range(count)]
    pids = {r.split(b"@")[1] for r in results}
    if count > WARMUP_CHUNKS and (os.cpu_count() or 1) > 1:
        assert b"%d" % os.getpid() in pids and len(pids) == 2
    elif count:
        assert pids == {b"%d" % os.getpid()}


def test_handed_off_helper_failure_is_an_error(tmp_path: Path) -> None:
    parent = os.getpid()

    def failing(chunk: bytes) -> bytes:
        if os.getpid() != parent:
            raise ValueError("bad line")
        return chunk

    with open(tmp_path / "out", "wb") as sink, pytest.raises(NlstatError, match="bad line"):
        handed_off(numbered(60, False), failing, sink)


def test_handed_off_reader_gone_is_a_broken_pipe(helpers: List[pipeline._Helper]) -> None:
    """`nlstat -anx | head`: the reader leaves while the helper writes, the helper dies of
    SIGPIPE as netstat would, and the parent gets a BrokenPipeError (app.py then dies of
    SIGPIPE too). The reader is another process that reads a little more than the parent
    wrote before the fork, so the parent's own writes succeed and the helper's fail."""
    read_end, write_end = os.pipe()
    reader = subprocess.Popen(["head", "-c", "200"], stdin=read_end, stdout=subprocess.DEVNULL)
    os.close(read_end)  # the reader holds the only read end: the helper must not inherit one
    parent = os.getpid()

    def big(chunk: bytes) -> bytes:
        if os.getpid() == parent:
            return chunk.split()[0] + b";"  # the warm-up: a few bytes, taken by the reader
        return b"x" * 20000

    sink = os.fdopen(write_end, "wb")
    try:
        with pytest.raises(BrokenPipeError):
            handed_off(numbered(200, False), big, sink)
    finally:
        with contextlib.suppress(BrokenPipeError):
            sink.close()
        reader.wait(60)
    [helper] = helpers
    assert helper.status is not None and os.WIFSIGNALED(helper.status)
    assert os.WTERMSIG(helper.status) == signal.SIGPIPE


@pytest.fixture
def helpers(monkeypatch: pytest.MonkeyPatch) -> List[pipeline._Helper]:
    """Every helper the test forks, recorded (the real class, its pid and wait status)."""
    made: List[pipeline._Helper] = []
    real_init = pipeline._Helper.__init__

    def init(self: pipeline._Helper, work: pipeline.Work,
             sink: Optional[pipeline.Sink] = None) -> None:
        real_init(self, work, sink)
        made.append(self)

    monkeypatch.setattr(pipeline._Helper, "__init__", init)
    return made


def killed_before_first_chunk(helpers: List[pipeline._Helper]) -> Iterator[bytes]:
    """A source that, once the helper is forked (after the warm-up), SIGKILLs it and waits
    until it is dead, before the parent sends it anything more: handed_off() forks before
    asking for chunk WARMUP_CHUNKS, so its helper gets nothing; ordered_map() looks at that
    chunk first (is it the last?), so its helper has that one chunk unread at most."""
    killed = False
    for index in range(200):
        if helpers and not killed:
            [helper] = helpers
            os.kill(helper.pid, signal.SIGKILL)
            wait_until_dead(helper.pid)
            killed = True
        yield b"%d" % index


def wait_until_dead(pid: int) -> None:
    """Until the process is a zombie (not reaped: the parent's waitpid must find it)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            if handle.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                return
        time.sleep(0.005)
    raise AssertionError(f"{pid} still alive")


def killing_itself_at(number: int) -> pipeline.Work:
    """Work that SIGKILLs the helper when it is given its `number`th chunk (1 = the first)."""
    parent = os.getpid()
    count = 0

    def work_or_die(chunk: bytes) -> bytes:
        nonlocal count
        if os.getpid() != parent:
            count += 1
            if count == number:
                os.kill(os.getpid(), signal.SIGKILL)
        return work(chunk)

    return work_or_die


# The stages of a listing: before the helper has a chunk, mid-stream (the parent still sending),
# and the last chunk (the parent has sent everything and only waits for results).
STAGES = ["before-first-chunk", "mid-stream", "while-parent-reads-results"]
CHUNKS = 200


def stage_work(stage: str) -> pipeline.Work:
    if stage == "mid-stream":
        return killing_itself_at(20)
    if stage == "while-parent-reads-results":
        return killing_itself_at(CHUNKS - WARMUP_CHUNKS)  # the last chunk: all are sent
    return work


@pytest.mark.parametrize("stage, backlog", [
    (stage, backlog) for stage in STAGES for backlog in (None, 3)
    # with a backlog the parent may format the last chunk itself: no stage to aim at
    if (stage, backlog) != ("while-parent-reads-results", 3)
])
def test_ordered_map_helper_killed_is_an_error(
    helpers: List[pipeline._Helper], stage: str, backlog: Optional[int]
) -> None:
    """A helper that dies (OOM killer, crash) is an error naming how it died, whatever the
    parent was doing: never output that stops midway without a word."""
    source = killed_before_first_chunk(helpers) if stage == "before-first-chunk" \
        else numbered(CHUNKS, False)
    results = []
    with pytest.raises(HelperDied, match=r"^formatting helper died \(killed by signal 9\)$") \
            as caught:
        # period=1000: every chunk but the warm-up goes to the helper, so the parent needs
        # its results; with a backlog the share adapts and the parent waits as it must.
        for result in ordered_map(source, stage_work(stage), period=1000, backlog=backlog):
            results.append(result.split(b"@")[0])
    assert caught.value.status == 70
    assert results == [b"%d" % i for i in range(len(results))]  # what came is in order
    assert len(results) < CHUNKS
    [helper] = helpers
    assert helper.status is not None and os.WTERMSIG(helper.status) == signal.SIGKILL


@pytest.mark.parametrize("stage", STAGES)
def test_handed_off_helper_killed_is_an_error(
    tmp_path: Path, helpers: List[pipeline._Helper], stage: str
) -> None:
    source = killed_before_first_chunk(helpers) if stage == "before-first-chunk" \
        else numbered(CHUNKS, False)
    with open(tmp_path / "out", "wb") as sink, \
            pytest.raises(HelperDied, match=r"killed by signal 9") as caught:
        handed_off(source, stage_work(stage), sink)
    assert caught.value.status == 70
    [helper] = helpers
    assert helper.status is not None and os.WTERMSIG(helper.status) == signal.SIGKILL


def test_helper_ended_by_ctrl_c_is_an_interrupt(helpers: List[pipeline._Helper]) -> None:
    """Ctrl-C reaches the whole process group: if the helper's death is seen before the
    parent's own SIGINT, the parent still ends as interrupted (app.py: killed by SIGINT)."""
    parent = os.getpid()

    def interrupted(chunk: bytes) -> bytes:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGINT)  # the helper only: SIG_DFL there
        return chunk

    with pytest.raises(KeyboardInterrupt):
        list(ordered_map(numbered(60, False), interrupted, period=1000))
    [helper] = helpers
    assert helper.status is not None and os.WTERMSIG(helper.status) == signal.SIGINT


def test_ctrl_c_caught_before_the_helper_reset_sigint_is_an_interrupt(
    helpers: List[pipeline._Helper],
) -> None:
    """A Ctrl-C that reaches the helper just after the fork, while it still has the parent's
    Python handler, is raised in it as KeyboardInterrupt at some later bytecode: the helper
    then ends by SIGINT as if the signal had come after the reset, and the parent is
    interrupted (it was "formatting helper failed: KeyboardInterrupt" or "exit status 0").
    The work raises it here, where the pending signal would."""
    parent = os.getpid()

    def interrupted(chunk: bytes) -> bytes:
        if os.getpid() != parent:
            raise KeyboardInterrupt
        return chunk

    with pytest.raises(KeyboardInterrupt):
        list(ordered_map(numbered(60, False), interrupted, period=1000))
    [helper] = helpers
    assert helper.status is not None and os.WTERMSIG(helper.status) == signal.SIGINT


# --- 64 KiB pipes: no deadlock --------------------------------------------------------------

SMALL_PIPES = r"""
import fcntl, os, sys
from nlstat import pipeline

pipeline._grow = lambda fd: None  # as when F_SETPIPE_SZ is refused (EPERM)
sizes = []
real_init = pipeline._Helper.__init__
def init(self, work, sink=None):
    real_init(self, work, sink)
    sizes.append(fcntl.fcntl(self.chunks_write, 1032))  # F_GETPIPE_SZ
    sizes.append(fcntl.fcntl(self.results_read, 1032))
pipeline._Helper.__init__ = init

chunk_size, result_size, backlog = (int(word) for word in sys.argv[1:4])
def work(chunk):
    return chunk[:8].ljust(result_size, b".")
chunks = (b"%08d" % i + b"-" * (chunk_size - 8) for i in range(60))
results = list(pipeline.ordered_map(chunks, work, period=1000, backlog=backlog or None))
assert [r[:8] for r in results] == [b"%08d" % i for i in range(60)], "order"
assert all(len(r) == result_size for r in results)
assert sizes == [65536, 65536], sizes
print("ok", len(results))
"""


@pytest.mark.parametrize("backlog", [0, 3])
@pytest.mark.parametrize("chunk_size, result_size", [(32 << 10, 70_000), (70_000, 100_000)])
def test_no_deadlock_when_the_pipes_cannot_grow(
    chunk_size: int, result_size: int, backlog: int
) -> None:
    """F_SETPIPE_SZ refused: 64 KiB pipes, chunks and results larger than half a pipe, the
    helper takes every chunk. It hung: the parent blocked writing a chunk while the helper
    blocked writing a result. A hang fails here through the timeout."""
    done = subprocess.run(
        [sys.executable, "-c", SMALL_PIPES, str(chunk_size), str(result_size), str(backlog)],
        capture_output=True, timeout=60, cwd=REPO_ROOT,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stdout == b"ok 60\n"


ADAPTIVE_CHUNKS = 300


@pytest.mark.parametrize("backlog", [1, 3])
def test_adaptive_share_follows_the_backlog(backlog: int) -> None:
    """With a backlog, the helper gets a chunk only while fewer than `backlog` of its results
    are outstanding (sent, not yet handed on); the parent formats the rest. Checked chunk by
    chunk, whatever the scheduling: the source notes how many results the consumer had when
    each chunk was read, which gives the number outstanding when the chunk was shared out.
    The helper holds its first chunk until the parent has formatted one past the warm-up (a
    pipe between them, no clock), so that both sides of the rule are taken in every run."""
    parent = os.getpid()
    parent_tag = b"%d;" % parent
    results: List[bytes] = []
    received: List[int] = []  # len(results) when chunk i was read from the source
    go_read, go_write = os.pipe()

    def source() -> Iterator[bytes]:
        for index in range(ADAPTIVE_CHUNKS):
            received.append(len(results))
            yield b"%d" % index + (b" last" if index == ADAPTIVE_CHUNKS - 1 else b"")
        raise AssertionError("read past the chunk that ended the dump")

    def held(chunk: bytes) -> bytes:
        index = int(chunk.split()[0])
        if os.getpid() == parent:
            if index >= WARMUP_CHUNKS:
                os.write(go_write, b"x")
        elif index == WARMUP_CHUNKS:  # the helper's first chunk (none are outstanding)
            waiting = select.poll()
            waiting.register(go_read, select.POLLIN)
            waiting.poll(60_000)  # a guard only: the rule check below fails if it expires
        return work(chunk)

    try:
        for result in ordered_map(source(), held, lambda c: c.endswith(b"last"),
                                  backlog=backlog):
            results.append(result)
    finally:
        os.close(go_read)
        os.close(go_write)
    assert [r.split(b"@")[0] for r in results] == [b"%d" % i for i in range(ADAPTIVE_CHUNKS)]
    if (os.cpu_count() or 1) < 2:
        return  # no helper: the parent formats everything
    to_helper = [r.split(b"@")[1] != parent_tag for r in results]
    assert not any(to_helper[:WARMUP_CHUNKS])
    for index in range(WARMUP_CHUNKS, ADAPTIVE_CHUNKS):
        outstanding = sum(to_helper[received[index]:index])
        assert to_helper[index] == (outstanding < backlog), (index, outstanding)
    shared = to_helper[WARMUP_CHUNKS:]
    assert any(shared) and not all(shared)  # both formatted chunks past the warm-up


@pytest.mark.parametrize("kind", ["ordered_map", "handed_off"])
def test_helper_error_seen_while_the_chunks_pipe_is_full(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str
) -> None:
    """64 KiB pipes (F_SETPIPE_SZ refused) and larger chunks: every send fills the chunks pipe
    and polls, collecting results meanwhile. The helper's error frame collected there is the
    error: writing on met EPIPE with the report already read, and the parent said "formatting
    helper died (exit status 0)" (nine runs in ten). Repeated: which of the two the parent
    sees first is the scheduler's choice."""
    monkeypatch.setattr(pipeline, "_grow", lambda fd: None)
    parent = os.getpid()

    def failing(chunk: bytes) -> bytes:
        if os.getpid() != parent:
            raise ValueError("bad chunk")
        return chunk[:8]

    for _ in range(10):
        chunks = (b"%08d" % i + b"-" * 70_000 for i in range(40))
        with pytest.raises(NlstatError, match="failed: ValueError: bad chunk$"):
            if kind == "ordered_map":
                list(ordered_map(chunks, failing, period=1000))
            else:
                with open(tmp_path / "out", "wb") as sink:
                    handed_off(chunks, failing, sink)


# --- the command line: a crafted /proc, the real nlstat under tests/pipeline_hooks.py --------

HOOKS = REPO_ROOT / "tests" / "pipeline_hooks.py"
UNIX_TITLE = "Num       RefCount Protocol Flags    Type St Inode Path\n"
TCP_TITLE = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid"
             "  timeout inode\n")
# Enough rows that the helper starts and has many chunks (64 KiB each) to work on.
ROWS = 40_000


def unix_table(count: int) -> str:
    return UNIX_TITLE + "".join(
        f"{i:016x}: 00000002 00000000 00000000 0001 01 {100000 + i} /run/s{i}.sock\n"
        for i in range(count))


def tcp_table(count: int) -> str:
    return TCP_TITLE + "".join(
        f"{i:4d}: 0100007F:{1024 + i % 60000:04X} 0100007F:1F90 01 00000000:00000000 "
        f"00:00000000 00000000     0        0 {100000 + i} 1 0000000000000000 20 4 30 10 -1\n"
        for i in range(count))


@pytest.fixture(scope="module")
def proc_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    from tests import netns

    root = tmp_path_factory.mktemp("proc")
    return netns.write_proc_tree(root, {"unix": unix_table(ROWS), "tcp": tcp_table(ROWS)})


def hooked(proc_root: str, args: List[str], **settings: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), NLSTAT_BACKEND="proc",
               NLSTAT_PROC_ROOT=proc_root, LC_ALL="C", **settings)
    return subprocess.Popen([sys.executable, str(HOOKS), *args], env=env, cwd="/",
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


# -anx: handed_off (/proc/net/unix); -ant: ordered_map (/proc/net/tcp text chunks).
MODES = ["-anx", "-ant"]


@pytest.mark.parametrize("kill_at", ["0", "5"], ids=["before-first-chunk", "mid-stream"])
@pytest.mark.parametrize("mode", MODES)
def test_cli_helper_killed_says_so(proc_root: str, mode: str, kill_at: str) -> None:
    process = hooked(proc_root, [mode], NLSTAT_TEST_KILL_AT=kill_at)
    stdout, stderr = process.communicate(timeout=120)
    assert stderr == b"nlstat: formatting helper died (killed by signal 9)\n"
    assert process.returncode == 70
    assert 0 < stdout.count(b"\n") < ROWS  # the rows before it: the status says they are short


@pytest.mark.parametrize("mode", MODES)
def test_cli_reader_gone_after_the_helper_started_writing(proc_root: str, mode: str) -> None:
    """`nlstat -anx | head -c N`, N past what the parent wrote before the fork: the reader
    leaves while the helper's output flows. Status 141 as netstat's, nothing on stderr."""
    process = hooked(proc_root, [mode], NLSTAT_TEST_REPORT="1")
    assert process.stdout is not None and process.stderr is not None
    # The warm-up is 4 chunks of 64 KiB of /proc text; the whole output is over 2 MB.
    taken = process.stdout.read(1 << 20)
    process.stdout.close()
    stderr = process.stderr.read()
    process.wait(120)
    lines = stderr.splitlines()
    hooks = [line for line in lines if line.startswith(b"nlstat-test: ")]
    assert [line for line in lines if line not in hooks] == []  # no traceback, no word
    assert process.returncode == -signal.SIGPIPE  # killed by SIGPIPE: a shell says 141
    assert len(taken) == 1 << 20
    kind = b"handed_off" if mode == "-anx" else b"ordered_map"
    assert hooks[0].startswith(b"nlstat-test: fork " + kind)
    if mode == "-anx":  # the helper wrote stdout: it died of SIGPIPE, the parent followed
        assert any(line.endswith(b" status %d" % signal.SIGPIPE) for line in hooks), hooks


@pytest.mark.parametrize("mode", MODES)
def test_cli_stdout_full_after_the_helper_started_is_a_write_error(
    proc_root: str, mode: str, tmp_path: Path
) -> None:
    """A file that stops growing mid-listing (RLIMIT_FSIZE: EFBIG past 1 MiB, well after the
    warm-up's output): the same one line and status 1 as a write error in the parent, also
    when the helper was the writer (-anx), not "formatting helper failed: OutputError"."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))

    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), NLSTAT_BACKEND="proc",
               NLSTAT_PROC_ROOT=proc_root, LC_ALL="C", NLSTAT_TEST_REPORT="1")
    with open(tmp_path / "out", "wb") as out:
        done = subprocess.run([sys.executable, str(HOOKS), mode], env=env, cwd="/", stdout=out,
                              stderr=subprocess.PIPE, preexec_fn=limit, timeout=120)
    lines = done.stderr.splitlines()
    hooks = [line for line in lines if line.startswith(b"nlstat-test: ")]
    kind = b"handed_off" if mode == "-anx" else b"ordered_map"
    assert hooks and hooks[0].startswith(b"nlstat-test: fork " + kind), lines
    assert [line for line in lines if line not in hooks] == [
        b"nlstat: write error: " + os.strerror(errno.EFBIG).encode()
    ]
    assert done.returncode == 1
    assert (tmp_path / "out").stat().st_size == 1 << 20


def helper_pid(process: subprocess.Popen[bytes]) -> int:
    assert process.stderr is not None
    line = process.stderr.readline()
    assert line.startswith(b"nlstat-test: fork "), line
    return int(line.split()[-1])


def gone(pid: int) -> bool:
    """Dead: no such process, or a zombie waiting for init to reap it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("mode", MODES)
def test_sigterm_during_a_listing_leaves_no_helper(proc_root: str, mode: str) -> None:
    """SIGTERM to nlstat while its helper is blocked writing a stdout nobody reads: the helper
    dies with it (PR_SET_PDEATHSIG), it does not stay behind holding the pipe."""
    process = hooked(proc_root, [mode], NLSTAT_TEST_REPORT="1")
    pid = 0
    try:
        assert process.stdout is not None
        assert len(process.stdout.read(1 << 20)) == 1 << 20  # past the parent's warm-up
        pid = helper_pid(process)
        assert not gone(pid)
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == -signal.SIGTERM
        deadline = time.monotonic() + 30
        while not gone(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert gone(pid), f"helper {pid} outlived nlstat"
    finally:
        process.kill()
        if pid and not gone(pid):
            os.kill(pid, signal.SIGKILL)
        process.communicate()
