"""`--count [--by KEY,...]`: the socket listing's sockets, counted instead of printed.

The sockets counted are exactly the rows the listing would print: the same tables (netstat's
-t/-u/-w/-x/-4/-6 selection), the same listing rule (no -a: connected only; -l: servers; -a:
both), taken from the same backend, through the same kernel state mask. Nothing is formatted:
tcp dumps are mostly counted off the raw messages (aggregate.Tally.chunk), the rest off the
decoded records. `tally_sockets()` is shared with the metrics (modes/metrics.py).
"""

from __future__ import annotations

import _socket
import gc
import os
from collections import Counter
from typing import (
    TYPE_CHECKING,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
    Union,
)

from nlstat.aggregate import Group, Tally, Value, count_states, tally_keys, with_value
from nlstat.backends.sockets import InetTable, SocketSource, inet_families, tcp_states
from nlstat.env import Environment
from nlstat.errors import Exit, ExitStatus
from nlstat.kernel.sockdiag import SOCK_DIAG_BY_FAMILY, TCP_ESTABLISHED, TCPDIAG_GETSOCK
from nlstat.model.sockets import RAW, TCP, UDP, UDPLITE, InetSocket, UnixBatch, UnixKind
from nlstat.query import Query
from nlstat.resolve import Names

if TYPE_CHECKING:
    from nlstat.namespaces import Member

INET_PROTOCOLS = (TCP, UDP, UDPLITE, RAW)
UNIX_BATCH = 4096
# Seconds to wait for the receiving thread after the counting stopped early.
RECEIVE_WAIT = 10.0
# Records in a dump's first chunk from which the rest is received by a thread (a full 32 KiB
# chunk holds ~260 tcp records).
PREFETCH_FROM = 128


def run(query: Query, env: Environment) -> int:
    from nlstat.format.count import render_groups

    if query.all_netns:
        return _run_over_namespaces(query, env)
    keys = query.count_by
    source = SocketSource(query, env)
    names = Names(True, True, query.numeric_users)
    try:
        while True:
            groups = _groups(query, env, source, names)
            netns: Dict[Value, object] = {}
            if "netns" in keys:
                # The one namespace listed (under --netns, this child's).
                from nlstat.namespaces import own

                member = own()
                groups = with_value(groups, keys, "netns", member.label)
                netns[member.label] = netns_value(member)
            text = render_groups(keys, groups, query.output, netns)
            env.stdout.write(text.encode("utf-8", "surrogateescape"))
            if not query.continuous:
                return ExitStatus.OK
            env.stdout.flush()
            env.sleep(1)
    finally:
        source.close()


def _groups(query: Query, env: Environment, source: SocketSource, names: Names) -> Dict[Group, int]:
    # Records here hold no reference cycles (see modes/sockets.py run()).
    gc.disable()
    try:
        tally = new_tally(query, env, query.count_by, names)
        tally_sockets(query, env, source, tally)
    finally:
        gc.enable()
    return tally.groups()


def netns_value(member: Member) -> Dict[str, object]:
    """A namespace as JSON names it (the header's "netns" shape)."""
    return {"inode": member.inode, "name": member.name}


def _run_over_namespaces(query: Query, env: Environment) -> int:
    """--all-netns: one table over every namespace, netns a key like the others (without
    it, each group sums its sockets over every namespace). Each namespace is counted by a
    child inside it (netns_run.gather) that sends its groups back; the table is this one's."""
    from nlstat import netns_run
    from nlstat.format.count import render_groups

    keys = query.count_by
    names = Names(True, True, query.numeric_users)

    def work() -> Dict[Group, int]:
        source = SocketSource(query, env)
        try:
            return _groups(query, env, source, names)
        finally:
            source.close()

    while True:
        answers, status = netns_run.gather(query, env, work)
        merged: Dict[Group, int] = {}
        netns: Dict[Value, object] = {}
        for member, groups in answers:
            with_value(groups, keys, "netns", member.label, merged)
            netns[member.label] = netns_value(member)
        text = render_groups(keys, merged, query.output, netns)
        env.stdout.write(text.encode("utf-8", "surrogateescape"))
        if not query.continuous:
            return status
        env.stdout.flush()
        env.sleep(1)


