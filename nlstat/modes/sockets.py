"""The socket listing (netstat's default mode): netstat.c main()'s steps in order.

Rows stream: each record is formatted and written as it is decoded, in batches, so memory stays
flat whatever the socket count. The backend is chosen per table (nlstat.backends, applied by
backends/sockets.py).
"""

from __future__ import annotations

import _socket
import gc
import os
import struct
from itertools import islice
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    FrozenSet,
    Iterable,
    List,
    Mapping,
    Optional,
    Union,
)

from nlstat.backends.sockets import (
    InetTable,
    SocketSource,
    UnixTable,
    inet_families,
    proc_file,
)
from nlstat.env import Environment
from nlstat.errors import Exit, ExitStatus
from nlstat.format.sockets import LABELS, InetRows, inet_header, unix_header, unix_renderer
from nlstat.model.sockets import (
    RAW,
    TCP,
    UDP,
    UDPLITE,
    InetSocket,
    UnixBatch,
    UnixKind,
    UnixSocket,
)
from nlstat.pipeline import handed_off, ordered_map
from nlstat.query import OUTPUT_TEXT, Query
from nlstat.resolve import Names

if TYPE_CHECKING:
    from nlstat.filters import Filters
    from nlstat.format.json_records import JsonInetRows

    Rows = Union[InetRows, JsonInetRows]

# sock_diag: the kernel builds the dump inside the parent's recv(), and decoding and
# formatting a socket cost more than that, so the helper takes most chunks: every chunk while
# fewer than 3 of its results are outstanding, the parent formats the rest. This follows the
# cores' speeds where a fixed share does not (docs/performance.md, figures behind the code).
DUMP_BACKLOG = 3

# /proc/net/tcp and the like: the kernel's printing costs a little less than our parsing
# and formatting, so the helper formats 3 chunks of 4 while the parent reads. (/proc/net/unix
# costs the kernel more than its formatting costs us: the reader does nothing else, see
# handed_off.)
INET_TEXT_PERIOD = 4

# Lines per write(): large enough that write() costs nothing, small enough to stream.
BATCH_LINES = 2048

# The Internet steps of netstat.c main(), in order (the Query field of each is its switch).
INET_STEPS = (TCP, "sctp", UDP, UDPLITE, RAW)

# Legacy families: netstat's step, its /proc files and the name in its "no support" notice.
LEGACY_FAMILIES = (
    ("ipx", ("net/ipx/socket", "net/ipx"), "AF IPX"),
    ("ax25", ("net/ax25",), "AF AX25"),
    ("x25", ("net/x25",), "AF X25"),
    ("netrom", ("net/nr",), "AF NETROM"),
    ("rose", ("net/rose",), "AF ROSE"),
)


class Output:
    """Batches text lines into bytes writes on the binary stdout."""

    def __init__(self, env: Environment) -> None:
        self.write = env.stdout.write
        self.lines: List[str] = []
        # --json/--ndjson: JsonSink.note, told which backend each table came from.
        self.note: Optional[Callable[[str, str], None]] = getattr(env.stdout, "note", None)

    def text(self, text: str) -> None:
        self.lines.append(text)

    def flush(self) -> None:
        if self.lines:
            self.write("".join(self.lines).encode("utf-8", "surrogateescape"))
            self.lines.clear()

    def batches(self, records: Iterable[Any], render: Callable[[List[Any]], str]) -> None:
        """Render and write records with a batch renderer, BATCH_LINES records at a time."""
        self.flush()
        iterator = iter(records)
        write = self.write
        while True:
            batch = list(islice(iterator, BATCH_LINES))
            if not batch:
                return
            write(render(batch).encode("utf-8", "surrogateescape"))


