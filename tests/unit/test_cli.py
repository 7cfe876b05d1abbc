"""nlstat.cli: netstat's getopt_long behaviour, actions in command-line order, derived flags."""

from __future__ import annotations

import io

import pytest

from nlstat import __version__, cli
from nlstat.env import Environment
from nlstat.help import FAMILY_LIST, version_text
from nlstat.query import Query
from tests.cli_support import Outcome, parse_in_process

USAGE = cli._usage_text().encode()
FAMILIES = FAMILY_LIST.encode()


def parsed(*argv: str) -> Query:
    outcome = parse_in_process(argv)
    assert outcome.query is not None, outcome
    return outcome.query


def failed(*argv: str) -> Outcome:
    outcome = parse_in_process(argv)
    assert outcome.query is None, outcome
    return outcome


def usage_error(*argv: str) -> bytes:
    """Status 3, usage and family list on stderr; returns the lines before the usage."""
    outcome = failed(*argv)
    assert outcome.status == 3
    assert outcome.stdout == b""
    # Built afresh: a test may add an option to the table, and the help follows the table.
    tail = cli._usage_text().encode() + FAMILIES
    assert outcome.stderr.endswith(tail)
    return outcome.stderr[: -len(tail)]


# -- glibc ambiguity (spec §1.2), every real example --------------------------------------

AMBIGUOUS = [
    ("--i", "'--ip' '--interfaces'"),
    ("--u", "'--unix' '--udp' '--udplite' '--unix'"),
    ("--c", "'--continuous' '--cache' '--context'"),
    ("--n", "'--netrom' '--numeric' '--numeric-hosts' '--numeric-ports' '--numeric-users'"),
    ("--r", "'--rose' '--route' '--raw' '--rfcomm'"),
    ("--t", "'--tcpip' '--tcp' '--timers'"),
    ("--tc=1", "'--tcpip' '--tcp'"),
    ("--v", "'--version' '--verbose'"),
    ("--in=3", "'--inet' '--interfaces'"),
    ("--a", "'--ax25' '--all'"),
    ("--numeric-=1", "'--numeric-hosts' '--numeric-ports' '--numeric-users'"),
    ("--pr", "'--protocol' '--programs'"),
]


@pytest.mark.parametrize(("arg", "possibilities"), AMBIGUOUS)
def test_ambiguous_prefix_lists_candidate_and_differing_matches(
    arg: str, possibilities: str
) -> None:
    line = f"netstat: option '{arg}' is ambiguous; possibilities: {possibilities}\n"
    assert usage_error(arg) == line.encode()


def test_empty_long_name_matches_every_option() -> None:
    # `--=x`: the empty prefix matches everything; the family options collapse into --ax25.
    head = usage_error("--=x").decode()
    assert head.startswith(
        "netstat: option '--=x' is ambiguous; possibilities: '--ax25' '--version'"
    )
    assert "'--inet'" not in head
    assert head.endswith("'--groups' '--context'\n")


@pytest.mark.parametrize(
    ("arg", "family"),
    [
        ("--x", "x25"),
        ("--ap", "ddp"),
        ("--ine", "inet"),
        ("--inet", "inet"),
        ("--ip", "inet"),
        ("--ipx", "ipx"),
        ("--bl", "bluetooth"),
        ("--unix", "unix"),
        ("--netr", "netrom"),
    ],
)
def test_family_prefixes_that_are_unique(arg: str, family: str) -> None:
    assert parsed(arg).families == (family,)


@pytest.mark.parametrize(
    ("arg", "field"),
    [
        ("--e", "extend"),
        ("--tcp", "tcp"),
        ("--route", "mode"),
        ("--numeric", "numeric_ports"),
        ("--numeric-h", "numeric_hosts"),
        ("--w", "wide"),
        ("--ti", "timers"),
        ("--li", "listening"),
        ("--st", "mode"),
        ("--sy", "symbolic"),
        ("--prog", "programs"),
    ],
)
def test_exact_and_unique_prefixes(arg: str, field: str) -> None:
    assert getattr(parsed(arg), field) != getattr(Query(), field)


