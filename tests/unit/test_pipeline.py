"""ordered_map and handed_off: two-process formatting must keep the chunk order, stop at the
dump's end, and turn the helper's failures into the parent's."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import Iterator

import pytest

from nlstat.errors import BackendUnavailable, NlstatError
from nlstat.pipeline import WARMUP_CHUNKS, handed_off, ordered_map


def numbered(count: int, stop_after_last: bool = True) -> Iterator[bytes]:
    for index in range(count):
        yield b"%d" % index + (b" last" if index == count - 1 else b"")
    if stop_after_last:
        raise AssertionError("read past the chunk that ended the dump")


def work(chunk: bytes) -> bytes:
    # Each result names the process that made it, so the test sees the work was shared.
    return chunk.split()[0] + b"@%d;" % os.getpid()


@pytest.mark.parametrize("count", [1, WARMUP_CHUNKS, WARMUP_CHUNKS + 1, 100, 1001])
def test_order_is_kept_and_the_end_is_honoured(count: int) -> None:
    results = list(ordered_map(numbered(count), work, lambda c: c.endswith(b"last")))
    assert [r.split(b"@")[0] for r in results] == [b"%d" % i for i in range(count)]
    pids = {r.split(b"@")[1] for r in results}
    if count > WARMUP_CHUNKS and (os.cpu_count() or 1) > 1:
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


def test_handed_off_reader_gone_is_a_broken_pipe() -> None:
    """`nlstat -anx | head -1`: the reader leaves, the helper dies of SIGPIPE as netstat
    would, and the parent gets a BrokenPipeError (app.py then dies of SIGPIPE too)."""
    read_end, write_end = os.pipe()
    parent = os.getpid()

    def leaving(chunk: bytes) -> bytes:
        if os.getpid() == parent and chunk.startswith(b"%d" % (WARMUP_CHUNKS - 1)):
            os.close(read_end)  # after the warm-up writes, before the helper's
        return chunk

    sink = os.fdopen(write_end, "wb")
    with pytest.raises(BrokenPipeError):
        handed_off(numbered(200, False), leaving, sink)
    with contextlib.suppress(BrokenPipeError):
        sink.close()


@pytest.mark.parametrize("backlog", [1, 3])
def test_adaptive_share_keeps_the_order_and_uses_both_processes(backlog: int) -> None:
    """With a backlog, the helper gets a chunk only while fewer than `backlog` of its results
    are outstanding; the parent formats the rest. Order and the end are kept either way."""
    results = list(ordered_map(numbered(300), work, lambda c: c.endswith(b"last"),
                               backlog=backlog))
    assert [r.split(b"@")[0] for r in results] == [b"%d" % i for i in range(300)]
    pids = [r.split(b"@")[1] for r in results]
    if (os.cpu_count() or 1) > 1:
        parent = b"%d;" % os.getpid()
        helper_share = sum(pid != parent for pid in pids)
        assert helper_share > 0  # the helper took part
        assert pids.count(parent) > WARMUP_CHUNKS  # and so did the parent, past the warm-up
