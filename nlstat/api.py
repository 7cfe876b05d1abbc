"""The Python API: the records the CLI formats, as iterators, with the CLI's filters.

    >>> import nlstat
    >>> for sock in nlstat.sockets("tcp", state="listen"):
    ...     print(sock.local_address, sock.local_port)
    >>> https = list(nlstat.sockets(kind="tcp", state="established", dport=443,
    ...                             src="198.18.0.0/15", processes=True))
    >>> [route.destination for route in nlstat.routes()]

Every function reads the kernel's tables when called (nothing is cached) and yields the
immutable records of nlstat.model: InetSocket and UnixSocket, Route and Route6, Interface,
GroupMembership, StatsFile, ConntrackEntry. `backend=` is what NLSTAT_BACKEND is to the CLI:
"auto", "netlink" or "proc". Errors are nlstat.NlstatError's subclasses (docs/api.md):
InvalidFilter and InvalidArgument for bad arguments (raised by the call itself, before
iteration), BackendUnavailable when a table can be read from nowhere.

`nlstat/__init__.py` loads this module on first use, so the CLI never imports it.
"""

from __future__ import annotations

import _socket
import io
from typing import (
    TYPE_CHECKING,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Literal,
    NamedTuple,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
    overload,
)

from nlstat import backends
from nlstat.backends.sockets import SocketSource
from nlstat.env import Environment
from nlstat.errors import BackendUnavailable, InvalidArgument, NlstatError
from nlstat.model.sockets import RAW, TCP, UDP, UDPLITE, InetSocket, UnixSocket
from nlstat.query import BACKENDS, Query

if TYPE_CHECKING:  # the other tables' modules load with the functions that read them
    from nlstat.model.conntrack import ConntrackEntry
    from nlstat.model.groups import GroupMembership
    from nlstat.model.links import Interface
    from nlstat.model.routes import Route, Route6
    from nlstat.model.stats import StatsFile

INET_KINDS = (TCP, UDP, UDPLITE, RAW)
KINDS = INET_KINDS + ("unix",)
FAMILIES = {
    None: (_socket.AF_INET, _socket.AF_INET6),
    4: (_socket.AF_INET,),
    6: (_socket.AF_INET6,),
    "inet": (_socket.AF_INET,),
    "inet6": (_socket.AF_INET6,),
    _socket.AF_INET: (_socket.AF_INET,),
    _socket.AF_INET6: (_socket.AF_INET6,),
}

Socket = Union[InetSocket, UnixSocket]


class OwnedSocket(NamedTuple):
    """A socket with the process that holds it (`sockets(processes=True)`): `pid` and
    `program` (argv[0] as netstat -p shows it, uncut) are None when no process readable by
    this user holds it. The first process in /proc order is taken, as netstat takes it."""

    socket: Socket
    pid: Optional[int]
    program: Optional[str]


def _environment(backend: str, proc_root: str) -> Environment:
    if backend not in BACKENDS:
        raise InvalidArgument(f"unknown backend {backend!r} (choose auto, netlink or proc)")
    # Notices that the CLI prints on stderr are dropped: the API reports by exceptions.
    return Environment(stdout=io.BytesIO(), stderr=io.StringIO(), proc_root=proc_root,
                       backend=backend)


def _families(family: object, allow_both: bool = False) -> Tuple[int, ...]:
    try:
        families = FAMILIES.get(family)  # type: ignore[call-overload]
    except TypeError:  # unhashable
        families = None
    if families is None or (family is None and not allow_both):
        raise InvalidArgument(f"unknown family {family!r} (4, 6, 'inet' or 'inet6')")
    return families  # type: ignore[no-any-return]


