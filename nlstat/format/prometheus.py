"""The Prometheus text exposition format (version 0.0.4), written without prometheus_client.

`--prometheus` is a whole process per scrape, and importing prometheus_client (with the
http.server, email and threading modules it pulls in) cost 13 ms of its ~0.08 s at 100k
sockets (docs/performance.md): the issue's "unless you measure it too slow". The bytes are
those prometheus_client's generate_latest() writes for the same metric families (a test
compares the two for every metric and odd label values, and promtool checks the result):

    # HELP <name> <help, with \\ and newline escaped>
    # TYPE <name> gauge|counter
    <name>{<label>="<value>",...} <value>

with the labels of a sample in the order of their names, label values with \\, newline
and " escaped, a counter's name ending in _total, and values written as Go writes floats.
"""

from __future__ import annotations

import math
from typing import Iterable, List, NamedTuple, Sequence, Tuple

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Family(NamedTuple):
    """One metric: its name (a counter's without _total), type, help, label names, and
    samples (label values in the order of `labels`, value)."""

    name: str
    kind: str  # "gauge" or "counter"
    help: str
    labels: Tuple[str, ...]
    samples: List[Tuple[Sequence[str], float]]


def exposition(families: Iterable[Family]) -> bytes:
    out: List[str] = []
    for family in families:
        name = family.name + "_total" if family.kind == "counter" else family.name
        text = family.help.replace("\\", "\\\\").replace("\n", "\\n")
        out.append(f"# HELP {name} {text}\n# TYPE {name} {family.kind}\n")
        order = sorted(range(len(family.labels)), key=family.labels.__getitem__)
        for values, value in family.samples:
            if order:
                pairs = ",".join(
                    f'{family.labels[index]}="{_escaped(values[index])}"' for index in order
                )
                out.append(f"{name}{{{pairs}}} {go_float(value)}\n")
            else:
                out.append(f"{name} {go_float(value)}\n")
    return "".join(out).encode("utf-8")


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def go_float(value: float) -> str:
    """A sample value as Prometheus clients write it: Python's shortest repr, except that a
    number of more than 7 integer digits turns to Go's exponent form (1.234567e+06)."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    integer_digits = text.find(".")
    if value <= 0 or integer_digits <= 6:
        return text
    digits = (text[:integer_digits] + text[integer_digits + 1 :]).rstrip("0") or "0"
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{mantissa}e+{integer_digits - 1:02d}"
