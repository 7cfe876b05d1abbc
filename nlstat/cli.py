"""netstat's command line, parsed exactly as net-tools 2.10 parses it with glibc 2.36 `getopt_long`.

The parser walks argv once, in order, and acts while it walks, because netstat does: `-V`, `-h`,
`-Z`, a bad address family and every parse error end the run on the spot, so `netstat -V -y`
prints the version while `netstat -y -V` is a usage error. What survives becomes a `Query` with
netstat's derived flags (netstat.c main(), after its getopt loop) already applied.

Three parts, each driven by tables: `getopt()` is glibc's getopt_long over SHORT_OPTIONS,
LONG_OPTIONS and OWN_OPTIONS (argv -> `Option`s, lazily, errors as glibc's '?'); `_ACTIONS` is
netstat's switch (option code -> action; any other code bumps its flag counter); `finish()`
applies netstat's derived flags and builds the Query from the counters (`_SWITCHES`, ...).

nlstat's own long options (`OWN_OPTIONS`) are matched only when spelled out in full and never
take part in glibc's prefix matching, so every netstat abbreviation keeps its meaning: `--back`
is still netstat's "unrecognized option", and `--w` still means `--wide`.

Kept import-light on purpose (no argparse, re or dataclasses): every invocation runs it, and the
help and version texts are imported only when printed.
"""

from __future__ import annotations

import os
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Sequence,
    TextIO,
    Tuple,
    Union,
)

from nlstat.env import Environment
from nlstat.errors import ExitStatus
from nlstat.query import (
    BACKENDS,
    MODE_INTERFACES,
    MODE_MASQUERADE,
    MODE_ROUTE,
    MODE_SOCKETS,
    MODE_STATISTICS,
    OUTPUT_TEXT,
    Query,
)

# netstat.c: getopt_long(argc, argv, "A:CFMacdeghilnNoprsStuUvVWw2fx64?Z", ...). Only -A takes
# an argument. ':' occurs in the string but glibc rejects it as an option character.
SHORT_OPTIONS = "A:CFMacdeghilnNoprsStuUvVWw2fx64?Z"
_SHORT_CHARS = frozenset(SHORT_OPTIONS.replace(":", ""))

# The 13 address-family options share netstat's internal code 1 (AFTRANS_OPTS in
# lib/net-support.h), which is why glibc does not call `--ine` ambiguous between --inet and
# --inet6, yet does call `--i` ambiguous between --ip and --interfaces.
FAMILY_CODE = "\x01"
# netstat.c checks `lop < AFTRANS_CNT` (12), so the 13th family option, --tcpip, only prints
# "Internal Error" (a bug kept: docs/compat.md).
_AFTRANS_CNT = 12

# netstat's long-option table, IN ORDER: glibc takes the first prefix match as the candidate and
# lists the possibilities in this order. (name, takes an argument, code); the code is the short
# option it stands for, or one of netstat's private codes ('!', '@', '#', FAMILY_CODE).
LONG_OPTIONS: Tuple[Tuple[str, bool, str], ...] = (
    ("ax25", False, FAMILY_CODE),
    ("x25", False, FAMILY_CODE),
    ("ip", False, FAMILY_CODE),
    ("ipx", False, FAMILY_CODE),
    ("appletalk", False, FAMILY_CODE),
    ("netrom", False, FAMILY_CODE),
    ("inet", False, FAMILY_CODE),
    ("inet6", False, FAMILY_CODE),
    ("ddp", False, FAMILY_CODE),
    ("rose", False, FAMILY_CODE),
    ("unix", False, FAMILY_CODE),
    ("bluetooth", False, FAMILY_CODE),
    ("tcpip", False, FAMILY_CODE),
    ("version", False, "V"),
    ("interfaces", False, "i"),
    ("help", False, "h"),
    ("route", False, "r"),
    ("masquerade", False, "M"),
    ("protocol", True, "A"),
    ("tcp", False, "t"),
    ("sctp", False, "S"),
    ("udp", False, "u"),
    ("udplite", False, "U"),
    ("raw", False, "w"),
    ("unix", False, "x"),
    ("l2cap", False, "2"),
    ("rfcomm", False, "f"),
    ("listening", False, "l"),
    ("all", False, "a"),
    ("timers", False, "o"),
    ("continuous", False, "c"),
    ("extend", False, "e"),
    ("programs", False, "p"),
    ("verbose", False, "v"),
    ("statistics", False, "s"),
    ("wide", False, "W"),
    ("numeric", False, "n"),
    ("numeric-hosts", False, "!"),
    ("numeric-ports", False, "@"),
    ("numeric-users", False, "#"),
    ("symbolic", False, "N"),
    ("cache", False, "C"),
    ("fib", False, "F"),
    ("groups", False, "g"),
    ("context", False, "Z"),
)

