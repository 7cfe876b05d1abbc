"""backends/procfs/snmp.py and format/stats.py on small inputs: netstat's C parsing, in Python."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlstat import cscan
from nlstat.backends.procfs import snmp
from nlstat.env import Environment
from nlstat.format.stats import IPV4, IPV6, StatisticsPrinter, Switches
from nlstat.model.stats import COUNTER_MAX, StatsSection
from nlstat.modes import statistics
from nlstat.query import MODE_STATISTICS, Query
from tests.netns import write_proc_tree
from tests.stats_support import nlstat_in_process

REPO = Path(__file__).resolve().parents[2]

ALL = Switches(raw=True, tcp=True, udp=True, sctp=True)


def test_strtoull_examples() -> None:
    assert cscan.strtoull(b" -1 7", 0) == (COUNTER_MAX, 3)
    assert cscan.strtoull(b"18446744073709551616", 0) == (COUNTER_MAX, 20)
    assert cscan.strtoull(b"-18446744073709551615", 0) == (1, 21)
    assert cscan.strtoull(b"+42x", 0) == (42, 3)
    assert cscan.strtoull(b"x1", 0) == (0, 0)
    assert cscan.strtoull(b"  -", 0) == (0, 0)
    assert cscan.strtoull(b"\x0b\x0c\r12", 0) == (12, 5)


def test_pairs_basic() -> None:
    sections, malformed = snmp.parse_pairs(b"Ip: Forwarding DefaultTTL\nIp: 2 64\n")
    assert not malformed
    assert sections == [StatsSection("Ip", (("Forwarding", 2), ("DefaultTTL", 64)))]


def test_pairs_non_number_sticks() -> None:
    sections, _ = snmp.parse_pairs(b"X: a b c d\nX: 1 2y 3 4\n")
    assert sections[0].counters == (("a", 1), ("b", 2), ("c", 0), ("d", 0))


def test_pairs_missing_and_extra_values() -> None:
    sections, _ = snmp.parse_pairs(b"X: a b c\nX: 1\nY: a\nY: 1 2 3\n")
    assert sections[0].counters == (("a", 1), ("b", 0), ("c", 0))
    assert sections[1].counters == (("a", 1),)


def test_pairs_malformed_stops_after_good_sections() -> None:
    sections, malformed = snmp.parse_pairs(b"A: x\nA: 1\nB: y\n2\nC: z\nC: 3\n")
    assert malformed
    assert [s.name for s in sections] == ["A"]


def test_pairs_blank_title_skipped_and_lonely_title_dropped() -> None:
    sections, malformed = snmp.parse_pairs(b"\nA: x\nA: 1\nB: y")
    assert not malformed
    assert [s.name for s in sections] == ["A"]


def test_pairs_names_split_only_on_blank_tab_newline() -> None:
    sections, _ = snmp.parse_pairs(b"A: x\ry\tz\nA: 1 2\n")
    assert sections[0].counters == (("x\ry", 1), ("z", 2))


def test_snmp6_sections_and_repeats() -> None:
    data = b"Ip6InReceives 5\n\nIp6OutRequests\nIcmp6InMsgs 3\nOddName 4\nOddNameToo 1\n"
    sections = snmp.parse_snmp6(data)
    assert sections == [
        StatsSection("Ip6", (("Ip6InReceives", 5), ("Ip6InReceives", 5), ("Ip6OutRequests", 5))),
        StatsSection("Icmp6", (("Icmp6InMsgs", 3),)),
        StatsSection("OddName", (("OddName", 4), ("OddNameToo", 1))),
    ]


def test_snmp6_long_line_is_read_in_pieces() -> None:
    name = b"Udp6" + b"L" * 2000
    sections = snmp.parse_snmp6(b"Udp6InDatagrams 3\n" + name + b" 9\n")
    names = [counter[0] for section in sections for counter in section.counters]
    # 2007 bytes: a first piece of 1023 (no value: the previous one, 3, is repeated), then the rest.
    assert [len(n) for n in names] == [15, 1023, 2004 - 1023]
    assert [c[1] for s in sections for c in s.counters] == [3, 3, 9]


def test_sctp_lines() -> None:
    section = snmp.parse_sctp(b"SctpCurrEstab\t1\n\nSctpNoValue\n 5\nSctpLast 7")
    assert section == StatsSection("Sctp", (("SctpCurrEstab", 1), ("", 5), ("SctpLast", 7)))


def test_missing_and_directory_files(tmp_path: Path) -> None:
    missing = snmp.read_pairs_file(str(tmp_path / "nope"), "/proc/net/snmp")
    assert missing.open_errno == 2 and missing.sections == ()
    (tmp_path / "dir").mkdir()
    directory = snmp.read_sctp_file(str(tmp_path / "dir"), "/proc/net/sctp/snmp")
    assert directory.open_errno == 0 and directory.read_errno == 21
    assert directory.sections == (StatsSection("Sctp", ()),)


# -- the printer --------------------------------------------------------------------------------


def render(sections: list[StatsSection], family: str = IPV4, switches: Switches = ALL) -> str:
    printer = StatisticsPrinter(switches)
    printer.add_sections(sections, family)
    return printer.text().decode("latin-1")


def test_unknown_section_inherits_histogram_indent() -> None:
    icmp = StatsSection("Icmp", (("InMsgs", 1), ("InDestUnreachs", 1), ("OutMsgs", 1)))
    msg = StatsSection("IcmpMsg", (("InType3", 1), ("OutType3", 0)))
    assert render([icmp, msg]) == (
        "Icmp:\n    1 ICMP messages received\n    ICMP input histogram:\n"
        "        destination unreachable: 1\n    1 ICMP messages sent\nIcmpMsg:\n    InType3: 1\n"
    )
    # After an output-histogram entry the state is HO: the unknown counters move to 8 blanks.
    icmp_out = StatsSection("Icmp", (("OutDestUnreachs", 0),))
    assert render([icmp_out, msg]) == (
        "Icmp:\n    ICMP output histogram:\nIcmpMsg:\n        InType3: 1\n"
    )


def test_switched_off_section_resets_state_and_unknown_still_printed() -> None:
    icmp = StatsSection("Icmp", (("OutDestUnreachs", 5),))
    msg = StatsSection("IcmpMsg", (("OutType3", 5),))
    tcp_only = Switches(raw=False, tcp=True, udp=False, sctp=False)
    assert render([icmp, msg], switches=tcp_only) == "IcmpMsg:\n    OutType3: 5\n"


def test_optional_zero_still_sets_state() -> None:
    # An O counter of 0 prints nothing but still leaves the histogram state.
    icmp = StatsSection("Icmp", (("InEchos", 0), ("InErrors", 0), ("InEchoReps", 2)))
    assert render([icmp]) == (
        "Icmp:\n    ICMP input histogram:\n    0 input ICMP message failed\n"
        "    ICMP input histogram:\n        echo replies: 2\n"
    )


def test_ipv6_tables_and_prefix() -> None:
    printer = StatisticsPrinter(ALL)
    printer.add_sections([StatsSection("Udp6", (("Udp6InDatagrams", 4),))], IPV6)
    printer.add_sections(
        [StatsSection("Ip", (("InReceives", 1),)), StatsSection("TcpExt", (("TW", 2),))],
        IPV4,
        prefix="Tcp",
    )
    assert printer.text() == (
        b"Udp6:\n    4 packets received\n"
        b"TcpExt:\n    2 TCP sockets finished time wait in fast timer\n"
    )


def test_latin1_names_round_trip() -> None:
    sections, _ = snmp.parse_pairs(b"Caf\xe9: n\xff\nCaf\xe9: 3\n")
    printer = StatisticsPrinter(ALL)
    printer.add_sections(sections, IPV4)
    assert printer.text() == b"Caf\xe9:\n    n\xff: 3\n"


# -- the mode -------------------------------------------------------------------------------------


def run_mode(query: Query, proc_root: Path) -> tuple[int, bytes, str]:
    out = io.BytesIO()
    err = io.StringIO()
    status = statistics.run(query, Environment(stdout=out, stderr=err, proc_root=str(proc_root)))
    return status, out.getvalue(), err.getvalue()


def test_family_refusals(tmp_path: Path) -> None:
    for families, text in (
        (("unix",), "unix"),
        (("inet", "inet"), "inet,inet"),
        (("bluetooth",), "bluetooth"),
        (("inet6", "inet"), "inet6,inet"),
    ):
        status, out, err = run_mode(Query(mode=MODE_STATISTICS, families=families), tmp_path)
        assert status == 1
        message = f"netstat: No statistics support for specified address family: {text}\n"
        assert out == message.encode()
        assert err == ""


def test_missing_netstat_and_sctp_are_silent(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "snmp").write_bytes(b"Udp: InDatagrams\nUdp: 3\n")
    query = Query(mode=MODE_STATISTICS, raw=True, tcp=True, udp=True, sctp=True, udplite=True)
    assert run_mode(query, tmp_path) == (0, b"Udp:\n    3 packets received\n", "")


def test_continuous_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "snmp").write_bytes(b"Udp: InDatagrams\nUdp: 3\n")
    query = Query(mode=MODE_STATISTICS, udp=True, continuous=True)
    assert run_mode(query, tmp_path) == (0, b"Udp:\n    3 packets received\n", "")


# -- the fast value path agrees with the exact C emulation -----------------------------------------

_token = st.one_of(
    st.integers(min_value=0, max_value=2**70).map(lambda n: str(n).encode()),
    st.sampled_from([b"-1", b"+5", b"x", b"12ab", b"-", b"007", b""]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_token, max_size=8), st.integers(min_value=0, max_value=10),
       st.sampled_from([b" ", b"\t", b"  ", b"\x0b", b"\r"]))
def test_values_fast_path_matches_emulation(tokens: list[bytes], count: int, sep: bytes) -> None:
    text = sep.join(tokens)
    expected = []
    pos = 0
    for _ in range(count):
        while pos < len(text) and text[pos] in b" \t\n":
            pos += 1
        value, pos = cscan.strtoull(text, pos)
        expected.append(value)
    assert cscan.read_counters(text, count) == expected


@pytest.mark.parametrize("value", [0, 1, COUNTER_MAX, COUNTER_MAX + 1, 10**30])
def test_values_clamp(value: int) -> None:
    assert cscan.read_counters(str(value).encode(), 1) == [min(value, COUNTER_MAX)]


def test_snmp6_blank_first_line_makes_a_section_with_an_empty_title(tmp_path: Path) -> None:
    """Found by tests/unit/test_fuzz_procfs.py against netstat on the same file: netstat's
    name buffer starts empty, so a blank first line opens a section titled "" that every
    counter name contains; nlstat skipped the line and printed the usual sections. netstat
    2.10's stdout for this file is `:` and the non-zero counters, as checked here."""
    data = b"\nIp6InDelivers 3\nIp6OutRequests 0\nIcmp6OutMsgs 2\n"
    sections = snmp.parse_snmp6(data)
    assert [(s.name, s.counters) for s in sections] == [
        ("", (("", 0), ("Ip6InDelivers", 3), ("Ip6OutRequests", 0), ("Icmp6OutMsgs", 2)))
    ]
    root = write_proc_tree(tmp_path, {"snmp6": data, "snmp": b"", "netstat": b""})
    outcome = nlstat_in_process(["-s", "-6"], Path(root))
    assert outcome.stdout == b":\n    Ip6InDelivers: 3\n    Icmp6OutMsgs: 2\n"
