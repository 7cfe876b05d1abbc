"""Socket records for one query, from the backend nlstat.backends picks per table.

inet tables (tcp, udp, udplite, raw) come from sock_diag under auto (every column netstat prints
is there); unix from /proc under auto, because RefCnt (sk_refcnt) exists only in
/proc/net/unix, and from unix_diag joined with /proc under a forced netlink backend.
"""


import _socket
import itertools
import os
from typing import (
    TYPE_CHECKING,
    Callable,
    Dict,
    FrozenSet,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Set,
    Tuple,
)

from nlstat import backends, procio
from nlstat.env import Environment
from nlstat.errors import BackendUnavailable
from nlstat.kernel.sockdiag import SOCK_DIAG_BY_FAMILY, TCP_LISTEN, TCPDIAG_GETSOCK
from nlstat.model.sockets import TCP, InetSocket, UnixSocket
from nlstat.query import BACKEND_AUTO, BACKEND_PROC, OUTPUT_TEXT, Query

if TYPE_CHECKING:
    from nlstat.backends.netlink.sockdiag import ByteCounters, InetDecoder, SockDiag
    from nlstat.filters import Filters


def inet_families(query: Query) -> List[int]:
    """The address families an inet step reads, IPv4 first (netstat.c reads tcp, then tcp6)."""
    return [family for family, wanted in ((_socket.AF_INET, query.wants_inet_v4),
                                          (_socket.AF_INET6, query.wants_inet_v6)) if wanted]

class InetTable(NamedTuple):
    """One inet table as it arrives, undecoded past its first chunk so that the rest may be
    decoded in another process: from sock_diag (the first chunk's records, the decoder and the
    raw chunks still to come) or from /proc (text chunks of whole lines, see text_chunks)."""

    first: List[InetSocket]
    decoder: Optional["InetDecoder"]  # None: the chunks are /proc text
    chunks: Iterator[bytes]
    path: str


class UnixTable(NamedTuple):
    """The unix table: /proc text chunks (auto, proc) or sock_diag records joined with /proc."""

    chunks: Optional[Iterator[bytes]]
    records: Optional[Iterator[UnixSocket]]
    path: str


# The one-walk tcp dump holds the IPv6 rows as text until the IPv4 rows end; with more IPv6
# sockets in use than this (~2 MiB of rows), each family is asked for on its own instead
# (20k IPv4 and 60k IPv6 sockets: holding, overflowing and asking again took 0.35 s, asking
# for each family 0.19 s; ss -tan 0.17 s).
ONE_WALK_IPV6_LIMIT = 20_000

# --json under auto joins unix_diag with /proc/net/unix (SocketSource.unix) only while the
# namespace holds at most this many sockets: the join keeps one side in memory (~250 bytes a
# socket); past it the unix table streams from /proc, cookie and peer unknown (null).
JSON_UNIX_JOIN_LIMIT = 20_000

def unix_from_diag(output: str, env: Environment, sockets_in_use: Callable[[], int]) -> bool:
    """Is the unix table taken from unix_diag (joined with /proc/net/unix)? Under forced
    netlink, as the backend rule says (nlstat.backends); under auto for --json/--ndjson too,
    the rule's "every column asked for": only unix_diag has the peer inode, the cookie and
    abstract names' NULs (docs/schema.md). But not when a captured /proc is replayed, and only
    while the namespace holds at most JSON_UNIX_JOIN_LIMIT sockets, as the join holds one side."""
    if backends.uses_netlink(backends.UNIX, env):
        return True
    return (output != OUTPUT_TEXT and env.backend == BACKEND_AUTO and not env.replay
            and sockets_in_use() <= JSON_UNIX_JOIN_LIMIT)


PROC_FILES = {"tcp": "tcp", "udp": "udp", "udplite": "udplite", "raw": "raw"}


def proc_chunks(path: str) -> Iterator[bytes]:
    """A /proc table's text chunks (the /proc parsers are imported only when /proc is read)."""
    from nlstat.backends.procfs.sockets import open_proc, text_chunks

    return text_chunks(open_proc(path))


def proc_file(protocol: str, family: int) -> str:
    name = PROC_FILES[protocol]
    return name + "6" if family == _socket.AF_INET6 else name


def tcp_states(query: Query) -> int:
    """The kernel-side state mask for tcp: -l asks for LISTEN only, so the kernel never walks
    the established hash (0.4 ms instead of 0.2 s with 100k connections)."""
    from nlstat.backends.netlink.sockdiag import STATES_ALL

    listing = query.listing
    if listing == "servers":
        return 1 << TCP_LISTEN
    if listing == "connected":
        return STATES_ALL & ~(1 << TCP_LISTEN)
    return STATES_ALL


