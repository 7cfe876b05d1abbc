"""Grouping sockets by keys and counting them: shared by `--count --by` and the metrics.

A tally counts *raw* keys (the record's own fields: protocol and family, state number, uid,
interface index, ...) with C-level `Counter(map(itemgetter(...), records))`, and turns each
distinct raw key into the values people read (netstat's Proto and State texts, user names,
interface names) only once, at the end: a user name is looked up once per uid, an interface
name once per index.

tcp dumps are mostly counted without decoding a record: a chunk of same-sized messages is
tiled with strided slices (`buf[17::step]` is every message's state byte), so counting by
protocol and state costs a few C scans per 32 KiB chunk.
"""

from __future__ import annotations

import sys
from collections import Counter
from operator import itemgetter
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from nlstat import procio
from nlstat.format.sockets import LABELS, TCP_STATE_NAMES, unix_state_text
from nlstat.kernel.netlink import NLMSG_DONE, NLMSGHDR
from nlstat.kernel.sockdiag import INET_DIAG_MSG
from nlstat.model.sockets import RAW, TCP, InetSocket, UnixBatch

# The keys of --count --by and of the metrics' --by, in the order they are documented.
KEYS = ("proto", "state", "lport", "rport", "laddr", "raddr", "user", "program", "dev",
        "cgroup", "netns")
# Keys a Tally does not count itself: the namespace is the same for every socket of one
# dump, so its value is put into the groups afterwards (with_value()).
OUTER_KEYS = ("netns",)
DEFAULT_KEYS = ("proto", "state")

# A key's value: text, a port number, or None where the key means nothing for the socket
# (a unix socket's ports, an unbound socket's device, an unknown owner).
Value = Union[str, int, None]
Group = Tuple[Value, ...]

# netstat's Proto and State texts are the listing's own (format/sockets.py): LABELS,
# TCP_STATE_NAMES, unix_state_text.

# InetSocket field positions (from its declaration) of the raw values each key needs.
_AT = InetSocket._fields.index
_PROTOCOL, _FAMILY, _STATE, _UID, _INODE, _INTERFACE, _CGROUP = map(
    _AT, ("protocol", "family", "state", "uid", "inode", "interface", "cgroup_id"))
_INET_FIELDS: Dict[str, Tuple[int, ...]] = {
    "proto": (_PROTOCOL, _FAMILY),
    "state": (_PROTOCOL, _STATE),
    "lport": (_AT("local_port"),),
    "rport": (_AT("remote_port"),),
    "laddr": (_AT("local_address"),),
    "raddr": (_AT("remote_address"),),
    "user": (_UID,),
    "program": (_INODE,),
    "dev": (_INTERFACE,),
    "cgroup": (_CGROUP,),
}

# An inet_diag answer: nlmsghdr, then struct inet_diag_msg (kernel/sockdiag.py).
_FAMILY_BYTE = NLMSGHDR.size + INET_DIAG_MSG.offset("idiag_family")
_STATE_BYTE = NLMSGHDR.size + INET_DIAG_MSG.offset("idiag_state")
# nlmsg_len and nlmsg_type: equal in every message of a run.
_HEADER_BYTES = NLMSGHDR.offset("nlmsg_type") + 2
_RECORD_MIN = NLMSGHDR.size + INET_DIAG_MSG.size


def parse_keys(text: str) -> Tuple[str, ...]:
    """"state,proto" -> ("state", "proto"); ValueError naming the first unknown key."""
    keys: List[str] = []
    for item in text.split(","):
        if item not in KEYS:
            raise ValueError(item)
        if item not in keys:
            keys.append(item)
    return tuple(keys)


def inet_state_text(protocol: str, state: int) -> str:
    """The State column netstat prints for an inet socket (raw prints the number)."""
    if protocol == TCP:
        return TCP_STATE_NAMES[state] if state < len(TCP_STATE_NAMES) else ""
    if protocol == RAW:
        return str(state)
    if state == 1:
        return "ESTABLISHED"
    return "" if state == 7 else "UNKNOWN"


def program_of(owner: Optional[str]) -> Optional[str]:
    """"1234/sshd" (the -p column) -> "sshd": sockets of one program are counted together."""
    if owner is None:
        return None
    pid, slash, name = owner.partition("/")
    return name if slash else owner