def test_unix_exact_match_finds_the_family_entry() -> None:
    # Entry 10 (family, unix) is found before entry 24 (-x); both mean unix.
    assert parsed("--unix") == parsed("-x") == parsed("-A", "unix")


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["---t"], "netstat: unrecognized option '---t'"),
        (["--bogus=1"], "netstat: unrecognized option '--bogus=1'"),
        (["--tcp=1"], "netstat: option '--tcp' doesn't allow an argument"),
        (["--numeric-h=1"], "netstat: option '--numeric-hosts' doesn't allow an argument"),
        (["--he=x"], "netstat: option '--help' doesn't allow an argument"),
        (["--protocol"], "netstat: option '--protocol' requires an argument"),
        (["--prot"], "netstat: option '--protocol' requires an argument"),
        (["-A"], "netstat: option requires an argument -- 'A'"),
        (["-nA"], "netstat: option requires an argument -- 'A'"),
        (["-y"], "netstat: invalid option -- 'y'"),
        (["-t-u"], "netstat: invalid option -- '-'"),
        (["-:"], "netstat: invalid option -- ':'"),
        (["-tuy"], "netstat: invalid option -- 'y'"),
    ],
)
def test_parse_errors_use_glibc_wording(argv: list[str], line: str) -> None:
    assert usage_error(*argv) == (line + "\n").encode()


def test_question_mark_is_usage_without_glibc_line() -> None:
    assert usage_error("-?") == b""


def test_invalid_non_ascii_option_names_one_raw_byte() -> None:
    assert usage_error("-\u00e9") == b"netstat: invalid option -- '\xc3'\n"
    assert usage_error("--\u00e9") == "netstat: unrecognized option '--\u00e9'\n".encode()


# -- bundling, -A forms, operands, "--" ------------------------------------------------------


def test_bundling() -> None:
    q = parsed("-tulpn")
    assert (q.tcp, q.udp, q.listening, q.programs, q.numeric_hosts) == (True,) * 5
    assert not q.udplite and not q.raw and q.selections == 2
    assert parsed("-tulpn") == parsed("-t", "-u", "-l", "-p", "-n")


@pytest.mark.parametrize(
    "argv",
    [
        ["-Ainet"],
        ["-A", "inet"],
        ["-nA", "inet"],
        ["-nAinet"],
        ["--protocol=inet"],
        ["--protocol", "inet"],
        ["--prot=inet"],
        ["--proto", "inet"],
        ["-4"],
        ["--inet"],
        ["-A", "ip"],
        ["-A", "tcpip"],
    ],
)
def test_inet_forms(argv: list[str]) -> None:
    q = parsed(*argv)
    assert q.families == ("inet",)
    assert (q.inet, q.inet6) == (1, 0)


def test_option_argument_is_taken_even_when_it_looks_like_an_option() -> None:
    assert failed("-A", "--").stderr == b"Unknown address family `--'.\n"
    assert failed("--protocol", "-t").stderr == b"Unknown address family `-t'.\n"


def test_operands_are_ignored() -> None:
    assert parsed("foo", "-t") == parsed("-t") == parsed("-t", "bar", "-", "baz")
    assert parsed("-") == Query()


def test_double_dash_ends_options() -> None:
    assert parsed("--", "-t") == Query()
    assert parsed("-t", "--", "-y", "-u") == parsed("-t")


def test_posixly_correct_stops_at_first_operand() -> None:
    assert parse_in_process(["foo", "-y"], posixly_correct=True).query == Query()
    assert parse_in_process(["-", "-y"], posixly_correct=True).query == Query()
    assert parse_in_process(["-y", "foo"], posixly_correct=True).status == 3


# -- actions in command-line order ----------------------------------------------------------


def test_version_before_bad_option() -> None:
    outcome = failed("-V", "-y")
    assert (outcome.status, outcome.stderr) == (0, b"")
    assert outcome.stdout == version_text("auto").encode()
    assert outcome.stdout.startswith(f"nlstat {__version__} (netstat-compatible: ".encode())


