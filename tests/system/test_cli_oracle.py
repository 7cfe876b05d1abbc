"""The command line against the real netstat: statuses and stderr byte for byte.

Only argument lists that end while the options are parsed (errors, help, version, -Z, bad
families, two modes) are run through netstat here, so no socket listing is compared. Help and
version texts are nlstat's own by design: both programs' texts are replaced by placeholders,
everything else (glibc lines, family list, messages, statuses) must match exactly.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlstat import cli
from tests.cli_support import (
    NETSTAT,
    Texts,
    normalise,
    parse_in_process,
    reference_texts,
    run_netstat,
    run_nlstat,
)

pytestmark = pytest.mark.skipif(
    not os.access(NETSTAT, os.X_OK), reason="the netstat binary (net-tools) is not installed"
)

INET6_60 = ",".join(["inet6"] * 60)
AX25_51 = ",".join(["ax25"] * 51)

ARGUMENT_LISTS: List[Tuple[str, ...]] = [
    # unknown short options, bundles, missing -A argument
    ("-y",),
    ("-tuy",),
    ("-yV",),
    ("-y", "-V"),
    ("-t-u",),
    ("-:",),
    ("-\u00e9",),
    ("-A",),
    ("-nA",),
    ("-t", "-A"),
    ("-2", "-f", "-y"),
    ("-x", "-y"),
    ("-", "-y"),
    ("foo", "bar", "-y"),
    # long options: unknown, arguments where none is allowed, missing arguments
    ("--protocol",),
    ("--prot",),
    ("--protocol=inet", "--protocol"),
    ("--bogus",),
    ("--bogus=1",),
    ("---t",),
    ("--\u00e9",),
    ("--tcp=1",),
    ("--numeric-hosts=1",),
    ("--numeric-h=x",),
    ("--help=1",),
    ("--version=",),
    ("--unix=1",),
    ("--ax25=1",),
    ("--ip=1",),
    ("--ine=1",),
    ("--tcpip=1",),
    ("--back=proc",),
    ("--backends",),
    ("--backen", "proc"),
    # ambiguous prefixes
    ("--i",),
    ("--u",),
    ("--c",),
    ("--n",),
    ("--r",),
    ("--t",),
    ("--tc=1",),
    ("--v",),
    ("--in=3",),
    ("--in",),
    ("--a",),
    ("--pr",),
    ("--s",),
    ("--l",),
    ("--co",),
    ("--cont",),
    ("--numeric-=1",),
    ("--=x",),
    ("--ver=1",),
    # usage without a glibc line: -?, more than one mode (repeats count)
    ("-?",),
    ("-t", "-?"),
    ("-?", "-V"),
    ("-?h",),
    ("-ss",),
    ("-rr",),
    ("-ii",),
    ("-MM",),
    ("-r", "-i"),
    ("-s", "-r"),
    ("-M", "-s"),
    ("-i", "--route"),
    ("-A", "ipx", "-i", "-i"),
    ("--stat", "--statistics"),
    ("-A", "inet", "-r", "-s"),
    # address families
    ("-A", "bogus"),
    ("-A", "inet,bogus"),
    ("-A", ""),
    ("--protocol=",),
    ("-A", "inet,"),
    ("-A", "inet,,inet6"),
    ("-A", "INET"),
    ("-A", "--"),
    ("--protocol", "-t"),
    ("-Ainet6,ip6,x",),
    ("-A", "\u00e9"),
    ("-A", "x" * 300),
    ("-A", "x" * 254 + "\u00e9"),
    ("-s", "-A", INET6_60),
    ("-A", AX25_51, "-A", "inet,bogus", "-V"),
    ("--prot=ip6,bad",),
    ("-4", "-A", "foo"),
    ("-6", "--protocol", "unix,ddp,econet,ash,nope"),
    # SELinux
    ("-Z",),
    ("-Z", "-h"),
    ("--context",),
    ("--conte",),
    ("--bluetooth", "-Z"),
    # help (stdout is nlstat's own; the family list on stderr must match)
    ("-h",),
    ("--help",),
    ("--he",),
    ("-h", "-Z"),
    ("-h", "-y"),
    ("-th",),
    ("-ss", "-h"),
    # version, and what happens before it
    ("-V",),
    ("--version",),
    ("--vers",),
    ("-V", "-y"),
    ("-Vy",),
    ("-tV",),
    ("foo", "-V"),
    ("-V", "--", "-y"),
    ("-ss", "-V"),
    ("--tcpip", "-V"),
    ("--tcpip", "--tcpip", "-V"),
    ("--tcpi", "-V"),
    ("-A", "econet", "-V"),
    ("--appletalk", "--ddp", "-V"),
]

POSIX_LISTS: List[Tuple[str, ...]] = [
    ("-y", "foo"),
    ("-A", "bad", "foo", "-V"),
    ("-V", "foo", "-y"),
]


@pytest.fixture(scope="module")
def texts() -> Texts:
    return reference_texts()


def compare(argv: Sequence[str], texts: Texts, extra_env: Optional[Dict[str, str]] = None) -> None:
    expected = normalise(
        run_netstat(argv, extra_env=extra_env), texts.netstat_usage, texts.netstat_version
    )
    got = normalise(run_nlstat(argv, extra_env=extra_env), texts.nlstat_usage, texts.nlstat_version)
    assert got.status == expected.status
    assert got.stderr == expected.stderr
    assert got.stdout == expected.stdout


def test_enough_argument_lists() -> None:
    assert len(set(ARGUMENT_LISTS)) == len(ARGUMENT_LISTS) >= 80


@pytest.mark.parametrize("argv", ARGUMENT_LISTS, ids=lambda argv: " ".join(argv)[:40])
def test_same_status_and_messages_as_netstat(argv: Tuple[str, ...], texts: Texts) -> None:
    compare(argv, texts)


@pytest.mark.parametrize("argv", POSIX_LISTS, ids=" ".join)
def test_posixly_correct_like_netstat(argv: Tuple[str, ...], texts: Texts) -> None:
    compare(argv, texts, {"POSIXLY_CORRECT": "1"})


def test_help_stdout_is_nlstats_own(texts: Texts) -> None:
    outcome = run_nlstat(["-h"])
    assert outcome.stdout == texts.nlstat_usage
    assert outcome.stdout.startswith(b"usage: nlstat ")
    # Same layout as netstat's: every netstat help line is still there, in order.
    ours = outcome.stdout.decode().replace("nlstat", "netstat").splitlines()
    theirs = texts.netstat_usage.decode().splitlines()
    remaining = iter(ours)
    assert all(line in remaining for line in theirs)


# -- fuzz: random command lines from option fragments -----------------------------------------

_NAMES = [name for name, _, _ in cli.LONG_OPTIONS] + list(cli.OWN_OPTIONS)


@st.composite
def _long_fragment(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(_NAMES))
    prefix = name[: draw(st.integers(0, len(name)))]
    value = draw(st.sampled_from([None, "", "1", "inet", "unix,x", "proc"]))
    return f"--{prefix}" if value is None else f"--{prefix}={value}"


_SHORT = st.text(alphabet="tulpnaAeVhsriMcgxw46?ZyWoNCFdSU2f:-\u00e9", min_size=1, max_size=4)
_WORDS = st.sampled_from(
    [
        "inet",
        "inet6,unix",
        "ip,,x",
        "",
        "bogus",
        "ddp,econet,ash",
        "tcpip",
        "-",
        "--",
        "foo",
        "-A",
        "--protocol",
        "-Ainet",
        INET6_60,
        "x" * 260,
    ]
)
_ARGV = st.lists(st.one_of(_SHORT.map(lambda s: "-" + s), _long_fragment(), _WORDS), max_size=6)


def _own_exact(arg: str) -> bool:
    name = arg[2:].partition("=")[0]
    return arg.startswith("--") and name in cli.OWN_OPTIONS


@settings(
    max_examples=250,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(argv=_ARGV)
def test_fuzz_parse_errors_match_netstat(argv: List[str], texts: Texts) -> None:
    # `-V` at the end stops netstat before any listing, unless `--` hides it: then netstat is
    # run only when nlstat says the parse itself ends the run.
    if "--" not in argv:
        argv = [*argv, "-V"]
    outcome = parse_in_process(argv)
    if outcome.query is not None:
        assert "--" in argv or any(_own_exact(arg) for arg in argv)
        return
    if any(_own_exact(arg) for arg in argv):
        # nlstat's own options are unknown to netstat by design; only "no traceback" applies.
        assert outcome.status in (0, 1, 3)
        return
    expected = normalise(run_netstat(argv), texts.netstat_usage, texts.netstat_version)
    got = normalise(outcome, texts.nlstat_usage, texts.nlstat_version)
    assert (got.status, got.stderr, got.stdout) == (
        expected.status,
        expected.stderr,
        expected.stdout,
    )