class SocketSource:
    """Socket records for one query, from the backend each table should use.

    With filters (Query.filters) each sock_diag request carries their state mask and
    bytecode; `kernel_done` says, per table, what the kernel has already selected, and
    `owned` holds the socket inodes of the processes --pid/--program-name select.
    """

    def __init__(self, query: Query, env: Environment) -> None:
        self.query = query
        self.env = env
        self._diag: Optional[SockDiag] = None
        self._netlink_refused = not backends.uses_netlink(backends.INET, env)
        self.filters: Optional[Filters] = query.filters
        self.bytecode = b""
        # tcp's: exact ports in the request's socket id, the rest as a program.
        self.tcp_ports = (0, 0)
        self.tcp_bytecode = b""
        self.state_mask = 0xFFFFFFFF
        self.owned: Optional[FrozenSet[int]] = None
        # --watch: a mapping the tcp dumps fill with each socket's tcp_info byte counters
        # (cookie -> (bytes_acked, bytes_received)); None: not asked for.
        self.byte_counters: Optional[ByteCounters] = None
        self._cgroups_said = False
        if query.wants_cgroup:
            from nlstat.cgroups import kernel_reports_cgroups

            if not kernel_reports_cgroups():
                self._no_cgroups(f"this kernel ({os.uname().release}) does not report socket "
                                 "cgroups (INET_DIAG_CGROUP_ID, Linux 5.7)")
        if self.filters is not None:
            from nlstat.backends.netlink.bytecode import bytecode, tcp_request_parts

            if self.filters.dev_name is not None:
                from nlstat.filters import resolved_dev

                # Here, in the namespace listed (a --netns child): its own device indexes.
                self.filters = resolved_dev(self.filters, query.all_netns)

            self.bytecode = bytecode(self.filters)
            self.tcp_ports, self.tcp_bytecode = tcp_request_parts(self.filters)
            self.state_mask = self.filters.state_mask()

    def _no_cgroups(self, why: str) -> None:
        """Said once a run: where cgroups were asked for and cannot be known."""
        if not self._cgroups_said:
            self._cgroups_said = True
            self.env.warn(f"nlstat: {why}: cgroup left empty")

    def close(self) -> None:
        if self._diag is not None:
            self._diag.close()
            self._diag = None

    def _sockdiag(self) -> "SockDiag":
        if self._diag is None:
            from nlstat.backends.netlink.sockdiag import SockDiag

            self._diag = SockDiag()
        return self._diag

    def _refused(self, what: str, err: BackendUnavailable, path: str) -> None:
        """A refused request (nlstat.backends): an error under forced netlink, else /proc.

        ENOENT is not a refusal: this kernel has no diag handler for the protocol
        (CONFIG_INET_RAW_DIAG=n is common), so /proc is simply where these sockets are, under
        every backend, and an empty table would be a lie.
        """
        if backends.handler_missing(err):
            backends.no_netlink_source(f"sock_diag has no {what} handler ({err})", self.env, path)
        else:
            backends.refused(f"sock_diag refused {what}", err, self.env, self.query.verbose, path)
        if backends.stops_asking(err) or self._diag is None:
            self._netlink_refused = True

    def inet(self, protocol: str, family: int) -> InetTable:
        """One protocol and family; OSError when its /proc file can't be opened."""
        path = self.env.proc("net", proc_file(protocol, family))
        if not self._netlink_refused:
            try:
                if protocol == TCP:
                    first, decoder, rest = self._sockdiag().inet_stream(
                        protocol, family, tcp_states(self.query) & self.state_mask,
                        self.query.timers, self.tcp_bytecode, want_cgroup=self.query.wants_cgroup,
                        ports=self.tcp_ports, **self._watching(),
                    )
                else:
                    first, decoder, rest = self._sockdiag().inet_stream(
                        protocol, family, self.state_mask, self.query.timers, self.bytecode,
                        want_cgroup=self.query.wants_cgroup,
                    )
                return InetTable(first, decoder, rest, path)
            except BackendUnavailable as err:
                self._refused(proc_file(protocol, family), err, path)
        if self.query.wants_cgroup:
            self._no_cgroups(f"{path} does not say which cgroup a socket belongs to")
        if self.filters is not None and self.filters.dev is not None:
            # /proc/net/* does not say which device a socket is bound to. A kernel without
            # this protocol's diag module (raw_diag is often left out): its sockets are
            # skipped, and said so.
            self.check_dev()
            self.env.warn(f"nlstat: --dev: {proc_file(protocol, family)} sockets skipped "
                          f"(sock_diag refused them, {path} has no bound device)")
            return InetTable([], None, iter(()), path)
        return InetTable([], None, proc_chunks(path), path)

    def _watching(self) -> Dict[str, "ByteCounters"]:
        """The dump option --watch adds (none otherwise: the request is the listing's)."""
        if self.byte_counters is None:
            return {}
        return {"byte_counters": self.byte_counters}

    def check_dev(self) -> None:
        """--dev and --cgroup need sock_diag: an error under NLSTAT_BACKEND=proc."""
        if self.filters is None or self.env.backend != BACKEND_PROC:
            return
        from nlstat.errors import InvalidFilter

        if self.filters.dev is not None:
            raise InvalidFilter("--dev needs sock_diag: /proc/net/* does not say which "
                                "device a socket is bound to (NLSTAT_BACKEND=proc)")
        if self.filters.cgroup is not None:
            raise InvalidFilter("--cgroup needs sock_diag: /proc/net/* does not say which "
                                "cgroup a socket belongs to (NLSTAT_BACKEND=proc)")

    def kernel_done(self, protocol: str, netlink: bool) -> FrozenSet[str]:
        """The filter parts a table of `protocol` arrived with already applied."""
        if self.filters is None or not netlink:
            return frozenset()
        return self.filters.kernel_parts(protocol)

    def selector(self, protocol: str, netlink: bool) -> Optional[Callable[[InetSocket], bool]]:
        """The test left for user space on a table of `protocol` (from sock_diag or not):
        what the filters ask that the kernel did not already do; None when nothing is left.
        The one filter predicate every output (text, JSON, counts, the API) applies."""
        filters = self.filters
        if filters is None:
            return None
        from nlstat.filters import inet_predicate

        kernel = self.kernel_done(protocol, netlink)
        left = [part for part in filters.parts() if part not in kernel]
        return inet_predicate(filters, left, self.owned)

    def unix_selector(self) -> Optional[Callable[[UnixSocket], bool]]:
        """The filters' test of unix records (None: every socket passes)."""
        if self.filters is None:
            return None
        from nlstat.filters import unix_predicate

        return unix_predicate(self.filters, self.owned)

    def account(self, label: str, source: str, kernel: FrozenSet[str]) -> None:
        """-v: one line per table saying where its filters ran."""
        if self.filters is not None and (self.query.verbose or self.env.debug):
            from nlstat.filters import describe

            self.env.warn(f"nlstat: {label} ({source}): {describe(self.filters, kernel)}")

    def load_owners(self) -> None:
        """The socket inodes of the processes --pid/--program-name select (a walk of those
        processes' descriptors, not the whole -p map); InvalidFilter when none runs."""
        filters = self.filters
        if filters is None or not filters.needs_owners:
            return
        from nlstat.procmap import process_sockets

        found, inodes = process_sockets(self.env.proc_root, filters.pid, filters.program)
        if not found and self.owned is None:
            from nlstat.errors import InvalidFilter

            if filters.pid is not None:
                raise InvalidFilter(f"no process with pid {filters.pid}")
            raise InvalidFilter(f"no process named '{filters.program}'")
        self.owned = inodes

    def tcp_both(self) -> Optional[InetTable]:
        """tcp over IPv4 and IPv6 from one sock_diag dump (SockDiag.tcp_both_stream): the
        IPv4 table, whose decoder collects the IPv6 records in `others`. None when netlink is
        not to be used or the kernel refuses the request: then each family is asked for on
        its own, as inet() does."""
        if self._netlink_refused or self._tcp6_in_use() > ONE_WALK_IPV6_LIMIT:
            return None
        try:
            first, decoder, rest = self._sockdiag().tcp_both_stream(
                tcp_states(self.query) & self.state_mask, self.query.timers, self.tcp_bytecode,
                want_cgroup=self.query.wants_cgroup, ports=self.tcp_ports, **self._watching(),
            )
        except BackendUnavailable as err:
            self.env.trace(f"sock_diag refused tcp over both families ({err}); one dump per family")
            return None
        return InetTable(first, decoder, rest, self.env.proc("net", "tcp"))

    def tcp_state_mask_only(self) -> bool:
        """Whether tcp comes from sock_diag with nothing asked of it but a state mask: no
        port, address, device or cgroup test, no owner filter, no --watch counters."""
        return (not self._netlink_refused and not self.bytecode and not self.tcp_bytecode
                and self.tcp_ports == (0, 0) and self.byte_counters is None
                and self.selector(TCP, True) is None)

    def tcp_halves(self, families: List[int]) -> Optional[Tuple[int, List[bytes]]]:
        """tcp of `families` as two requests that split the sockets between them by their
        ports (bytecode.port_halves()): the message type and the two payloads, for two
        concurrent dumps whose order does not matter (counting). None when netlink is not
        to be used, or when the filters send a program of their own (the two would have to
        be joined)."""
        if self._netlink_refused or self.bytecode:
            return None
        from nlstat.backends.netlink.bytecode import port_halves
        from nlstat.backends.netlink.sockdiag import inet_request, tcp_both_request

        states = tcp_states(self.query) & self.state_mask
        halves = port_halves()
        if len(families) == 2:
            return TCPDIAG_GETSOCK, [tcp_both_request(states, False, half) for half in halves]
        return SOCK_DIAG_BY_FAMILY, [
            inet_request(TCP, families[0], states, False, half) for half in halves
        ]

    def _sockets_in_use(self) -> int:
        """Sockets of every kind in this namespace ("sockets: used N", /proc/net/sockstat);
        a large number when unknown."""
        try:
            fields = procio.read(self.env.proc("net", "sockstat"), 64).split()
        except OSError:
            return 1 << 62
        if fields[:2] == [b"sockets:", b"used"] and len(fields) > 2 and fields[2].isdigit():
            return int(fields[2])
        return 1 << 62

    def _tcp6_in_use(self) -> int:
        """IPv6 tcp sockets in use in this namespace ("TCP6: inuse N", /proc/net/sockstat6);
        0 when the file is missing (no IPv6) or unreadable."""
        try:
            fields = procio.read(self.env.proc("net", "sockstat6"), 64).split()
        except OSError:
            return 0
        if fields[:2] == [b"TCP6:", b"inuse"] and len(fields) > 2 and fields[2].isdigit():
            return int(fields[2])
        return 0

    def unix(self) -> UnixTable:
        """The unix table; OSError when /proc/net/unix is needed and can't be opened."""
        path = self.env.proc("net", "unix")
        if not unix_from_diag(self.query.output, self.env, self._sockets_in_use):
            return UnixTable(proc_chunks(path), None, path)
        try:
            records = self._sockdiag().unix()
            first = next(records, None)
        except BackendUnavailable as err:
            self._refused("unix", err, path)
            return UnixTable(proc_chunks(path), None, path)
        if first is None:
            return UnixTable(None, iter(()), path)
        return UnixTable(None, self._join_unix(itertools.chain((first,), records), path), path)

    def _join_unix(self, records: Iterator[UnixSocket], path: str) -> Iterator[UnixSocket]:
        """unix_diag's sockets, completed from /proc/net/unix and laid out in its order.

        unix_diag has no sk_refcnt; a connect()ed datagram socket is TCP_ESTABLISHED in sk_state
        while its socket-level state, which netstat prints, stays SS_UNCONNECTED; and the
        embryo sockets of connections a listener has not accepted yet (inode 0, state
        CONNECTING) are not dumped at all. So each /proc row takes the netlink record of the
        same inode, enriched with what only /proc knows, and embryos are taken from /proc.
        Sockets created between the two reads (netlink only) follow at the end; a socket only
        /proc listed is listed from /proc.
        """
        from nlstat.backends.procfs.sockets import read_unix

        try:
            rows = read_unix(path, None)
        except OSError:
            yield from records
            return
        by_inode: Dict[int, UnixSocket] = {record.inode: record for record in records}
        forged = _forged_rows(by_inode.values())
        listed: Set[int] = set()
        for row in rows:
            inode = row.inode
            if inode:
                if inode in listed:
                    continue  # printed twice by /proc (a page edge, docs/compat.md)
                listed.add(inode)
            record = by_inode.pop(inode, None)
            if record is None:
                if forged and (inode, row.path) in forged:
                    continue  # the second line of a name holding a newline, not a socket
                # An embryo (unix_diag leaves them out), or a socket the dump did not give:
                # closed after /proc printed it, or passed over when the dump resumed in a
                # hash bucket that had lost a socket ahead of it (seen under churn: a socket
                # open throughout went missing). /proc's row stands for it.
                yield row
                continue
            yield record._replace(
                refcnt=row.refcnt,
                socket_state=row.socket_state,
                flags=row.flags,
                protocol=row.protocol,
            )
        yield from by_inode.values()


def _forged_rows(records: Iterable[UnixSocket]) -> Set[Tuple[int, str]]:
    """(inode, path) of the rows /proc/net/unix shows for the text after a newline inside a
    socket's name: unix_seq_show() prints a name's bytes as they are, so a name holding a
    newline and a row's text after it makes /proc (and netstat) list a socket that does not
    exist. unix_diag gives the whole name, so the join can drop those rows
    (docs/security.md)."""
    from nlstat.backends.procfs.sockets import parse_unix

    lines = [line for record in records if "\n" in record.path
             for line in record.path.split("\n")[1:]]
    if not lines:
        return set()
    return {(row.inode, row.path) for row in parse_unix(lines)}