def test_bad_option_before_version() -> None:
    assert failed("-y", "-V").stdout == b""
    assert usage_error("-yV") == b"netstat: invalid option -- 'y'\n"
    assert failed("-Vy").status == 0


def test_selinux_before_help() -> None:
    outcome = failed("-Z", "-h")
    assert outcome == Outcome(1, b"", b"SELinux is not enabled on this machine.\n", None)


def test_help_before_selinux() -> None:
    outcome = failed("-h", "-Z")
    assert outcome.status == 0
    assert outcome.stdout == USAGE
    assert outcome.stderr == FAMILY_LIST.encode()


def test_help_lists_nlstat_options_in_netstat_style() -> None:
    text = failed("--help").stdout.decode()
    assert text.startswith("usage: nlstat [-vWeenNcCF] [<Af>] -r         nlstat {-V|--version")
    assert "        -r, --route              display routing table\n" in text
    assert "        --backend=auto|netlink|proc  choose the data source (default: auto)\n" in text
    assert text.endswith("  List of possible address families (which support routing):\n")


def test_bad_family_stops_at_once() -> None:
    assert failed("-A", "inet,bogus", "-V") == Outcome(
        1, b"", b"Unknown address family `bogus'.\n", None
    )
    assert failed("--protocol=").stderr == b"Unknown address family `'.\n"
    assert failed("-A", "inet,,inet6").stderr == b"Unknown address family `'.\n"
    assert failed("-A", "inet,").stderr == b"Unknown address family `'.\n"
    assert failed("-A", "INET").status == 1  # case-sensitive


def test_tcpip_long_option_is_an_internal_error_and_nothing_else() -> None:
    outcome = parse_in_process(["--tcpip", "-ant"])
    assert outcome.stderr == b"netstat.c: Internal Error `longopts 1 range'.\n"
    assert outcome.query == parsed("-ant")
    assert parse_in_process(["--tcpi"]).query == Query()
    # The -A alias is a working one.
    assert parsed("-A", "tcpip").inet == 1


def test_family_argument_is_cut_after_255_bytes() -> None:
    outcome = failed("-A", "x" * 300)
    assert outcome.stderr == b"Unknown address family `" + b"x" * 255 + b"'.\n"
    # Cut inside a multi-byte character: netstat echoes the half byte raw.
    outcome = failed("-A", "x" * 254 + "\u00e9")
    assert outcome.stderr == b"Unknown address family `" + b"x" * 254 + b"\xc3'.\n"


def test_too_many_families_drops_the_rest_of_that_list() -> None:
    # afname is char[256]: 51 "ax25" fill 254 bytes; the next item does not fit.
    full = ",".join(["ax25"] * 51)
    outcome = parse_in_process(["-A", full, "-A", "inet,bogus"])
    assert outcome.stderr == b"Too much address family arguments.\n"
    assert outcome.query is not None
    assert outcome.query.families == ("ax25",) * 51
    assert outcome.query.ax25 == 51 and outcome.query.inet == 0
    # 42 "inet6" fit; the 43rd is cut to "ine" by the 255-byte copy.
    outcome = failed("-s", "-A", ",".join(["inet6"] * 60))
    assert outcome.stderr == b"Unknown address family `ine'.\n"


# -- modes and derived flags (spec §1.4) -----------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["-ss"],
        ["-rr"],
        ["-ii"],
        ["-MM"],
        ["-r", "-i"],
        ["-s", "--route"],
        ["-M", "-s"],
        ["-A", "ipx", "-i", "-i"],
        ["--statistics", "--stat"],
    ],
)
def test_more_than_one_mode_is_usage_error(argv: list[str]) -> None:
    assert usage_error(*argv) == b""


@pytest.mark.parametrize(
    ("argv", "mode"),
    [
        ([], "sockets"),
        (["-M"], "masquerade"),
        (["-s"], "statistics"),
        (["-r"], "route"),
        (["-i"], "interfaces"),
        (["-g"], "sockets"),
        (["--rou"], "route"),
        (["--int"], "interfaces"),
    ],
)
def test_mode(argv: list[str], mode: str) -> None:
    assert parsed(*argv).mode == mode


