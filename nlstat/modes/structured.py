"""--json and --ndjson for every mode (docs/schema.md): the same records the text modes format.

The socket listing keeps its own walk (modes/sockets.py, with this module's pieces for the
frame, groups and unix); routes, interfaces, statistics and masquerade have their JSON runs
here, reading through the same backends as their text modes. Imported only when --json or
--ndjson is given.
"""

from __future__ import annotations

import errno
import os
from typing import (
    TYPE_CHECKING,
    BinaryIO,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    cast,
)

from nlstat import backends
from nlstat.env import Environment
from nlstat.errors import BackendUnavailable, ExitStatus, NlstatError
from nlstat.format import json_records
from nlstat.format.json_document import JsonSink, header
from nlstat.query import BACKEND_NETLINK, Query
from nlstat.resolve import Names

if TYPE_CHECKING:
    from nlstat.backends.sockets import UnixTable
    from nlstat.format.stats import Switches
    from nlstat.model.groups import GroupMembership
    from nlstat.model.sockets import UnixKind
    from nlstat.model.stats import StatsFile, StatsSection
    from nlstat.modes.sockets import Output

# Socket families nlstat cannot list at all (netstat prints "no support" for them too): JSON
# has nothing to say about them, so asking for them in JSON is refused up front.
UNLISTABLE = ("ipx", "ax25", "x25", "netrom", "rose", "l2cap", "rfcomm")


class NoJsonForm(NlstatError):
    """A mode or flag combination that has no JSON form: one line, status 1, no output."""


def dump_marks() -> Sequence[str]:
    """The netlink dumps of this run that stayed interrupted (nlsocket.mark_inconsistent());
    none when no netlink socket was opened (the module is then not even loaded)."""
    import sys

    nlsocket = sys.modules.get("nlstat.backends.netlink.nlsocket")
    if nlsocket is None:
        return ()
    marks: Sequence[str] = nlsocket.marks
    return marks


def json_environment(query: Query, env: Environment) -> Tuple[Environment, JsonSink]:
    """A copy of env whose stdout is a JsonSink over the real one."""
    sink = _sink(query, env)
    copy = Environment(
        stdout=cast(BinaryIO, sink),
        stderr=env.stderr,
        proc_root=env.proc_root,
        backend=env.backend,
        debug=env.debug,
        sleep=env.sleep,
        posixly_correct=env.posixly_correct,
    )
    return copy, sink


def _sink(query: Query, env: Environment) -> JsonSink:
    sink = JsonSink(env.stdout, query.output, dump_marks)
    if query.netns is not None or query.all_netns:
        # Runs in the namespace's own child (netns_run): the namespace this process lists,
        # as the header names it.
        from nlstat.format.json_document import network_namespace

        sink.set_netns(network_namespace(env.proc_root))
    return sink


# -- sockets ------------------------------------------------------------------------------------


def refuse_sockets(query: Query) -> None:
    asked = [name for name in UNLISTABLE if getattr(query, name)]
    if query.bluetooth:
        asked.append("bluetooth")
    if query.sctp and not query.implicit_protocols:
        asked.append("sctp")  # nlstat lists no SCTP socket (modes/sockets.py _sctp)
    if asked and query.selections:
        raise NoJsonForm(f"--{query.output}: no JSON form for {', '.join(asked)} sockets "
                         "(netstat cannot list them either)")


def socket_schema(query: Query) -> str:
    only_groups = query.groups and query.selections == 1
    return "groups" if only_groups else "sockets"


def socket_header(query: Query, env: Environment) -> Dict[str, object]:
    schema = socket_schema(query)
    return header(schema, schema, env.backend, env.proc_root)


def write_json_groups(query: Query, env: Environment, names: Names) -> int:
    """-g as "group" records: write_groups' sources and statuses, JSON lines instead of rows."""
    from nlstat.modes.groups import write_groups

    note = getattr(env.stdout, "note", None)

    def render(rows: List[GroupMembership], source: str, table: str) -> str:
        if note is not None:
            note(table, source)
        return json_records.group_lines(rows, names)

    return write_groups(query, env, render)


