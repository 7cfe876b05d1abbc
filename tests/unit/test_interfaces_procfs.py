"""netstat's interface list: nstrcmp, sorted insertion, /proc/net/dev and if_inet6."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest

from nlstat.backends.procfs.links import (
    _walk_order,
    netstat_order,
    nstrcmp,
    parse_if_inet6,
    parse_proc_net_dev,
)
from nlstat.model.links import Inet6Address, LinkStats

REPO = Path(__file__).resolve().parents[2]

DATA = REPO / "tests" / "data" / "links"


def _text(name: str) -> str:
    """A captured text file; device names are bytes, so undecodable ones are kept as such."""
    return (DATA / name).read_bytes().decode(errors="surrogateescape")

# net-tools lib/nstrcmp.c's own test table (NSTRCMP_TEST main): (a, b, expected sign).
NSTRCMP_CASES = (
    ("eth1", "eth1", 0), ("eth0:1", "eth0:1", 0), ("lan", "lan", 0), ("100", "100", 0),
    ("", "", 0), (":", ":", 0), ("a:b:c", "a:b:c", 0), ("a:", "a:", 0), (":a", ":a", 0),
    ("a", "aa", -1), ("eth0", "eth1", -1), ("eth1", "eth20", -1), ("eth20", "eth100", -1),
    ("eth1", "eth13", -1), ("eth", "eth2", -1), ("eth0:1", "eth0:2", -1),
    ("eth1:10", "eth13:10", -1), ("eth1:1", "eth1:13", -1), ("a", "a:", -1),
    ("aa", "a", 1), ("eth2", "eth1", 1), ("eth13", "eth1", 1), ("eth2", "eth", 1),
    ("eth2:10", "eth2:1", 1), ("eth2:5", "eth2:4", 1), ("eth3:2", "eth2:3", 1),
    ("eth13:1", "eth1:0", 1), ("a:", "a", 1), ("a1b12", "a1b2", 1),
    ("eth1", "eth01", 1), ("eth01", "eth1", -1), ("eth1:1", "eth01:1", 1),
    ("eth01:1", "eth1:1", -1), ("eth1:1", "eth01:01", 1), ("eth1:01", "eth01:1", 1),
    ("eth01:1", "eth1:01", -1), ("eth01:01", "eth1:1", -1),
)


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


@pytest.mark.parametrize("a, b, expected", NSTRCMP_CASES)
def test_nstrcmp_upstream_table(a: str, b: str, expected: int) -> None:
    assert _sign(nstrcmp(a.encode(), b.encode())) == expected


def test_netstat_order() -> None:
    proc_names = ["lo", "eth10", "eth2", "ifb0", "abcdefghijklm", "abcdefghij", "abcdefghijk"]
    labels = ["lo", "lo:7", "eth2", "eth2:10", "eth2:2", "eth2:x"]
    # "eth2:x" is no alias (no digits after the ':'): its name part is longer than "eth"'s, so
    # it sorts after eth10 (checked against lib/nstrcmp.c compiled from net-tools 2.10).
    assert netstat_order(proc_names + labels) == [
        "abcdefghij", "abcdefghijk", "abcdefghijklm", "eth2", "eth2:2", "eth2:10", "eth10",
        "eth2:x", "ifb0", "lo", "lo:7",
    ]


def test_sorted_order_equals_netstat_walk() -> None:
    """The O(n log n) key order gives what netstat's insertion walk gives, duplicates included."""
    rng = random.Random(3)
    for _ in range(2000):
        names = ["".join(rng.choice("ab019:x") for _ in range(rng.randint(1, 7)))
                 for _ in range(rng.randint(1, 12))]
        assert netstat_order(names) == _walk_order([(n.encode(), n) for n in names]), names
    # the one case where nstrcmp is no total order: alias "4294967295" reads as -1, "no alias"
    odd = ["a:4294967295", "a", "b", "a:1"]
    assert netstat_order(odd) == _walk_order([(n.encode(), n) for n in odd]) == ["a:4294967295",
                                                                                  "a:1", "b"]


def test_nstrcmp_numbers_wrap_like_atoi() -> None:
    """atoi() of a long digit run is strtol() cut to int, so a huge number can sort first."""
    big = "a" + "9" * 12  # atoi() wraps: 999999999999 -> -727379969
    small = "a1"
    assert nstrcmp(big.encode(), small.encode()) < 0
    assert netstat_order([small, big]) == [big, small]


