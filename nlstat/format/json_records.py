"""Records -> JSON lines (--json, --ndjson): one object a line, fields as docs/schema.md says.

The same records the text formatters get, never their text. Each renderer turns a batch of
records into lines ending in "\\n" (json_document.JsonSink makes an array of them for --json).
The socket renderers are the hot path of `--ndjson` at 100k sockets: a line is one "%" over a
template made once per table, because addresses, state names and numbers never need JSON
escaping; strings that might (paths, names, programs) go through `text()`, which calls the
json module only for a string that is not plain printable ASCII.
"""

from __future__ import annotations

import _socket
import base64
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from nlstat.format.sockets import (
    TCP_STATE_NAMES,
    UNIX_TYPE_NAMES,
    unix_state_text,
)
from nlstat.model.build import fields_of, specialised
from nlstat.model.sockets import RAW, TCP, InetSocket
from nlstat.query import Query
from nlstat.resolve import Names

if TYPE_CHECKING:  # each mode imports only its own records
    from nlstat.model.conntrack import ConntrackEntry
    from nlstat.model.groups import GroupMembership
    from nlstat.model.links import Inet6Address, Interface
    from nlstat.model.routes import CachedRoute, Route, Route6
    from nlstat.model.sockets import UnixBatch, UnixSocket
    from nlstat.model.stats import StatsSection

# Record positions by field name (the order is InetSocket's declaration, nothing else).
_AT = InetSocket._fields.index
_PLAIN_FIELDS = ("local_address", "local_port", "remote_address", "remote_port", "recv_q",
                 "send_q", "uid", "inode")

FAMILY_NAMES = {_socket.AF_INET: "inet", _socket.AF_INET6: "inet6"}

# Kernel TCP state numbers -> netstat's names; past CLOSING (NEW_SYN_RECV and later) "UNKNOWN".
STATE_NAMES: Tuple[str, ...] = ("UNKNOWN",) + TCP_STATE_NAMES[1:] + ("UNKNOWN",) * 244

# The unix flag words netstat prints between brackets ("[ ACC ]"), by bit.
UNIX_FLAG_WORDS = ((0x10000, "ACC"), (0x20000, "W"), (0x40000, "N"))

# The JSON escapes of the C0 controls, the quote and the backslash (RFC 8259 section 7).
_ESCAPES = {i: "\\u%04x" % i for i in range(0x20)}
_ESCAPES.update({0x22: '\\"', 0x5C: "\\\\", 0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n",
                 0x0D: "\\r", 0x09: "\\t", 0x7F: "\\u007f"})


def clean(value: str) -> str:
    """A str as valid Unicode: each undecodable byte (a lone surrogate from surrogateescape
    decoding) becomes U+FFFD. docs/schema.md: strings are UTF-8; paths carry their bytes."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value


def text(value: Optional[str]) -> str:
    """A JSON string literal (or null): "ssh" -> '"ssh"', control characters escaped."""
    if value is None:
        return "null"
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return '"' + value + '"'
    return '"' + clean(value).translate(_ESCAPES) + '"'


def number(value: Optional[int]) -> str:
    return "null" if value is None else str(int(value))


def obj(fields: Iterable[Tuple[str, str]]) -> str:
    """{"key":<already encoded value>,...}; keys are plain ASCII names."""
    return "{" + ",".join('"' + key + '":' + value for key, value in fields) + "}"


def split_owner(owner: Optional[str]) -> Tuple[Optional[int], Optional[str]]:
    """netstat's "PID/name" (-p column) -> (pid, name); "-" or None -> (None, None)."""
    if not owner or owner == "-":
        return None, None
    pid, _, name = owner.partition("/")
    return (int(pid), name) if pid.isdigit() else (None, owner)