def new_tally(query: Query, env: Environment, keys: Iterable[str], names: Names) -> Tally:
    keys = tally_keys(tuple(keys))
    programs: Optional[Mapping[int, str]] = None
    if "program" in keys:
        # The -p map is built only when a program is asked for (a walk of /proc/*/fd).
        from nlstat.modes.sockets import _load_programs

        programs = _load_programs(query, env)
    return Tally(keys, programs, names.user)


def tally_sockets(query: Query, env: Environment, source: SocketSource, tally: Tally) -> None:
    """Count what the socket listing of `query` would list."""
    from nlstat.modes.sockets import _keep_inet, _keep_unix

    keep = _keep_inet(query)
    # The filters (--state, --sport, --pid, ...): the kernel does its share through the
    # request SocketSource builds; what is left is the same test the listing applies.
    source.load_owners()
    source.check_dev()
    for protocol in INET_PROTOCOLS:
        if not query.wants(protocol):
            continue
        families = inet_families(query)
        if protocol == TCP and tally.raw_states and (
            _tally_by_subtraction(tally, source, env) or _tally_in_halves(tally, source, env)
        ):
            continue
        if protocol == TCP and len(families) == 2:
            both = source.tcp_both()
            if both is not None:
                _tally_table(tally, both, TCP, None, TCPDIAG_GETSOCK, env,
                             source.selector(TCP, True))
                continue
        for family in families:
            try:
                table: Optional[InetTable] = source.inet(protocol, family)
            except (FileNotFoundError, PermissionError):
                continue  # netstat's notices belong to the listing; nothing to count
            except OSError as err:
                env.warn(f"{err.filename}: {err.strerror}")
                raise Exit(ExitStatus.READ_ERROR) from err
            assert table is not None
            _tally_table(tally, table, protocol, keep, SOCK_DIAG_BY_FAMILY, env,
                         source.selector(protocol, table.decoder is not None))

    filters = query.filters
    if query.wants("unix") and not (filters is not None and filters.excludes_unix):
        keep_unix = _filtered_unix(_keep_unix(query), query, source)
        try:
            unix = source.unix()
        except OSError:
            return
        if unix.chunks is not None:
            from nlstat.backends.procfs.sockets import UnixText

            parser = UnixText(unix.path, env.warn, unique=True)
            for chunk in unix.chunks:
                batch = parser.batch(chunk)
                tally.unix_batch(batch if keep_unix is None else keep_unix(batch))
        else:
            assert unix.records is not None
            records = iter(unix.records)
            while True:
                part: List[object] = []
                for record in records:
                    part.append(record)
                    if len(part) >= UNIX_BATCH:
                        break
                if not part:
                    break
                batch = UnixBatch.of(part)  # type: ignore[arg-type]
                tally.unix_batch(batch if keep_unix is None else keep_unix(batch))


def _tally_table(
    tally: Tally,
    table: InetTable,
    protocol: str,
    keep: Optional[Callable[[InetSocket], bool]],
    record_type: int,
    env: Environment,
    selected: Optional[Callable[[InetSocket], bool]] = None,
) -> None:
    decoder = table.decoder
    if decoder is not None and protocol == TCP:
        keep = None  # the kernel applied the listing as its state mask
    if selected is not None:
        first = keep
        keep = selected if first is None else (lambda record: first(record) and selected(record))
    if decoder is None:
        from nlstat.backends.procfs.sockets import InetOnce, parse_inet, split_chunk

        once = InetOnce()
        for chunk in table.chunks:
            first_line, lines = split_chunk(chunk)
            records = once.records(parse_inet(lines, protocol, table_family(table), table.path,
                                              env.warn, first_line))
            tally.records(records if keep is None else filter(keep, records))
        return
    _count(tally, table.first, decoder.others, keep)
    if decoder.done:
        return
    raw = keep is None
    # A small table (udp, raw: a few sockets, then NLMSG_DONE in a chunk of its own) is read
    # here: a receiving thread and `import queue` cost more than its whole dump.
    big = len(table.first) + len(decoder.others) >= PREFETCH_FROM
    for chunk in prefetched(table.chunks) if big else table.chunks:
        if raw:
            ended = tally.chunk(chunk, protocol, record_type)
            if ended is not None:
                if ended:
                    return
                continue
        _count(tally, decoder.chunk(chunk), decoder.others, keep)
        if decoder.done:
            return


