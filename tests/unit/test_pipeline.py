"""ordered_map: two-process formatting must keep the chunk order and stop at the dump's end."""

from __future__ import annotations

import errno
import os
from typing import Iterator

import pytest

from nlstat.errors import BackendUnavailable, NlstatError
from nlstat.pipeline import WARMUP_CHUNKS, ordered_map


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
