"""`--count` output: a plain aligned table, a JSON array, or one JSON object a line.

The table: a header of the key names in capitals and COUNT, then one row per group, the
largest count first, then ordered by the keys' values (aggregate.sorted_groups). Columns are
left-aligned and two blanks apart, COUNT right-aligned; an empty value (netstat's empty State
of an unconnected udp or unix socket, a key that does not apply, such as a unix socket's
port) prints as "-", so that every row has every column for awk. JSON keeps them as they
are: "" for netstat's empty state, null where the key does not apply, ports as numbers;
bytes of a name that are not UTF-8 are written as \\xNN.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence

from nlstat.aggregate import Group, Tally, Value, sorted_groups


def render(tally: Tally, output: str = "text") -> str:
    return render_groups(tally.keys, tally.groups(), output)


def render_groups(
    keys: Sequence[str],
    groups: Mapping[Group, int],
    output: str = "text",
    netns: Optional[Mapping[Value, object]] = None,
) -> str:
    """`netns`: the JSON value of each netns key's text (docs/schema.md: the header's
    {"inode": ..., "name": ...}); the table shows the text, the namespace's label."""
    rows = sorted_groups(groups)
    if output in ("json", "ndjson"):
        import json

        objects = netns or {}
        records: List[Dict[str, object]] = []
        for group, count in rows:
            record: Dict[str, object] = {
                key: objects.get(value, value) if key == "netns" else _valid(value)
                for key, value in zip(keys, group)
            }
            record["count"] = count
            records.append(record)
        if output == "ndjson":
            return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        return json.dumps(records, ensure_ascii=False) + "\n"
    header = [key.upper() for key in keys] + ["COUNT"]
    table = [[_text(value) for value in group] + [str(count)] for group, count in rows]
    widths = [max([len(header[column])] + [len(row[column]) for row in table])
              for column in range(len(header))]
    lines = []
    for row in [header] + table:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths)]
        cells.append(row[-1].rjust(widths[-1]))
        lines.append("  ".join(cells) + "\n")
    return "".join(lines)


def _valid(value: Value) -> Value:
    """JSON is UTF-8: bytes that are not (a program name, a unix path) become \\xNN."""
    if isinstance(value, str) and not value.isascii():
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value


def _text(value: Value) -> str:
    if value is None or value == "":
        return "-"
    return str(value)
