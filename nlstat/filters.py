"""Socket filters: what --state, --sport/--dport, --src/--dst, --dev, --uid, --pid and
--program-name select (and the same keywords of `nlstat.sockets()`), parsed once.

The kernel does what it can: backends/sockets.py puts `state_mask()` into the sock_diag
request's idiag_states and backends/netlink/bytecode.py compiles the port, address and
device conditions into inet_diag bytecode. `inet_predicate()` and `unix_predicate()` are the
one Python implementation of the same selection, used for /proc tables and for what the
kernel cannot do (owner uid, processes, the states of raw sockets, unix sockets).

Only command lines and API calls that filter import this module.
"""


import _socket
from typing import (
    Callable,
    Dict,
    FrozenSet,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from nlstat.errors import InvalidFilter
from nlstat.model.sockets import RAW, InetSocket, UnixKind, UnixSocket

# netstat's tcp state words (netstat.c tcp_state[]), as the kernel numbers them
# (include/net/tcp_states.h). udp and udplite sockets are ESTABLISHED when connected and
# CLOSE otherwise; raw sockets likewise.
TCP_STATE_NUMBERS: Dict[str, int] = {
    "ESTABLISHED": 1,
    "SYN_SENT": 2,
    "SYN_RECV": 3,
    "FIN_WAIT1": 4,
    "FIN_WAIT2": 5,
    "TIME_WAIT": 6,
    "CLOSE": 7,
    "CLOSE_WAIT": 8,
    "LAST_ACK": 9,
    "LISTEN": 10,
    "CLOSING": 11,
}
# netstat's unix state words (netstat.c unix_do_one) name the same selections: a unix
# socket is LISTEN when it listens, ESTABLISHED when connected, SYN_SENT when connecting,
# CLOSING when disconnecting, CLOSE otherwise (see unix_state()).
UNIX_STATE_WORDS: Dict[str, int] = {
    "LISTENING": 10,
    "CONNECTED": 1,
    "CONNECTING": 2,
    "DISCONNECTING": 11,
    "UNCONNECTED": 7,
}
STATE_NUMBERS: Dict[str, int] = {**TCP_STATE_NUMBERS, **UNIX_STATE_WORDS}
TCP_SYN_RECV = 3
# A connection request that has not been accepted yet lives in the established hash as
# TCP_NEW_SYN_RECV (12); sock_diag and /proc report it as SYN_RECV, so both bits are asked for.
TCP_NEW_SYN_RECV = 12
# socket-level states of /proc/net/unix (include/uapi/linux/net.h) and __SO_ACCEPTCON.
SS_UNCONNECTED, SS_CONNECTING, SS_CONNECTED, SS_DISCONNECTING = 1, 2, 3, 4
SO_ACCEPTCON = 1 << 16

# Option name -> Filters field. `--program` would steal netstat's abbreviation of
# `--programs`, so the command line spells it `--program-name` (docs/compat.md).
OPTION_FIELDS: Dict[str, str] = {
    "state": "states",
    "sport": "sport",
    "dport": "dport",
    "src": "src",
    "dst": "dst",
    "dev": "dev",
    "uid": "uid",
    "pid": "pid",
    "program-name": "program",
    "cgroup": "cgroup",
}
# The parts of a filter, in the order -v names them.
PARTS = ("state", "sport", "dport", "src", "dst", "dev", "uid", "pid", "program", "cgroup")
# What inet_diag bytecode can say (the state mask is separate).
BYTECODE_PARTS = frozenset(("sport", "dport", "src", "dst", "dev"))
# Parts that only inet sockets have: a unix socket never matches them (unix_diag reports no
# cgroup).
INET_ONLY_PARTS = frozenset(("sport", "dport", "src", "dst", "dev", "uid", "cgroup"))

V4_MAPPED = b"\0" * 10 + b"\xff\xff"
# Address texts whose verdict is cached per predicate before the cache starts again.
ADDRESS_CACHE_LIMIT = 1 << 16


class PortRange(NamedTuple):
    """Ports `low` to `high`, both included (one port: low == high)."""

    low: int
    high: int

    def text(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


class Prefix(NamedTuple):
    """An address prefix: `family`, the packed address (network order), the prefix length."""

    family: int
    address: bytes
    length: int

    def text(self) -> str:
        return _socket.inet_ntop(self.family, self.address) + "/" + str(self.length)

    def matches(self, family: int, address: str) -> bool:
        """Does the socket address text (inet_ntop's) lie in this prefix? As the kernel's
        inet_diag_bc_run() decides: an IPv4 prefix also takes IPv4-mapped IPv6 addresses."""
        try:
            packed = _socket.inet_pton(family, address)
        except OSError:
            return False
        if family != self.family:
            if family != _socket.AF_INET6 or packed[:12] != V4_MAPPED:
                return False
            packed = packed[12:]
        if not self.length:
            return True
        bits = len(packed) * 8
        shift = bits - self.length
        return (int.from_bytes(packed, "big") >> shift) == (
            int.from_bytes(self.address, "big") >> shift
        )


class Filters(NamedTuple):
    """A socket selection; None in a field selects everything. All fields must hold."""

    states: Optional[FrozenSet[int]] = None  # kernel state numbers (TCP_STATE_NUMBERS)
    sport: Optional[PortRange] = None
    dport: Optional[PortRange] = None
    src: Optional[Prefix] = None
    dst: Optional[Prefix] = None
    dev: Optional[int] = None  # interface index of the device a socket is bound to
    uid: Optional[int] = None
    pid: Optional[int] = None
    program: Optional[str] = None  # argv[0] as netstat -p shows it, uncut
    cgroup: Optional[int] = None  # cgroup v2 id (nlstat/cgroups.py) of --cgroup PATH
    # --dev under --netns/--all-netns: the name, looked up inside the namespace listed
    # (resolved_dev()); interface indexes are per namespace.
    dev_name: Optional[str] = None

    def parts(self) -> Tuple[str, ...]:
        """The parts given, by their -v names, in PARTS order."""
        dev = self.dev if self.dev is not None else self.dev_name
        values = (self.states, self.sport, self.dport, self.src, self.dst, dev,
                  self.uid, self.pid, self.program, self.cgroup)
        return tuple(name for name, value in zip(PARTS, values) if value is not None)

    @property
    def needs_owners(self) -> bool:
        """--pid and --program-name join sockets to processes through /proc/*/fd."""
        return self.pid is not None or self.program is not None

    @property
    def excludes_unix(self) -> bool:
        """Ports, addresses, a device and a uid exist only for inet sockets."""
        return any(part in INET_ONLY_PARTS for part in self.parts())

    def state_mask(self) -> int:
        """The idiag_states bits of `states` (all bits when no state is asked for)."""
        if self.states is None:
            return 0xFFFFFFFF
        mask = 0
        for state in self.states:
            mask |= 1 << state
        if mask & (1 << TCP_SYN_RECV):
            mask |= 1 << TCP_NEW_SYN_RECV
        return mask

    def kernel_parts(self, protocol: str) -> FrozenSet[str]:
        """What a sock_diag dump of `protocol` does in the kernel: bytecode, and the state
        mask except for raw sockets (raw_diag never looks at idiag_states)."""
        done = set(BYTECODE_PARTS)
        if protocol != RAW:
            done.add("state")
        if self.cgroup is not None:
            from nlstat.cgroups import kernel_reports_cgroups

            if kernel_reports_cgroups():
                done.add("cgroup")  # INET_DIAG_BC_CGROUP_COND
        return frozenset(done.intersection(self.parts()))


# -- parsing ---------------------------------------------------------------------------------


def parse_states(text: str) -> FrozenSet[int]:
    """"established,TIME_WAIT" -> {1, 6}; any case, netstat's tcp or unix words."""
    states = set()
    for item in text.split(","):
        word = item.strip().upper().replace("-", "_")
        number = STATE_NUMBERS.get(word)
        if number is None:
            raise InvalidFilter(
                f"unknown state '{item}' (one of {', '.join(TCP_STATE_NUMBERS).lower()})")
        states.add(number)
    return frozenset(states)


def _port(text: str, option: str, whole: str) -> int:
    word = text.strip()
    if word.isdigit() and word.isascii():
        value = int(word)
        if value <= 65535:
            return value
        raise InvalidFilter(f"bad port range '{whole}' for --{option} (ports are 0-65535)")
    if word and word.isascii() and word.replace("-", "").replace("_", "").isalnum():
        for table in ("tcp", "udp"):
            try:
                return int(_socket.getservbyname(word, table))
            except OSError:
                continue
    raise InvalidFilter(f"bad port range '{whole}' for --{option} (PORT or LOW-HIGH)")


def parse_ports(text: str, option: str = "dport") -> PortRange:
    """"443" -> 443-443, "1024-2047" -> 1024-2047, "https" -> 443-443."""
    if text.isascii() and text.strip().isdigit():
        port = _port(text, option, text)
        return PortRange(port, port)
    low, dash, high = text.partition("-")
    if dash and low.strip().isdigit() and high.strip().isdigit():
        first, last = _port(low, option, text), _port(high, option, text)
        if first > last:
            raise InvalidFilter(f"bad port range '{text}' for --{option} (low above high)")
        return PortRange(first, last)
    port = _port(text, option, text)
    return PortRange(port, port)


def parse_prefix(text: str, option: str = "dst") -> Prefix:
    """"198.18.0.0/15", "2001:db8::1", "127.0.0.1" (a whole address when no /PREFIX)."""
    address, slash, length_text = text.strip().partition("/")
    for family, bits in ((_socket.AF_INET, 32), (_socket.AF_INET6, 128)):
        try:
            packed = _socket.inet_pton(family, address)
        except (OSError, ValueError):
            continue
        if not slash:
            return Prefix(family, packed, bits)
        if length_text.isascii() and length_text.isdigit() and int(length_text) <= bits:
            return Prefix(family, packed, int(length_text))
        raise InvalidFilter(f"bad prefix '{text}' for --{option} (/0 to /{bits})")
    raise InvalidFilter(f"bad address '{text}' for --{option} (ADDR or ADDR/PREFIX)")


def parse_dev(text: str) -> int:
    """An interface name -> its index in this network namespace."""
    try:
        return int(_socket.if_nametoindex(text))
    except (OSError, ValueError):
        raise InvalidFilter(f"unknown interface '{text}'") from None


# The device index of a namespace that lacks the --dev interface under --all-netns: no
# interface has it (ifindex is a positive int), so nothing there is selected.
NO_DEVICE = 0xFFFFFFFF


def resolved_dev(filters: Filters, missing_selects_nothing: bool = False) -> Filters:
    """`filters` with a deferred --dev name (dev_name) turned into its index in the calling
    process's network namespace: a --netns child resolves it after entering. An interface
    the namespace lacks is an error, or (--all-netns) selects nothing there."""
    name = filters.dev_name
    if name is None or filters.dev is not None:
        return filters
    try:
        index = parse_dev(name)
    except InvalidFilter:
        if not missing_selects_nothing:
            raise
        index = NO_DEVICE
    return filters._replace(dev=index)


def parse_uid(text: str) -> int:
    """A user name or a numeric uid."""
    word = text.strip()
    if word.isascii() and word.isdigit():
        return int(word)
    import pwd

    try:
        return pwd.getpwnam(word).pw_uid
    except (KeyError, ValueError):
        raise InvalidFilter(f"unknown user '{text}'") from None


def parse_pid(text: str) -> int:
    word = text.strip()
    if word.isascii() and word.isdigit() and int(word) > 0:
        return int(word)
    raise InvalidFilter(f"bad process id '{text}' for --pid")


def parse_cgroup(text: str) -> int:
    """A cgroup v2 path ("/system.slice/x.service", as /proc/PID/cgroup writes it, or the
    whole path under the cgroup2 mount) -> its id."""
    from nlstat.cgroups import cgroup_id

    try:
        return cgroup_id(text)
    except ValueError as err:
        raise InvalidFilter(f"bad cgroup '{text}' for --cgroup ({err})") from None


def from_options(
    values: Mapping[str, Union[str, Sequence[str]]], defer_dev: bool = False
) -> Optional[Filters]:
    """The command line's filter options (name -> the texts given, in order; names as in
    OPTION_FIELDS). Repeated --state options add up, as a comma list does; any other option
    given twice must say the same thing twice (one port range, one prefix, one device, one
    user, one process: there is no "or" between two of them). `defer_dev`: keep the --dev
    name for the namespace the listing runs in (resolved_dev())."""
    fields: Dict[str, object] = {}
    for option, given in values.items():
        texts = [given] if isinstance(given, str) else list(given)
        field = OPTION_FIELDS[option]
        if field == "states":
            fields[field] = frozenset().union(*(parse_states(text) for text in texts))
            continue
        parsed = [_parse_one(option, field, text, defer_dev) for text in texts]
        for text, value in zip(texts[1:], parsed[1:]):
            if value != parsed[0]:
                raise InvalidFilter(
                    f"--{option} given twice with different values ('{texts[0]}' and "
                    f"'{text}'): it takes one (only --state adds up)")
        fields["dev_name" if field == "dev" and defer_dev else field] = parsed[0]
    return Filters(**fields) if fields else None  # type: ignore[arg-type]


def _parse_one(option: str, field: str, text: str, defer_dev: bool) -> object:
    if field in ("sport", "dport"):
        return parse_ports(text, option)
    if field in ("src", "dst"):
        return parse_prefix(text, option)
    if field == "dev":
        if defer_dev:
            if not text:
                raise InvalidFilter("unknown interface ''")
            return text
        return parse_dev(text)
    if field == "uid":
        return parse_uid(text)
    if field == "pid":
        return parse_pid(text)
    if field == "cgroup":
        return parse_cgroup(text)
    if not text:
        raise InvalidFilter("empty program name for --program-name")
    return text


def make(
    state: object = None,
    sport: object = None,
    dport: object = None,
    src: object = None,
    dst: object = None,
    dev: object = None,
    uid: object = None,
    pid: object = None,
    program: object = None,
    cgroup: object = None,
) -> Optional[Filters]:
    """Filters from the API's keywords: texts as on the command line, or Python values
    (ints for ports, uid, pid, device index; (low, high) for a port range; an iterable of
    state names)."""
    fields: Dict[str, object] = {}
    if state is not None:
        if isinstance(state, str):
            fields["states"] = parse_states(state)
        else:
            fields["states"] = parse_states(",".join(map(str, _iterable(state, "state"))))
    for name, value in (("sport", sport), ("dport", dport)):
        if value is None:
            continue
        if isinstance(value, bool):
            raise InvalidFilter(f"bad port {value!r} for {name}")
        if isinstance(value, int):
            value = str(value)
        elif isinstance(value, tuple) and len(value) == 2:
            value = f"{value[0]}-{value[1]}"
        if not isinstance(value, str):
            raise InvalidFilter(f"bad port range {value!r} for {name}")
        fields[name] = parse_ports(value, name)
    for name, value in (("src", src), ("dst", dst)):
        if value is None:
            continue
        if not isinstance(value, str):
            value = str(value)  # ipaddress objects print as ADDR or ADDR/PREFIX
        fields[name] = parse_prefix(value, name)
    if dev is not None:
        if isinstance(dev, int) and not isinstance(dev, bool) and dev > 0:
            fields["dev"] = dev
        elif isinstance(dev, str):
            fields["dev"] = parse_dev(dev)
        else:
            raise InvalidFilter(f"bad interface {dev!r} for dev")
    for name, value, parse in (("uid", uid, parse_uid), ("pid", pid, parse_pid)):
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            value = str(value)
        if not isinstance(value, str):
            raise InvalidFilter(f"bad {name} {value!r}")
        fields[name] = parse(value)
    if program is not None:
        if not isinstance(program, str) or not program:
            raise InvalidFilter(f"bad program name {program!r}")
        fields["program"] = program
    if cgroup is not None:
        if not isinstance(cgroup, str):
            raise InvalidFilter(f"bad cgroup {cgroup!r} (a path such as /system.slice)")
        fields["cgroup"] = parse_cgroup(cgroup)
    return Filters(**fields) if fields else None  # type: ignore[arg-type]


def _iterable(value: object, name: str) -> Iterable[object]:
    if isinstance(value, (list, tuple, set, frozenset)):
        return value
    raise InvalidFilter(f"bad {name} {value!r} (a name or a list of names)")


# -- the Python predicates ---------------------------------------------------------------------


def _address_test(prefix: Prefix) -> Callable[[int, str], bool]:
    """prefix.matches with a cache by address text (addresses repeat: listeners, peers)."""
    verdicts: Dict[str, bool] = {}

    def test(family: int, address: str) -> bool:
        verdict = verdicts.get(address)
        if verdict is None:
            if len(verdicts) > ADDRESS_CACHE_LIMIT:
                verdicts.clear()
            verdict = verdicts[address] = prefix.matches(family, address)
        return verdict

    return test


def inet_predicate(
    filters: Filters,
    parts: Iterable[str],
    owned: Optional[FrozenSet[int]] = None,
) -> Optional[Callable[[InetSocket], bool]]:
    """A test of InetSocket records for the given parts of `filters` (the others were done
    in the kernel); None when there is nothing left to test. `owned`: the socket inodes of
    the processes --pid/--program-name select."""
    wanted = set(parts)
    tests: List[Callable[[InetSocket], bool]] = []
    states, sport, dport = filters.states, filters.sport, filters.dport
    if "state" in wanted and states is not None:
        tests.append(lambda record: record.state in states)
    if "sport" in wanted and sport is not None:
        low, high = sport
        tests.append(lambda record: low <= record.local_port <= high)
    if "dport" in wanted and dport is not None:
        dlow, dhigh = dport
        tests.append(lambda record: dlow <= record.remote_port <= dhigh)
    if "src" in wanted and filters.src is not None:
        src_test = _address_test(filters.src)
        tests.append(lambda record: src_test(record.family, record.local_address))
    if "dst" in wanted and filters.dst is not None:
        dst_test = _address_test(filters.dst)
        tests.append(lambda record: dst_test(record.family, record.remote_address))
    if "dev" in wanted and filters.dev is not None:
        index = filters.dev
        tests.append(lambda record: record.interface == index)
    if "uid" in wanted and filters.uid is not None:
        uid = filters.uid
        tests.append(lambda record: record.uid == uid)
    if "cgroup" in wanted and filters.cgroup is not None:
        cgroup = filters.cgroup
        tests.append(lambda record: record.cgroup_id == cgroup)
    if wanted & {"pid", "program"} and filters.needs_owners:
        inodes = owned if owned is not None else frozenset()
        tests.append(lambda record: record.inode in inodes)
    if not tests:
        return None
    if len(tests) == 1:
        return tests[0]
    return lambda record: all(test(record) for test in tests)


def unix_state(socket_state: int, flags: int) -> int:
    """The state number a unix socket is selected by (see UNIX_STATE_WORDS)."""
    if socket_state == SS_UNCONNECTED:
        return 10 if flags & SO_ACCEPTCON else 7
    if socket_state == SS_CONNECTED:
        return 1
    if socket_state == SS_CONNECTING:
        return 2
    if socket_state == SS_DISCONNECTING:
        return 11
    return 7


def unix_kind_predicate(filters: Filters) -> Optional[Callable[[UnixKind], bool]]:
    """The part of the selection a UnixKind decides (the state); None when none."""
    states = filters.states
    if states is None:
        return None
    return lambda kind: unix_state(kind.socket_state, kind.flags) in states


def unix_predicate(
    filters: Filters, owned: Optional[FrozenSet[int]] = None
) -> Optional[Callable[[UnixSocket], bool]]:
    """A test of UnixSocket records (the API's unix sockets); None when all pass."""
    if filters.excludes_unix:
        return lambda record: False
    states = filters.states
    inodes = owned if filters.needs_owners else None
    if states is None and inodes is None:
        return None

    def keep(record: UnixSocket) -> bool:
        if states is not None and unix_state(record.socket_state, record.flags) not in states:
            return False
        return inodes is None or record.inode in inodes

    return keep


def describe(filters: Filters, kernel: Iterable[str]) -> str:
    """-v's account of one table: "in the kernel: state, dport; in user space: uid"."""
    done = set(kernel)
    given = filters.parts()
    inside = [part for part in given if part in done]
    outside = [part for part in given if part not in done]
    return (f"in the kernel: {', '.join(inside) or 'nothing'}; "
            f"in user space: {', '.join(outside) or 'nothing'}")