def _kinds(kind: Union[str, Iterable[str], None]) -> Tuple[str, ...]:
    if kind is None:
        return KINDS
    names = (kind,) if isinstance(kind, str) else tuple(kind)
    chosen: Set[str] = set()
    for name in names:
        if name == "inet":
            chosen.update(INET_KINDS)
        elif name in KINDS:
            chosen.add(name)
        else:
            raise InvalidArgument(f"unknown socket kind {name!r} (tcp, udp, udplite, raw, "
                                  "unix or inet)")
    return tuple(name for name in KINDS if name in chosen)


@overload
def sockets(
    kind: Union[str, Iterable[str], None] = ...,
    *,
    family: Union[int, str, None] = ...,
    state: Union[str, Iterable[str], None] = ...,
    sport: Union[int, str, Tuple[int, int], None] = ...,
    dport: Union[int, str, Tuple[int, int], None] = ...,
    src: object = ...,
    dst: object = ...,
    dev: Union[str, int, None] = ...,
    uid: Union[str, int, None] = ...,
    pid: Optional[int] = ...,
    program: Optional[str] = ...,
    cgroup: Optional[str] = ...,
    processes: Literal[False] = ...,
    backend: str = ...,
    proc_root: str = ...,
) -> Iterator[Socket]: ...


@overload
def sockets(
    kind: Union[str, Iterable[str], None] = ...,
    *,
    family: Union[int, str, None] = ...,
    state: Union[str, Iterable[str], None] = ...,
    sport: Union[int, str, Tuple[int, int], None] = ...,
    dport: Union[int, str, Tuple[int, int], None] = ...,
    src: object = ...,
    dst: object = ...,
    dev: Union[str, int, None] = ...,
    uid: Union[str, int, None] = ...,
    pid: Optional[int] = ...,
    program: Optional[str] = ...,
    cgroup: Optional[str] = ...,
    processes: Literal[True],
    backend: str = ...,
    proc_root: str = ...,
) -> Iterator[OwnedSocket]: ...


def sockets(
    kind: Union[str, Iterable[str], None] = None,
    *,
    family: Union[int, str, None] = None,
    state: Union[str, Iterable[str], None] = None,
    sport: Union[int, str, Tuple[int, int], None] = None,
    dport: Union[int, str, Tuple[int, int], None] = None,
    src: object = None,
    dst: object = None,
    dev: Union[str, int, None] = None,
    uid: Union[str, int, None] = None,
    pid: Optional[int] = None,
    program: Optional[str] = None,
    cgroup: Optional[str] = None,
    processes: bool = False,
    backend: str = "auto",
    proc_root: str = "/proc",
) -> Union[Iterator[Socket], Iterator[OwnedSocket]]:
    """Every socket of this network namespace (listening and connected), as records.

    `kind`: "tcp", "udp", "udplite", "raw", "unix", "inet" (the four before unix) or a
    list of them; all by default, in netstat's order (tcp, udp, udplite, raw, unix; IPv4
    before IPv6). `family`: 4 or 6 ("inet", "inet6") for one address family (unix sockets
    are left out then). The filters are the CLI's (`nlstat --help`), with the same meaning:

        state="established" or ["listen", "time_wait"]   netstat's state names, any case
        sport=22, dport=(1024, 2047), dport="8000-8080"  one port or a range
        src="198.18.0.0/15", dst="2001:db8::1"           an address or a prefix
        dev="eth0"                                       bound to this device (SO_BINDTODEVICE)
        uid="www-data" or 33, pid=1234, program="nginx"  owner; pid/program walk /proc/*/fd
        cgroup="/system.slice/nginx.service"             cgroup v2 (records carry cgroup_id)

    Ports, addresses, dev, uid and cgroup select inet sockets only. `processes=True` yields
    OwnedSocket(socket, pid, program) for every socket (a walk of /proc/*/fd first).

    >>> sum(1 for _ in nlstat.sockets("tcp", state="established", dport=443))
    >>> {s.local_port for s in nlstat.sockets(["tcp", "udp"], state="listen")}

    Raises InvalidFilter (a bad filter value), InvalidArgument (kind, family, backend) at
    the call; BackendUnavailable while iterating when a table cannot be read.
    """
    from nlstat import filters as filtering

    kinds = _kinds(kind)
    families = _families(family, allow_both=True)
    if family is not None:
        kinds = tuple(name for name in kinds if name != "unix")
    selection = filtering.make(state=state, sport=sport, dport=dport, src=src, dst=dst,
                               dev=dev, uid=uid, pid=pid, program=program, cgroup=cgroup)
    env = _environment(backend, proc_root)
    query = Query(all=True, tcp=TCP in kinds, udp=UDP in kinds, udplite=UDPLITE in kinds,
                  raw=RAW in kinds, inet=int(_socket.AF_INET in families),
                  inet6=int(_socket.AF_INET6 in families), unix=int("unix" in kinds),
                  selections=len(kinds), numeric_hosts=True, numeric_ports=True,
                  numeric_users=True, filters=selection)
    source = SocketSource(query, env)
    try:
        # The call's errors: an unknown pid or program, dev= with backend="proc".
        source.load_owners()
        source.check_dev()
    except BaseException:
        source.close()
        raise
    records = _socket_records(source, kinds, families)
    if not processes:
        return records
    return _owned(records, proc_root)


