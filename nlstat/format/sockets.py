"""The socket tables exactly as netstat prints them (netstat.c tcp_do_one .. unix_do_one).

Records in, text lines out; nothing here reads /proc or the kernel. Endpoint texts are cached
per (address, port, table): on a busy host most rows repeat the same hosts and services.
"""

from __future__ import annotations

import _socket
from itertools import chain, repeat
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, cast

from nlstat.model.build import fields_of, specialised
from nlstat.model.sockets import RAW, TCP, UDP, UDPLITE, InetSocket, UnixBatch, UnixKind
from nlstat.query import Query
from nlstat.resolve import Names

# Header suffixes by listing (netstat.c: "(servers and established)" / "(only servers)" / ...).
LISTING_SUFFIX = {
    "all": "(servers and established)",
    "servers": "(only servers)",
    "connected": "(w/o servers)",
}

# 79 characters, ending in 6 blanks (the padded State title).
INET_TITLES = "Proto Recv-Q Send-Q Local Address           Foreign Address         State      "
UNIX_TITLES = "Proto RefCnt Flags       Type       State         I-Node  "

# Without -W an "addr:port" fits 23 columns: the port keeps up to 18 characters and the host
# is cut to what is left (netstat.c addr_do_one).
ADDRESS_WIDTH = 22
PORT_KEEP = 18

# Endpoint host texts cached per family before the cache starts again.
HOST_CACHE_LIMIT = 1 << 16

TCP_STATE_NAMES = (
    "",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
)

UNIX_TYPE_NAMES = {1: "STREAM", 2: "DGRAM", 3: "RAW", 4: "RDM", 5: "SEQPACKET"}
UNIX_STATE_NAMES = {0: "FREE", 2: "CONNECTING", 3: "CONNECTED", 4: "DISCONNECTING"}

# Section label and service table per protocol and family (udplite prints "udpl" and uses udp
# names; raw "ports" are IP protocol numbers named from /etc/protocols).
LABELS: Dict[Tuple[str, int], str] = {
    (TCP, _socket.AF_INET): "tcp",
    (TCP, _socket.AF_INET6): "tcp6",
    (UDP, _socket.AF_INET): "udp",
    (UDP, _socket.AF_INET6): "udp6",
    (UDPLITE, _socket.AF_INET): "udpl",
    (UDPLITE, _socket.AF_INET6): "udpl6",
    (RAW, _socket.AF_INET): "raw",
    (RAW, _socket.AF_INET6): "raw6",
}
SERVICE_TABLE = {TCP: "tcp", UDP: "udp", UDPLITE: "udp", RAW: "raw"}


def inet_header(query: Query) -> str:
    """The two Internet header lines, with the optional column titles of -e, -p, -o."""
    line = INET_TITLES
    if query.extend:
        line += " User       Inode     "
    if query.programs:
        line += " PID/Program name    "
    if query.timers:
        line += " Timer"
    return "Active Internet connections " + LISTING_SUFFIX[query.listing] + "\n" + line + "\n"


def unix_header(query: Query) -> str:
    line = UNIX_TITLES
    if query.programs:
        line += " PID/Program name    "
    return "Active UNIX domain sockets " + LISTING_SUFFIX[query.listing] + "\n" + line + " Path\n"


def join_endpoint(host: str, port: str, wide: bool) -> str:
    """netstat's "host:port" with the 23-column cut: ("localhost", "afs3-fileserver") ->
    "localho:afs3-fileserver"."""
    if wide or len(host) + len(port) <= ADDRESS_WIDTH:
        return host + ":" + port
    keep = min(len(port), PORT_KEEP)
    return host[: ADDRESS_WIDTH - keep] + ":" + port[:keep]