def run(query: Query, env: Environment) -> int:
    sink = None
    if query.output != OUTPUT_TEXT:
        from nlstat.modes.structured import json_environment, refuse_sockets, socket_header

        refuse_sockets(query)
        env, sink = json_environment(query, env)
    source = SocketSource(query, env)
    # Kept across -c iterations, like netstat's static name cache.
    names = Names(query.numeric_hosts, query.numeric_ports, query.numeric_users)
    try:
        while True:
            # A listing allocates a few objects per socket and no reference cycles; the cyclic
            # collector would walk the parsed columns again and again (a quarter of the
            # parsing time). It runs again between -c passes.
            gc.disable()
            try:
                if sink is None:
                    status = list_once(query, env, source, names)
                else:
                    sink.begin(socket_header(query, env))
                    try:
                        status = list_once(query, env, source, names)
                    except Exit:
                        sink.end()  # netstat's early exit: the document still closes
                        raise
                    sink.end()
            finally:
                gc.enable()
            if status or not query.continuous:
                return status
            env.stdout.flush()
            env.sleep(1)
    finally:
        source.close()


def _keep_inet(query: Query) -> Optional[Callable[[InetSocket], bool]]:
    """netstat's server test per protocol (netstat.c tcp_do_one, udp_do_one, raw_do_one): tcp by
    remote port, udp/raw by remote address."""
    listing = query.listing
    if listing == "all":
        return None
    servers = listing == "servers"

    def keep(record: InetSocket) -> bool:
        if record.protocol == TCP:
            is_server = record.remote_port == 0
        else:
            is_server = record.remote_address in ("0.0.0.0", "::")
        return is_server == servers

    return keep


def _keep_unix(query: Query) -> Optional[Callable[[UnixKind], bool]]:
    listing = query.listing
    if listing == "all":
        return None
    servers = listing == "servers"

    def keep(kind: UnixKind) -> bool:
        return (kind.socket_state == 1 and bool(kind.flags & 0x10000)) == servers

    return keep


def _load_programs(query: Query, env: Environment) -> Optional[Mapping[int, str]]:
    from nlstat.procmap import build_inode_map

    inode_map = build_inode_map(env.proc_root)
    notice = inode_map.notice()
    if notice:
        env.warn(notice)
    return inode_map.owners


def _notice(env: Environment, what: str) -> None:
    env.warn(f"netstat: no support for `{what}' on this system.")


def _missing_protocol(query: Query, env: Environment, out: Output, protocol: str) -> bool:
    """A protocol's table is missing: netstat's notice when the protocol was asked for by
    name (or -v); True when that ends the run (status 1)."""
    if query.implicit_protocols:
        return False
    if query.selections or query.verbose:
        out.flush()
        _notice(env, f"AF INET ({protocol})")
    return query.selections > 0


def list_once(query: Query, env: Environment, source: SocketSource, names: Names) -> int:
    out = Output(env)
    programs: Optional[Mapping[int, str]] = None
    programs_loaded = False
    selected = query.selections > 0
    structured = query.output != OUTPUT_TEXT
    # --pid/--program-name: the selected processes' sockets, before anything is printed
    # (no such process is an error).
    source.load_owners()
    source.check_dev()

    # Step 1: the Internet header (and the -p map, built before it as netstat does).
    inet_steps = [step for step in INET_STEPS if query.wants(step)]
    if inet_steps:
        if query.programs:
            programs = _load_programs(query, env)
            programs_loaded = True
        rows: Rows
        if structured:
            from nlstat.format.json_records import JsonInetRows

            rows = JsonInetRows(query, names, programs)
        else:
            out.text(inet_header(query))
            rows = InetRows(query, names, programs)
        keep = _keep_inet(query)
        for protocol in inet_steps:
            if protocol == "sctp":
                status = _sctp(query, env, out)
            else:
                status = _inet_protocol(query, env, source, out, protocol, rows, keep)
            if status:
                out.flush()
                return status

    # Step 7: multicast group memberships.
    if query.groups:
        out.flush()
        from nlstat.modes.groups import write_groups

        if structured:
            from nlstat.modes.structured import write_json_groups

            status = write_json_groups(query, env, names)
        else:
            status = write_groups(query, env)
        if status:
            return status

    # Step 8: UNIX domain sockets.
    if query.wants("unix"):
        filters = query.filters
        if filters is not None and filters.excludes_unix:
            # Ports, addresses, devices and uids select inet sockets only: the header (text),
            # no rows, and the table is not even read.
            if not structured:
                out.text(unix_header(query))
            if query.verbose or env.debug:
                env.warn("nlstat: unix: not read (the filters select inet sockets only)")
            return _after_unix(query, env, out, selected)
        if query.programs and not programs_loaded:
            programs = _load_programs(query, env)
        try:
            table = source.unix()
        except OSError:
            out.flush()
            if selected or query.verbose:
                _notice(env, "AF UNIX")
            return ExitStatus.ERROR if selected else ExitStatus.OK
        if structured:
            from nlstat.modes.structured import write_json_unix

            if filters is not None:
                table = _filtered_unix_table(table, source, env)
            write_json_unix(query, out, table, programs, _keep_unix(query), env.warn)
            return _after_unix(query, env, out, selected)
        out.text(unix_header(query))
        out.flush()
        if filters is not None:
            source.account("unix", table.path if table.chunks is not None else "unix_diag",
                           frozenset())
        render_batch = unix_renderer(query, programs)
        keep_unix = _keep_unix(query)
        if filters is not None:
            render_batch = _unix_filtered(render_batch, filters, source.owned)
        if keep_unix is None:
            render_unix = render_batch
        else:
            def render_unix(batch: UnixBatch) -> str:
                return render_batch(batch.where(keep_unix))

        if table.chunks is not None:
            from nlstat.backends.procfs.sockets import UnixText

            parser = UnixText(table.path, env.warn, unique=True)

            def work(chunk: bytes) -> bytes:
                return render_unix(parser.batch(chunk)).encode("utf-8", "surrogateescape")

            handed_off(table.chunks, work, env.stdout)
        else:
            assert table.records is not None
            out.batches(table.records, lambda records: render_unix(UnixBatch.of(records)))
    return _after_unix(query, env, out, selected)


