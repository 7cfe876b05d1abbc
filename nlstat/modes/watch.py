"""`--watch [SECONDS]`: the socket listing once, then at every tick what changed since the last.

Each tick reads the same tables the listing of the same options would (the same backend per
table, the same kernel state mask and filters), keeps them as nlstat.watchdiff Tables and
prints the difference with the previous tick: sockets opened (+), closed (-), changed state
(~), and tcp connections that moved data (>), with the bytes and bytes a second of their
tcp_info counters. The first tick prints the listing itself. Text and --ndjson
(docs/watch.md). One sock_diag socket serves every tick; with -p the inode map is kept up to
date (procmap.IncrementalOwners) instead of rebuilt.

A tick's cost is the kernel's dump and the decoding, as for `-ant`, with no formatting of the
rows that did not change.
"""

from __future__ import annotations

import gc
import time
from itertools import groupby
from operator import attrgetter
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from nlstat.backends.sockets import InetTable, SocketSource, inet_families
from nlstat.env import Environment
from nlstat.errors import Exit, ExitStatus
from nlstat.model.sockets import RAW, TCP, UDP, UDPLITE, InetSocket, UnixBatch, UnixKind, UnixSocket
from nlstat.query import OUTPUT_TEXT, Query
from nlstat.resolve import Names
from nlstat.watchdiff import CLOSED, OPENED, STATE, TRAFFIC, Change, Counters, Table, compare_all

INET_PROTOCOLS = (TCP, UDP, UDPLITE, RAW)
UNIX = "unix"
MARKERS = {OPENED: "+", CLOSED: "-", STATE: "~", TRAFFIC: ">"}
_FAMILY = attrgetter("family")


def run(query: Query, env: Environment) -> int:
    if query.output != OUTPUT_TEXT:
        from nlstat.modes.structured import refuse_sockets

        refuse_sockets(query)
    source = SocketSource(query, env)
    names = Names(query.numeric_hosts, query.numeric_ports, query.numeric_users)
    owners = None
    if query.programs:
        from nlstat.procmap import IncrementalOwners

        owners = IncrementalOwners(env.proc_root)
    printer: Printer
    if query.output == OUTPUT_TEXT:
        printer = TextPrinter(query, env, names, owners)
    else:
        printer = JsonPrinter(query, env, names, owners)
    previous: Optional[List[Table]] = None
    previous_counters: Optional[Counters] = None
    last = 0.0
    tick = 0
    try:
        while True:
            started = time.monotonic()
            counters: Counters = {}
            source.byte_counters = counters
            gc.disable()  # records hold no cycles (modes/sockets.py run())
            try:
                tables = collect(query, env, source, previous, previous_counters)
            finally:
                gc.enable()
            tick += 1
            if previous is None:
                printer.listing(tick, tables)
            else:
                closed, changed = compare_all(previous, tables, previous_counters, counters)
                printer.changes(tick, started - last, tables, closed, changed)
            env.stdout.flush()
            previous, previous_counters, last = tables, counters, started
            if query.watch_ticks and tick >= query.watch_ticks:
                printer.end(tick)
                return ExitStatus.OK
            env.sleep(max(0.0, query.watch_seconds - (time.monotonic() - started)))
    finally:
        source.close()


# -- reading a tick ---------------------------------------------------------------------------