# lib/af.c aftrans[]: alias -> internal name (the name in afname, and the counter it bumps).
# ddp, ec and ash have counters in netstat too, but nothing reads them, so `--ddp` behaves like a
# plain `netstat`.
FAMILY_ALIASES: Dict[str, str] = {
    "ax25": "ax25",
    "ip": "inet",
    "ip6": "inet6",
    "ipx": "ipx",
    "rose": "rose",
    "appletalk": "ddp",
    "netrom": "netrom",
    "inet": "inet",
    "inet6": "inet6",
    "ddp": "ddp",
    "unix": "unix",
    "tcpip": "inet",
    "econet": "ec",
    "x25": "x25",
    "ash": "ash",
    "bluetooth": "bluetooth",
}

# lib/af.c: `char afname[256]`, and aftrans_opt() copies its argument into `char buf[256]` with
# safe_strncpy, so an -A argument is cut after 255 bytes.
_AFNAME_SIZE = 256
_FAMILY_ARG_MAX = 255


def _check_backend(value: str) -> Optional[str]:
    if value in BACKENDS:
        return None
    return f"netstat: invalid backend '{value}' (choose auto, netlink or proc)"


# nlstat's own long options, recognised only when typed exactly (never abbreviated, never in
# glibc's ambiguity checks). None of these names may be a prefix of a netstat long option, or it
# would steal that abbreviation from netstat (a unit test checks it).
# name: (takes an argument, check(value) -> error line or None, option as shown in help, help text)
# The value lands in the Query field of that name if there is one (the text, or True for a
# flag), else in Query.extras. Only the first four items are read: an entry may carry more.
OwnOption = Tuple[bool, Optional[Callable[[str], Optional[str]]], str, str]
OWN_OPTIONS: Dict[str, OwnOption] = {
    "backend": (
        True,
        _check_backend,
        "--backend=auto|netlink|proc",
        "choose the data source (default: auto)",
    ),
    "json": (False, None, "--json", "print one JSON document (docs/schema.md)"),
    "ndjson": (False, None, "--ndjson", "print a JSON header line, then one record a line"),
    "count": (
        False,
        None,
        "--count",
        "count the sockets listed instead of listing them (by proto and state)",
    ),
    "by": (
        True,
        None,
        "--by=KEY[,KEY...]",
        "group --count and metrics by proto,state,lport,rport,laddr,raddr,user,program,dev,"
        "cgroup,netns",
    ),
    "prometheus": (False, None, "--prometheus", "print socket metrics for Prometheus"),
    "serve": (
        True,
        None,
        "--serve=[ADDR:]PORT",
        "serve the metrics at http://ADDR:PORT/metrics (default address 127.0.0.1)",
    ),
    "serve-max-age": (
        True,
        None,
        "--serve-max-age=SECONDS",
        "let one kernel dump answer the scrapes of this many seconds (default 0)",
    ),
    "max-series": (
        True,
        None,
        "--max-series=N",
        "drop metric series past N per scrape (default 10000)",
    ),
    "netns": (
        True,
        None,
        "--netns=NAME|PATH|pid:PID",
        "run inside that network namespace",
    ),
    "all-netns": (
        False,
        None,
        "--all-netns",
        "one block per network namespace",
    ),
    "save": (True, None, "--save=FILE", "also record this run's kernel answers in FILE"),
    "overwrite": (False, None, "--overwrite", "let --save replace an existing FILE"),
    "load": (True, None, "--load=FILE", "replay a run recorded with --save (no kernel asked)"),
    # Socket filters (nlstat/filters.py): checked together once argv is walked, a bad value
    # ends the run with status 1. `--program` would be netstat's `--programs` abbreviated.
    "state": (True, None, "--state=STATE[,STATE...]", "only sockets in these states"),
    "sport": (True, None, "--sport=PORT|LOW-HIGH", "only these local ports"),
    "dport": (True, None, "--dport=PORT|LOW-HIGH", "only these remote ports"),
    "src": (True, None, "--src=ADDR[/PREFIX]", "only these local addresses"),
    "dst": (True, None, "--dst=ADDR[/PREFIX]", "only these remote addresses"),
    "dev": (True, None, "--dev=IFACE", "only sockets bound to this device"),
    "uid": (True, None, "--uid=USER|UID", "only sockets of this user"),
    "pid": (True, None, "--pid=PID", "only sockets of this process"),
    "program-name": (True, None, "--program-name=NAME", "only sockets of processes so named"),
    "cgroup": (True, None, "--cgroup=PATH", "only inet sockets of this cgroup v2 (as in "
               "/proc/PID/cgroup)"),
    # --watch takes its value only when one follows (OPTIONAL_VALUE); checked in own_options.
    "watch": (
        True,
        None,
        "--watch [SECONDS]",
        "every SECONDS (default 1), print the sockets opened, closed and changed",
    ),
    "ticks": (True, None, "--ticks=N", "end --watch after N ticks"),
}
# Own options whose value is optional: `--watch=2`, `--watch 2`, or `--watch` alone when the
# next word is an option (`--watch -ant`), the last word, or after "--". A word like `-1`
# or `-0.5` is taken as the (bad) value unless getopt would read it as netstat's options
# (`--watch -4` is --watch then -4).
OPTIONAL_VALUE = frozenset(("watch",))
# The OWN_OPTIONS that are socket filters (the rest of nlstat/filters.py's OPTION_FIELDS).
FILTER_OPTIONS = frozenset(("state", "sport", "dport", "src", "dst", "dev", "uid", "pid",
                            "program-name", "cgroup"))

