"""netstat's command line, parsed exactly as net-tools 2.10 parses it with glibc 2.36 `getopt_long`.

The parser walks argv once, in order, and acts while it walks, because netstat does: `-V`, `-h`,
`-Z`, a bad address family and every parse error end the run on the spot, so `netstat -V -y`
prints the version while `netstat -y -V` is a usage error. What survives becomes a `Query` with
netstat's derived flags (netstat.c main(), after its getopt loop) already applied.

nlstat's own long options (`OWN_OPTIONS`) are matched only when spelled out in full and never
take part in glibc's prefix matching, so every netstat abbreviation keeps its meaning: `--back`
is still netstat's "unrecognized option", and `--w` still means `--wide`.

Kept import-light on purpose (no argparse, re or dataclasses): every invocation runs it, and the
help and version texts are imported only when printed.
"""

from __future__ import annotations

import os
from typing import Callable, Dict, List, Optional, Sequence, TextIO, Tuple, Union

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
# The value lands in the Query field of that name if there is one, else in Query.extras.
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
}
# The OWN_OPTIONS that are socket filters (the rest of nlstat/filters.py's OPTION_FIELDS).
FILTER_OPTIONS = frozenset(("state", "sport", "dport", "src", "dst", "dev", "uid", "pid",
                            "program-name"))

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
    return _Parser(env).run(argv)