def _owned(records: Iterator[Socket], proc_root: str) -> Iterator[OwnedSocket]:
    from nlstat.procmap import build_inode_map, program_name

    # One process: a library must not fork behind its caller's back (the CLI walks a busy
    # host's descriptors in two).
    owners = build_inode_map(proc_root, parallel=False).owners
    # The map holds netstat's "PID/name" cut to 19 characters: the name is read again,
    # uncut, once per process.
    programs: Dict[str, Optional[str]] = {}
    for record in records:
        owner = owners.get(record.inode)
        if owner is None:
            yield OwnedSocket(record, None, None)
            continue
        pid = owner.partition("/")[0]
        if pid not in programs:
            programs[pid] = program_name(proc_root, pid)  # None: the process has gone
        yield OwnedSocket(record, int(pid), programs[pid])


def _socket_records(
    source: SocketSource, kinds: Sequence[str], families: Sequence[int]
) -> Iterator[Socket]:
    try:
        for kind in kinds:
            if kind == "unix":
                yield from _unix_records(source)
            else:
                yield from _inet_records(source, kind, families)
    except OSError as err:
        raise BackendUnavailable(f"{err.filename or 'sockets'}: {err.strerror}",
                                 err.errno or 0) from err
    finally:
        source.close()


def _inet_records(
    source: SocketSource, protocol: str, families: Sequence[int]
) -> Iterator[Socket]:
    if protocol == TCP and len(families) == 2:
        both = source.tcp_both()
        if both is not None and both.decoder is not None:
            decoder = both.decoder
            keep = source.selector(TCP, True)
            yield from _kept(both.first, keep)
            for chunk in _rest(decoder, both.chunks):
                yield from _kept(decoder.chunk(chunk), keep)
            # IPv6 after IPv4, as netstat lists them (the one walk gives them mixed).
            yield from _kept(decoder.others, keep)
            return
    for family in families:
        try:
            table = source.inet(protocol, family)
        except (FileNotFoundError, PermissionError):
            continue  # no such table on this kernel (no IPv6, no udplite)
        keep = source.selector(protocol, table.decoder is not None)
        one = table.decoder
        if one is not None:
            yield from _kept(table.first, keep)
            for chunk in _rest(one, table.chunks):
                yield from _kept(one.chunk(chunk), keep)
            continue
        from nlstat.backends.procfs.sockets import InetOnce, parse_inet, split_chunk

        once = InetOnce()
        for chunk in table.chunks:
            first_line, lines = split_chunk(chunk)
            records = parse_inet(lines, protocol, family, table.path, source.env.warn,
                                 first_line)
            yield from _kept(once.records(records), keep)