# The output-form options: at most one of them per command line (docs/schema.md).
OUTPUT_OPTIONS = ("json", "ndjson")

# Exit statuses of netstat.c: E_OPTERR for usage errors; exit(1) for a bad family and -Z.
STATUS_USAGE = ExitStatus.USAGE
STATUS_FAILURE = ExitStatus.ERROR
STATUS_OK = ExitStatus.OK


def parse(argv: Sequence[str], env: Environment) -> Union[Query, int]:
    """argv (without the program name) -> a Query, or the exit status when parsing ended the run.

    For example ["-tulpn"] gives a sockets Query with tcp, udp, listening, programs and the three
    numeric flags on; ["-y"] prints glibc's complaint and the usage text, and gives 3.
    """
    parser = _Parser(env)
    for option in getopt(argv, env.posixly_correct):
        status = _ACTIONS.get(option.code, _Parser.count)(parser, option)
        if status is not None:
            return status
    parsed = parser.finish()
    if isinstance(parsed, int) or not parsed.extras:
        return parsed
    # nlstat's own options that are more than a stored value (--count, --by, --serve, ...)
    # arrive in extras, in the order given; own_options turns them into Query fields.
    from nlstat.own_options import apply

    applied = apply(parsed)
    if isinstance(applied, str):
        _write(env.stderr, applied + "\n")
        return STATUS_FAILURE
    return applied


# -- glibc's getopt_long: argv -> options, in order --------------------------------------------