def _tally_by_subtraction(tally: Tally, source: SocketSource, env: Environment) -> bool:
    """Count tcp by (family, state) from the kernel's socket counters and a dump of every
    state but ESTABLISHED (backends/established.py); False (nothing counted) when the listing
    asks no ESTABLISHED socket, when filters other than --state apply, when the counters
    cannot be trusted (the host's sockets moved meanwhile), or under --save/--load and a
    captured /proc, whose counters are not the live kernel's."""
    from nlstat import procio

    states = tcp_states(source.query) & source.state_mask
    if (not states & (1 << TCP_ESTABLISHED) or not source.tcp_state_mask_only()
            or procio.tape is not None or env.replay):
        return False
    from nlstat.backends.established import tcp_state_counts

    # The calling thread's namespace (a thread of an API user may have entered another):
    # /proc/net is the first thread's.
    counts, why = tcp_state_counts(env.proc("thread-self", "net"), states)
    if counts is None:
        env.trace(f"tcp ESTABLISHED not counted from the kernel's counters: {why}")
        return False
    families = inet_families(source.query)
    tally.add_states(TCP, Counter({key: count for key, count in counts.items()
                                   if key[0] in families}))
    env.trace(f"tcp counted without its ESTABLISHED messages: {why}")
    return True


def _core_free() -> bool:
    """Whether a second core is idle now: /proc/loadavg's count of runnable threads (this one
    included) below the cores this process may use. The halves cost ~0.02 s more CPU than
    one dump, which only pays when the other core runs the second walk at once; on a busy
    host their median was slower than one dump's (docs/performance.md)."""
    cores = len(os.sched_getaffinity(0))
    if cores < 2:
        return False
    try:
        with open("/proc/loadavg", "rb") as handle:
            running = int(handle.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return True
    return running < cores


def _tally_in_halves(tally: Tally, source: SocketSource, env: Environment) -> bool:
    """Count tcp by (family, state) from two concurrent dumps, each of about half the sockets
    (split by their ports: SocketSource.tcp_halves), one per core; False (nothing counted)
    when that is not to be done: a single core, no netlink, filters left for user space or
    sending a program of their own, or a kernel refusing the request (the one-dump path
    then says what it has to).

    The kernel's time goes into formatting each socket's message (~0.65 us at 100k sockets)
    far more than into its walk of the hash tables (~0.15 us): two walks that each format
    half the sockets end in ~0.045 s instead of ~0.08 s when the second core is free
    (docs/performance.md). The order of a dump does not matter to a count.
    """
    if len(os.sched_getaffinity(0)) < 2:
        return False
    if not _core_free():
        env.trace("tcp counted from one dump: no core is idle now (/proc/loadavg)")
        return False
    from nlstat import procio

    if procio.tape is not None:
        return False  # --save/--load: the one dump's request, whatever the host's cores
    halves = source.tcp_halves(inet_families(source.query))
    if halves is None or source.selector(TCP, True) is not None:
        return False
    import threading

    from nlstat.backends.netlink.nlsocket import NetlinkSocket
    from nlstat.errors import BackendUnavailable
    from nlstat.kernel.netlink import NETLINK_SOCK_DIAG

    msg_type, payloads = halves
    results: List[Optional[Counter[Tuple[int, int]]]] = [None] * len(payloads)
    errors: List[BaseException] = []

    def dump(index: int) -> None:
        with NetlinkSocket(NETLINK_SOCK_DIAG) as netlink:
            results[index] = _count_dump(netlink.dump(msg_type, payloads[index]), msg_type)

    def dump_in_thread(index: int) -> None:
        try:
            dump(index)
        except BaseException as err:  # noqa: BLE001 - raised again by the caller
            errors.append(err)

    threads = [
        threading.Thread(target=dump_in_thread, args=(index,), name="nlstat-dump", daemon=True)
        for index in range(1, len(payloads))
    ]
    for thread in threads:
        thread.start()
    try:
        dump(0)
    except BackendUnavailable as err:
        errors.append(err)
    # Anything else (Ctrl-C) is raised at once: the other dump has a socket of its own. Its
    # thread ends with its dump, or at the socket's receive timeout if the kernel went silent.
    for thread in threads:
        thread.join()
    if errors:
        if all(isinstance(err, BackendUnavailable) for err in errors):
            env.trace(f"sock_diag refused the tcp dump in halves ({errors[0]}); one dump")
            return False
        raise next(err for err in errors if not isinstance(err, BackendUnavailable))
    for counts in results:
        assert counts is not None
        tally.add_states(TCP, counts)
    env.trace("tcp counted from two concurrent dumps, split by port (" + " + ".join(
        str(sum(counts.values())) for counts in results if counts is not None) + " sockets)")
    return True


def _count_dump(chunks: Iterator[bytes], msg_type: int) -> Counter[Tuple[int, int]]:
    """One tcp dump counted by (family, state): off the raw messages (count_states), or
    through the decoder for a chunk that holds anything else (an error raises there)."""
    from nlstat.backends.netlink.sockdiag import InetDecoder

    counts: Counter[Tuple[int, int]] = Counter()
    decoder: Optional[InetDecoder] = None
    for chunk in chunks:
        ended = count_states(chunk, msg_type, counts)
        if ended is None:
            if decoder is None:
                decoder = InetDecoder(TCP, False, None, msg_type)
            counts.update((record[1], record[2]) for record in decoder.chunk(chunk))
            ended = decoder.done
        if ended:
            break
    return counts


def prefetched(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """A dump's chunks, received by a thread while this one counts the previous chunk.

    recv() releases the GIL while the kernel walks its tables and fills the next chunk, so
    the counting (~0.2 us a socket) hides behind the kernel's walk (~0.8 us a socket) on the
    second core. The thread stops at the chunk that ends the dump (NLMSG_DONE), so the
    netlink socket is free for the next request; an error is raised here.
    """
    import queue
    import threading

    from nlstat.backends.netlink.nlsocket import dump_ended

    box: queue.SimpleQueue[Union[bytes, BaseException, None]] = queue.SimpleQueue()

    def receive() -> None:
        try:
            for chunk in chunks:
                box.put(chunk)
                if dump_ended(chunk):
                    break
        except BaseException as err:  # noqa: BLE001 - handed to the consumer
            box.put(err)
        box.put(None)

    reader = threading.Thread(target=receive, name="nlstat-dump", daemon=True)
    reader.start()
    try:
        while True:
            item = box.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        # Stopped early (an error while counting): the thread reads on to the end of the
        # dump, and the socket must not be asked again before it has.
        reader.join(RECEIVE_WAIT)


def _count(
    tally: Tally,
    records: List[InetSocket],
    others: List[InetSocket],
    keep: Optional[Callable[[InetSocket], bool]],
) -> None:
    tally.records(records if keep is None else filter(keep, records))
    if others:
        tally.records(others if keep is None else filter(keep, others))
        others.clear()


def _filtered_unix(
    keep: Optional[Callable[[UnixKind], bool]], query: Query, source: SocketSource
) -> Optional[Callable[[UnixBatch], UnixBatch]]:
    """The unix rows the listing keeps: its selection, then the filters' (by kind: --state;
    by owner: --pid, --program-name)."""
    from itertools import compress

    filters = query.filters
    by_kind = None
    owned = None
    if filters is not None:
        from nlstat.filters import unix_kind_predicate

        by_kind = unix_kind_predicate(filters)
        owned = source.owned if filters.needs_owners else None
    if keep is None and by_kind is None and owned is None:
        return None

    def select(batch: UnixBatch) -> UnixBatch:
        if keep is not None:
            batch = batch.where(keep)
        if by_kind is not None:
            batch = batch.where(by_kind)
        if owned is not None:
            chosen = [inode in owned for inode in batch.inodes]
            batch = UnixBatch(list(compress(batch.kinds, chosen)),
                              list(compress(batch.inodes, chosen)),
                              list(compress(batch.paths, chosen)))
        return batch

    return select


def table_family(table: InetTable) -> int:
    """The family of a /proc table: its file name ends in 6 for IPv6."""
    return _socket.AF_INET6 if table.path.endswith("6") else _socket.AF_INET