def _after_unix(query: Query, env: Environment, out: Output, selected: bool) -> int:
    out.flush()
    # Steps 9-13: families whose /proc files went away with their kernel code.
    for attribute, files, title in LEGACY_FAMILIES:
        if not query.wants(attribute):
            continue
        if any(os.path.exists(env.proc(path)) for path in files):
            env.trace(f"{files[0]} exists but nlstat does not list {title} sockets")
            continue
        if selected or query.verbose:
            _notice(env, title)
        if selected:
            return ExitStatus.ERROR

    # Step 14: Bluetooth is not compiled into Debian's netstat either.
    if selected and (query.l2cap or query.rfcomm):
        env.warn("netstat: feature `AF BLUETOOTH' not supported.")
        env.warn("Please recompile `net-tools' with newer kernel source or full configuration.")
        return ExitStatus.ERROR
    return ExitStatus.OK


def _inet_protocol(
    query: Query,
    env: Environment,
    source: SocketSource,
    out: Output,
    protocol: str,
    rows: Rows,
    keep: Optional[Callable[[InetSocket], bool]],
) -> int:
    families = inet_families(query)
    if protocol == TCP and len(families) == 2:
        both = source.tcp_both()
        if both is not None:
            kernel = source.kernel_done(TCP, True)
            source.account("tcp", "sock_diag, IPv4 and IPv6", kernel)
            if _write_tcp_both(out, both, rows, source.selector(TCP, True)):
                return ExitStatus.OK
            families = [_socket.AF_INET6]  # IPv4 is written; IPv6 was too much to hold
    for family in families:
        try:
            table: Optional[InetTable] = source.inet(protocol, family)
        except (FileNotFoundError, PermissionError):
            table = None
        except OSError as err:
            # netstat: perror(path), then return -1 (exit status 255).
            out.flush()
            env.warn(f"{err.filename}: {err.strerror}")
            raise Exit(ExitStatus.READ_ERROR) from err
        if table is None:
            if family == _socket.AF_INET6:
                continue  # a missing IPv6 file is skipped silently
            if _missing_protocol(query, env, out, protocol):
                return ExitStatus.ERROR
            continue
        netlink = table.decoder is not None
        kernel = source.kernel_done(protocol, netlink)
        source.account(LABELS[(protocol, family)],
                       "sock_diag" if netlink else table.path, kernel)
        _write_inet_table(env, out, table, protocol, family, rows, keep,
                          source.selector(protocol, netlink))
    return ExitStatus.OK