def _rest(decoder: object, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The chunks after the first, up to the one that ends the dump (recv() would wait)."""
    if getattr(decoder, "done", True):
        return
    from nlstat.backends.netlink.nlsocket import dump_ended

    for chunk in chunks:
        yield chunk
        if dump_ended(chunk):
            return


def _kept(
    records: List[InetSocket], keep: Optional[Callable[[InetSocket], bool]]
) -> Iterable[InetSocket]:
    return records if keep is None else filter(keep, records)


def _unix_records(source: SocketSource) -> Iterator[Socket]:
    if source.filters is not None and source.filters.excludes_unix:
        return  # not even read
    keep = source.unix_selector()
    table = source.unix()
    if table.chunks is not None:
        from nlstat.backends.procfs.sockets import UnixText

        parser = UnixText(table.path, source.env.warn, unique=True)
        for chunk in table.chunks:
            records = parser.parse(chunk)
            yield from (records if keep is None else filter(keep, records))
    elif table.records is not None:
        yield from (table.records if keep is None else filter(keep, table.records))


def routes(
    family: Union[int, str] = 4, *, backend: str = "auto", proc_root: str = "/proc"
) -> Iterator[Union[Route, Route6]]:
    """The main routing table of one family (4 or "inet": Route; 6 or "inet6": Route6), in
    the kernel's order, as `netstat -rn` lists it.

    >>> [(r.destination, r.data.prefix_len) for r in nlstat.routes(6)]
    """
    families = _families(family)
    env = _environment(backend, proc_root)
    if families[0] == _socket.AF_INET:
        return _ipv4_routes(env)
    return _ipv6_routes(env)


def _ipv4_routes(env: Environment) -> Iterator[Union[Route, Route6]]:
    # The CLI's backend rule (nlstat.backends), with exceptions for its messages.
    if backends.uses_netlink(backends.ROUTES4, env):
        from nlstat.backends.netlink import routes as netlink_routes

        decoder = netlink_routes.Ipv4Decoder(netlink_routes.InterfaceNames())
        try:
            for chunk in netlink_routes.ipv4_chunks():
                done = decoder.feed(chunk)
                yield from decoder.take()
                if done:
                    return
            return
        except BackendUnavailable:
            if env.backend == "netlink":
                raise
            # auto: /proc/net/route instead, as the CLI does (nothing was yielded: the
            # first chunk carries a refusal)
    from nlstat.backends.procfs.routes import read_ipv4

    try:
        table = read_ipv4(env.proc("net", "route"))
    except OSError as err:
        raise BackendUnavailable(f"/proc/net/route: {err.strerror}", err.errno or 0) from err
    if table.error is not None:
        raise BackendUnavailable(f"/proc/net/route: {table.error or 'unreadable'}")
    yield from table.routes


def _ipv6_routes(env: Environment) -> Iterator[Union[Route, Route6]]:
    if backends.uses_netlink(backends.ROUTES6, env):
        from nlstat.backends.netlink.routes6 import read_ipv6 as netlink_ipv6

        yield from netlink_ipv6()
        return
    from nlstat.backends.procfs.routes import read_ipv6

    try:
        rows = read_ipv6(env.proc("net", "ipv6_route"))
    except OSError as err:
        raise BackendUnavailable(f"/proc/net/ipv6_route: {err.strerror}",
                                 err.errno or 0) from err
    yield from rows


def interfaces(*, backend: str = "auto", proc_root: str = "/proc") -> Iterator[Interface]:
    """Every network interface with its counters (what `netstat -ia` lists), up or down.

    >>> {i.name: i.stats.rx_packets for i in nlstat.interfaces() if i.stats}
    """
    env = _environment(backend, proc_root)

    def generate() -> Iterator[Interface]:
        if backends.uses_netlink(backends.LINKS, env):
            from nlstat.backends.netlink.links import NetlinkInterfaces

            try:
                links = NetlinkInterfaces()
            except BackendUnavailable:
                if backend == "netlink":
                    raise
            else:
                yield from links
                return
        from nlstat.backends.procfs.links import ProcInterfaces

        try:
            proc = ProcInterfaces(env.proc("net", "dev"), env.warn)
        except OSError as err:
            raise BackendUnavailable(f"interfaces: {err.strerror}", err.errno or 0) from err
        try:
            yield from proc
        except NlstatError:
            raise
        except OSError as err:
            raise BackendUnavailable(f"interfaces: {err.strerror}", err.errno or 0) from err
        finally:
            proc.close()

    return generate()


def groups(*, backend: str = "auto", proc_root: str = "/proc") -> Iterator[GroupMembership]:
    """Multicast group memberships (`netstat -g`), IPv4 then IPv6.

    >>> [(g.device, g.address, g.users) for g in nlstat.groups()]
    """
    env = _environment(backend, proc_root)

    def generate() -> Iterator[GroupMembership]:
        from nlstat.backends.procfs.groups import GroupReader, read_lines

        reader = GroupReader(env.warn)
        for name, family in (("igmp", _socket.AF_INET), ("igmp6", _socket.AF_INET6)):
            rows: Optional[List[GroupMembership]]
            try:
                rows = list(reader.read(read_lines(env.proc("net", name))))
            except OSError:
                rows = None
            if backend == "netlink":
                from nlstat.backends.netlink.groups import (
                    decode_memberships,
                    dump_memberships,
                    join_with_proc,
                )

                rows = join_with_proc(decode_memberships(dump_memberships(family)), rows)
            yield from rows or ()

    return generate()


def statistics(family: Union[int, str] = 4, *, proc_root: str = "/proc") -> Iterator[StatsFile]:
    """The kernel's protocol counters (`netstat -s`), one StatsFile per file read: for IPv4
    /proc/net/snmp, /proc/net/netstat and (with sctp) /proc/net/sctp/snmp; for IPv6
    /proc/net/snmp6. Sections hold (counter name, value) pairs, values as 64-bit integers.

    >>> {s.name: dict(s.counters) for f in nlstat.statistics() for s in f.sections}["Tcp"]
    """
    families = _families(family)
    env = _environment("auto", proc_root)

    def generate() -> Iterator[StatsFile]:
        from nlstat.backends.procfs import snmp

        if families[0] == _socket.AF_INET:
            files = [snmp.read_pairs_file(env.proc("net", "snmp"), "/proc/net/snmp"),
                     snmp.read_pairs_file(env.proc("net", "netstat"), "/proc/net/netstat"),
                     snmp.read_sctp_file(env.proc("net", "sctp", "snmp"),
                                         "/proc/net/sctp/snmp")]
        else:
            files = [snmp.read_snmp6_file(env.proc("net", "snmp6"), "/proc/net/snmp6")]
        if files[0].open_errno:
            raise BackendUnavailable(f"{files[0].path}: cannot open", files[0].open_errno)
        yield from (found for found in files if not found.open_errno)

    return generate()


def masquerade(*, backend: str = "auto", proc_root: str = "/proc") -> Iterator[ConntrackEntry]:
    """NAT'd IPv4 connections from conntrack (`netstat -M`); BackendUnavailable when
    conntrack can be read from nowhere (no nf_conntrack, not root).

    >>> [(c.orig_src, c.orig_sport, c.reply_dst) for c in nlstat.masquerade()]
    """
    env = _environment(backend, proc_root)

    def generate() -> Iterator[ConntrackEntry]:
        from nlstat.modes.masquerade import collect

        entries = collect(env)
        if entries is None:
            raise BackendUnavailable("conntrack: no readable source (ctnetlink or "
                                     "/proc/net/nf_conntrack)")
        yield from entries

    return generate()


__all__ = [
    "OwnedSocket",
    "groups",
    "interfaces",
    "masquerade",
    "routes",
    "sockets",
    "statistics",
]
