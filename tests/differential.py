"""The run-compare-retry scaffold of the live differential tests: netstat, nlstat, netstat.

A live namespace moves while the programs run (interface counters, IPv6 route reference
counts, SNMP counters, sockets). When netstat's two runs around nlstat's agree, nothing moved
and nlstat's run can be judged against them; when they differ, the three runs are made again
after the namespace settles. groups, interfaces (through links_support.compare_runs), routes
and statistics use it.
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple, TypeVar

Reference = TypeVar("Reference")
Candidate = TypeVar("Candidate")


def bracketed(
    reference: Callable[[], Reference],
    candidate: Callable[[], Candidate],
    attempts: int,
    settle: Callable[[int], None] = lambda attempt: None,
    judged: Optional[Callable[[Reference, Candidate, Reference], bool]] = None,
) -> Tuple[Reference, Candidate, Reference, bool]:
    """reference(), candidate(), reference() again, at most `attempts` times.

    Stops when the two reference runs agree (steady), or when `judged(before, got, after)` says
    the candidate can be judged anyway (it matches one of them, say); `settle(n)` runs before
    the n-th new try (n = 1, 2, ...). Returns (before, got, after, steady) of the last try.
    """
    for attempt in range(attempts):
        if attempt:
            settle(attempt)
        before = reference()
        got = candidate()
        after = reference()
        if before == after:
            return before, got, after, True
        if judged is not None and judged(before, got, after):
            break
    return before, got, after, False