class Tally:
    """Counts of sockets per group of `keys`, fed with records or raw sock_diag chunks.

    `programs` (inode -> "PID/name", the -p map) is needed only for the "program" key; `user`
    turns a uid into the text to show (called once per uid); `interface` an index into a name.
    """

    def __init__(
        self,
        keys: Sequence[str],
        programs: Optional[Mapping[int, str]] = None,
        user: Callable[[int], str] = str,
        interface: Optional[Callable[[int], Optional[str]]] = None,
        cgroup: Optional[Callable[[int], Optional[str]]] = None,
    ) -> None:
        self.keys = tuple(keys)
        # cgroup id -> path (nlstat/cgroups.py: one walk of the cgroup2 tree, when first asked)
        self.cgroup = cgroup
        self.programs = programs if programs is not None else {}
        self.user = user
        self.interface = interface or interface_name
        fields: List[int] = []
        for key in self.keys:
            for field in _INET_FIELDS[key]:
                if field not in fields:
                    fields.append(field)
        if _PROTOCOL not in fields:
            fields.insert(0, _PROTOCOL)  # the protocol: it tells how to read the state
        self._fields = tuple(fields)
        self._getter = itemgetter(*self._fields)
        # Counting by protocol and state only: chunks are counted without decoding.
        self.raw_states = set(self.keys) <= {"proto", "state"}
        self.inet: Counter[Tuple[object, ...]] = Counter()
        # Per protocol: (family, state) -> count, from chunks counted raw.
        self.states: Dict[str, Counter[Tuple[int, int]]] = {}
        self.unix: Counter[Tuple[object, ...]] = Counter()

    # -- feeding ---------------------------------------------------------------------------

    def records(self, records: Iterable[InetSocket]) -> None:
        if "program" in self.keys:
            owners = self.programs
            getter = self._getter
            self.inet.update(
                (getter(record), program_of(owners.get(record.inode))) for record in records
            )
        else:
            self.inet.update(zip(map(self._getter, records)))

    def chunk(self, buf: bytes, protocol: str, record_type: int) -> Optional[bool]:
        """Count a chunk of inet_diag records by (family, state) without decoding it
        (count_states()); None (nothing counted) when the keys need more than that."""
        if not self.raw_states:
            return None
        return count_states(buf, record_type, self.states.setdefault(protocol, Counter()))

    def add_states(self, protocol: str, counts: Mapping[Tuple[int, int], int]) -> None:
        """Counts by (family, state) taken elsewhere (count_states() on another thread's
        chunks), when the keys are proto and state only."""
        assert self.raw_states
        self.states.setdefault(protocol, Counter()).update(counts)

    def unix_batch(self, batch: UnixBatch) -> None:
        """Count a batch of unix sockets; only laddr (the path) and program look past the
        row's kind."""
        keys = self.keys
        if "program" in keys or "laddr" in keys:
            owners = self.programs
            wanted_path = "laddr" in keys
            wanted_program = "program" in keys
            self.unix.update(
                (
                    kind,
                    path if wanted_path else None,
                    program_of(owners.get(inode)) if wanted_program else None,
                )
                for kind, inode, path in zip(batch.kinds, batch.inodes, batch.paths)
            )
        else:
            self.unix.update(zip(batch.kinds))

    # -- reading ---------------------------------------------------------------------------

    def _cgroup_path(self, cgroup_id: int) -> Optional[str]:
        if self.cgroup is None:
            from nlstat.cgroups import CgroupPaths

            self.cgroup = CgroupPaths().path
        return self.cgroup(cgroup_id)

    def groups(self) -> Dict[Group, int]:
        """Every group (the keys' values, in key order) with its count."""
        result: Dict[Group, int] = {}
        users: Dict[int, str] = {}
        interfaces: Dict[int, Optional[str]] = {}

        def add(group: Group, count: int) -> None:
            result[group] = result.get(group, 0) + count

        position = {field: index for index, field in enumerate(self._fields)}
        for raw, count in self.inet.items():
            values: Tuple[object, ...] = raw[0]  # type: ignore[assignment]
            protocol = str(values[position[_PROTOCOL]])
            group: List[Value] = []
            for key in self.keys:
                if key == "proto":
                    family = values[position[_FAMILY]]
                    assert isinstance(family, int)
                    group.append(LABELS.get((protocol, family), protocol))
                elif key == "state":
                    state = values[position[_STATE]]
                    assert isinstance(state, int)
                    group.append(inet_state_text(protocol, state))
                elif key == "user":
                    uid = values[position[_UID]]
                    assert isinstance(uid, int)
                    if uid not in users:
                        users[uid] = self.user(uid)
                    group.append(users[uid])
                elif key == "dev":
                    index = values[position[_INTERFACE]]
                    assert isinstance(index, int)
                    if index not in interfaces:
                        interfaces[index] = self.interface(index) if index else None
                    group.append(interfaces[index])
                elif key == "cgroup":
                    cgroup_id = values[position[_CGROUP]]
                    assert isinstance(cgroup_id, int)
                    group.append(self._cgroup_path(cgroup_id))
                elif key == "program":
                    group.append(raw[1])  # type: ignore[arg-type]
                else:  # lport, rport, laddr, raddr: the record's own value
                    group.append(values[position[_INET_FIELDS[key][0]]])  # type: ignore[arg-type]
            add(tuple(group), count)
        for protocol, counts in self.states.items():
            for (family, state), count in counts.items():
                group = []
                for key in self.keys:
                    if key == "proto":
                        group.append(LABELS.get((protocol, family), protocol))
                    else:
                        group.append(inet_state_text(protocol, state))
                add(tuple(group), count)
        for raw, count in self.unix.items():
            kind = raw[0]
            group = []
            for key in self.keys:
                if key == "proto":
                    group.append("unix" if kind.protocol == 0 else "??")  # type: ignore[attr-defined]
                elif key == "state":
                    group.append(unix_state_text(kind.socket_state, kind.flags))  # type: ignore[attr-defined]
                elif key == "laddr":
                    group.append((raw[1] or None) if len(raw) > 1 else None)  # type: ignore[arg-type]
                elif key == "program":
                    group.append(raw[2] if len(raw) > 2 else None)  # type: ignore[arg-type]
                else:
                    group.append(None)
            add(tuple(group), count)
        return result