def test_inet_with_groups_switches_on_all_inet_protocols() -> None:
    q = parsed("-4", "-g")
    assert (q.tcp, q.sctp, q.udp, q.udplite, q.raw, q.groups) == (True,) * 6
    assert q.implicit_protocols
    assert (q.inet, q.inet6) == (1, 0)
    assert q.selections == 6


def test_protocol_inet_unix_lists_no_ipv6() -> None:
    q = parsed("--protocol=inet,unix", "-ln")
    assert (q.inet, q.inet6, q.unix) == (1, 0, 1)
    assert q.families == ("inet", "unix")
    assert q.tcp and q.raw and q.implicit_protocols
    assert q.selections == 6
    assert q.wants_inet_v4 and not q.wants_inet_v6


def test_unix_with_tcp_switches_on_both_inet_families() -> None:
    q = parsed("-A", "unix", "-t")
    assert (q.inet, q.inet6, q.unix) == (1, 1, 1)
    assert q.tcp and not q.udp and not q.implicit_protocols
    assert q.selections == 2


def test_ddp_econet_ash_do_not_count_as_selections() -> None:
    for argv in (["--ddp"], ["--appletalk"], ["-A", "econet"], ["-A", "ash,ddp"]):
        q = parsed(*argv)
        assert q.selections == 0
        assert q._replace(families=()) == Query()
    assert parsed("-A", "econet,ash,appletalk").families == ("ec", "ash", "ddp")


def test_statistics_switches_on_all_protocols() -> None:
    q = parsed("-s")
    assert q.implicit_protocols and q.tcp and q.udp and q.raw and q.sctp and q.udplite
    assert (q.inet, q.inet6) == (1, 1)
    q = parsed("-st")
    assert q.tcp and not q.udp and not q.implicit_protocols


def test_bluetooth_switches_on_l2cap_and_rfcomm() -> None:
    q = parsed("--bluetooth")
    assert (q.bluetooth, q.l2cap, q.rfcomm, q.selections) == (1, True, True, 2)
    q = parsed("-A", "bluetooth", "-2")
    assert (q.l2cap, q.rfcomm, q.selections) == (True, False, 1)


def test_repeated_selections_count() -> None:
    assert parsed("-tt").selections == 2
    q = parsed("-x", "-x", "-A", "unix")
    assert (q.unix, q.families, q.selections) == (3, ("unix",) * 3, 3)
    q = parsed("-4", "-6", "-4")
    assert (q.inet, q.inet6, q.families) == (2, 1, ("inet", "inet6", "inet"))


def test_simple_switches() -> None:
    q = parsed("-e", "-e", "-W", "-v", "-c", "-o", "-F", "-C", "-N", "-a", "-l", "-d")
    assert q.extend == 2 and q.wide and q.verbose and q.continuous and q.timers
    assert q.fib and q.cache and q.symbolic and q.all and q.listening
    assert not q.numeric_hosts and q.listing == "all"
    assert parsed("-d") == Query()
    q = parsed("--numeric-ports")
    assert (q.numeric_hosts, q.numeric_ports, q.numeric_users) == (False, True, False)
    q = parsed("--numeric-users", "--numeric-hosts")
    assert (q.numeric_hosts, q.numeric_ports, q.numeric_users) == (True, False, True)


# -- nlstat's own options --------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv", [["--backend=proc"], ["--backend", "proc"], ["-t", "--backend", "proc"]]
)
def test_backend_option(argv: list[str]) -> None:
    assert parsed(*argv).backend == "proc"


def test_backend_default_and_last_wins() -> None:
    assert parsed().backend is None
    assert parsed("--backend=proc", "--backend=netlink").backend == "netlink"


def test_bad_backend_is_one_line() -> None:
    expected = b"netstat: invalid backend 'x' (choose auto, netlink or proc)\n"
    assert failed("--backend=x") == Outcome(3, b"", expected, None)
    assert failed("--backend", "").status == 3
    assert failed("--backend=x", "-V").stdout == b""
    assert failed("-V", "--backend=x").status == 0


