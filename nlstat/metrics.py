"""Socket metrics for Prometheus: one snapshot of the kernel's sockets, and its exposition.

A snapshot is the counts of `--count` over every socket (as `netstat -a` lists them: all
states, the tables chosen by -t/-u/-w/-x/-4/-6, all of them by default), grouped by proto,
state and the --by keys, plus every tcp listener's accept queue and backlog. It is rendered
with prometheus_client (imported only here): a custom collector yields gauge families built
from the snapshot, so nothing is kept between scrapes but the last answer. Metric names and
labels: docs/metrics.md.
"""

from __future__ import annotations

import time
from typing import (
    TYPE_CHECKING,
    Callable,
    Dict,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Protocol,
    Tuple,
)

from nlstat.aggregate import Group, with_value
from nlstat.backends.sockets import SocketSource
from nlstat.env import Environment
from nlstat.errors import BackendUnavailable
from nlstat.format.sockets import LABELS
from nlstat.query import Query
from nlstat.resolve import Names

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

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


class SocketCollector:
    """A prometheus_client collector over the snapshot `latest()` returns."""

    def __init__(
        self,
        latest: Callable[[], Snapshot],
        labels: Tuple[str, ...],
        series_limit: int,
        warn: Callable[[str], None],
    ) -> None:
        self.latest = latest
        self.labels = labels
        # The listeners' labels: their address, and the namespace when the sockets have it.
        self.listener_labels = ["proto", "laddr", "lport"] + (
            ["netns"] if "netns" in labels else [])
        self.series_limit = series_limit
        self.warn = warn
        self.dropped = 0

    def describe(self) -> List[object]:
        return []  # no registration-time scrape

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        snapshot = self.latest()
        budget = self.series_limit
        sockets = GaugeMetricFamily(
            "nlstat_sockets",
            "Sockets per protocol and state, as netstat -a lists them (state names as netstat "
            "prints them; empty for unconnected udp and unix sockets)",
            labels=list(self.labels),
        )
        groups = sorted(snapshot.groups.items(), key=lambda item: -item[1])
        kept = groups[:budget]
        dropped = len(groups) - len(kept)
        for group, count in kept:
            sockets.add_metric([_label(value) for value in group], count)
        budget -= len(kept)
        yield sockets

        length = GaugeMetricFamily(
            "nlstat_listen_queue_length",
            "Connections waiting in a tcp listener's accept queue",
            labels=self.listener_labels,
        )
        limit = GaugeMetricFamily(
            "nlstat_listen_queue_max",
            "The most connections a tcp listener's accept queue holds (its listen() backlog)",
            labels=self.listener_labels,
        )
        listeners = sorted(snapshot.listeners.items(), key=lambda item: -item[1][0])
        room = max(budget // 2, 0)
        for key, (queue, backlog) in listeners[:room]:
            labels = [_label(value) for value in key]
            length.add_metric(labels, queue)
            limit.add_metric(labels, backlog)
        dropped += 2 * max(len(listeners) - room, 0)
        yield length
        yield limit

        if dropped and not self.dropped:
            self.warn(
                f"nlstat: {dropped} series over --max-series {self.series_limit} left out "
                "of the scrape (the largest counts are kept)"
            )
        self.dropped = dropped
        yield GaugeMetricFamily(
            "nlstat_series_dropped",
            "Series left out of this scrape by --max-series",
            value=dropped,
        )
        yield GaugeMetricFamily(
            "nlstat_scrape_duration_seconds",
            "Seconds spent dumping the kernel's sockets and counting them for this scrape",
            value=snapshot.duration,
        )
        yield CounterMetricFamily(
            "nlstat_kernel_dumps",
            "Socket snapshots taken from the kernel by this process",
            value=snapshot.dumps,
        )


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
    """Renders snapshots in the Prometheus text format."""

    def __init__(self, query: Query, env: Environment) -> None:
        from prometheus_client import CollectorRegistry

        self._snapshot: Optional[Snapshot] = None
        self.collector = SocketCollector(
            self._current, query.metrics_by, query.series_limit, env.warn
        )
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)

    def _current(self) -> Snapshot:
        assert self._snapshot is not None
        return self._snapshot

    def render(self, snapshot: Snapshot) -> bytes:
        from prometheus_client import generate_latest

        self._snapshot = snapshot
        try:
            body: bytes = generate_latest(self.registry)
        finally:
            self._snapshot = None
        return body
