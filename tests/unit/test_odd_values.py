"""Values past the C types netstat prints them with, found by the live odd-data tests
(tests/system/test_odd_data.py): each kept here as a regression test on captured text."""

from __future__ import annotations

import pwd
import socket

import pytest

from nlstat.backends.procfs.sockets import parse_inet
from nlstat.resolve import Names

BIG_UID = 3_000_000_000  # beyond 2^31: netstat's `int uid` prints it as -1294967296
TCP_LINE = ("   0: 0100007F:1BC0 00000000:0000 0A 00000000:00000000 00:00000000 00000000 "
            f"{BIG_UID}        0 26033411 1 0000000000000000 100 0 0 10 0")


def test_a_uid_past_2_31_is_kept_whole_in_the_record() -> None:
    """/proc prints the uid unsigned; the record holds it as sock_diag gives it, so JSON, the
    --uid filter and --count agree under both backends (it was -1294967296 from /proc)."""
    (record,) = parse_inet([TCP_LINE], "tcp", socket.AF_INET)
    assert record.uid == BIG_UID


@pytest.mark.parametrize("numeric", [True, False], ids=["numeric-users", "names"])
def test_a_uid_past_2_31_prints_as_netstat_prints_it(numeric: bool) -> None:
    """netstat.c finish_this_one() prints `int uid` with "%d" when there is no passwd name."""
    try:
        pwd.getpwuid(BIG_UID)
    except KeyError:
        pass
    else:
        pytest.skip(f"uid {BIG_UID} has a name on this host")
    names = Names(numeric_users=numeric)
    assert names.user(BIG_UID) == "-1294967296"
    assert names.user(4294967295) == "-1"