def write_json_unix(
    query: Query,
    out: Output,
    table: UnixTable,
    programs: Optional[Mapping[int, str]],
    keep: Optional[Callable[[UnixKind], bool]],
    warn: Callable[[str], None],
) -> None:
    """The unix table as "unix" records: /proc batches or sock_diag records, in order."""
    owners = programs
    out.flush()
    if table.chunks is not None:
        from nlstat.backends.procfs.sockets import UnixText
        from nlstat.pipeline import ordered_map

        if out.note is not None:
            out.note("unix", "proc")
        parser = UnixText(table.path, warn, unique=True)
        render_batch = json_records.unix_batch_renderer(query, owners)

        def work(chunk: bytes) -> bytes:
            batch = parser.batch(chunk)
            if keep is not None:
                batch = batch.where(keep)
            return render_batch(batch).encode("utf-8", "surrogateescape")

        # One process parses every chunk: its `seen` keys must span the whole table, or a
        # socket read twice while /proc/net/unix changed would be a record twice.
        for data in ordered_map(table.chunks, work, period=4, parallel=False):
            out.write(data)
        return
    assert table.records is not None
    if out.note is not None:
        out.note("unix", "netlink")
    render_records = json_records.unix_records_renderer(query, owners)
    if keep is None:
        out.batches(table.records, render_records)
    else:
        out.batches(table.records, lambda records: render_records(
            [record for record in records if keep(record)]))


# -- the other modes ----------------------------------------------------------------------------


def _frame(query: Query, env: Environment, schema: str,
           once: Callable[[JsonSink], int]) -> int:
    """Header, records, end; under -c one document (or header..end run) per pass."""
    sink = _sink(query, env)
    while True:
        sink.begin(header(schema, schema, env.backend, env.proc_root))
        status = once(sink)
        sink.end()
        if status or not query.continuous:
            return status
        env.stdout.flush()
        env.sleep(1)


def _write(sink: JsonSink, lines: List[str]) -> None:
    for start in range(0, len(lines), 4096):
        sink.write("".join(lines[start : start + 4096]).encode("utf-8", "surrogateescape"))


def run_routes(query: Query, env: Environment) -> int:
    families = query.families or ("inet",)
    others = [family for family in families if family not in ("inet", "inet6")]
    if others:
        raise NoJsonForm(f"--{query.output}: no JSON form for the routing tables of "
                         f"{', '.join(others)} (only inet and inet6)")
    names = None if query.numeric_hosts or query.symbolic else Names()
    fib = query.fib or not query.cache

    def once(sink: JsonSink) -> int:
        for family in families:
            if family == "inet":
                if fib:
                    status = _ipv4_fib(query, env, sink, names)
                    if status:
                        return status
                if query.cache:
                    status = _ipv4_cache(env, sink)
                    if status:
                        return status
            else:
                for cache in (False, True):
                    if (fib, query.cache)[cache]:
                        status = _ipv6(env, sink, cache)
                        if status:
                            return status
        return ExitStatus.OK

    return _frame(query, env, "routes", once)


def _ipv4_fib(query: Query, env: Environment, sink: JsonSink, names: Optional[Names]) -> int:
    if backends.uses_netlink(backends.ROUTES4, env):
        from nlstat.backends.netlink import routes as netlink_routes
        from nlstat.backends.netlink.nlsocket import consistent

        interfaces = netlink_routes.InterfaceNames()

        def read(last: bool) -> List[str]:
            # The whole dump is read (checked() ends the iteration at NLMSG_DONE): an
            # answer flagged NLM_F_DUMP_INTR is thrown away and asked again, as for the text.
            decoder = netlink_routes.Ipv4Decoder(interfaces)
            lines: List[str] = []
            for chunk in netlink_routes.ipv4_chunks(last):
                decoder.feed(chunk)
                lines.extend(json_records.route_lines(decoder.take(), names))
            return lines

        try:
            lines = consistent(read)
        except BackendUnavailable as err:
            backends.refused("rtnetlink refused the IPv4 routes dump", err, env, query.verbose,
                             env.proc("net", "route"))
        else:
            sink.note("route", "netlink")
            _write(sink, lines)
            return ExitStatus.OK
    from nlstat.backends.procfs.routes import read_ipv4

    path = env.proc("net", "route")
    try:
        table = read_ipv4(path)
    except OSError as err:
        env.warn(f"{path}: {err.strerror}")
        env.warn("INET (IPv4) not configured in this system.")
        return ExitStatus.ERROR
    if table.error is not None:
        if table.error:
            env.warn(table.error)
        return ExitStatus.ERROR
    sink.note("route", "proc")
    _write(sink, json_records.route_lines(table.routes, names))
    return ExitStatus.OK