def _filtered_unix_table(table: UnixTable, source: SocketSource, env: Environment) -> UnixTable:
    """The unix table as records the filters select (JSON's path: a record per socket)."""
    keep = source.unix_selector()
    if keep is None:
        return table
    records: Iterable[UnixSocket]
    if table.chunks is not None:
        from nlstat.backends.procfs.sockets import UnixText

        parser = UnixText(table.path, env.warn, unique=True)
        chunks = table.chunks
        records = (record for chunk in chunks for record in parser.parse(chunk))
    else:
        assert table.records is not None
        records = table.records
    return UnixTable(None, filter(keep, records), table.path)


def _unix_filtered(
    render: Callable[[UnixBatch], str], filters: Filters, owned: Optional[FrozenSet[int]]
) -> Callable[[UnixBatch], str]:
    """A unix batch renderer that keeps the rows --state, --pid and --program-name select."""
    from itertools import compress

    from nlstat.filters import unix_kind_predicate

    by_kind = unix_kind_predicate(filters)
    inodes = owned if filters.needs_owners else None

    def render_kept(batch: UnixBatch) -> str:
        if by_kind is not None:
            batch = batch.where(by_kind)
        if inodes is not None:
            selected = [inode in inodes for inode in batch.inodes]
            batch = UnixBatch(
                list(compress(batch.kinds, selected)),
                list(compress(batch.inodes, selected)),
                list(compress(batch.paths, selected)),
            )
        return render(batch)

    return render_kept


def _write_inet_table(
    env: Environment,
    out: Output,
    table: InetTable,
    protocol: str,
    family: int,
    rows: Rows,
    keep: Optional[Callable[[InetSocket], bool]],
    selected: Optional[Callable[[InetSocket], bool]] = None,
) -> None:
    """Decode, render and write one table, chunk by chunk, on two cores when it is long.
    `selected`: the filters left for user space (None: the kernel did them all)."""
    decoder = table.decoder
    if decoder is not None and protocol == TCP:
        # The kernel already applied the listing as a state mask (LISTEN is exactly the
        # "remote port 0" test netstat makes), so rows need no second look.
        keep = None
    keep = _both(keep, selected)
    render = rows.renderer(protocol, family)
    if out.note is not None:
        out.note(proc_file(protocol, family), "proc" if decoder is None else "netlink")
    if decoder is None:
        # /proc text (the netlink path never imports the /proc parsers)
        from nlstat.backends.procfs.sockets import InetSeen, inet_keys, parse_inet, split_chunk

        path = table.path

        def work_text(chunk: bytes) -> bytes:
            # The rows, after their keys: the writing process drops rows printed before (a
            # table changing between reads repeats rows, docs/compat.md), whichever process
            # parsed them.
            first_line, lines = split_chunk(chunk)
            records = parse_inet(lines, protocol, family, path, env.warn, first_line)
            if keep is not None:
                records = [record for record in records if keep(record)]
            keys = inet_keys(records)
            text = render(records).encode("utf-8", "surrogateescape")
            return LENGTH.pack(len(keys)) + keys + text

        out.flush()
        seen = InetSeen()
        for data in ordered_map(table.chunks, work_text, period=INET_TEXT_PERIOD):
            (size,) = LENGTH.unpack_from(data)
            out.write(seen.rows(data[4 : 4 + size], data[4 + size :]))
        return
    if keep is not None:
        render = _filtered(render, keep)
    out.text(render(table.first))
    out.flush()
    if decoder.done:
        return

    from nlstat.backends.netlink.nlsocket import dump_ended

    def work(chunk: bytes) -> bytes:
        return render(decoder.chunk(chunk)).encode("utf-8", "surrogateescape")

    for data in ordered_map(table.chunks, work, dump_ended, backlog=DUMP_BACKLOG):
        out.write(data)


# A dump of both families gives IPv6 rows among the IPv4 ones, and netstat prints them after:
# they wait as text. Past this much, they are dropped and IPv6 is asked for on its own (the
# second walk that netstat and ss always pay).
HELD_IPV6_LIMIT = 4 << 20
LENGTH = struct.Struct("=I")


