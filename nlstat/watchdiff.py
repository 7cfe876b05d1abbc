"""What changed between two --watch ticks: sockets opened, closed, changed state, or moved data.

A tick's sockets are kept per table (tcp, udp, udplite, raw, unix) as `Table`s: the records
by key, and each key's state. Keys are the kernel's socket cookie when the table came from
sock_diag (unique while the socket lives, never reused during a boot); from /proc, which has
no cookie, the inode, and for inode 0 (TIME_WAIT and other sockets no file holds) the
connection's endpoints (the rest of such a row, timers and queues, changes by itself). Tables
are compared key by key with dict and set operations, so the cost that grows with the
socket count stays in C; Python code runs only for the sockets that changed.

tcp byte counters (tcpi_bytes_acked, tcpi_bytes_received from sock_diag's INET_DIAG_INFO) are
kept beside the records by cookie, and compared the same way.
"""

from __future__ import annotations

from itertools import compress
from operator import attrgetter, ne
from typing import Any, Dict, Hashable, Iterable, List, NamedTuple, Optional, Tuple

from nlstat.model.sockets import InetSocket, UnixSocket

OPENED = "opened"
CLOSED = "closed"
STATE = "state"
TRAFFIC = "traffic"

# cookie -> tcpi_bytes_acked << 64 | tcpi_bytes_received (sockdiag.ByteCounters)
Counters = Dict[int, int]
LOW64 = (1 << 64) - 1

_COOKIE = attrgetter("cookie")
_STATE = attrgetter("state")
_UNIX_STATE = attrgetter("socket_state", "flags")


class Table:
    """One table's sockets at one tick, in the order the kernel gave them."""

    __slots__ = ("name", "records", "states")

    def __init__(self, name: str) -> None:
        self.name = name
        self.records: Dict[Hashable, Any] = {}
        self.states: Dict[Hashable, Hashable] = {}

    def add_inet(self, records: List[InetSocket], netlink: bool) -> None:
        keys = list(map(_COOKIE, records)) if netlink else list(map(inet_key, records))
        self.records.update(zip(keys, records))
        self.states.update(zip(keys, map(_STATE, records)))

    def add_unix(self, records: List[UnixSocket]) -> None:
        keys = list(map(unix_key, records))
        self.records.update(zip(keys, records))
        self.states.update(zip(keys, map(_UNIX_STATE, records)))

    def __len__(self) -> int:
        return len(self.records)


def inet_key(record: InetSocket) -> Hashable:
    """A /proc record's key: its inode, else its endpoints (a TIME_WAIT socket has no inode)."""
    if record.cookie:
        return record.cookie
    if record.inode:
        return record.inode
    return (record.family, record.local_address, record.local_port, record.remote_address,
            record.remote_port)


def unix_key(record: UnixSocket) -> Hashable:
    """A unix record's key: cookie (unix_diag), inode, else the row (a connection a listener
    has not accepted yet has inode 0: identical ones count once)."""
    if record.cookie:
        return record.cookie
    if record.inode:
        return record.inode
    return (record.type, record.socket_state, record.flags, record.path)


class Change(NamedTuple):
    """One socket that changed between two ticks.

    `record` is the socket as it is now (as it was last seen, for CLOSED); `old_state` is
    the state it had (STATE only); `sent`/`received` are the tcp byte counters' growth over
    the interval (for OPENED: since the socket began, the SYN counting one), None where
    unknown (not tcp, /proc, a kernel whose tcp_info lacks them).
    """

    kind: str
    table: str
    record: Any
    old_state: Any = None
    sent: Optional[int] = None
    received: Optional[int] = None


def compare(
    old: Table,
    new: Table,
    old_counters: Optional[Counters] = None,
    new_counters: Optional[Counters] = None,
) -> Tuple[List[Change], List[Change]]:
    """(closed, the rest) between two ticks of one table: the closed in the old order, the
    opened, changed-state and traffic changes in the new order."""
    name = new.name
    old_states = old.states
    new_states = new.states
    old_records = old.records
    new_records = new.records
    gone = old_states.keys() - new_states.keys()
    closed = [Change(CLOSED, name, old_records[key])
              for key in filter(gone.__contains__, old_records)] if gone else []
    # Keys whose state differs from the last tick's (None for a socket not there then):
    # opened sockets and changed states, found by C-level maps over the whole table.
    keys = new_states.keys()
    moved = set(compress(keys, map(ne, new_states.values(), map(old_states.get, keys))))
    # Keyed by cookie; looked up with any table key (a /proc key is simply not there).
    counters: Dict[Any, int] = new_counters or {}
    previous: Dict[Any, int] = old_counters or {}
    if counters:
        counted = counters.keys()
        moved.update(compress(counted, map(ne, counters.values(), map(previous.get, counted))))
    if not moved:
        return closed, []
    changes: List[Change] = []
    append = changes.append
    for key in filter(moved.__contains__, new_records):
        record = new_records[key]
        now = counters.get(key)
        before = previous.get(key)
        if key not in old_states:
            sent = received = None
            if now is not None:
                sent, received = now >> 64, now & LOW64
            append(Change(OPENED, name, record, None, sent, received))
            continue
        sent = received = None
        if now is not None and before is not None:
            sent, received = (now >> 64) - (before >> 64), (now & LOW64) - (before & LOW64)
        old_state = old_states[key]
        if old_state != new_states[key]:
            append(Change(STATE, name, record, old_state, sent, received))
        elif sent or received:
            append(Change(TRAFFIC, name, record, None, sent, received))
    return closed, changes


def compare_all(
    old: Iterable[Table],
    new: Iterable[Table],
    old_counters: Optional[Counters],
    new_counters: Optional[Counters],
) -> Tuple[List[Change], List[Change]]:
    """compare() over every table of two ticks, matched by name."""
    before = {table.name: table for table in old}
    closed: List[Change] = []
    changed: List[Change] = []
    for table in new:
        earlier = before.pop(table.name, None) or Table(table.name)
        # Byte counters are tcp's (and keyed by cookie): no other table looks at them.
        tcp = table.name == "tcp"
        gone, rest = compare(earlier, table, old_counters if tcp else None,
                             new_counters if tcp else None)
        closed += gone
        changed += rest
    for table in before.values():  # a table that could not be read this time
        gone, _ = compare(table, Table(table.name))
        closed += gone
    return closed, changed


def rate(count: Optional[int], seconds: float) -> Optional[float]:
    """Bytes a second over the interval (None when the count is unknown)."""
    if count is None or seconds <= 0:
        return None
    return count / seconds