class Option(NamedTuple):
    """One option as getopt_long returns it to netstat's switch.

    `code` is the short option (or netstat's private code, FAMILY_CODE, OWN_CODE); a parse
    error is code "?" with glibc's message as `value` (glibc prints it, then getopt returns
    '?', which netstat's switch answers with usage()); `name` is the long option's full name.
    """

    code: str
    value: Optional[str] = None
    name: str = ""


OWN_CODE = "\x03"  # an nlstat option from OWN_OPTIONS (`name`; `value` None for a flag)

# Short option -> takes an argument (a ':' follows it in SHORT_OPTIONS).
_SHORT_TAKES: Dict[str, bool] = {
    char: SHORT_OPTIONS[position + 1 : position + 2] == ":"
    for position, char in enumerate(SHORT_OPTIONS)
    if char != ":"
}


def getopt(argv: Sequence[str], stop_at_operand: bool) -> Iterator[Option]:
    """glibc 2.36 getopt_long() over netstat's tables, lazily: the caller acts on each option
    before the next is looked at, as netstat does. Operands are skipped (netstat never looks at
    optind), or end the walk when POSIXLY_CORRECT is set (REQUIRE_ORDER); "--" ends it."""
    index = 0
    total = len(argv)
    while index < total:
        arg = argv[index]
        index += 1
        if len(arg) < 2 or arg[0] != "-":
            if stop_at_operand:
                return
            continue
        if arg == "--":
            return
        if arg[1] == "-":
            option, index = _long(arg[2:], argv, index)
            yield option
            continue
        position = 1
        while position < len(arg):
            char = arg[position]
            position += 1
            takes_argument = _SHORT_TAKES.get(char)
            if takes_argument is None:
                yield Option("?", f"netstat: invalid option -- '{_first_byte(char)}'")
                continue
            if not takes_argument:
                yield Option(char)
                continue
            if position < len(arg):
                yield Option(char, arg[position:])
            elif index < total:
                index += 1
                yield Option(char, argv[index - 1])
            else:
                yield Option("?", f"netstat: option requires an argument -- '{char}'")
            position = len(arg)


def _long(text: str, argv: Sequence[str], index: int) -> Tuple[Option, int]:
    """One `--name[=value]` element (without its dashes) -> (option, next argv index)."""
    name, has_value, value = text.partition("=")
    own = OWN_OPTIONS.get(name)
    if own is not None:
        # nlstat's own options: exact spelling only, outside glibc's prefix matching.
        full_name, takes_argument, code = name, own[0], OWN_CODE
    else:
        found = _match_long(name)
        if isinstance(found, str):
            if found:
                line = f"netstat: option '--{text}' is ambiguous; possibilities:{found}"
            else:
                line = f"netstat: unrecognized option '--{text}'"
            return Option("?", line), index
        full_name, takes_argument, code = LONG_OPTIONS[found]
    if not takes_argument:
        if has_value:
            return Option("?", f"netstat: option '--{full_name}' doesn't allow an argument"), index
        return Option(code, None, full_name), index
    if has_value:
        return Option(code, value, full_name), index
    if full_name in OPTIONAL_VALUE and code == OWN_CODE:
        if index < len(argv) and _is_value(argv[index]):
            return Option(code, argv[index], full_name), index + 1
        return Option(code, None, full_name), index
    if index < len(argv):
        return Option(code, argv[index], full_name), index + 1
    return Option("?", f"netstat: option '--{full_name}' requires an argument"), index


def _is_value(word: str) -> bool:
    """Is the word after an OPTIONAL_VALUE option its value? Not when getopt would read it as
    an option ("-a", "--all", "-46") or it ends the options ("--")."""
    if not word.startswith("-") or word == "-":
        return True
    return word[1:2] in "0123456789." and word[1] not in _SHORT_CHARS


# -- netstat's switch (netstat.c main()): what each option does, as it comes -------------------


