"""`-s` on captured and crafted /proc files, against goldens that the real netstat produced.

Every golden under tests/data/stats/<case>/expected/ is netstat's own stdout, stderr and status for
that case's files (tests/stats_support.py explains how netstat is made to read them). The
`netns` case was also captured live: its files and netstat's output were taken in a quiet
private namespace at the same moment, and that live output equals the golden (checked below).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Tuple

import pytest

from nlstat.format import stats_tables
from nlstat.format.stats import findable
from tests.stats_support import (
    DATA,
    GOLDEN_ARGS,
    REFUSED_ARGS,
    Golden,
    cases,
    nlstat_in_process,
    read_goldens,
)

REPO = Path(__file__).resolve().parents[2]


def _all_goldens() -> List[Tuple[str, Golden]]:
    return [(case, golden) for case in cases() for golden in read_goldens(case)]


GOLDENS = _all_goldens()


def test_every_case_has_every_argument_set() -> None:
    assert len(cases()) >= 15
    for case in cases():
        argvs = [golden.argv for golden in read_goldens(case)]
        assert argvs == list(GOLDEN_ARGS + REFUSED_ARGS), case


@pytest.mark.parametrize(
    ("case", "golden"), GOLDENS, ids=[f"{case}:{' '.join(g.argv)}" for case, g in GOLDENS]
)
@pytest.mark.parametrize("backend", ["auto", "proc", "netlink"])
def test_matches_netstat_golden(case: str, golden: Golden, backend: str) -> None:
    # NLSTAT_BACKEND must change nothing: -s has no netlink source.
    got = nlstat_in_process(golden.argv, DATA / case, backend=backend)
    assert got.stdout.decode("latin-1").splitlines() == golden.outcome.stdout.decode(
        "latin-1"
    ).splitlines()
    assert got == golden.outcome


def test_live_capture_equals_fake_proc_golden() -> None:
    """The goldens' method is faithful: netstat on the bind-mounted files printed exactly what
    netstat printed live in the namespace those files came from."""
    live = DATA / "netns" / "live"
    compared = 0
    for golden in read_goldens("netns"):
        name = "_".join(arg.lstrip("-") for arg in golden.argv)
        stdout = live / f"{name}.stdout"
        if not stdout.exists():
            continue
        assert stdout.read_bytes() == golden.outcome.stdout, name
        assert int((live / f"{name}.status").read_text()) == golden.outcome.status
        compared += 1
    assert compared == len(GOLDEN_ARGS)


def test_goldens_show_the_quirks() -> None:
    """The crafted cases really exercise what they are named after (guards against a golden
    regenerated from the wrong files)."""

    def stdout(case: str, slug: str) -> bytes:
        return (DATA / case / "expected" / f"{slug}.stdout").read_bytes()

    def stderr(case: str, slug: str) -> bytes:
        return (DATA / case / "expected" / f"{slug}.stderr").read_bytes()

    assert b"    Forwarding: 2\n" in stdout("netns", "s")
    assert b"IcmpMsg:\n        InType0: " in stdout("netns", "s")
    assert b"IcmpMsg:\n    InType0: " in stdout("netns", "st")
    histograms = b"    ICMP input histogram:\n        ICMP output histogram:\n"
    assert histograms in stdout("all-zero", "s_6")
    assert b"18446744073709551615 total packets received" in stdout("huge-values", "s")
    assert b"4 Number of Aborteds \n" in stdout("sctp", "s")
    assert b"Icmp6OutRouterAdvertisements: " in stdout("all-counters", "s_6")
    assert stderr("malformed-snmp", "s") == b"Problem while parsing /proc/net/snmp\n"
    assert stderr("malformed-netstat", "s") == b"Problem while parsing /proc/net/netstat\n"
    assert stderr("no-files", "s") == b"cannot open /proc/net/snmp: No such file or directory\n"
    assert stderr("no-files", "s_6") == b"cannot open /proc/net/snmp6: No such file or directory\n"
    assert stderr("snmp-is-directory", "s") == (
        b"/proc/net/snmp: Is a directory\n/proc/net/sctp/snmp: Is a directory\n"
    )
    assert stdout("no-files", "sx") == (
        b"netstat: No statistics support for specified address family: unix\n"
    )
    assert stdout("no-files", "s_4_6") == (
        b"netstat: No statistics support for specified address family: inet,inet6\n"
    )


# -- the tables ----------------------------------------------------------------------------------

# The rows of spec §7.5 marked NO: in the table, yet never found by netstat's bsearch.
UNFINDABLE = {
    "IP": {"Forwarding"},
    "ICMP": set(),
    "TCP": set(),
    "UDP": set(),
    "TCP_EXT": {
        "TCPDirectCopyFromPrequeue", "TCPDSACKOfoRecv", "TCPDSACKOfoSent", "TCPDSACKOldSent",
        "TCPDSACKRecv", "TCPDSackUndo", "TCPDSACKUndo", "TCPLoss", "TCPPrequeueDropped",
        "TCPRenoRecoveryFailed", "TCPRenoRecoveryFail", "TCPSackFailures", "TCPSackRecoveryFail",
        "TCPSackRecovery", "TCPSACKReneging", "TCPTimeouts", "TWKilled",
    },
    "SCTP": set(),
    "IP6": set(),
    # Found under its own name, which has a trailing blank; the kernel's name never matches.
    "ICMP6": set(),
    "UDP6": set(),
}
SIZES = {"IP": 19, "ICMP": 26, "TCP": 14, "UDP": 6, "TCP_EXT": 67, "SCTP": 17, "IP6": 22,
         "ICMP6": 31, "UDP6": 4}


@pytest.mark.parametrize("name", sorted(SIZES))
def test_table_sizes_and_bsearch_misses(name: str) -> None:
    table = getattr(stats_tables, name)
    assert len(table) == SIZES[name]
    lookup = findable(table)
    missing = {row[0] for row in table} - set(lookup)
    assert missing == UNFINDABLE[name]


def test_icmp6_router_advertisement_typo() -> None:
    lookup = findable(stats_tables.ICMP6)
    assert "Icmp6OutRouterAdvertisements" not in lookup
    assert "Icmp6OutRouterAdvertisements " in lookup
    assert "Icmp6InRouterAdvertisements" in lookup


def test_sentences_with_trailing_blanks() -> None:
    texts = {name: text for name, _kind, text in stats_tables.SCTP}
    assert texts["SctpAborteds"] == "%u Number of Aborteds "
    assert texts["SctpReasmUsrMsgs"] == "%u Number of messages reassembled "
    trailing = [row for table in (stats_tables.IPV4_TABLES, stats_tables.IPV6_TABLES)
                for rows in table.values() for row in rows if row[2].endswith(" ")]
    assert len(trailing) == 2


def test_every_printing_sentence_holds_one_value() -> None:
    for tables in (stats_tables.IPV4_TABLES, stats_tables.IPV6_TABLES):
        for rows in tables.values():
            for name, kind, text in rows:
                if kind == stats_tables.STATIC or not text:
                    continue
                assert text.count("%") == 1 and "%u" in text, name


# -- start-up cost --------------------------------------------------------------------------------

HEAVY = ("json", "dataclasses", "argparse", "subprocess", "ipaddress", "pyroute2", "inspect",
         "pathlib", "decimal", "datetime")


def test_statistics_path_is_import_light() -> None:
    """`-s` must start fast: nothing heavy, and no `re` beyond what `typing` already brings."""
    import subprocess

    probe = (
        "import sys, io, typing\n"
        "base = set(sys.modules)\n"
        "from nlstat.app import main\n"
        "from nlstat.env import Environment\n"
        "for argv in (['-s'], ['-s6'], ['-sx']):\n"
        "    main(argv, Environment(stdout=io.BytesIO()))\n"
        "print(' '.join(sorted(set(sys.modules) - base)))\n"
    )
    done = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "LC_ALL": "C"}, timeout=60, check=True)
    imported = set(done.stdout.split())
    assert "nlstat.modes.statistics" in imported
    assert not {m for m in imported if m.split(".")[0] in HEAVY + ("re",)}
    assert not any(m.startswith("nlstat.backends.netlink") for m in imported)
