"""The one query object: everything the command line asked for, as netstat understood it.

`cli.parse()` builds a `Query`; backends, the `-p` map, name resolution and the formatters receive
only this. Field names follow netstat's option meanings (net-tools netstat.c `flag_*` variables),
with the derived flags of netstat.c main() already applied by the parser.
"""


from typing import TYPE_CHECKING, NamedTuple, Optional, Tuple

if TYPE_CHECKING:
    from nlstat.filters import Filters
else:
    # At run time the annotation needs no import (filters.py loads only with a filter) and
    # no ForwardRef, whose text typing compiles: the NamedTuple is a tuple anyway.
    Filters = tuple

# Modes, in netstat.c main()'s dispatch order: -M, -s, -r, -i, else sockets.
MODE_SOCKETS = "sockets"
MODE_MASQUERADE = "masquerade"
MODE_STATISTICS = "statistics"
MODE_ROUTE = "route"
MODE_INTERFACES = "interfaces"
# nlstat's own modes: --count (counts of the socket listing), --prometheus and --serve.
MODE_COUNT = "count"
MODE_METRICS = "metrics"
# --watch [SECONDS]: the socket listing, then what changed at every tick.
MODE_WATCH = "watch"

BACKEND_AUTO = "auto"
BACKEND_NETLINK = "netlink"
BACKEND_PROC = "proc"
BACKENDS = (BACKEND_AUTO, BACKEND_NETLINK, BACKEND_PROC)

# Output forms: netstat's text, one JSON document, or one JSON record a line (docs/schema.md).
OUTPUT_TEXT = "text"
OUTPUT_JSON = "json"
OUTPUT_NDJSON = "ndjson"


class Query(NamedTuple):
    """What to show and how. Defaults are a plain `netstat` with no options.

    A NamedTuple rather than a dataclass: `import dataclasses` alone costs 6 ms (it imports
    inspect), a quarter of the start-up budget of the small modes.
    """

    mode: str = MODE_SOCKETS

    # Socket selection (netstat.c flag_all, flag_lst): -a beats -l; neither: "connected only".
    all: bool = False  # -a
    listening: bool = False  # -l

    # Protocol switches after netstat.c main()'s derivation rules.
    tcp: bool = False  # -t
    udp: bool = False  # -u
    udplite: bool = False  # -U
    sctp: bool = False  # -S
    raw: bool = False  # -w
    groups: bool = False  # -g (multicast memberships, printed inside the socket listing)
    l2cap: bool = False  # -2
    rfcomm: bool = False  # -f

    # Address-family counters as lib/af.c aftrans_opt() keeps them: how often each was selected.
    inet: int = 0
    inet6: int = 0
    unix: int = 0
    ipx: int = 0
    ax25: int = 0
    x25: int = 0
    netrom: int = 0
    rose: int = 0
    bluetooth: int = 0
    # `afname`: every accepted -A/--protocol/-4/-6/-x/--<af> item, in order, duplicates kept,
    # by internal name (inet, inet6, unix, ddp, ec, ...). Used by -r and -s.
    families: Tuple[str, ...] = ()

    # netstat's `flag_arg` (how many protocol/family selections were made) and "noprot"
    # (protocols were switched on implicitly; only silences missing-file notices).
    selections: int = 0
    implicit_protocols: bool = False

    # Names (netstat.c FLAG_NUM_HOST, _PORT, _USER). -n sets the three numeric_* flags.
    numeric_hosts: bool = False
    numeric_ports: bool = False
    numeric_users: bool = False
    symbolic: bool = False  # -N: makes route tables numeric

    # Columns and presentation.
    extend: int = 0  # number of -e given; netstat's E is extend + 1
    programs: bool = False  # -p
    timers: bool = False  # -o
    wide: bool = False  # -W
    verbose: bool = False  # -v
    continuous: bool = False  # -c
    fib: bool = False  # -F
    cache: bool = False  # -C

    # nlstat's own options (exact spelling only, see docs/compat.md).
    backend: Optional[str] = None  # --backend=auto|netlink|proc; None: NLSTAT_BACKEND decides
    extras: Tuple[Tuple[str, str], ...] = ()  # reserved for new options
    output: str = OUTPUT_TEXT  # --json / --ndjson: "json" or "ndjson" (docs/schema.md)
    # --count [--by KEY,...]: the grouping keys (nlstat/aggregate.py KEYS); () when no --count.
    count_by: Tuple[str, ...] = ()
    # --prometheus / --serve [ADDR:]PORT: "prometheus" or "serve" ("" otherwise); the keys of
    # --by beyond proto and state label the metrics.
    metrics: str = ""
    metrics_by: Tuple[str, ...] = ()
    serve_address: str = "127.0.0.1"
    serve_port: int = 0
    serve_cache_seconds: float = 0.0  # --serve-max-age SECONDS: a dump serves scrapes this long
    series_limit: int = 10000  # --max-series N: series per scrape past which labels are dropped
    netns: Optional[str] = None  # --netns NAME|PATH|pid:PID: run inside that network namespace
    all_netns: bool = False  # --all-netns: one block per network namespace on the host
    # --state, --sport, --dport, --src, --dst, --dev, --uid, --pid, --program-name
    # (nlstat/filters.py); None when no filter was given.
    filters: Optional[Filters] = None
    # --watch [SECONDS] (mode "watch"): seconds between ticks; --ticks N: ticks before the
    # run ends (0: until interrupted).
    watch_seconds: float = 0.0
    watch_ticks: int = 0
    # --save FILE / --load FILE (nlstat/recording.py): record this run's kernel answers, or
    # replay a recorded run's; --overwrite lets --save replace an existing file.
    save: Optional[str] = None
    load: Optional[str] = None
    overwrite: bool = False

    @property
    def listing(self) -> str:
        """netstat's header suffix selector: 'all', 'servers' or 'connected'."""
        if self.all:
            return "all"
        if self.listening:
            return "servers"
        return "connected"

    @property
    def wants_cgroup(self) -> bool:
        """Read each inet socket's cgroup (InetSocket.cgroup_id): for --count/--by cgroup, a
        metrics label, --cgroup, and the JSON outputs with -e. A plain listing never pays."""
        return (
            "cgroup" in self.count_by
            or "cgroup" in self.metrics_by
            or (self.output != OUTPUT_TEXT and self.extend > 0)
            or (self.filters is not None and self.filters.cgroup is not None)
        )

    @property
    def wants_inet_v4(self) -> bool:
        """Read the IPv4 tables (netstat.c main(): `flag_arg == 0` or the inet family is on)."""
        return self.selections == 0 or self.inet > 0

    @property
    def wants_inet_v6(self) -> bool:
        return self.selections == 0 or self.inet6 > 0

    def wants(self, protocol: str) -> bool:
        """Is a step of netstat.c main()'s listing asked for? (`flag_arg == 0` or that switch)."""
        if self.selections == 0:
            return True
        return bool(getattr(self, protocol))