class _Parser:
    """One parse: netstat's flag_* counters while getopt walks argv."""

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
        self.filter_values: Dict[str, str] = {}
        self.outputs: List[str] = []  # --json / --ndjson, as given

    # -- the getopt walk -------------------------------------------------------------------

    def run(self, argv: Sequence[str]) -> Union[Query, int]:
        # glibc switches to REQUIRE_ORDER (stop at the first non-option) when POSIXLY_CORRECT
        # is set at all, even to "".
        stop_at_operand = self.env.posixly_correct
        index = 0
        total = len(argv)
        while index < total:
            arg = argv[index]
            index += 1
            if len(arg) < 2 or arg[0] != "-":
                # Operands (and a lone "-") are ignored: netstat never looks at optind.
                if stop_at_operand:
                    break
                continue
            if arg == "--":
                break
            if arg[1] == "-":
                status, index = self._long(arg, argv, index)
                if status is not None:
                    return status
                continue
            position = 1
            while position < len(arg):
                char = arg[position]
                position += 1
                if char not in _SHORT_CHARS:
                    return self._usage_error(f"netstat: invalid option -- '{_first_byte(char)}'")
                value = None
                if char == "A":
                    if position < len(arg):
                        value = arg[position:]
                    elif index < total:
                        value = argv[index]
                        index += 1
                    else:
                        return self._usage_error("netstat: option requires an argument -- 'A'")
                    position = len(arg)
                status = self._act(char, value)
                if status is not None:
                    return status
        return self._finish()

    def _long(self, arg: str, argv: Sequence[str], index: int) -> Tuple[Optional[int], int]:
        """One `--name[=value]` element; returns (status if the run ends, next argv index)."""
        text = arg[2:]
        name, has_value, value = text.partition("=")

        own = OWN_OPTIONS.get(name)
        if own is not None:
            takes_argument, check, _, _ = own
            if not takes_argument:
                if has_value:
                    return self._usage_error(
                        f"netstat: option '--{name}' doesn't allow an argument"
                    ), index
                self._store_own(name, True)
                return None, index
            if not has_value:
                if index >= len(argv):
                    return self._usage_error(
                        f"netstat: option '--{name}' requires an argument"
                    ), index
                value = argv[index]
                index += 1
            if check is not None:
                problem = check(value)
                if problem is not None:
                    _write(self.env.stderr, problem + "\n")
                    return STATUS_USAGE, index
            self._store_own(name, value)
            return None, index

        found = _match_long(name)
        if isinstance(found, str):
            if found:
                return self._usage_error(
                    f"netstat: option '--{text}' is ambiguous; possibilities:{found}"
                ), index
            return self._usage_error(f"netstat: unrecognized option '--{text}'"), index
        long_name, takes_argument, code = LONG_OPTIONS[found]
        optarg: Optional[str] = None
        if takes_argument:
            if has_value:
                optarg = value
            elif index < len(argv):
                optarg = argv[index]
                index += 1
            else:
                return self._usage_error(
                    f"netstat: option '--{long_name}' requires an argument"
                ), index
        elif has_value:
            return self._usage_error(
                f"netstat: option '--{long_name}' doesn't allow an argument"
            ), index
        if code == FAMILY_CODE:
            if found >= _AFTRANS_CNT:
                _write(self.env.stderr, "netstat.c: Internal Error `longopts 1 range'.\n")
                return None, index
            # netstat passes the option's own name to aftrans_opt(): --appletalk -> ddp.
            return self._add_families(long_name), index
        return self._act(code, optarg), index

    def _store_own(self, name: str, value: Union[str, bool]) -> None:
        field = name.replace("-", "_")
        if name in OUTPUT_OPTIONS:
            if name not in self.outputs:
                self.outputs.append(name)
        elif name in FILTER_OPTIONS and isinstance(value, str):
            self.filter_values[name] = value  # the last one given counts
        elif field in Query._fields:
            self.own[field] = value
        else:
            self.extras.append((name, value if isinstance(value, str) else ""))

    # -- what netstat does with each option (netstat.c main(), the switch) -----------------

    def _act(self, code: str, value: Optional[str]) -> Optional[int]:
        if code == "A":
            assert value is not None
            return self._add_families(value)
        if code == "4":
            return self._add_families("inet")
        if code == "6":
            return self._add_families("inet6")
        if code == "x":
            return self._add_families("unix")
        if code == "V":
            from nlstat.help import version_text

            backend = self.own.get("backend")
            chosen = backend if isinstance(backend, str) else self.env.backend
            self.env.stdout.write(version_text(chosen).encode())
            return STATUS_OK
        if code == "h":
            from nlstat.help import FAMILY_LIST

            self.env.stdout.write(_usage_text().encode())
            _write(self.env.stderr, FAMILY_LIST)
            return STATUS_OK
        if code == "?":
            return self._usage_error(None)
        if code == "Z":
            # nlstat has no SELinux support; netstat says this whenever SELinux is off.
            _write(self.env.stderr, "SELinux is not enabled on this machine.\n")
            return STATUS_FAILURE
        self.counts[code] = self.counts.get(code, 0) + 1
        return None

    def _add_families(self, argument: str) -> Optional[int]:
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

    # -- after the walk --------------------------------------------------------------------

    def _finish(self) -> Union[Query, int]:
        if len(self.outputs) > 1:
            # One output form a run; checked after the walk, so `-V` or `-h` given before
            # still print their text, as any other error after them would let them.
            _write(self.env.stderr, "nlstat: --json and --ndjson cannot be used together\n")
            return STATUS_FAILURE
        count = self.counts.get
        modes = count("i", 0) + count("r", 0) + count("M", 0) + count("s", 0)
        if modes > 1:
            return self._usage_error(None)

        families = self.family_counts.get
        inet = families("inet", 0)
        inet6 = families("inet6", 0)
        tcp = count("t", 0)
        sctp = count("S", 0)
        udp = count("u", 0)
        udplite = count("U", 0)
        raw = count("w", 0)
        groups = count("g", 0)
        l2cap = count("2", 0)
        rfcomm = count("f", 0)
        bluetooth = families("bluetooth", 0)

        # netstat.c main(), right after the getopt loop: the protocol switches a family implies.
        implicit = False
        if (inet or inet6 or count("s", 0)) and not (tcp or sctp or udp or udplite or raw):
            implicit = True
            tcp = sctp = udp = udplite = raw = 1
        if (tcp or sctp or udp or udplite or raw or groups) and not (inet or inet6):
            inet = inet6 = 1
        if bluetooth and not (l2cap or rfcomm):
            l2cap = rfcomm = 1
        unix = families("unix", 0)
        ipx = families("ipx", 0)
        ax25 = families("ax25", 0)
        netrom = families("netrom", 0)
        x25 = families("x25", 0)
        rose = families("rose", 0)
        # netstat's flag_arg; ddp, econet and ash are not in it.
        selections = sum(
            (
                tcp,
                sctp,
                udplite,
                udp,
                raw,
                unix,
                ipx,
                ax25,
                netrom,
                groups,
                x25,
                rose,
                l2cap,
                rfcomm,
            )
        )

        if count("M", 0):
            mode = MODE_MASQUERADE
        elif count("s", 0):
            mode = MODE_STATISTICS
        elif count("r", 0):
            mode = MODE_ROUTE
        elif count("i", 0):
            mode = MODE_INTERFACES
        else:
            mode = MODE_SOCKETS

        filters = None
        if self.filter_values:
            from nlstat.errors import InvalidFilter
            from nlstat.filters import from_options

            try:
                if mode != MODE_SOCKETS:
                    option = next(iter(self.filter_values))
                    raise InvalidFilter(f"--{option} applies to socket listings only")
                filters = from_options(self.filter_values)
            except InvalidFilter as err:
                _write(self.env.stderr, f"nlstat: {err}\n")
                return STATUS_FAILURE
        listening = count("l", 0) > 0
        # --state chooses among all sockets, as -a does (-l still means listeners only).
        every = count("a", 0) > 0 or (
            filters is not None and filters.states is not None and not listening)

        numeric = count("n", 0) > 0
        backend = self.own.get("backend")
        netns = self.own.get("netns")
        return Query(
            mode=mode,
            all=every,
            listening=listening,
            tcp=tcp > 0,
            udp=udp > 0,
            udplite=udplite > 0,
            sctp=sctp > 0,
            raw=raw > 0,
            groups=groups > 0,
            l2cap=l2cap > 0,
            rfcomm=rfcomm > 0,
            inet=inet,
            inet6=inet6,
            unix=unix,
            ipx=ipx,
            ax25=ax25,
            x25=x25,
            netrom=netrom,
            rose=rose,
            bluetooth=bluetooth,
            families=tuple(self.families),
            selections=selections,
            implicit_protocols=implicit,
            numeric_hosts=numeric or count("!", 0) > 0,
            numeric_ports=numeric or count("@", 0) > 0,
            numeric_users=numeric or count("#", 0) > 0,
            symbolic=count("N", 0) > 0,
            extend=count("e", 0),
            programs=count("p", 0) > 0,
            timers=count("o", 0) > 0,
            wide=count("W", 0) > 0,
            verbose=count("v", 0) > 0,
            continuous=count("c", 0) > 0,
            fib=count("F", 0) > 0,
            cache=count("C", 0) > 0,
            backend=backend if isinstance(backend, str) else None,
            extras=tuple(self.extras),
            output=self.outputs[0] if self.outputs else OUTPUT_TEXT,
            netns=netns if isinstance(netns, str) else None,
            all_netns=self.own.get("all_netns") is True,
            filters=filters,
        )

    def _usage_error(self, line: Optional[str]) -> int:
        """netstat's usage(E_OPTERR): glibc's line (if any), the usage text, the family list."""
        from nlstat.help import FAMILY_LIST

        head = line + "\n" if line is not None else ""
        _write(self.env.stderr, head + _usage_text() + FAMILY_LIST)
        return STATUS_USAGE


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

    return usage_text((shown, text) for _, _, shown, text in OWN_OPTIONS.values())


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