def timer_text(record: InetSocket) -> str:
    """The -o column: "keepalive (7179.92/0/0)" etc. (netstat.c tcp_do_one/udp_do_one)."""
    # /proc counts in USER_HZ ticks; sock_diag in ms. Both become ticks, as netstat divides.
    seconds = (record.timer_ms // 10) / 100
    timer = record.timer
    if record.protocol == TCP:
        kind = (
            ("off", "on", "keepalive", "timewait", "probe")[timer]
            if 0 <= timer <= 4
            else ("unkn-%d" % timer)
        )
        if timer == 0:
            seconds = 0.0
        return "%s (%2.2f/%d/%d)" % (kind, seconds, record.retransmits, record.probes)
    # raw_do_one prints the retransmits column, udp_do_one a 0 (the kernel's raw rows carry
    # 0 there; a crafted /proc shows the difference).
    retransmits = record.retransmits if record.protocol == RAW else 0
    if timer == 0:
        return "off (0.00/%d/%d)" % (retransmits, record.probes)
    if timer in (1, 2):
        return "on%d (%2.2f/%d/%d)" % (timer, seconds, retransmits, record.probes)
    return "unkn-%d (%2.2f/%d/%d)" % (timer, seconds, retransmits, record.probes)


class InetRows:
    """Formats InetSocket records as netstat rows, with one renderer per protocol and family."""

    def __init__(
        self, query: Query, names: Names, programs: Optional[Mapping[int, str]] = None
    ) -> None:
        self.query = query
        self.names = names
        # -p with no map (nothing could be read) still prints the column, all "-".
        self.programs = programs if programs is not None or not query.programs else {}
        self._hosts: Dict[int, Dict[str, str]] = {_socket.AF_INET: {}, _socket.AF_INET6: {}}
        self._ports: Dict[str, List[Optional[str]]] = {}

    def host(self, family: int, address: str) -> str:
        names = self.names
        if family == _socket.AF_INET:
            text = names.socket_host4(address)
        else:
            text = names.socket_host6(address)
        hosts = self._hosts[family]
        if len(hosts) > HOST_CACHE_LIMIT:
            hosts.clear()  # flat memory with a million distinct peers; names stay in resolve
        hosts[address] = text
        return text

    def port_texts(self, table: str) -> List[Optional[str]]:
        """A 65536-slot list per service table: indexing beats a dict on the hot path."""
        texts = self._ports.get(table)
        if texts is None:
            texts = self._ports[table] = [None] * 65536
        return texts

    def port(self, table: str, port: int) -> str:
        text = self.names.port(port, table)
        self.port_texts(table)[port] = text
        return text

    @specialised
    def renderer(
        self, protocol: str, family: int, fast: bool = True
    ) -> Callable[[List[InetSocket]], str]:
        """A closure for one dump (one protocol, one family) turning a batch of records into
        their rows. The loop is the hot path of `nlstat -ant`: records are unpacked as tuples
        (one operation instead of a dozen attribute loads), endpoint texts come from
        per-address and per-port caches.

        One row builder (`render`): netstat's printf of the first five columns (`columns`),
        then the optional ones. A row without optional columns is put together by
        concatenation instead (less than half the cost of one "%" with five values), and
        `-ant`/`-anu` take a fast path (`render_numeric`: no cut, numeric
        endpoints). tests/unit/test_crafted_numbers.py holds the fast path byte-equal to the
        builder (`fast=False` gives the builder alone) and the concatenated columns equal to
        the printf ones, over random records.

        A state indexes its table only below 256 (records carry no negative number: sock_diag's
        states are u8, /proc's are read unsigned); the fast path hands a batch with a larger
        one to the builder, which prints it as docs/compat.md says.
        """
        # fmt: off
        query = self.query
        label = LABELS[(protocol, family)]
        table = SERVICE_TABLE[protocol]
        hosts_get = self._hosts[family].get
        # -n on IPv4: the address text is the host text. Skipping the cache matters where
        # addresses hardly repeat (nearly every look-up would miss).
        verbatim = family == _socket.AF_INET and self.names.numeric_hosts
        ports = self.port_texts(table)
        host_of = self.host
        port_of = self.port
        wide = query.wide
        cut = join_endpoint
        width = ADDRESS_WIDTH
        is_raw = protocol == RAW
        head = ("%-5s " if protocol in (UDP, UDPLITE) else "%-4s  ") % label
        # The State column with its trailing blank, per state number 0..255 (raw sockets print
        # the number; netstat.c tcp_do_one/udp_do_one name the rest); `unknown_state` for any
        # other number.
        if protocol == TCP:
            names: Sequence[str] = TCP_STATE_NAMES + ("",) * (256 - len(TCP_STATE_NAMES))
            unknown_state = ""
        elif is_raw:
            names = [str(state) for state in range(256)]
            unknown_state = None
        else:
            udp_names = ["UNKNOWN"] * 256
            udp_names[1] = "ESTABLISHED"
            udp_names[7] = ""
            names = udp_names
            unknown_state = "UNKNOWN"
        state_columns = [name.ljust(11) for name in names]
        state_ends = [column + "\n" for column in state_columns]
        queues = head + "%6d %6d "
        no_queues = queues % (0, 0)
        extend = query.extend > 0
        programs = self.programs
        timers = query.timers
        user = self.names.user
        plain = not (extend or programs is not None or timers)
        # netstat.c tcp_do_one: "%-4s  %6ld %6ld %-*s %-*s %-11s" (the State column comes
        # padded); a plain row ends with it, others go on after it.
        columns = head + "%6d %6d %-23s %-23s %s"
        state_texts = state_ends if plain else state_columns

        def unknown_state_text(state: int) -> str:
            text = (str(state) if unknown_state is None else unknown_state).ljust(11)
            return text + "\n" if plain else text

        def render(batch: List[InetSocket]) -> str:
            lines: List[str] = []
            append = lines.append
            for record in batch:
                (state, local_address, local_port, remote_address, remote_port, recv_q, send_q,
                 uid, inode) = fields_of(InetSocket, record)
                host = local_address if verbatim else (
                    hosts_get(local_address) or host_of(family, local_address))
                port = ports[local_port] or port_of(table, local_port)
                if wide or len(host) + len(port) <= width:
                    local = host + ":" + port
                else:
                    local = cut(host, port, False)
                host = remote_address if verbatim else (
                    hosts_get(remote_address) or host_of(family, remote_address))
                port = ports[remote_port] or port_of(table, remote_port)
                if wide or len(host) + len(port) <= width:
                    remote = host + ":" + port
                else:
                    remote = cut(host, port, False)
                state_text = state_texts[state] if state < 256 else unknown_state_text(state)
                if plain:
                    # `columns` by concatenation: "%-23s " is .ljust(23) + " " (no cut here).
                    append((queues % (recv_q, send_q) if recv_q or send_q else no_queues)
                           + local.ljust(23) + " " + remote.ljust(23) + " " + state_text)
                    continue
                line = columns % (recv_q, send_q, local, remote, state_text)
                if extend:
                    line += " %-10s %-10d" % (user(uid), inode)
                if programs is not None:
                    line += " %-20s" % programs.get(inode, "-")
                if timers:
                    line += " " + timer_text(record)
                append(line + "\n")
            return "".join(lines)

        if not (fast and plain and verbatim and self.names.numeric_ports and not is_raw):
            return render

        # `-ant`, `-anu`: "a.b.c.d:port" is at most 21 characters, so never cut; ports come
        # from a ":port" cache (a third less time than the general builder).
        colon_ports = self.port_texts(":numeric")

        def colon_port(port: int) -> str:
            text = colon_ports[port] = ":" + str(port) if port else ":*"
            return text

        def render_numeric(batch: List[InetSocket]) -> str:
            lines: List[str] = []
            append = lines.append
            try:
                for record in batch:
                    (state, local_address, local_port, remote_address, remote_port, recv_q,
                     send_q) = fields_of(InetSocket, record)
                    # An "a.b.c.d:port" is at most 21 columns: "%-23s " is .ljust(24).
                    append(
                        (queues % (recv_q, send_q) if recv_q or send_q else no_queues)
                        + (local_address + (colon_ports[local_port] or colon_port(local_port)))
                        .ljust(24)
                        + (remote_address + (colon_ports[remote_port] or colon_port(remote_port)))
                        .ljust(24)
                        + state_ends[state])
            except IndexError:
                # A state past 255 (the backends give no negative number: sock_diag's are
                # u8, /proc's are read unsigned): the general builder prints the batch.
                return render(batch)
            return "".join(lines)

        return render_numeric
        # fmt: on


def unix_flags_text(flags: int) -> str:
    text = "[ "
    if flags & 0x10000:
        text += "ACC "
    if flags & 0x20000:
        text += "W "
    if flags & 0x40000:
        text += "N "
    return text + "]"


def unix_state_text(socket_state: int, flags: int) -> str:
    if socket_state == 1:
        return "LISTENING" if flags & 0x10000 else ""
    return UNIX_STATE_NAMES.get(socket_state, "UNKNOWN")


def scanf_word(text: str) -> str:
    """What scanf's %s reads of a text: up to the first ASCII blank ("/tmp/with space.sock" ->
    "/tmp/with"). netstat reads /proc/net/unix paths that way."""
    if text.isprintable() and " " not in text:
        return text
    for index, char in enumerate(text):
        if char in " \t\n\v\f\r":
            return text[:index]
    return text


def unix_renderer(
    query: Query, programs: Optional[Mapping[int, str]] = None
) -> Callable[[UnixBatch], str]:
    """Rows of `netstat -x` (netstat.c unix_do_one): "unix  2      [ ACC ]     STREAM ...".

    Everything before the inode depends only on the row's UnixKind, so that prefix is
    formatted once per kind, and a batch is put together column by column with C-level maps.
    """
    prefixes: Dict[UnixKind, str] = {}
    if programs is None and query.programs:
        programs = {}

    def prefix(kind: UnixKind) -> str:
        text = prefixes[kind] = "%-5s %-6d %-11s %-10s %-13s " % (
            "unix" if kind.protocol == 0 else "??",
            kind.refcnt if kind.refcnt is not None else 0,
            unix_flags_text(kind.flags),
            UNIX_TYPE_NAMES.get(kind.type, "UNKNOWN"),
            unix_state_text(kind.socket_state, kind.flags),
        )
        return text

    def render(batch: UnixBatch) -> str:
        kinds = batch.kinds
        paths = batch.paths
        found = list(map(prefixes.get, kinds))
        if None in found:
            found = [head or prefix(kind) for head, kind in zip(found, kinds)]
        heads = cast(List[str], found)
        joined = "".join(paths)
        if " " in joined or not joined.isprintable():
            paths = list(map(scanf_word, paths))
        inodes = batch.inode_texts
        if programs is not None:
            owners = map(programs.get, batch.inodes, repeat("-"))
            tails = map("%-8s %-20s %s\n".__mod__, zip(inodes, owners, paths))
        elif inodes and len(min(inodes, key=len)) >= 8:
            # "%-8lu %s\n" needs no padding past 10 million: the pieces are joined as they
            # are, without a "%" per row.
            return "".join(chain.from_iterable(
                zip(heads, inodes, repeat(" "), paths, repeat("\n"))))
        else:
            tails = map("%-8s %s\n".__mod__, zip(inodes, paths))
        return "".join(chain.from_iterable(zip(heads, tails)))

    return render