def _names_beside(names: Names, family: int, address: str) -> Optional[str]:
    """The host name netstat would show for an address, None when it shows the number."""
    if family == _socket.AF_INET:
        shown = names.socket_host4(address)
    else:
        shown = names.socket_host6(address)
    if shown == address or shown in ("*", "[::]"):
        return None
    return shown


def timer_word(record: InetSocket) -> str:
    """The word of netstat's -o column (netstat.c tcp_do_one/udp_do_one): "keepalive", "on1"."""
    timer = record.timer
    if record.protocol == TCP:
        return ("off", "on", "keepalive", "timewait", "probe")[timer] if timer <= 4 else (
            "unkn-%d" % timer)
    if timer == 0:
        return "off"
    return "on%d" % timer if timer in (1, 2) else "unkn-%d" % timer


# -- sockets ------------------------------------------------------------------------------------


class JsonInetRows:
    """InetSocket records -> "inet" lines; the same renderer() shape as format.sockets.InetRows,
    so modes/sockets.py streams them through the same pipeline."""

    def __init__(
        self, query: Query, names: Names, programs: Optional[Mapping[int, str]] = None
    ) -> None:
        self.query = query
        self.names = names
        self.programs = programs if programs is not None or not query.programs else {}
        self._services: Dict[Tuple[str, int], str] = {}
        self._hosts: Dict[Tuple[int, str], str] = {}
        self._cgroups: Dict[int, str] = {}
        self._cgroup_paths: Optional[Callable[[int], Optional[str]]] = None

    def cgroup(self, cgroup_id: int) -> str:
        """The "cgroup" value: the cgroup v2 path, null when unknown (nlstat/cgroups.py)."""
        found = self._cgroups.get(cgroup_id)
        if found is None:
            if self._cgroup_paths is None:
                from nlstat.cgroups import CgroupPaths

                self._cgroup_paths = CgroupPaths().path
            path = self._cgroup_paths(cgroup_id)
            found = self._cgroups[cgroup_id] = "null" if path is None else text(path)
        return found

    def service(self, table: str, port: int) -> str:
        key = (table, port)
        found = self._services.get(key)
        if found is None:
            shown = self.names.port(port, table)
            found = "null" if shown in ("*", str(port)) else text(shown)
            self._services[key] = found
        return found

    def host(self, family: int, address: str) -> str:
        key = (family, address)
        found = self._hosts.get(key)
        if found is None:
            if len(self._hosts) > 1 << 16:
                self._hosts.clear()  # flat memory with a million distinct peers
            found = self._hosts[key] = text(_names_beside(self.names, family, address))
        return found

    @specialised
    def renderer(self, protocol: str, family: int) -> Callable[[List[InetSocket]], str]:
        # fmt: off
        query = self.query
        names = self.names
        states = ['"state":"%s",' % name for name in STATE_NAMES]
        template = (
            '{"type":"inet","proto":"%s","family":"%s",' % (protocol, FAMILY_NAMES[family])
            + '%s"local_address":"%s","local_port":%d,"remote_address":"%s","remote_port":%d,'
            '"recv_q":%d,"send_q":%d,"uid":%d,"inode":%d,"cookie":%s,"ifindex":%s'
        )
        line_end = "}\n"
        plain = (names.numeric_hosts and names.numeric_ports and not query.extend
                 and not query.programs and not query.timers)
        if plain:
            # `-ant --ndjson`: C-level maps over the batch, no Python code per record. The
            # cost is the "%" of ten fields (concatenating cached pieces costs twice as
            # much).
            # A table comes from one backend: sock_diag records all have cookies (the
            # kernel's are never 0), /proc ones none.
            heads = ['{"type":"inet","proto":"%s","family":"%s","state":"%s",'
                     % (protocol, FAMILY_NAMES[family], name) for name in STATE_NAMES]
            endpoints = ('"local_address":"%s","local_port":%d,"remote_address":"%s",'
                         '"remote_port":%d,"recv_q":%d,"send_q":%d,"uid":%d,"inode":%d,')
            with_cookie = (endpoints + '"cookie":%d,"ifindex":%d}\n').__mod__
            without_cookie = (endpoints + '"cookie":null,"ifindex":null}\n').__mod__
            state_of = itemgetter(_AT("state"))
            netlink_fields = itemgetter(*map(_AT, _PLAIN_FIELDS + ("cookie", "interface")))
            proc_fields = itemgetter(*map(_AT, _PLAIN_FIELDS))

            def render_plain(batch: List[InetSocket]) -> str:
                if not batch:
                    return ""
                if batch[0].cookie:
                    tails = map(with_cookie, map(netlink_fields, batch))
                else:
                    tails = map(without_cookie, map(proc_fields, batch))
                return "".join(chain.from_iterable(
                    zip(map(heads.__getitem__, map(state_of, batch)), tails)))

            return render_plain

        table = "" if protocol == RAW else ("tcp" if protocol == TCP else "udp")
        hosts = not names.numeric_hosts
        services = not names.numeric_ports
        extend = query.extend > 0
        programs = self.programs
        timers = query.timers
        host = self.host
        service = self.service
        cgroup = self.cgroup

        def render(batch: List[InetSocket]) -> str:
            lines: List[str] = []
            append = lines.append
            for record in batch:
                (state, local_address, local_port, remote_address, remote_port, recv_q, send_q,
                 uid, inode, timer_ms, retransmits, probes, cookie, interface,
                 cgroup_id) = fields_of(InetSocket, record)
                line = template % (
                    states[state], local_address, local_port, remote_address, remote_port,
                    recv_q, send_q, uid, inode, cookie or "null",
                    interface if cookie else "null")
                if hosts:
                    line += (',"local_host":' + host(family, local_address)
                             + ',"remote_host":' + host(family, remote_address))
                if services:
                    line += (',"local_service":' + service(table, local_port)
                             + ',"remote_service":' + service(table, remote_port))
                if extend:
                    line += ',"user":' + text(names.user(uid)) + ',"cgroup":' + cgroup(cgroup_id)
                if programs is not None:
                    pid, program = split_owner(programs.get(inode))
                    line += ',"pid":' + number(pid) + ',"program":' + text(program)
                if timers:
                    line += (',"timer":"%s","timer_ms":%d,"retransmits":%d,"probes":%d'
                             % (timer_word(record), timer_ms, retransmits, probes))
                append(line + line_end)
            return "".join(lines)

        return render
        # fmt: on


