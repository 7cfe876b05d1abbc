"""nlstat's own options whose values need more than storing: --count, --by, --prometheus,
--serve, --serve-max-age, --max-series, --watch, --ticks.

cli.parse() walks argv the way netstat does and leaves the own options without a Query field
of their name in Query.extras, in the order they were given; this turns them into Query
fields and checks them. A bad value is one line on
stderr and status 1 (netstat's status for a bad value it checks itself), nothing on stdout.
"""

from __future__ import annotations

import math
from typing import List, Tuple, Union

from nlstat.query import MODE_COUNT, MODE_METRICS, MODE_SOCKETS, MODE_WATCH, Query

DEFAULT_SERVE_ADDRESS = "127.0.0.1"
DEFAULT_WATCH_SECONDS = 1.0
# --watch: at most a day between ticks; --ticks: at most a billion.
WATCH_SECONDS_MAX = 86400.0
TICKS_MAX = 1_000_000_000


def apply(query: Query) -> Union[Query, str]:
    """The query with the own options of its extras applied, or the error line."""
    from nlstat.aggregate import DEFAULT_KEYS, KEYS, parse_keys

    output = query.output
    count = False
    by: Tuple[str, ...] = ()
    metrics = ""
    address, port = DEFAULT_SERVE_ADDRESS, 0
    max_age = query.serve_cache_seconds
    series_limit = query.series_limit
    watch = 0.0
    ticks = 0
    for name, text in query.extras:
        if name == "count":
            count = True
        elif name == "by":
            try:
                by = parse_keys(text)
            except ValueError as err:
                return f"nlstat: unknown --by key '{err}' (choose {', '.join(KEYS)})"
        elif name == "prometheus":
            metrics = "prometheus"
        elif name == "serve":
            parsed = parse_listen(text)
            if parsed is None:
                return f"nlstat: bad --serve value '{text}' (expected [ADDR:]PORT)"
            metrics = "serve"
            address, port = parsed
        elif name == "serve-max-age":
            try:
                max_age = float(text)
            except ValueError:
                max_age = -1.0
            if not (0 <= max_age <= 86400) or math.isnan(max_age):
                return f"nlstat: bad --serve-max-age value '{text}' (seconds, 0 to 86400)"
        elif name == "max-series":
            if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 10_000_000:
                return f"nlstat: bad --max-series value '{text}' (a number from 1)"
            series_limit = int(text)
        elif name == "watch":
            parsed_seconds = watch_seconds(text)
            if parsed_seconds is None:
                return (f"nlstat: bad --watch value '{text}' (seconds between ticks, more "
                        f"than 0 and at most {WATCH_SECONDS_MAX:.0f})")
            watch = parsed_seconds
        elif name == "ticks":
            if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= TICKS_MAX:
                return f"nlstat: bad --ticks value '{text}' (a number from 1)"
            ticks = int(text)

    if ticks and not watch:
        return "nlstat: --ticks needs --watch"
    if watch:
        problem = _watch_conflict(query, count, metrics)
        if problem:
            return problem
    if count and metrics:
        return "nlstat: --count and --" + metrics + " do not go together"
    if (count or metrics) and query.mode != MODE_SOCKETS:
        what = "--count" if count else "--" + metrics
        return f"nlstat: {what} counts sockets; it does not go with -r, -i, -s or -M"
    if by and not (count or metrics):
        return "nlstat: --by needs --count, --prometheus or --serve"
    if metrics and output != "text":
        return f"nlstat: --{metrics} prints Prometheus's format; it does not go with --{output}"
    changes = {"output": output, "serve_cache_seconds": max_age, "series_limit": series_limit}
    if watch:
        changes.update(mode=MODE_WATCH, watch_seconds=watch, watch_ticks=ticks)
    elif count:
        changes.update(mode=MODE_COUNT, count_by=by or DEFAULT_KEYS)
    elif metrics:
        labels: List[str] = list(DEFAULT_KEYS)
        labels += [key for key in by if key not in labels]
        if (query.all_netns or query.netns is not None) and "netns" not in labels:
            labels.append("netns")  # every series says which namespace it counts
        changes.update(
            mode=MODE_METRICS,
            metrics=metrics,
            metrics_by=tuple(labels),
            serve_address=address,
            serve_port=port,
        )
    return query._replace(**changes)  # type: ignore[arg-type]


def watch_seconds(text: str) -> Union[float, None]:
    """--watch's value: "" (no value given) is the default; else seconds in (0, a day]."""
    if text == "":
        return DEFAULT_WATCH_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        return None
    if not 0 < seconds <= WATCH_SECONDS_MAX:  # also refuses nan
        return None
    return seconds


def _watch_conflict(query: Query, count: bool, metrics: str) -> str:
    """Why --watch cannot run with the rest of the command line ("" when it can)."""
    if count or metrics:
        return "nlstat: --watch does not go with --" + ("count" if count else metrics)
    if query.mode != MODE_SOCKETS:
        return "nlstat: --watch watches sockets; it does not go with -r, -i, -s or -M"
    if query.continuous:
        return "nlstat: --watch and -c exclude each other (--watch repeats already)"
    if query.output == "json":
        return "nlstat: --watch prints a stream of changes: use --ndjson, not --json"
    if query.all_netns:
        return "nlstat: --watch does not go with --all-netns (use --netns NAME)"
    if query.groups:
        return "nlstat: --watch does not watch multicast groups (-g)"
    return ""


def parse_listen(text: str) -> Union[Tuple[str, int], None]:
    """"9100" -> ("127.0.0.1", 9100); "0.0.0.0:9100"; "[::1]:9100"; None when malformed."""
    host, colon, port_text = text.rpartition(":")
    if not colon:
        host = DEFAULT_SERVE_ADDRESS
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not (port_text.isascii() and port_text.isdigit()) or not 1 <= int(port_text) <= 65535:
        return None
    if not host:
        return None
    import _socket

    for family in (_socket.AF_INET, _socket.AF_INET6):
        try:
            _socket.inet_pton(family, host)
            return host, int(port_text)
        except OSError:
            continue
    return None