PROC_NET_DEV = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
    "drop fifo colls carrier compressed\n"
    "    lo:    5414      52    0    0    0     0          0         0     5414      52    0  "
    "  0    0     0       0          0\n"
    "abcdefghijklmno:     726       9    1    2    3     4          5         6      727"
    "      10    7    8    9    11     12          13\n"
    "  eth0: 18446744073709551615 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n"
)


def test_parse_proc_net_dev() -> None:
    rows = parse_proc_net_dev(PROC_NET_DEV)
    assert [name for name, _ in rows] == ["lo", "abcdefghijklmno", "eth0"]
    assert rows[0][1] == LinkStats(5414, 52, 0, 0, 0, 0, 0, 0, 5414, 52, 0, 0, 0, 0, 0, 0)
    # The parser reads the real counters; the Debian 15-character bug is the formatter's.
    assert rows[1][1] == LinkStats(726, 9, 1, 2, 3, 4, 5, 6, 727, 10, 7, 8, 9, 11, 12, 13)
    assert rows[2][1].rx_bytes == 2**64 - 1


def test_parse_proc_net_dev_old_layouts() -> None:
    version2 = (
        "Inter-|   Receive                  |  Transmit\n"
        " face |bytes    packets errs drop fifo frame|bytes    packets errs drop fifo colls "
        "carrier\n"
        "  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13\n"
    )
    ((_, stats),) = parse_proc_net_dev(version2)
    assert stats == LinkStats(1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 13, 0)
    version1 = ("Inter-|\n face |packets errs drop fifo frame|packets\n"
                "  eth0: 1 2 3 4 5 6 7 8 9 10 11\n")
    ((_, stats),) = parse_proc_net_dev(version1)
    assert stats == LinkStats(0, 1, 2, 3, 4, 5, 0, 0, 0, 6, 7, 8, 9, 10, 11, 0)


def test_parse_proc_net_dev_bad_lines() -> None:
    text = PROC_NET_DEV.split("\n", 2)
    bad = (text[0] + "\n" + text[1] + "\n  eth9: 12 x 5\nno colon here\n :\n  eth8: -1\n"
           "  eth7: 5 7x 9\n  eth6: 99999999999999999999999 +3\n")
    rows = parse_proc_net_dev(bad)
    assert [name for name, _ in rows] == ["eth9", "eth8", "eth7", "eth6"]
    assert rows[0][1] == LinkStats(12)  # sscanf stops at the first non-number
    assert rows[1][1].rx_bytes == 2**64 - 1  # %Lu takes "-1" as ULLONG_MAX
    assert rows[2][1] == LinkStats(5, 7)  # "7x": the digits count, then the scan stops
    assert rows[3][1] == LinkStats(2**64 - 1, 3)  # strtoull() saturates


def test_parse_captured_proc_net_dev() -> None:
    rows = parse_proc_net_dev(_text("proc_net_dev.txt"))
    names = [name for name, _ in rows]
    assert "nlsverylongname" in names and "lo" in names
    assert dict(rows)["nlsverylongname"].rx_packets > 0  # the real count netstat hides


def test_parse_if_inet6() -> None:
    text = (
        "fe8000000000000000fc00fffe000001 04 40 20 80     eth0\n"
        "00000000000000000000000000000001 01 80 10 80       lo\n"
        "00000000000000000000ffffc6120005 02 80 00 80 nlsveth0\n"
        "garbage line\n"
    )
    rows = parse_if_inet6(text)
    assert rows == [
        Inet6Address("eth0", 4, "fe80::fc:ff:fe00:1", 64, 0x20, 0x80),
        Inet6Address("lo", 1, "::1", 128, 0x10, 0x80),
        Inet6Address("nlsveth0", 2, "::ffff:198.18.0.5", 128, 0, 0x80),
    ]


def test_parse_captured_if_inet6() -> None:
    rows = parse_if_inet6(_text("if_inet6.txt"))
    assert {row.device for row in rows} >= {"lo", "nlsveth0", "nlsverylongname"}
    for row in rows:
        socket.inet_pton(socket.AF_INET6, row.address)