def collect(
    query: Query,
    env: Environment,
    source: SocketSource,
    previous: Optional[List[Table]] = None,
    previous_counters: Optional[Counters] = None,
) -> List[Table]:
    """The tables of one tick: what the listing of `query` would list, as Tables. With the
    previous tick's, tcp from sock_diag is read by tcpwatch (records only for changes)."""
    from nlstat.modes.sockets import _keep_inet

    keep = _keep_inet(query)
    old_tcp = next((table for table in previous or () if table.name == TCP), None)
    source.load_owners()
    source.check_dev()
    tables: List[Table] = []
    families = inet_families(query)
    for protocol in INET_PROTOCOLS:
        if not query.wants(protocol):
            continue
        table = Table(protocol)
        tables.append(table)
        if protocol == TCP and len(families) == 2:
            both = source.tcp_both()
            if both is not None:
                selected = source.selector(TCP, True)
                if selected is None and old_tcp is not None:
                    _read_changes(table, both, old_tcp, previous_counters)
                    continue
                ipv4, ipv6 = _decoded(both)
                table.add_inet(_kept(ipv4, selected), True)
                table.add_inet(_kept(ipv6, selected), True)
                continue
        for family in families:
            try:
                found: Optional[InetTable] = source.inet(protocol, family)
            except (FileNotFoundError, PermissionError):
                continue  # netstat's notices belong to the listing
            except OSError as err:
                env.warn(f"{err.filename}: {err.strerror}")
                raise Exit(ExitStatus.READ_ERROR) from err
            assert found is not None
            netlink = found.decoder is not None
            selected = source.selector(protocol, netlink)
            if netlink and protocol == TCP and selected is None and old_tcp is not None:
                _read_changes(table, found, old_tcp, previous_counters)
                continue
            if netlink:
                records, others = _decoded(found)
                records += others
            else:
                records = _parsed(found, protocol, family, env)
            listing = None if (netlink and protocol == TCP) else keep
            table.add_inet(_kept(_kept(records, listing), selected), netlink)
    filters = query.filters
    if query.wants(UNIX) and not (filters is not None and filters.excludes_unix):
        unix = _unix_records(query, env, source)
        if unix is not None:
            table = Table(UNIX)
            table.add_unix(unix)
            tables.append(table)
    return tables


def _decoded(table: InetTable) -> Tuple[List[InetSocket], List[InetSocket]]:
    """A sock_diag table's records, and those the decoder set aside (IPv6 of a dump of both)."""
    from nlstat.modes.count import prefetched

    decoder = table.decoder
    assert decoder is not None
    records = list(table.first)
    if not decoder.done:
        for chunk in prefetched(table.chunks):
            records += decoder.chunk(chunk)
            if decoder.done:
                break
    return records, decoder.others


def _read_changes(
    table: Table, found: InetTable, old: Table, old_counters: Optional[Counters]
) -> None:
    """A tcp table from sock_diag, records built only for the sockets that changed."""
    from nlstat.backends.netlink.tcpwatch import read_tcp_tick
    from nlstat.modes.count import prefetched

    assert found.decoder is not None
    records, states, _decoded_count = read_tcp_tick(
        found.first, found.decoder, prefetched(found.chunks), old.records, old.states,
        old_counters)
    table.records.update(records)
    table.states.update(states)


def _parsed(table: InetTable, protocol: str, family: int, env: Environment) -> List[InetSocket]:
    from nlstat.backends.procfs.sockets import InetOnce, parse_inet, split_chunk

    once = InetOnce()
    records: List[InetSocket] = []
    for chunk in table.chunks:
        first_line, lines = split_chunk(chunk)
        records += once.records(parse_inet(lines, protocol, family, table.path, env.warn,
                                           first_line))
    return records


def _kept(records: List[Any], keep: Optional[Callable[[Any], bool]]) -> List[Any]:
    return records if keep is None else list(filter(keep, records))


def _unix_records(query: Query, env: Environment, source: SocketSource
                  ) -> Optional[List[UnixSocket]]:
    from nlstat.modes.sockets import _keep_unix

    try:
        table = source.unix()
    except OSError:
        return None
    if table.chunks is not None:
        from nlstat.backends.procfs.sockets import UnixText

        parser = UnixText(table.path, env.warn, unique=True)
        records: List[UnixSocket] = []
        for chunk in table.chunks:
            records += parser.parse(chunk)
    else:
        assert table.records is not None
        records = list(table.records)
    listing = _keep_unix(query)
    if listing is not None:
        records = [record for record in records if listing(UnixKind(
            type=record.type, socket_state=record.socket_state, flags=record.flags,
            refcnt=record.refcnt, protocol=record.protocol))]
    return _kept(records, source.unix_selector())


# -- printing -----------------------------------------------------------------------------------