def test_backend_missing_argument_or_abbreviated() -> None:
    assert usage_error("--backend") == b"netstat: option '--backend' requires an argument\n"
    assert usage_error("--back=proc") == b"netstat: unrecognized option '--back=proc'\n"
    assert usage_error("--backends") == b"netstat: unrecognized option '--backends'\n"


def test_version_shows_chosen_backend() -> None:
    assert b"(selected: proc)" in failed("--backend=proc", "-V").stdout


def test_own_options_never_shadow_netstat_abbreviations() -> None:
    for name in cli.OWN_OPTIONS:
        for netstat_name, _, _ in cli.LONG_OPTIONS:
            assert not netstat_name.startswith(name), (name, netstat_name)


def test_unknown_own_option_goes_to_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    # A later option is one table line; until it has a Query field its value lands in extras.
    table = dict(cli.OWN_OPTIONS)
    table["quiet"] = (False, None, "--quiet", "print less")
    table["watch"] = (True, None, "--watch=SECONDS", "print what changed")
    monkeypatch.setattr(cli, "OWN_OPTIONS", table)
    q = parsed("--quiet", "--watch", "2", "-t")
    assert q.extras == (("quiet", ""), ("watch", "2"))
    assert usage_error("--quiet=1") == b"netstat: option '--quiet' doesn't allow an argument\n"
    assert b"        --quiet                  print less\n" in failed("-h").stdout


def test_text_stream_without_buffer_still_gets_messages() -> None:
    err = io.StringIO()
    env = Environment(stdout=io.BytesIO(), stderr=err)
    assert cli.parse(["-A", "\u00e9"], env) == 1
    assert err.getvalue() == "Unknown address family `\u00e9'.\n"


def test_long_option_table_matches_netstat_order() -> None:
    names = [name for name, _, _ in cli.LONG_OPTIONS]
    assert names[:13] == [
        "ax25",
        "x25",
        "ip",
        "ipx",
        "appletalk",
        "netrom",
        "inet",
        "inet6",
        "ddp",
        "rose",
        "unix",
        "bluetooth",
        "tcpip",
    ]
    assert len(names) == 45
    assert [n for n, takes, _ in cli.LONG_OPTIONS if takes] == ["protocol"]


def test_getopt_walk_alone() -> None:
    """The glibc walk by itself: argv -> options in order, errors as '?' with glibc's line."""
    walk = list(cli.getopt(["-tAinet,unix", "x", "--vers", "--protocol", "inet6", "--inet"], False))
    assert walk == [
        cli.Option("t"),
        cli.Option("A", "inet,unix"),
        cli.Option("V", None, "version"),
        cli.Option("A", "inet6", "protocol"),
        cli.Option(cli.FAMILY_CODE, None, "inet"),
    ]
    assert list(cli.getopt(["-n", "x", "-l"], True)) == [cli.Option("n")]  # POSIXLY_CORRECT
    assert list(cli.getopt(["-n", "--", "-l"], False)) == [cli.Option("n")]
    assert list(cli.getopt(["-ty"], False)) == [
        cli.Option("t"), cli.Option("?", "netstat: invalid option -- 'y'")]
    assert list(cli.getopt(["--backend=proc", "--back"], False)) == [
        cli.Option(cli.OWN_CODE, "proc", "backend"),
        cli.Option("?", "netstat: unrecognized option '--back'"),
    ]


def test_own_option_entries_may_carry_more(monkeypatch: pytest.MonkeyPatch) -> None:
    table = dict(cli.OWN_OPTIONS)
    table["later"] = (True, None, "--later=WHAT", "a later option", "a later item")  # type: ignore[assignment]
    monkeypatch.setattr(cli, "OWN_OPTIONS", table)
    assert parsed("--later", "eth0").extras == (("later", "eth0"),)
    assert b"--later=WHAT" in failed("-h").stdout
