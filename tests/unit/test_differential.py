"""tests/differential.py: the netstat, nlstat, netstat bracket and when it tries again."""

from __future__ import annotations

from typing import Iterator, List

from tests.differential import bracketed


def runs(*outputs: str) -> Iterator[str]:
    return iter(outputs)


def test_steady_at_once() -> None:
    netstat = runs("a", "a")
    settled: List[int] = []
    assert bracketed(lambda: next(netstat), lambda: "x", 3, settled.append) == ("a", "x", "a", True)
    assert settled == []


def test_moving_then_steady() -> None:
    netstat = runs("a", "b", "c", "c")
    nlstat = runs("x", "y")
    settled: List[int] = []
    got = bracketed(lambda: next(netstat), lambda: next(nlstat), 3, settled.append)
    assert got == ("c", "y", "c", True)
    assert settled == [1]


def test_judged_on_a_moving_namespace() -> None:
    netstat = runs("a", "b")
    got = bracketed(lambda: next(netstat), lambda: "b", 3,
                    judged=lambda before, mine, after: mine in (before, after))
    assert got == ("a", "b", "b", False)


def test_never_steady() -> None:
    netstat = runs("a", "b", "c", "d")
    settled: List[int] = []
    got = bracketed(lambda: next(netstat), lambda: "x", 2, settled.append)
    assert got == ("c", "x", "d", False)
    assert settled == [1]