class Printer:
    """How a tick is printed: the listing first, then the changes."""

    def __init__(self, query: Query, env: Environment, names: Names,
                 owners: Optional[Any]) -> None:
        self.query = query
        self.env = env
        self.names = names
        self.owners = owners  # procmap.IncrementalOwners with -p
        self.programs: Optional[Mapping[int, str]] = None if owners is None else owners.owners
        # The rows of the table's format (text or JSON), set by the subclass; one renderer per
        # protocol and family, made at first use.
        self.rows: Any = None
        self.renderers: Dict[Tuple[str, int], Callable[[List[InetSocket]], str]] = {}

    def _renderer(self, protocol: str, family: int) -> Callable[[List[InetSocket]], str]:
        render = self.renderers.get((protocol, family))
        if render is None:
            render = self.renderers[(protocol, family)] = self.rows.renderer(protocol, family)
        return render

    def update_owners(self, tables: List[Table], first: bool) -> None:
        """-p: the map brought up to date with this tick's sockets (netstat's notice once)."""
        if self.owners is None:
            return
        inodes: List[int] = []
        for table in tables:
            inodes += map(attrgetter("inode"), table.records.values())
        self.owners.update(inodes)
        if first:
            notice = self.owners.notice()
            if notice:
                self.env.warn(notice)

    def listing(self, tick: int, tables: List[Table]) -> None:
        raise NotImplementedError

    def changes(self, tick: int, seconds: float, tables: List[Table], closed: List[Change],
                changed: List[Change]) -> None:
        raise NotImplementedError

    def end(self, tick: int) -> None:
        """After the last tick of --ticks."""


def _tally(changes: List[Change]) -> Dict[str, int]:
    counts = {OPENED: 0, CLOSED: 0, STATE: 0, TRAFFIC: 0}
    for change in changes:
        counts[change.kind] += 1
    return counts


def _state_word(change: Change, state: Any) -> str:
    """A state as the change line names it: netstat's tcp state names, the unix state text."""
    if change.table == UNIX:
        from nlstat.format.sockets import unix_state_text

        socket_state, flags = state
        return unix_state_text(socket_state, flags) or "UNCONNECTED"
    from nlstat.format.json_records import STATE_NAMES

    return STATE_NAMES[state] if 0 <= state < len(STATE_NAMES) else "UNKNOWN"


class TextPrinter(Printer):
    """netstat's listing, then one line per change: a marker, the row netstat would print for
    the socket, and what changed."""

    def __init__(self, query: Query, env: Environment, names: Names,
                 owners: Optional[Any]) -> None:
        super().__init__(query, env, names, owners)
        from nlstat.format.sockets import InetRows, unix_renderer

        self.rows = InetRows(query, names, self.programs)
        self.render_unix = unix_renderer(query, self.programs)

    def _write(self, text: str) -> None:
        self.env.stdout.write(text.encode("utf-8", "surrogateescape"))

    def listing(self, tick: int, tables: List[Table]) -> None:
        from nlstat.format.sockets import inet_header, unix_header
        from nlstat.modes.sockets import INET_STEPS

        self.update_owners(tables, True)
        query = self.query
        if any(query.wants(step) for step in INET_STEPS):
            self._write(inet_header(query))
        for table in tables:
            if table.name == UNIX:
                self._write(unix_header(query))
                self._write(self.render_unix(UnixBatch.of(table.records.values())))
                continue
            for family, records in groupby(table.records.values(), _FAMILY):
                self._write(self._renderer(table.name, family)(list(records)))
        if query.wants(UNIX) and not any(table.name == UNIX for table in tables):
            self._write(unix_header(query))

    def _row(self, record: Any, table: str) -> str:
        if table == UNIX:
            return self.render_unix(UnixBatch.of([record]))
        return self._renderer(table, record.family)([record])

    def _line(self, change: Change, seconds: float) -> str:
        text = MARKERS[change.kind] + " " + self._row(change.record, change.table).rstrip("\n")
        if change.kind == STATE:
            text += "  state %s->%s" % (_state_word(change, change.old_state),
                                        _state_word(change, _now_state(change)))
        if change.sent is not None and change.received is not None:
            text += "  acked +%d B (%s), received +%d B (%s)" % (
                change.sent, _rate_text(change.sent, seconds),
                change.received, _rate_text(change.received, seconds))
        return text + "\n"

    def changes(self, tick: int, seconds: float, tables: List[Table], closed: List[Change],
                changed: List[Change]) -> None:
        if not closed and not changed:
            self.update_owners(tables, False)
            return
        counts = _tally(closed + changed)
        lines = ["--- tick %d, %.2f s: %d opened, %d closed, %d changed state, %d with traffic\n"
                 % (tick, seconds, counts[OPENED], counts[CLOSED], counts[STATE],
                    counts[TRAFFIC])]
        # Closed sockets are printed while the -p map still knows their owners.
        lines += [self._line(change, seconds) for change in closed]
        self.update_owners(tables, False)
        lines += [self._line(change, seconds) for change in changed]
        self._write("".join(lines))


