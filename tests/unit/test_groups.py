"""`-g`: the igmp/igmp6 reader, the RTM_GETMULTICAST decoder, their join, and the formatter.

tests/data/groups holds one quiet moment of the lab namespace (tests/links_support.py): the
/proc files, the raw RTM_GETMULTICAST answers and netstat's output.
"""

from __future__ import annotations

import io
import socket
from pathlib import Path
from typing import List

import pytest

from nlstat.backends.netlink.groups import Membership, decode_memberships, join_with_proc
from nlstat.backends.procfs.groups import GroupReader, read_lines
from nlstat.env import Environment
from nlstat.format.groups import HEADER, group_row
from nlstat.model.groups import GroupMembership
from nlstat.query import Query
from nlstat.resolve import Names

REPO = Path(__file__).resolve().parents[2]

DATA = REPO / "tests" / "data" / "groups"


def _text(name: str) -> str:
    """A captured text file; device names are bytes, so undecodable ones are kept as such."""
    return (DATA / name).read_bytes().decode(errors="surrogateescape")
V4, V6 = socket.AF_INET, socket.AF_INET6


def _read(reader: GroupReader, name: str) -> List[GroupMembership]:
    return list(reader.read(read_lines(str(DATA / name))))


def _captured_rows() -> List[GroupMembership]:
    reader = GroupReader(pytest.fail)
    return _read(reader, "igmp.txt") + _read(reader, "igmp6.txt")


def test_golden_numeric() -> None:
    names = Names(numeric_hosts=True)
    text = HEADER + "".join(group_row(row, names) for row in _captured_rows())
    assert text.encode(errors="surrogateescape") == (DATA / "netstat-gn.txt").read_bytes()


def test_captured_rows() -> None:
    rows = _captured_rows()
    ipv4 = [row for row in rows if row.family == V4]
    assert GroupMembership(V4, "nlsveth0", "239.1.2.3", 2, 2) in ipv4
    assert GroupMembership(V4, "nlsverylongname", "239.1.2.4", 2, 3) in ipv4
    assert GroupMembership(V6, "nlsveth0", "ff15::1234", 2, 2) in rows
    assert rows.index(ipv4[-1]) < min(i for i, row in enumerate(rows) if row.family == V6)


IGMP = (
    "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n"
    "1\tlo        :     1      V3\n"
    "\t\t\t\t010000E0     1 0:00000000\t\t0\n"
    "2\tabcdefghijklmno:     2      V3\n"
    "\t\t\t\t030201EF     3 0:00000000\t\t0\n"
    "\t\t\t\tnothex\n"
    "\t\t\t\t010000E0     1 0:00000000\t\t0\n"
)
IGMP6 = (
    "1    lo              ff020000000000000000000000000001     1 0000000C 0\n"
    "2    abcdefghijklmno ff150000000000000000000000001234     2 00000004 0\n"
    "x    bogus\n"
)


def test_reader_and_warnings() -> None:
    warnings: List[str] = []
    reader = GroupReader(warnings.append)
    rows = list(reader.read(IGMP.splitlines(True))) + list(reader.read(IGMP6.splitlines(True)))
    assert rows == [
        GroupMembership(V4, "lo", "224.0.0.1", 1, 1),
        GroupMembership(V4, "abcdefghijklmno", "239.1.2.3", 3, 2),
        GroupMembership(V4, "abcdefghijklmno", "224.0.0.1", 1, 2),
        GroupMembership(V6, "lo", "ff02::1", 1, 1),
        GroupMembership(V6, "abcdefghijklmno", "ff15::1234", 2, 2),
    ]
    # netstat's words and its 0-based fgets() line counter, per file
    assert warnings == ["warning, got bogus igmp line 5.", "warning, got bogus igmp6 line 2."]


def test_reader_state_is_per_listing() -> None:
    """netstat keeps the igmp6 layout flag for the whole run, so its second -c iteration parses
    /proc/net/igmp as igmp6 (spec §9). A reader per listing prints the first layout each time."""
    outputs = []
    for _ in range(2):
        warnings: List[str] = []
        reader = GroupReader(warnings.append)
        rows = list(reader.read(IGMP.splitlines(True))) + list(reader.read(IGMP6.splitlines(True)))
        outputs.append((rows, warnings))
    assert outputs[0] == outputs[1]
    # what the carried-over flag does to the igmp file (the bug, for the record)
    stale = GroupReader(lambda line: None)
    list(stale.read(IGMP6.splitlines(True)))
    assert stale.igmp6_flag
    garbled = list(stale.read(IGMP.splitlines(True)))
    assert all(row.family == V6 for row in garbled)


def test_device_line_names() -> None:
    reader = GroupReader(pytest.fail)
    lines = [
        "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n",
        "7\tabcdefghijkl:     1      V3\n",  # 12 characters: cut at its own ':'
        "\t\t\t\t010000E0     1 0:00000000\t\t0\n",
    ]
    (row,) = reader.read(lines)
    assert (row.device, row.ifindex) == ("abcdefghijkl", 7)