class _Parser:
    """One parse: netstat's flag_* counters and afname while getopt walks argv.

    Each action returns None to go on, or the exit status that ends the run there.
    """

    def __init__(self, env: Environment) -> None:
        self.env = env
        # Short-option code -> how often it was given (netstat's flag_* counters).
        self.counts: Dict[str, int] = {}
        # Internal family name -> count (lib/af.c flag_inet, flag_unx, ...).
        self.family_counts: Dict[str, int] = {}
        self.families: List[str] = []
        self.afname_length = 0  # strlen(afname)
        self.own: Dict[str, Union[str, bool]] = {}
        self.extras: List[Tuple[str, str]] = []
        self.filter_values: Dict[str, List[str]] = {}
        self.outputs: List[str] = []  # --json / --ndjson, as given

    def count(self, option: Option) -> Optional[int]:
        """Most options only bump their flag (flag_tcp++, ...)."""
        self.counts[option.code] = self.counts.get(option.code, 0) + 1
        return None

    def family_list(self, option: Option) -> Optional[int]:
        """-A LIST, --protocol=LIST."""
        return self.add_families(option.value or "")

    def family_option(self, option: Option) -> Optional[int]:
        """--inet, --unix, ...: netstat passes the option's own name to aftrans_opt()
        (--appletalk -> ddp); only the first _AFTRANS_CNT of them reach it."""
        if option.name in _BEYOND_AFTRANS:
            _write(self.env.stderr, "netstat.c: Internal Error `longopts 1 range'.\n")
            return None
        return self.add_families(option.name)

    def version(self, option: Option) -> Optional[int]:
        from nlstat.help import version_text

        backend = self.own.get("backend")
        chosen = backend if isinstance(backend, str) else self.env.backend
        self.env.stdout.write(version_text(chosen).encode())
        return STATUS_OK

    def help(self, option: Option) -> Optional[int]:
        from nlstat.help import FAMILY_LIST

        self.env.stdout.write(_usage_text().encode())
        _write(self.env.stderr, FAMILY_LIST)
        return STATUS_OK

    def usage_error(self, option: Option) -> Optional[int]:
        """netstat's usage(E_OPTERR): glibc's line (if any), the usage text, the family list."""
        from nlstat.help import FAMILY_LIST

        head = option.value + "\n" if option.value is not None else ""
        _write(self.env.stderr, head + _usage_text() + FAMILY_LIST)
        return STATUS_USAGE

    def selinux(self, option: Option) -> Optional[int]:
        # nlstat has no SELinux support; netstat says this whenever SELinux is off.
        _write(self.env.stderr, "SELinux is not enabled on this machine.\n")
        return STATUS_FAILURE

    def own_option(self, option: Option) -> Optional[int]:
        """An OWN_OPTIONS entry: checked, then kept for the Query field of its name ('-' read
        as '_') if there is one, else in Query.extras."""
        check = OWN_OPTIONS[option.name][1]
        if option.value is not None and check is not None:
            problem = check(option.value)
            if problem is not None:
                _write(self.env.stderr, problem + "\n")
                return STATUS_USAGE
        value: Union[str, bool] = True if option.value is None else option.value
        if option.name in OUTPUT_OPTIONS:
            if option.name not in self.outputs:
                self.outputs.append(option.name)
        elif option.name in FILTER_OPTIONS and option.value is not None:
            # Every value given: repeated --state options add up (filters.from_options).
            self.filter_values.setdefault(option.name, []).append(option.value)
        elif option.name.replace("-", "_") in Query._fields:
            self.own[option.name.replace("-", "_")] = value  # --all-netns: Query.all_netns
        else:
            self.extras.append((option.name, option.value or ""))
        return None

    def add_families(self, argument: str) -> Optional[int]:
        """lib/af.c aftrans_opt(): a comma-separated family list, acted on item by item."""
        if len(argument) > _FAMILY_ARG_MAX // 4:
            raw = os.fsencode(argument)
            if len(raw) > _FAMILY_ARG_MAX:
                argument = os.fsdecode(raw[:_FAMILY_ARG_MAX])
        for item in argument.split(","):
            name = FAMILY_ALIASES.get(item)
            if name is None:
                _write(self.env.stderr, f"Unknown address family `{item}'.\n")
                return STATUS_FAILURE
            added = len(name) + (1 if self.families else 0)
            if len(name) + self.afname_length + 1 >= _AFNAME_SIZE:
                # netstat gives up on the rest of this list, unknown items included.
                _write(self.env.stderr, "Too much address family arguments.\n")
                return None
            self.family_counts[name] = self.family_counts.get(name, 0) + 1
            self.families.append(name)
            self.afname_length += added
        return None

    # -- after the walk: netstat.c main() right after the getopt loop ----------------------

    def finish(self) -> Union[Query, int]:
        if len(self.outputs) > 1:
            # One output form a run; checked after the walk, so `-V` or `-h` given before
            # still print their text, as any other error after them would let them.
            _write(self.env.stderr, "nlstat: --json and --ndjson cannot be used together\n")
            return STATUS_FAILURE
        count = self.counts.get
        if sum(count(code, 0) for code, _ in _MODES) > 1:
            self.usage_error(Option("?"))
            return STATUS_USAGE
        mode = next((mode for code, mode in _MODES if count(code, 0)), MODE_SOCKETS)

        filters = None
        if self.filter_values:
            from nlstat.errors import InvalidFilter
            from nlstat.filters import from_options

            try:
                if mode != MODE_SOCKETS:
                    option = next(iter(self.filter_values))
                    raise InvalidFilter(f"--{option} applies to socket listings only")
                # Interface indexes are per namespace: a --netns child looks --dev up.
                in_namespace = "netns" in self.own or "all_netns" in self.own
                filters = from_options(self.filter_values, defer_dev=in_namespace)
            except InvalidFilter as err:
                _write(self.env.stderr, f"nlstat: {err}\n")
                return STATUS_FAILURE

        families = self.family_counts.get
        inet = families("inet", 0)
        inet6 = families("inet6", 0)
        protocols = {field: count(code, 0) for field, code in _PROTOCOL_FLAGS}
        l2cap = count("2", 0)
        rfcomm = count("f", 0)
        bluetooth = families("bluetooth", 0)

        # The derived flags netstat.c main() sets right after its getopt loop.
        implicit = False
        if (inet or inet6 or count("s", 0)) and not any(protocols.values()):
            implicit = True
            protocols = dict.fromkeys(protocols, 1)
        if (any(protocols.values()) or count("g", 0)) and not (inet or inet6):
            inet = inet6 = 1
        if bluetooth and not (l2cap or rfcomm):
            l2cap = rfcomm = 1
        # netstat's flag_arg; ddp, econet and ash are not in it.
        selections = (
            sum(protocols.values())
            + sum(families(name, 0) for name in _SELECTING_FAMILIES)
            + count("g", 0)
            + l2cap
            + rfcomm
        )

        numeric = count("n", 0) > 0
        fields: Dict[str, Any] = {field: value > 0 for field, value in protocols.items()}
        fields.update((field, count(code, 0) > 0) for field, code in _SWITCHES)
        fields.update((name, families(name, 0)) for name in _SELECTING_FAMILIES)
        fields.update(
            mode=mode,
            groups=count("g", 0) > 0,
            l2cap=l2cap > 0,
            rfcomm=rfcomm > 0,
            inet=inet,
            inet6=inet6,
            bluetooth=bluetooth,
            families=tuple(self.families),
            selections=selections,
            implicit_protocols=implicit,
            numeric_hosts=numeric or count("!", 0) > 0,
            numeric_ports=numeric or count("@", 0) > 0,
            numeric_users=numeric or count("#", 0) > 0,
            extend=count("e", 0),
            extras=tuple(self.extras),
            output=self.outputs[0] if self.outputs else OUTPUT_TEXT,
            filters=filters,
        )
        # --state chooses among all sockets, as -a does (-l still means listeners only).
        if filters is not None and filters.states is not None and not fields["listening"]:
            fields["all"] = True
        # nlstat's own options with a Query field of their name: their value as given (the
        # text, or True for a flag).
        fields.update(self.own)
        return Query(**fields)


