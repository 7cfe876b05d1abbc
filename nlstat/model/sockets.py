"""Socket records, produced by backends/netlink/sockdiag.py and backends/procfs/sockets.py."""


from itertools import compress
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence

from nlstat.model.build import specialised, values_of

# Protocol names used in records (and by the steps of netstat.c main()'s socket listing).
TCP = "tcp"
UDP = "udp"
UDPLITE = "udplite"
RAW = "raw"


class InetSocket(NamedTuple):
    """One tcp/udp/udplite/raw socket over IPv4 or IPv6.

    Addresses are `inet_ntop` text ("127.0.0.1", "::ffff:127.0.0.1"); ports are host-order ints
    (for raw sockets the "port" is the IP protocol number, as the kernel reports it).
    `recv_q`/`send_q` are what /proc prints (for a LISTEN socket: accept queue and 0).
    Timer fields follow /proc/net/tcp: `timer` is the kind (0 off, 1 retransmit, 2 keepalive,
    3 timewait, 4 zero-window probe), `timer_ms` the time left in milliseconds.
    """

    protocol: str  # "tcp", "udp", "udplite", "raw"
    family: int  # socket.AF_INET or socket.AF_INET6
    state: int  # kernel TCP state number (udp/raw: 1 connected, 7 unconnected), never < 0
    local_address: str
    local_port: int
    remote_address: str
    remote_port: int
    recv_q: int
    send_q: int
    uid: int
    inode: int
    timer: int = 0
    timer_ms: int = 0
    retransmits: int = 0
    probes: int = 0
    cookie: int = 0  # sock_diag socket cookie (0 from procfs)
    interface: int = 0  # bound interface index (0 from procfs)
    # cgroup v2 id of the socket's cgroup (the directory's inode under the cgroup2 mount);
    # 0 when unknown: not asked for, /proc, a kernel before 5.7, TIME_WAIT and SYN_RECV
    # sockets (no attributes). Read only when a query wants it (Query.wants_cgroup).
    cgroup_id: int = 0


class UnixSocket(NamedTuple):
    """One AF_UNIX socket, with the fields of /proc/net/unix.

    `socket_state` is the socket-level SS_* state that /proc prints (1 unconnected, 2 connecting,
    3 connected, 4 disconnecting); `flags` holds __SO_ACCEPTCON (0x10000) for listeners.
    `path` is the text /proc prints ("/run/x.sock", "@abstract"), "" when unbound.
    `refcnt` is only in /proc (unix_diag does not export sk_refcnt): None when unknown.
    """

    type: int  # SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5
    socket_state: int
    flags: int
    inode: int
    path: str
    refcnt: Optional[int] = None
    protocol: int = 0
    state: int = 0  # kernel sk_state (TCP_LISTEN 10, TCP_ESTABLISHED 1, TCP_CLOSE 7); 0 if unknown
    peer_inode: int = 0
    cookie: int = 0
    # The exact sun_path bytes, kept only when `path` cannot say them: an abstract name holding
    # NULs (printed as "@", as /proc prints them). unix_diag only; for --json (docs/schema.md).
    name: Optional[bytes] = None


class UnixKind(NamedTuple):
    """What many unix sockets have in common: the five small fields /proc/net/unix prints
    before the inode (a host with 100k sockets has a few dozen distinct kinds)."""

    type: int
    socket_state: int
    flags: int
    refcnt: Optional[int]
    protocol: int


class UnixBatch:
    """Consecutive unix sockets as columns: row i is kinds[i], inodes[i], paths[i].

    This is how /proc/net/unix is carried from parser to formatter: a chunk's rows come out of
    one regular expression as columns, and the formatter puts them together column by column,
    so no object is built per socket (less than half the time of a record each). The
    inodes are kept as the kernel printed them
    (`inode_texts`, what netstat shows) and as numbers (`inodes`, for -p and the API), each
    made from the other the first time it is asked for: a listing without -p never converts
    them. `records()` gives the UnixSocket of every row. Immutable by convention.
    """

    __slots__ = ("kinds", "paths", "_inodes", "_inode_texts")

    def __init__(
        self,
        kinds: Sequence[UnixKind],
        inodes: Optional[Sequence[int]],
        paths: Sequence[str],
        inode_texts: Optional[Sequence[str]] = None,
    ) -> None:
        self.kinds = kinds
        self.paths = paths
        self._inodes = inodes
        self._inode_texts = inode_texts

    @property
    def inodes(self) -> Sequence[int]:
        if self._inodes is None:
            self._inodes = list(map(int, self._inode_texts or ()))
        return self._inodes

    @property
    def inode_texts(self) -> Sequence[str]:
        if self._inode_texts is None:
            self._inode_texts = list(map(str, self._inodes or ()))
        return self._inode_texts

    def __len__(self) -> int:
        return len(self.kinds)

    def __repr__(self) -> str:
        return f"UnixBatch({len(self)} sockets)"

    @classmethod
    def of(cls, records: Iterable[UnixSocket]) -> "UnixBatch":
        rows = list(records)
        return cls(
            [UnixKind(type=r.type, socket_state=r.socket_state, flags=r.flags, refcnt=r.refcnt,
                      protocol=r.protocol) for r in rows],
            [r.inode for r in rows],
            [r.path for r in rows],
        )

    @specialised
    def records(self) -> List[UnixSocket]:
        new = tuple.__new__
        return [
            new(UnixSocket, values_of(
                UnixSocket, type=kind.type, socket_state=kind.socket_state, flags=kind.flags,
                inode=inode, path=path, refcnt=kind.refcnt, protocol=kind.protocol))
            for kind, inode, path in zip(self.kinds, self.inodes, self.paths)
        ]

    def where(self, keep: Callable[[UnixKind], bool]) -> "UnixBatch":
        """The rows whose kind passes `keep` (asked once per distinct kind)."""
        verdicts: Dict[UnixKind, bool] = {}
        for kind in set(self.kinds):
            verdicts[kind] = keep(kind)
        if all(verdicts.values()):
            return self
        selected = list(map(verdicts.__getitem__, self.kinds))
        return UnixBatch(
            list(compress(self.kinds, selected)),
            None if self._inodes is None else list(compress(self._inodes, selected)),
            list(compress(self.paths, selected)),
            None if self._inode_texts is None else list(compress(self._inode_texts, selected)),
        )