def _ipv4_cache(env: Environment, sink: JsonSink) -> int:
    if backends.uses_netlink(backends.ROUTE_CACHE4, env):
        return ExitStatus.OK  # the cache left Linux in 3.6 (see modes/routes.py)
    from nlstat.backends.procfs.routes import read_ipv4_cache

    path = env.proc("net", "rt_cache")
    try:
        cache = read_ipv4_cache(path)
    except OSError as err:
        env.warn(f"{path}: {err.strerror}")
        env.warn("INET (IPv4) not configured in this system.")
        return ExitStatus.ERROR
    if cache.layout == -1:
        env.warn(f"{path}: {os.strerror(errno.ENOENT)}")
        return ExitStatus.READ_ERROR
    sink.note("rt_cache", "proc")
    _write(sink, json_records.route_cache_lines(cache.entries, cache.layout))
    return ExitStatus.OK


def _ipv6(env: Environment, sink: JsonSink, cache: bool) -> int:
    routes = None
    if backends.uses_netlink(backends.ROUTES6, env):
        if cache:
            return ExitStatus.OK
        from nlstat.backends.netlink.routes6 import read_ipv6 as netlink_ipv6

        try:
            routes = netlink_ipv6()
        except BackendUnavailable as err:
            backends.refused("rtnetlink refused the IPv6 routes dump", err, env, False,
                             env.proc("net", "ipv6_route"))
        else:
            sink.note("ipv6_route", "netlink")
    if routes is None:
        from nlstat.backends.procfs.routes import read_ipv6

        path = env.proc("net", "ipv6_route")
        try:
            routes = read_ipv6(path, cache)
        except OSError as err:
            env.warn(f"{path}: {err.strerror}")
            env.warn("INET6 (IPv6) not configured in this system.")
            return ExitStatus.ERROR
        sink.note("ipv6_route", "proc")
    _write(sink, json_records.route6_lines(routes, cache))
    return ExitStatus.OK


def run_interfaces(query: Query, env: Environment) -> int:
    from nlstat.backends.procfs.links import InterfaceFetchError
    from nlstat.kernel.link import IFF_UP
    from nlstat.modes.interfaces import _inet6_addresses, _open_source

    long_format = query.extend >= 1

    def once(sink: JsonSink) -> int:
        try:
            source = _open_source(query, env)
        except OSError as err:
            env.warn(f"missing interface information: {os.strerror(err.errno or 0)}")
            return ExitStatus.ERROR
        sink.note("links", "proc" if type(source).__name__.startswith("Proc") else "netlink")
        lines: List[str] = []
        try:
            inet6 = _inet6_addresses(env, source.names()) if long_format else []
            try:
                for interface in source:
                    if interface.flags & IFF_UP or query.all:
                        lines.append(json_records.interface_line(interface, long_format, inet6))
            except InterfaceFetchError as err:
                _write(sink, lines)
                reason = ("Device not found" if err.errno == errno.ENODEV
                          else os.strerror(err.errno))
                env.warn(f"{err.name}: error fetching interface information: {reason}")
                env.warn(f"missing interface information: {os.strerror(err.errno)}")
                return ExitStatus.ERROR
        finally:
            source.close()
        _write(sink, lines)
        return ExitStatus.OK

    return _frame(query, env, "interfaces", once)