def _now_state(change: Change) -> Any:
    record = change.record
    if change.table == UNIX:
        return (record.socket_state, record.flags)
    return record.state


def _rate_text(count: int, seconds: float) -> str:
    if seconds <= 0:
        return "- B/s"
    return "%.0f B/s" % (count / seconds)


class JsonPrinter(Printer):
    """--ndjson: a header line, then per tick a "tick" line and one "event" line per socket
    (the listing's sockets as "listed" at the first tick), an "end" line after --ticks N."""

    def __init__(self, query: Query, env: Environment, names: Names,
                 owners: Optional[Any]) -> None:
        super().__init__(query, env, names, owners)
        from nlstat.format.json_records import JsonInetRows, unix_records_renderer

        self.rows = JsonInetRows(query, names, self.programs)
        self.render_unix = unix_records_renderer(query, self.programs)
        self.started = False

    def _write(self, text: str) -> None:
        self.env.stdout.write(text.encode("utf-8", "surrogateescape"))

    def _begin(self) -> None:
        import json

        from nlstat.format.json_document import COMPACT, header

        fields = header("watch", "watch", self.env.backend, self.env.proc_root)
        self._write(json.dumps({"type": "header", **fields}, separators=COMPACT) + "\n")

    def _tick_line(self, tick: int, seconds: Optional[float], sockets: int,
                   counts: Dict[str, int]) -> str:
        from nlstat.format.json_document import rfc3339_now

        return ('{"type":"tick","tick":%d,"time":"%s","seconds":%s,"sockets":%d,"opened":%d,'
                '"closed":%d,"state":%d,"traffic":%d}\n'
                % (tick, rfc3339_now(), "null" if seconds is None else "%.6f" % seconds,
                   sockets, counts[OPENED], counts[CLOSED], counts[STATE], counts[TRAFFIC]))

    def _socket(self, record: Any, table: str) -> str:
        if table == UNIX:
            return self.render_unix([record]).rstrip("\n")
        return self._renderer(table, record.family)([record]).rstrip("\n")

    def listing(self, tick: int, tables: List[Table]) -> None:
        self._begin()
        self.update_owners(tables, True)
        count = sum(map(len, tables))
        lines = [self._tick_line(tick, None, count, _tally([]))]
        head = '{"type":"event","tick":%d,"event":"listed","socket":' % tick
        for table in tables:
            for record in table.records.values():
                lines.append(head + self._socket(record, table.name) + "}\n")
            if len(lines) > 2048:
                self._write("".join(lines))
                lines.clear()
        self._write("".join(lines))

    def _event(self, tick: int, change: Change, seconds: float) -> str:
        line = '{"type":"event","tick":%d,"event":"%s","socket":%s' % (
            tick, change.kind, self._socket(change.record, change.table))
        if change.kind == STATE:
            line += ',"old_state":"%s"' % _state_word(change, change.old_state)
        if change.sent is not None and change.received is not None:
            line += (',"bytes_acked":%d,"bytes_received":%d,"acked_rate":%s,"received_rate":%s'
                     % (change.sent, change.received, _rate_json(change.sent, seconds),
                        _rate_json(change.received, seconds)))
        return line + "}\n"

    def changes(self, tick: int, seconds: float, tables: List[Table], closed: List[Change],
                changed: List[Change]) -> None:
        counts = _tally(closed + changed)
        lines = [self._tick_line(tick, seconds, sum(map(len, tables)), counts)]
        lines += [self._event(tick, change, seconds) for change in closed]
        self.update_owners(tables, False)
        lines += [self._event(tick, change, seconds) for change in changed]
        self._write("".join(lines))

    def end(self, tick: int) -> None:
        self._write('{"type":"end","ticks":%d}\n' % tick)


def _rate_json(count: int, seconds: float) -> str:
    if seconds <= 0:
        return "null"
    return "%.3f" % (count / seconds)