def unix_flag_words(flags: int) -> str:
    return "[" + ",".join('"' + word + '"' for bit, word in UNIX_FLAG_WORDS if flags & bit) + "]"


def path_fields(path: str, name: Optional[bytes] = None) -> str:
    """The "path" fields of a unix socket (docs/schema.md, "Unix socket names").

    `path` is the text /proc/net/unix prints: "@" then the name for an abstract socket, NULs
    inside an abstract name shown as "@" (the kernel's unix_seq_show does the same), bytes
    that are not UTF-8 kept as surrogate escapes. `name`: the exact bytes of an abstract name,
    when the backend has them and they hold NULs. "path_b64" (the exact sun_path bytes,
    base64, with the leading NUL of an abstract name) is there whenever "path" cannot say
    them exactly; "path" then has U+FFFD for each byte that is not UTF-8.
    """
    if not path:
        return ',"path":null,"abstract":false'
    abstract = path[0] == "@"
    exact: Optional[bytes] = None
    if name is not None:
        exact = name
    elif not (path.isascii() or _is_unicode(path)):
        raw = path.encode("utf-8", "surrogateescape")
        exact = b"\0" + raw[1:] if abstract else raw
    fields = ',"path":' + text(path) + ',"abstract":' + ("true" if abstract else "false")
    if exact is not None:
        fields += ',"path_b64":"' + base64.b64encode(exact).decode("ascii") + '"'
    return fields


