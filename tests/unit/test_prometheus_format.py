"""nlstat's own exposition writer (format/prometheus.py) against prometheus_client's.

The writer replaced prometheus_client on the --prometheus/--serve paths (its import was too
slow for a one-shot scrape): for the same metric families, the bytes must be the ones
prometheus_client's generate_latest() writes, odd label values and float forms included.
"""

from __future__ import annotations

import random
from typing import Iterator, List, Sequence, Tuple

import pytest

from nlstat.format.prometheus import Family, exposition, go_float
from nlstat.metrics import Snapshot, families

prometheus_client = pytest.importorskip("prometheus_client")

ODD_VALUES = ["", "ESTABLISHED", 'say "hi"', "back\\slash", "new\nline", "\\n", "ünïcode",
              "\\xff", "tab\tx", "{}=,"]
NUMBERS = [0, 1, 7, 99020, 999999, 1000000, 1234567, 12345678.5, 100000000, 0.0123, 1e-7,
           1.5e22, 123456789012345678901234.0, 2 ** 53, -3, -1234567.0, float("inf"),
           float("-inf"), float("nan")]


def library_bytes(metrics: Sequence[Family]) -> bytes:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    class Collector:
        def describe(self) -> List[object]:
            return []

        def collect(self) -> Iterator[object]:
            for family in metrics:
                kind = GaugeMetricFamily if family.kind == "gauge" else CounterMetricFamily
                if family.labels:
                    built = kind(family.name, family.help, labels=list(family.labels))
                    for values, value in family.samples:
                        built.add_metric(list(values), value)
                else:
                    ((_values, value),) = family.samples
                    built = kind(family.name, family.help, value=value)
                yield built

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())  # type: ignore[arg-type]
    result: bytes = generate_latest(registry)
    return result


def test_values_are_written_as_the_library_writes_them() -> None:
    from prometheus_client.utils import floatToGoString

    rng = random.Random(14)
    numbers = NUMBERS + [rng.uniform(0, 10 ** rng.randint(0, 25)) for _ in range(2000)]
    numbers += [rng.randint(0, 10 ** 12) for _ in range(2000)]
    for number in numbers:
        assert go_float(number) == floatToGoString(number), number


def test_families_with_odd_labels_match_the_library() -> None:
    rng = random.Random(10)
    samples: List[Tuple[Sequence[str], float]] = []
    for value in ODD_VALUES:
        samples.append(([value, rng.choice(ODD_VALUES), str(rng.randint(0, 65535))],
                        rng.choice(NUMBERS[:14])))
    metrics = [
        # label names out of alphabetical order: the library writes them sorted
        Family("nlstat_sockets", "gauge", "Help with \\ and\nnewline and \"quotes\"",
               ("state", "proto", "lport"), samples),
        Family("nlstat_empty", "gauge", "no samples", ("proto",), []),
        Family("nlstat_series_dropped", "gauge", "plain", (), [((), 3)]),
        Family("nlstat_scrape_duration_seconds", "gauge", "plain", (), [((), 0.012345)]),
        Family("nlstat_kernel_dumps", "counter", "a counter", (), [((), 12)]),
    ]
    assert exposition(metrics) == library_bytes(metrics)


@pytest.mark.parametrize("by", [(), ("lport",), ("user", "program")])
def test_snapshot_families_match_the_library(by: Tuple[str, ...]) -> None:
    labels = ("proto", "state") + by
    extra: Tuple[object, ...] = tuple("x\"\\\n" if key != "lport" else 443 for key in by)
    groups = {
        ("tcp", "ESTABLISHED") + extra: 99020,  # type: ignore[operator]
        ("tcp6", "LISTEN") + extra: 3,  # type: ignore[operator]
        ("udp", "") + tuple(None for _ in by): 7,
        ("unix", "CONNECTED") + extra: 1234567,  # type: ignore[operator]
    }
    listeners = {("tcp", "0.0.0.0", 22): (0, 128), ("tcp6", "::", 443): (5, 4096)}
    snapshot = Snapshot(groups, listeners, 0.0421, 100.0, 3)  # type: ignore[arg-type]
    for limit in (10000, 3, 0):
        metrics, dropped = families(snapshot, labels, limit)
        assert exposition(metrics) == library_bytes(metrics)
        # past the limit: groups beyond it, then both series of each listener left out
        assert dropped == {10000: 0, 3: 1 + 2 * 2, 0: 4 + 2 * 2}[limit]