def count_states(
    buf: bytes, record_type: int, counts: Counter[Tuple[int, int]]
) -> Optional[bool]:
    """Count a chunk of inet_diag records by (family, state) into `counts`, without decoding.

    Returns True when the chunk ends the dump (NLMSG_DONE), False when more follow, and
    None (nothing counted) when it holds anything but records of `record_type` and
    NLMSG_DONE, an error above all: the decoder reads it then. Runs of same-sized
    messages are counted with strided slices; where sizes change (a TIME_WAIT socket's
    message has no attributes), the run is cut by bisection and the odd message is read
    on its own.
    """
    end = len(buf)
    order = sys.byteorder
    runs: List[Tuple[int, int, int]] = []  # (offset, step, messages)
    singles: List[Tuple[int, int]] = []  # (family, state)
    ended = False
    offset = 0
    while offset < end:
        if end - offset < 16:
            return None
        length = int.from_bytes(buf[offset : offset + 4], order)
        msg_type = int.from_bytes(buf[offset + 4 : offset + 6], order)
        if msg_type != record_type:
            if msg_type == NLMSG_DONE and length >= 16:
                ended = True
                break
            return None
        step = (length + 3) & ~3
        if length < _RECORD_MIN or offset + length > end:
            return None
        total = (end - offset) // step
        run = _run(buf, offset, step, total)
        if run > 1:
            runs.append((offset, step, run))
        else:
            singles.append((buf[offset + _FAMILY_BYTE], buf[offset + _STATE_BYTE]))
        offset += run * step
    for offset, step, run in runs:
        stop = offset + run * step
        families = buf[offset + _FAMILY_BYTE : stop : step]
        states = buf[offset + _STATE_BYTE : stop : step]
        if families.count(families[0]) == run:
            family = families[0]
            for state in set(states):
                counts[(family, state)] += states.count(state)
        else:
            counts.update(zip(families, states))
    counts.update(singles)
    return ended


def _run(buf: bytes, offset: int, step: int, total: int) -> int:
    """How many messages from `offset` on share the first message's length and type (at
    least 1, at most `total`): the strided slice of each header byte must be all equal."""
    header = buf[offset : offset + _HEADER_BYTES]

    def tiles(count: int) -> bool:
        stop = offset + count * step
        return all(
            buf[offset + position : stop : step] == header[position : position + 1] * count
            for position in range(_HEADER_BYTES)
        )

    if tiles(total):
        return total
    low, high = 1, total  # tiles(low) holds, tiles(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        if tiles(middle):
            low = middle
        else:
            high = middle
    return low


def tally_keys(keys: Sequence[str]) -> Tuple[str, ...]:
    """The keys a Tally counts: `keys` without the OUTER_KEYS."""
    return tuple(key for key in keys if key not in OUTER_KEYS)


def with_value(
    groups: Mapping[Group, int], keys: Sequence[str], key: str, value: Value,
    into: Optional[Dict[Group, int]] = None,
) -> Dict[Group, int]:
    """The groups of a Tally over tally_keys(keys), with `value` put in at `key`'s place in
    `keys` (or, when `keys` lacks it, summed over it), added into `into`."""
    result: Dict[Group, int] = {} if into is None else into
    position = keys.index(key) if key in keys else -1
    for group, count in groups.items():
        if position >= 0:
            group = group[:position] + (value,) + group[position:]
        result[group] = result.get(group, 0) + count
    return result


def sorted_groups(groups: Mapping[Group, int]) -> List[Tuple[Group, int]]:
    """By count, largest first, then by the keys' values (None first, numbers as numbers)."""

    def order(item: Tuple[Group, int]) -> Tuple[object, ...]:
        group, count = item
        return (-count,) + tuple(
            (0, 0, "") if value is None else (1, value, "") if isinstance(value, int)
            else (2, 0, value)
            for value in group
        )

    return sorted(groups.items(), key=order)


def interface_name(index: int) -> Optional[str]:
    """The name of the interface a socket is bound to (SO_BINDTODEVICE); its index as text
    when the interface has gone."""
    try:
        return procio.interface_name(index)
    except OSError:
        return str(index)
