"""Under churn, every listing shows each socket once and never leaves out one that was there
throughout (issue 12, docs/reliability.md).

A test namespace holds 10 long-lived tcp connections and 10 unix connections while batches of
200 tcp and 200 unix connections open and close (tests/churn.py, bounded by time and by the
run); `nlstat -ant`, `-an`, `-antp` and `-anx` run 3 times each under both backends, and so do
`-an --ndjson`, `-ant --json`, `-ant --count` and the passes of `-c -ant`. The
longer version, with netstat as the control, is benchmarks/churn.py.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.churn import MODES, Churn, Keep, measure
from tests.netns import Namespace, netns_fixture

churn_ns = netns_fixture(prefix="nlst-churn")


@pytest.fixture(scope="module")
def churning(churn_ns: Namespace) -> Iterator[Keep]:
    churn = Churn(churn_ns, 120)
    with churn as keep:
        yield keep
    assert churn.batches > 0  # connections really came and went during the runs


@pytest.mark.parametrize("backend", ["proc", "netlink"])
@pytest.mark.parametrize("mode", MODES)
def test_each_socket_once_and_long_lived_ones_always(
    churn_ns: Namespace, churning: Keep, backend: str, mode: str
) -> None:
    figures = measure(churn_ns, "nlstat", backend, mode, 3, churning)
    assert figures.failures == []
    assert figures.rows > 0
