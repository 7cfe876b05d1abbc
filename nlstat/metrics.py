"""Socket metrics for Prometheus: one snapshot of the kernel's sockets, and its exposition.

A snapshot is the counts of `--count` over every socket (as `netstat -a` lists them: all
states, the tables chosen by -t/-u/-w/-x/-4/-6, all of them by default), grouped by proto,
state and the --by keys, plus every tcp listener's accept queue and backlog. It is rendered
as metric families (families()) in the text exposition format by format/prometheus.py (the
bytes prometheus_client writes, without its import: see there), so nothing is kept between
scrapes but the last answer. Metric names and labels: docs/metrics.md.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Dict, List, NamedTuple, Optional, Protocol, Sequence, Tuple

from nlstat.aggregate import Group, with_value
from nlstat.backends.sockets import SocketSource
from nlstat.env import Environment
from nlstat.errors import BackendUnavailable
from nlstat.format.prometheus import Family
from nlstat.format.sockets import LABELS
from nlstat.query import Query
from nlstat.resolve import Names

if TYPE_CHECKING:
    from nlstat.netns_run import Gatherer

# (proto, local address, local port[, netns]) -> (accept queue length, backlog), summed over
# the sockets of a SO_REUSEPORT group (they share the address and port).
ListenerKey = Tuple[object, ...]


class Snapshot(NamedTuple):
    groups: Dict[Group, int]
    listeners: Dict[ListenerKey, Tuple[int, int]]
    duration: float  # seconds spent dumping and counting
    finished: float  # time.monotonic() at the end
    dumps: int  # snapshots taken by this process so far, this one included


class SnapshotSource(Protocol):
    """What --prometheus and --serve take snapshots from: Sampler, NetnsSampler."""

    failed: int  # the status a --prometheus run ends with

    def take(self) -> Snapshot: ...

    def close(self) -> None: ...


class Sampler:
    """Takes snapshots for one query; keeps the netlink socket and the name caches."""

    def __init__(self, query: Query, env: Environment) -> None:
        # Metrics count every state, listeners included, whatever -a/-l say.
        self.query = query._replace(all=True, listening=False)
        self.env = env
        self.source = SocketSource(self.query, env)
        self.names = Names(True, True, query.numeric_users)
        self.dumps = 0
        self.failed = 0  # the status a --prometheus run ends with
        self._netns: Optional[str] = None

    def close(self) -> None:
        self.source.close()

    def take(self) -> Snapshot:
        from nlstat.modes.count import new_tally, tally_sockets

        started = time.monotonic()
        query = self.query
        # The -p map's notice ("Not all processes could be identified") once, not per scrape.
        tally = new_tally(query, self.env if not self.dumps else self._quiet(), query.metrics_by,
                          self.names)
        tally_sockets(query, self.env, self.source, tally)
        listeners: Dict[ListenerKey, Tuple[int, int]] = {}
        if query.wants("tcp"):
            listeners = self._listeners()
        groups = tally.groups()
        if "netns" in query.metrics_by:
            label = self.netns_label()
            groups = with_value(groups, query.metrics_by, "netns", label)
            listeners = {key + (label,): value for key, value in listeners.items()}
        finished = time.monotonic()
        self.dumps += 1
        return Snapshot(groups, listeners, finished - started, finished, self.dumps)

    def netns_label(self) -> str:
        """The namespace listed, as --all-netns labels it (looked up once)."""
        if self._netns is None:
            from nlstat.namespaces import own

            self._netns = own().label
        return self._netns

    def _quiet(self) -> Environment:
        import copy

        quiet = copy.copy(self.env)
        quiet.warn = lambda line: None  # type: ignore[method-assign]
        return quiet

    def _listeners(self) -> Dict[ListenerKey, Tuple[int, int]]:
        import _socket

        from nlstat.backends.netlink.listeners import read_listeners

        query = self.query
        try:
            found = read_listeners(self.source._sockdiag().netlink)
        except BackendUnavailable as err:
            self.env.trace(f"no listen queue metrics: sock_diag refused ({err})")
            return {}
        listeners: Dict[ListenerKey, Tuple[int, int]] = {}
        for listener in found:
            if listener.family == _socket.AF_INET and not query.wants_inet_v4:
                continue
            if listener.family == _socket.AF_INET6 and not query.wants_inet_v6:
                continue
            key = (LABELS[("tcp", listener.family)], listener.address, listener.port)
            queue, backlog = listeners.get(key, (0, 0))
            listeners[key] = (queue + listener.queue, backlog + listener.backlog)
        return listeners


def _label(value: object) -> str:
    """A label value: "" for none; bytes that are not UTF-8 (a program name) as \\xNN."""
    if value is None:
        return ""
    text = str(value)
    if not text.isascii():
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


def families(
    snapshot: Snapshot, labels: Tuple[str, ...], series_limit: int
) -> Tuple[List[Family], int]:
    """The metric families of one snapshot, and how many series --max-series left out (the
    largest counts are kept: sockets first, then the fullest listen queues)."""
    budget = series_limit
    groups = sorted(snapshot.groups.items(), key=lambda item: -item[1])
    kept = groups[:budget]
    dropped = len(groups) - len(kept)
    sockets = Family(
        "nlstat_sockets", "gauge",
        "Sockets per protocol and state, as netstat -a lists them (state names as netstat "
        "prints them; empty for unconnected udp and unix sockets)",
        labels, [([_label(value) for value in group], count) for group, count in kept],
    )
    budget -= len(kept)

    listeners = sorted(snapshot.listeners.items(), key=lambda item: -item[1][0])
    room = max(budget // 2, 0)
    lengths: List[Tuple[Sequence[str], float]] = []
    limits: List[Tuple[Sequence[str], float]] = []
    for key, (queue, backlog) in listeners[:room]:
        names = [_label(value) for value in key]
        lengths.append((names, queue))
        limits.append((names, backlog))
    dropped += 2 * max(len(listeners) - room, 0)
    # The listeners' labels: their address, and the namespace when the sockets have it.
    listener_labels = ("proto", "laddr", "lport") + (("netns",) if "netns" in labels else ())
    return [
        sockets,
        Family("nlstat_listen_queue_length", "gauge",
               "Connections waiting in a tcp listener's accept queue", listener_labels, lengths),
        Family("nlstat_listen_queue_max", "gauge",
               "The most connections a tcp listener's accept queue holds (its listen() "
               "backlog)", listener_labels, limits),
        Family("nlstat_series_dropped", "gauge",
               "Series left out of this scrape by --max-series", (), [((), dropped)]),
        Family("nlstat_scrape_duration_seconds", "gauge",
               "Seconds spent dumping the kernel's sockets and counting them for this scrape",
               (), [((), snapshot.duration)]),
        Family("nlstat_kernel_dumps", "counter",
               "Socket snapshots taken from the kernel by this process", (),
               [((), snapshot.dumps)]),
    ], dropped


class NetnsSampler:
    """Snapshots over every namespace (--all-netns): each namespace's own snapshot, with
    its netns label, taken by a child inside it (netns_run.gather) and added up here. Under
    --serve the children are forked by a helper forked now, before the server's threads."""

    def __init__(self, query: Query, env: Environment) -> None:
        from nlstat import netns_run

        self.query = query
        self.env = env
        self.dumps = 0
        self.failed = 0

        def work() -> Tuple[Dict[Group, int], Dict[ListenerKey, Tuple[int, int]]]:
            sampler = Sampler(query, env)
            try:
                snapshot = sampler.take()
            finally:
                sampler.close()
            return snapshot.groups, snapshot.listeners

        self.gatherer: Optional[Gatherer] = None
        if query.metrics == "serve":
            self.gatherer = netns_run.Gatherer(query, env, work)
        self.work = work

    def close(self) -> None:
        if self.gatherer is not None:
            self.gatherer.close()

    def take(self) -> Snapshot:
        from nlstat import netns_run

        started = time.monotonic()
        if self.gatherer is not None:
            answers, status = self.gatherer.take()
        else:
            answers, status = netns_run.gather(self.query, self.env, self.work)
        self.failed = self.failed or status
        groups: Dict[Group, int] = {}
        listeners: Dict[ListenerKey, Tuple[int, int]] = {}
        for _member, (their_groups, their_listeners) in answers:
            for group, count in their_groups.items():
                groups[group] = groups.get(group, 0) + count
            listeners.update(their_listeners)  # the netns label keeps them apart
        finished = time.monotonic()
        self.dumps += 1
        return Snapshot(groups, listeners, finished - started, finished, self.dumps)


class Exposition:
    """Renders snapshots in the Prometheus text format (format/prometheus.py); says once on
    stderr when --max-series starts dropping series."""

    def __init__(self, query: Query, env: Environment) -> None:
        self.labels = tuple(query.metrics_by)
        self.series_limit = query.series_limit
        self.warn = env.warn
        self.dropped = 0

    def render(self, snapshot: Snapshot) -> bytes:
        from nlstat.format.prometheus import exposition

        metrics, dropped = families(snapshot, self.labels, self.series_limit)
        if dropped and not self.dropped:
            self.warn(
                f"nlstat: {dropped} series over --max-series {self.series_limit} left "
                "out of the scrape (the largest counts are kept)"
            )
        self.dropped = dropped
        return exposition(metrics)