def run_statistics(query: Query, env: Environment) -> int:
    from nlstat.backends.procfs import snmp
    from nlstat.format.stats import IPV4, IPV6, Switches

    families = ",".join(query.families) or "inet"
    if families not in ("inet", "inet6"):
        raise NoJsonForm(f"--{query.output}: no statistics for address family {families} "
                         "(only inet or inet6)")
    switches = Switches(query.raw, query.tcp, query.udp, query.sctp)
    files: List[Tuple[str, Callable[[str, str], StatsFile], str, bool, Optional[str]]]
    if families == "inet":
        files = [
            ("snmp", snmp.read_pairs_file, "/proc/net/snmp", True, None),
            ("netstat", snmp.read_pairs_file, "/proc/net/netstat", False, None),
            ("sctp/snmp", snmp.read_sctp_file, "/proc/net/sctp/snmp", False, None),
        ]
    else:
        files = [
            ("snmp6", snmp.read_snmp6_file, "/proc/net/snmp6", True, None),
            ("snmp", snmp.read_pairs_file, "/proc/net/snmp", True, "Tcp"),
        ]

    def once(sink: JsonSink) -> int:
        for index, (name, reader, shown_path, required, prefix) in enumerate(files):
            stats_file = reader(env.proc("net", *name.split("/")), shown_path)
            if stats_file.open_errno:
                if required:
                    env.warn(f"cannot open {shown_path}: {os.strerror(stats_file.open_errno)}")
                    return ExitStatus.OK  # -s succeeds whatever the files, as netstat's does
                continue
            family = IPV4 if (families == "inet" or index > 0) else IPV6
            sink.note(name, "proc")
            lines = [
                json_records.section_line(section, "inet" if family == IPV4 else "inet6",
                                          shown_path)
                for section in shown_sections(stats_file.sections, family, switches, prefix)
            ]
            _write(sink, lines)
            if stats_file.malformed and prefix is None:
                env.warn(f"Problem while parsing {stats_file.path}")
            if stats_file.read_errno:
                env.warn(f"{stats_file.path}: {os.strerror(stats_file.read_errno)}")
        return ExitStatus.OK

    # -c is ignored by -s, as netstat ignores it.
    return _frame(query._replace(continuous=False), env, "statistics", once)


def shown_sections(
    sections: Tuple[StatsSection, ...], family: str, switches: Switches, prefix: Optional[str]
) -> List[StatsSection]:
    """The sections -s prints (format/stats.py StatisticsPrinter.add_sections' choice):
    unknown sections always, known ones when their -t/-u/-w/-S switch is on."""
    from nlstat.format import stats_tables as tables
    from nlstat.format.stats import _IPV4_SWITCH, _IPV6_SWITCH, IPV4

    if family == IPV4:
        known, switch_of = tables.IPV4_TABLES, _IPV4_SWITCH
    else:
        known, switch_of = tables.IPV6_TABLES, _IPV6_SWITCH
    return [
        section for section in sections
        if (prefix is None or section.name.startswith(prefix))
        and (section.name not in known or switches.on(switch_of[section.name]))
    ]


def run_masquerade(query: Query, env: Environment) -> int:
    import _socket

    from nlstat.format.masquerade import masq_port
    from nlstat.model.conntrack import is_nat
    from nlstat.modes.masquerade import NO_SUPPORT, _from_netlink, _from_proc

    names = Names(query.numeric_hosts, query.numeric_ports, query.numeric_users)
    sink = _sink(query, env)
    while True:
        # modes/masquerade.py collect(), knowing which source answered.
        source = "netlink"
        found = None
        if backends.uses_netlink(backends.CONNTRACK, env):
            found = _from_netlink(env, query.verbose)
        if found is None and env.backend != BACKEND_NETLINK:
            source = "proc"
            found = _from_proc(env)
        if found is None:
            # Nothing to frame: netstat's message and status, nothing on stdout.
            env.warn(NO_SUPPORT)
            return ExitStatus.ERROR
        entries = [entry for entry in found if entry.family == _socket.AF_INET and is_nat(entry)]
        sink.begin(header("masquerade", "masquerade", env.backend, env.proc_root))
        sink.note("conntrack", source)
        _write(sink, [json_records.connection_line(entry, names, masq_port(entry))
                      for entry in entries])
        sink.end()
        if not query.continuous:
            return ExitStatus.OK
        env.stdout.flush()
        env.sleep(1)