# The switch as a table: option code -> action; any other code is counted (_Parser.count).
_ACTIONS: Dict[str, Callable[[_Parser, Option], Optional[int]]] = {
    "A": _Parser.family_list,
    "4": lambda parser, _: parser.add_families("inet"),
    "6": lambda parser, _: parser.add_families("inet6"),
    "x": lambda parser, _: parser.add_families("unix"),
    FAMILY_CODE: _Parser.family_option,
    "V": _Parser.version,
    "h": _Parser.help,
    "?": _Parser.usage_error,
    "Z": _Parser.selinux,
    OWN_CODE: _Parser.own_option,
}

# netstat.c checks `lop < AFTRANS_CNT`: the family long options past it only print an error.
_BEYOND_AFTRANS = frozenset(
    name for name, _, code in LONG_OPTIONS[_AFTRANS_CNT:] if code == FAMILY_CODE
)

# Modes, in netstat's dispatch order (-M, -s, -r, -i; else sockets); more than one: usage().
_MODES = (("M", MODE_MASQUERADE), ("s", MODE_STATISTICS), ("r", MODE_ROUTE),
          ("i", MODE_INTERFACES))

# Query field <- flag counter, for the protocol switches the derived flags look at together.
_PROTOCOL_FLAGS = (("tcp", "t"), ("sctp", "S"), ("udp", "u"), ("udplite", "U"), ("raw", "w"))