def _both(
    first: Optional[Callable[[InetSocket], bool]], second: Optional[Callable[[InetSocket], bool]]
) -> Optional[Callable[[InetSocket], bool]]:
    if first is None:
        return second
    if second is None:
        return first
    return lambda record: first(record) and second(record)


def _write_tcp_both(
    out: Output,
    table: InetTable,
    rows: Rows,
    selected: Optional[Callable[[InetSocket], bool]] = None,
) -> bool:
    """tcp over both families from one dump (SocketSource.tcp_both): the IPv4 rows as they
    come, then the IPv6 rows. False when the IPv6 rows were too many to hold: the IPv4 rows
    are written, the caller asks for IPv6 on its own. `selected`: the filters left for
    user space."""
    decoder = table.decoder
    assert decoder is not None
    others = decoder.others
    render4 = rows.renderer(TCP, _socket.AF_INET)
    render6 = rows.renderer(TCP, _socket.AF_INET6)
    if selected is not None:
        render4 = _filtered(render4, selected)
        render6 = _filtered(render6, selected)
    if out.note is not None:
        out.note("tcp", "netlink")
        out.note("tcp6", "netlink")
    held: List[bytes] = []
    held_size = 0

    def hold(text: bytes) -> None:
        nonlocal held_size
        held_size += len(text)
        if held_size <= HELD_IPV6_LIMIT:
            held.append(text)
        else:
            held.clear()  # over the limit: IPv6 will be asked for on its own

    out.text(render4(table.first))
    if others:
        hold(render6(others).encode("utf-8", "surrogateescape"))
        others.clear()
    out.flush()
    if not decoder.done:
        from nlstat.backends.netlink.nlsocket import dump_ended

        def work(chunk: bytes) -> bytes:
            # The IPv4 rows, as they are when the chunk held no IPv6 socket (most chunks);
            # else NUL, the IPv6 rows' length and rows, then the IPv4 rows (a row never
            # starts with NUL). The parent splits.
            ipv4 = render4(decoder.chunk(chunk)).encode("utf-8", "surrogateescape")
            if not others:
                return ipv4
            ipv6 = render6(others).encode("utf-8", "surrogateescape")
            others.clear()
            return b"\0" + LENGTH.pack(len(ipv6)) + ipv6 + ipv4

        for data in ordered_map(table.chunks, work, dump_ended, backlog=DUMP_BACKLOG):
            if data[:1] != b"\0":
                out.write(data)
                continue
            (size,) = LENGTH.unpack_from(data, 1)
            hold(data[5 : 5 + size])
            out.write(memoryview(data)[5 + size :])
    if held_size > HELD_IPV6_LIMIT:
        return False
    for text in held:
        out.write(text)
    return True


def _filtered(
    render: Callable[[List[InetSocket]], str], keep: Callable[[InetSocket], bool]
) -> Callable[[List[InetSocket]], str]:
    """A batch renderer that drops what netstat would not list (-l, default, -a)."""

    def render_kept(batch: List[InetSocket]) -> str:
        return render([record for record in batch if keep(record)])

    return render_kept


def _sctp(query: Query, env: Environment, out: Output) -> int:
    """SCTP has no sock_diag source here; netstat reads /proc/net/sctp/{eps,assocs}.

    The sctp module is absent on the kernels nlstat is tested on; when its files are missing
    netstat prints its notice (once for associations, twice with -a: endpoints too).
    """
    if not query.wants_inet_v4:
        # INFO_GUTS6 reads the IPv4 file only when inet is selected, and the IPv6 one
        # (/proc/net/sctp6/...) no kernel has is skipped without a word: `-6 -S` exits 0.
        return ExitStatus.OK
    parts = []
    if query.all or query.listening:
        parts.append("eps")
    if query.all or not query.listening:
        parts.append("assocs")
    for part in parts:
        if os.path.exists(env.proc("net", "sctp", part)):
            env.trace(f"/proc/net/sctp/{part} exists but nlstat does not list SCTP sockets yet")
            continue
        if _missing_protocol(query, env, out, "sctp"):
            return ExitStatus.ERROR
    return ExitStatus.OK