def test_igmp6_first_line_with_device() -> None:
    """netstat takes a first igmp6 line containing "Device" for the igmp title: with the layout
    flag still off, the IPv6 lines are then read as IPv4 device lines and print nothing."""
    reader = GroupReader(lambda line: None)
    list(reader.read(IGMP.splitlines(True)))
    igmp6 = ("1    myDevice0       ff020000000000000000000000000001     1 0000000C 0\n"
             "1    myDevice0       ff010000000000000000000000000001     1 00000008 0\n")
    assert list(reader.read(igmp6.splitlines(True))) == []


def test_decode_memberships_against_pyroute2() -> None:
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

    for name, family in (("mcast4.nl", V4), ("mcast6.nl", V6)):
        data = (DATA / name).read_bytes()
        ours = decode_memberships([data])
        reference = []
        offset = 0
        while offset < len(data):
            length, kind = int.from_bytes(data[offset:offset + 4], "little"), data[offset + 4]
            if kind == 58:
                msg = ifaddrmsg(data[offset:offset + length])
                msg.decode()
                reference.append(Membership(msg["family"], msg["index"],
                                            msg.get_attr("IFA_MULTICAST")))
            offset += (length + 3) & ~3
        assert ours == reference and len(ours) > 5
        assert all(item.family == family for item in ours)


def test_netlink_join_gives_proc_order_and_counts() -> None:
    rows = _captured_rows()
    memberships = decode_memberships([(DATA / "mcast4.nl").read_bytes()])
    proc4 = [row for row in rows if row.family == V4]
    joined = join_with_proc(memberships, proc4)
    assert joined == proc4  # same rows, same order, same counts
    memberships6 = decode_memberships([(DATA / "mcast6.nl").read_bytes()])
    proc6 = [row for row in rows if row.family == V6]
    assert join_with_proc(memberships6, proc6) == proc6
    # nlsmoved (ifindex 50) moved in after nlsa2 (ifindex 100) was made: /proc lists devices in
    # the kernel's device list order, the dump by ifindex
    dump_order = [m.ifindex for m in memberships6]
    proc_order = [row.ifindex for row in proc6]
    assert dump_order.index(50) < dump_order.index(100)
    assert proc_order.index(50) > proc_order.index(100)


def test_join_without_proc_rows() -> None:
    memberships = [Membership(V4, 1, "224.0.0.1"), Membership(V4, 1, "239.1.2.3")]
    joined = join_with_proc(memberships, [GroupMembership(V4, "lo", "239.1.2.3", 4, 1)])
    assert [(row.device, row.users) for row in joined] == [("lo", 1), ("lo", 4)]


def test_group_row_padding() -> None:
    names = Names(numeric_hosts=True)
    row = GroupMembership(V4, "lo", "224.0.0.1", 1)
    assert group_row(row, names) == "lo              1      224.0.0.1\n"
    long_name = GroupMembership(V6, "abcdefghijklmnop", "ff02::1", 123456789)
    assert group_row(long_name, names) == "abcdefghijklmnop 123456789 ff02::1\n"
    wide = GroupMembership(V4, "é", "224.0.0.1", 1)  # printf pads bytes, not characters
    assert group_row(wide, names).encode() == "é".encode() + b" " * 13 + b" 1      224.0.0.1\n"


def _environment(root: Path) -> tuple[Environment, io.BytesIO, io.StringIO]:
    out, err = io.BytesIO(), io.StringIO()
    return Environment(stdout=out, stderr=err, proc_root=str(root), backend="proc"), out, err


def test_write_groups_missing_files(tmp_path: Path) -> None:
    from nlstat.modes.groups import write_groups

    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "igmp6").write_text(IGMP6.split("x")[0])
    query = Query(groups=True, inet=1, inet6=1, selections=1, numeric_hosts=True)
    env, out, err = _environment(tmp_path)
    assert write_groups(query, env) == 1
    assert out.getvalue() == (HEADER + "lo              1      ff02::1\n"
                              "abcdefghijklmno 2      ff15::1234\n").encode()
    assert err.getvalue() == "netstat: no support for `AF INET (igmp)' on this system.\n"
    # -4 -g: the family was named, so the protocols were switched on implicitly: no notice
    implicit = query._replace(inet6=0, implicit_protocols=True)
    env, out, err = _environment(tmp_path)
    assert write_groups(implicit, env) == 0
    assert out.getvalue() == HEADER.encode() and err.getvalue() == ""


def test_write_groups_unreadable(tmp_path: Path) -> None:
    from nlstat.modes.groups import write_groups

    (tmp_path / "net" / "igmp").mkdir(parents=True)  # a directory: read() fails with EISDIR
    query = Query(groups=True, inet=1, inet6=1, selections=1, numeric_hosts=True)
    env, out, err = _environment(tmp_path)
    assert write_groups(query, env) == 255
    assert err.getvalue() == f"{tmp_path}/net/igmp: Is a directory\n"