# Families that count in flag_arg (and are Query fields of the same name).
_SELECTING_FAMILIES = ("unix", "ipx", "ax25", "netrom", "x25", "rose")

# Query field <- flag counter, for the plain on/off switches.
_SWITCHES = (
    ("all", "a"),
    ("listening", "l"),
    ("symbolic", "N"),
    ("programs", "p"),
    ("timers", "o"),
    ("wide", "W"),
    ("verbose", "v"),
    ("continuous", "c"),
    ("fib", "F"),
    ("cache", "C"),
)


def _match_long(name: str) -> Union[int, str]:
    """glibc 2.36 process_long_option(): index of the option `name` selects, or an error.

    An exact name wins. Otherwise the first prefix match is the candidate, and any later match
    that differs from it in takes-argument or code makes the prefix ambiguous. Returns the
    index, or the " '--a' '--b'" possibilities text ("" when nothing matched at all).
    """
    for position, (option, _, _) in enumerate(LONG_OPTIONS):
        if option == name:
            return position
    candidate = -1
    differing: List[int] = []
    for position, (option, takes_argument, code) in enumerate(LONG_OPTIONS):
        if not option.startswith(name):
            continue
        if candidate < 0:
            candidate = position
            continue
        _, first_takes, first_code = LONG_OPTIONS[candidate]
        if takes_argument != first_takes or code != first_code:
            differing.append(position)
    if candidate < 0:
        return ""
    if not differing:
        return candidate
    listed = [candidate, *differing]
    return "".join(f" '--{LONG_OPTIONS[position][0]}'" for position in listed)


def _usage_text() -> str:
    from nlstat.help import usage_text

    return usage_text((entry[2], entry[3]) for entry in OWN_OPTIONS.values())


def _first_byte(char: str) -> str:
    """glibc reports an invalid option one byte at a time: `-é` names the byte 0xc3 alone."""
    if char.isascii():
        return char
    return os.fsdecode(os.fsencode(char)[:1])


def _write(stream: TextIO, text: str) -> None:
    """Write a message that may echo argv: bytes netstat would echo raw are written raw.

    Python decodes argv with surrogateescape; a text stream would print those bytes as
    `\\udcc3`, netstat prints the byte itself.
    """
    if not text.isascii():
        buffer = getattr(stream, "buffer", None)
        if buffer is not None:
            try:
                raw = os.fsencode(text)
            except UnicodeEncodeError:
                raw = None
            if raw is not None:
                stream.flush()
                buffer.write(raw)
                buffer.flush()
                return
    stream.write(text)