def _is_unicode(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unix_head(kind_type: int, socket_state: int, flags: int, refcnt: Optional[int],
               protocol: int) -> str:
    state = unix_state_text(socket_state, flags)
    return (
        '{"type":"unix","proto":"unix","refcnt":%s,"flags":%s,"socket_type":%s,"state":%s,'
        '"socket_state":%d,"kernel_protocol":%d,"inode":'
        % (number(refcnt), unix_flag_words(flags),
           text(UNIX_TYPE_NAMES.get(kind_type, "UNKNOWN")), text(state or None),
           socket_state, protocol)
    )


# unix_diag reports no cgroup (only inet_diag has INET_DIAG_CGROUP_ID): null with -e.
NO_CGROUP = ',"cgroup":null'


def unix_batch_renderer(
    query: Query, programs: Optional[Mapping[int, str]] = None
) -> Callable[[UnixBatch], str]:
    """/proc/net/unix batches -> "unix" lines (no cookie or peer there: null)."""
    heads: Dict[object, str] = {}
    if programs is None and query.programs:
        programs = {}
    extend = query.extend > 0

    def render(batch: UnixBatch) -> str:
        lines: List[str] = []
        append = lines.append
        for kind, inode, path in zip(batch.kinds, batch.inodes, batch.paths):
            head = heads.get(kind)
            if head is None:
                head = heads[kind] = _unix_head(kind.type, kind.socket_state, kind.flags,
                                                kind.refcnt, kind.protocol)
            line = head + str(inode) + path_fields(path) + ',"peer_inode":null,"cookie":null'
            if extend:
                line += NO_CGROUP
            if programs is not None:
                pid, program = split_owner(programs.get(inode))
                line += ',"pid":' + number(pid) + ',"program":' + text(program)
            append(line + "}\n")
        return "".join(lines)

    return render


def unix_records_renderer(
    query: Query, programs: Optional[Mapping[int, str]] = None
) -> Callable[[Sequence[UnixSocket]], str]:
    """unix_diag records (joined with /proc) -> "unix" lines, with cookie and peer inode."""
    if programs is None and query.programs:
        programs = {}
    extend = query.extend > 0

    def render(records: Sequence[UnixSocket]) -> str:
        lines: List[str] = []
        for record in records:
            line = (_unix_head(record.type, record.socket_state, record.flags, record.refcnt,
                               record.protocol)
                    + str(record.inode)
                    + path_fields(record.path, record.name)
                    + ',"peer_inode":%s,"cookie":%s' % (
                        number(record.peer_inode if record.cookie else None),
                        number(record.cookie or None)))
            if extend:
                line += NO_CGROUP
            if programs is not None:
                pid, program = split_owner(programs.get(record.inode))
                line += ',"pid":' + number(pid) + ',"program":' + text(program)
            lines.append(line + "}\n")
        return "".join(lines)

    return render


def group_lines(rows: Iterable[GroupMembership], names: Names) -> str:
    """-g memberships -> "group" lines."""
    lines = []
    for row in rows:
        fields = [
            ("type", '"group"'),
            ("family", text(FAMILY_NAMES.get(row.family, str(row.family)))),
            ("interface", text(row.device)),
            ("ifindex", number(row.ifindex or None)),
            ("address", text(row.address)),
            ("users", number(row.users)),
        ]
        if not names.numeric_hosts:
            fields.append(("group", text(_names_beside(names, row.family, row.address))))
        lines.append(obj(fields) + "\n")
    return "".join(lines)


# -- routes -------------------------------------------------------------------------------------


def prefix_of(netmask: str) -> int:
    return bin(int.from_bytes(_socket.inet_aton(netmask), "big")).count("1")


def _name_field(names: Optional[Names], address: str, netmask: int = 0xFFFFFFFF) -> str:
    if names is None:
        return "null"
    shown = names.inet_name(address, netmask, False)
    return "null" if shown in (address, "*", "default") else text(shown)


def route_lines(routes: Iterable[Route], names: Optional[Names]) -> List[str]:
    """IPv4 FIB rows -> "route" lines (names beside when -r resolves them, not under -n)."""
    from nlstat.format.routes import ipv4_flags

    lines = []
    for route in routes:
        data = route.data
        mask = int.from_bytes(_socket.inet_aton(data.genmask), "big")
        fields = [
            ("type", '"route"'),
            ("family", '"inet"'),
            ("destination", text(route.destination)),
            ("prefix_len", number(data.prefix_len or prefix_of(data.genmask))),
            ("genmask", text(data.genmask)),
            ("gateway", text(data.gateway)),
            ("flags", text(ipv4_flags(data.flags))),
            ("flags_value", number(data.flags)),
            ("metric", number(data.metric)),
            ("refcnt", number(data.refcnt)),
            ("use", number(data.use)),
            ("mss", number(data.mtu)),
            ("window", number(data.window)),
            ("irtt", number(data.irtt)),
            ("interface", text(None if data.iface == "*" else data.iface)),
            ("table", number(data.table)),
        ]
        if names is not None:
            fields.append(("destination_name", _name_field(names, route.destination, mask)))
            fields.append(("gateway_name", _name_field(names, data.gateway)))
        lines.append(obj(fields) + "\n")
    return lines


def route6_lines(routes: Iterable[Route6], cache: bool) -> List[str]:
    """IPv6 routes -> "route" lines; `cache`: the RTF_CACHE view of -C."""
    from nlstat.format.routes import ipv6_flags

    lines = []
    for route in routes:
        data = route.data
        fields = [
            ("type", '"route"'),
            ("family", '"inet6"'),
            ("cache", "true" if cache else "false"),
            ("destination", text(route.destination)),
            ("prefix_len", number(data.prefix_len)),
            ("next_hop", text(data.next_hop)),
            ("flags", text(ipv6_flags(data.flags))),
            ("flags_value", number(data.flags)),
            ("metric", number(data.metric)),
            ("refcnt", number(data.refcnt)),
            ("use", number(data.use)),
            ("interface", text(data.iface)),
            ("source", text(data.source)),
            ("source_len", number(data.source_len)),
            ("table", number(data.table or None)),
        ]
        lines.append(obj(fields) + "\n")
    return lines


def route_cache_lines(entries: Iterable[CachedRoute], layout: int) -> List[str]:
    """The IPv4 routing cache (-C) -> "route_cache" lines (empty on kernels since 3.6)."""
    from nlstat.format.routes import cache_flags

    lines = []
    for entry in entries:
        fields = [
            ("type", '"route_cache"'),
            ("family", '"inet"'),
            ("source", text(entry.source)),
            ("destination", text(entry.destination)),
            ("gateway", text(entry.gateway)),
            ("flags", text(cache_flags(entry.flags, layout))),
            ("flags_value", number(entry.flags)),
            ("metric", number(entry.metric)),
            ("refcnt", number(entry.refcnt)),
            ("use", number(entry.use)),
            ("interface", text(entry.iface)),
            ("mss", number(entry.mss)),
            ("window", number(entry.window)),
            ("irtt", number(entry.irtt)),
            ("tos", number(entry.tos)),
        ]
        lines.append(obj(fields) + "\n")
    return lines


# -- interfaces ---------------------------------------------------------------------------------

# Link-layer address lengths by ARPHRD_* type: the sources keep 8 bytes, as netstat copies 8
# of ifr_hwaddr, so a 6-byte MAC would carry two zero bytes. Other types: the 8 bytes.
ADDRESS_LENGTHS = {1: 6, 6: 6, 772: 6, 801: 6, 803: 6, 768: 4, 776: 4, 769: 16}


def interface_line(
    interface: Interface, long_format: bool, inet6: Sequence[Inet6Address]
) -> str:
    """One interface (-i; with -e its addresses, hardware and queue too) -> "interface" line."""
    from nlstat.format.interfaces import LONG_FLAGS, flags16, visible_stats

    flags = flags16(interface.flags)
    stats = visible_stats(interface)
    fields = [
        ("type", '"interface"'),
        ("name", text(interface.name)),
        ("ifindex", number(interface.ifindex or None)),
        ("mtu", number(interface.mtu)),
        ("flags", "[" + ",".join('"' + name + '"' for bit, name in LONG_FLAGS if flags & bit)
         + "]"),
        ("flags_value", number(flags)),
        ("stats", "null" if stats is None else obj(
            (key, number(value)) for key, value in zip(stats._fields, stats))),
    ]
    if long_format:
        inet = interface.inet
        fields += [
            ("hardware_type", number(interface.hardware_type)),
            ("hardware_address", text(":".join(
                "%02x" % b for b in interface.hardware_address[
                    :ADDRESS_LENGTHS.get(interface.hardware_type, 8)]))),
            ("tx_queue_len", number(interface.tx_queue_len)),
            ("inet", "null" if inet is None else obj([
                ("address", text(inet.address)),
                ("netmask", text(inet.netmask)),
                ("broadcast", text(inet.broadcast)),
                ("destination", text(inet.destination)),
            ])),
            ("inet6", "[" + ",".join(obj([
                ("address", text(entry.address)),
                ("prefix_len", number(entry.prefix_length)),
                ("scope", number(entry.scope)),
            ]) for entry in inet6 if entry.device == interface.name) + "]"),
            ("map", obj((key, number(value)) for key, value in zip(
                interface.device_map._fields, interface.device_map))),
        ]
    return obj(fields) + "\n"


# -- statistics, masquerade ---------------------------------------------------------------------


def section_line(section: StatsSection, family: str, path: str) -> str:
    """One section of a MIB file (-s) -> a "statistics" line, counters by their kernel names."""
    return obj([
        ("type", '"statistics"'),
        ("family", text(family)),
        ("file", text(path)),
        ("section", text(section.name)),
        ("counters", obj((_key(name), number(value)) for name, value in section.counters)),
    ]) + "\n"


def _key(name: str) -> str:
    literal = text(name)
    return literal[1:-1]


def connection_line(entry: ConntrackEntry, names: Names, masq_port: int) -> str:
    """One NAT'd conntrack entry (-M) -> a "masquerade" line."""
    from nlstat.format.masquerade import PROTOCOL_NAMES

    fields = [
        ("type", '"masquerade"'),
        ("protocol", text(PROTOCOL_NAMES.get(entry.protocol, "ip"))),
        ("protocol_number", number(entry.protocol)),
        ("source", text(entry.orig_src)),
        ("destination", text(entry.orig_dst)),
        ("source_port", number(entry.orig_sport)),
        ("destination_port", number(entry.orig_dport)),
        ("masquerade_port", number(masq_port)),
        ("reply_source", text(entry.reply_src)),
        ("reply_destination", text(entry.reply_dst)),
        ("reply_source_port", number(entry.reply_sport)),
        ("reply_destination_port", number(entry.reply_dport)),
        ("status", number(entry.status)),
        ("expire_ms", number(entry.timeout * 1000)),
        ("mark", number(entry.mark)),
        ("zone", number(entry.zone)),
        ("id", number(entry.id or None)),
        ("initseq", number(entry.seq_correction_pos)),
        ("delta", number(entry.seq_offset_after)),
        ("prevd", number(entry.seq_offset_before)),
    ]
    if not names.numeric_hosts:
        fields.append(("source_host", text(_names_beside(names, _socket.AF_INET,
                                                         entry.orig_src))))
        fields.append(("destination_host", text(_names_beside(names, _socket.AF_INET,
                                                              entry.orig_dst))))
    return obj(fields) + "\n"
