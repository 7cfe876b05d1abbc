"""/proc/net socket files -> records, including the lines netstat calls bogus."""

from __future__ import annotations

import socket
from typing import List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlstat.backends.procfs.sockets import (
    ipv4_hex_to_text,
    ipv6_hex_to_text,
    parse_inet,
    parse_unix,
)

TCP_LINES = [
    "   0: 0100007F:1770 00000000:0000 0A 00000000:00000003 00:00000000 00000000     0        0 870850 1 0000000000000000 100 0 0 10 0",  # noqa: E501
    "   1: 0100007F:B2F8 0100007F:1770 01 00000000:00000000 02:000AF6E4 00000000  4242        0 870855 1 0000000000000000 20 4 30 10 -1",  # noqa: E501
    "   2: 0100007F:8002 0100007F:1538 06 00000000:00000000 03:00000F98 00000000     0        0 0 3 0000000000000000",  # noqa: E501
]


def test_addresses() -> None:
    assert ipv4_hex_to_text("0100007F") == "127.0.0.1"
    assert ipv4_hex_to_text("010012C6") == "198.18.0.1"
    assert ipv6_hex_to_text("0000000000000000FFFF00000100007F") == "::ffff:127.0.0.1"
    assert ipv6_hex_to_text("00000000000000000000000001000000") == "::1"
    assert ipv6_hex_to_text("B80D0120000000000000000001000000") == "2001:db8::1"


def test_tcp_lines() -> None:
    listener, client, timewait = parse_inet(TCP_LINES, "tcp", socket.AF_INET)
    assert listener.local_address == "127.0.0.1" and listener.local_port == 6000
    assert listener.state == 10 and listener.recv_q == 3 and listener.send_q == 0
    assert listener.inode == 870850
    assert client.remote_port == 6000 and client.uid == 4242
    assert client.timer == 2 and client.timer_ms == 0xAF6E4 * 10
    assert timewait.state == 6 and timewait.timer == 3 and timewait.inode == 0


def test_ipv6_address_of_the_wrong_length_is_a_bogus_line() -> None:
    """Found by tests/unit/test_fuzz_procfs.py: an IPv6 address column of other than 32 hex
    digits (a column dropped or cut) raised struct.error, an internal error of -ant6; it is
    netstat's bogus line, and the lines around it still print."""
    good = ("   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 "
            "0A 00000000:00000000 00:00000000 00000000     0        0 870850 1 0 100 0 0 10 0")
    short = good.replace("00000000000000000000000001000000:", "0100:", 1)
    warnings: List[str] = []
    records = list(parse_inet([good, short, good[:-2]], "tcp", socket.AF_INET6, "/p/tcp6",
                              warnings.append))
    assert [r.local_address for r in records] == ["::1", "::1"]
    assert warnings == ["warning, got bogus tcp line. (/p/tcp6 line 3)"]
    with pytest.raises(ValueError):
        ipv6_hex_to_text("0100")


def test_bogus_lines_are_reported_with_file_and_line() -> None:
    warnings: List[str] = []
    lines = [TCP_LINES[0], "   1: garbage", TCP_LINES[1], "   3: 0100007F:ZZZZ 0 0 0 0 0 0 0 0"]
    records = list(parse_inet(lines, "tcp", socket.AF_INET, "/proc/net/tcp", warnings.append))
    assert len(records) == 2
    assert warnings == [
        "warning, got bogus tcp line. (/proc/net/tcp line 3)",
        "warning, got bogus tcp line. (/proc/net/tcp line 5)",
    ]
    warnings.clear()
    list(parse_inet(["x"], "udplite", socket.AF_INET6, "/proc/net/udplite6", warnings.append))
    assert warnings == ["warning, got bogus udp line. (/proc/net/udplite6 line 2)"]


def test_unix_lines_keep_the_whole_path() -> None:
    lines = [
        "0000000000000000: 00000002 00000000 00010000 0001 01 870859 /tmp/srv.sock",
        "0000000000000000: 00000002 00000000 00010000 0001 01 870864 /tmp/with space.sock",
        "0000000000000000: 00000003 00000000 00000000 0001 03 870869",
        "0000000000000000: 00000002 00000000 00010000 0005 01 870865 @abstract",
        "short line",
    ]
    warnings: List[str] = []
    records = list(parse_unix(lines, "/proc/net/unix", warnings.append))
    assert [r.path for r in records] == ["/tmp/srv.sock", "/tmp/with space.sock", "", "@abstract"]
    assert records[0].flags == 0x10000 and records[0].socket_state == 1
    assert records[2].refcnt == 3 and records[2].socket_state == 3
    assert records[3].type == 5
    assert warnings == ["warning, got bogus unix line. (/proc/net/unix line 6)"]


UNIX_TITLE = b"Num       RefCount Protocol Flags    Type St Inode Path\n"
UNIX_ROWS = [
    b"0000000000000000: 00000002 00000000 00010000 0001 01 870859 /tmp/srv.sock",
    b"0000000000000000: 00000002 00000000 00010000 0001 01 870864 /tmp/with space.sock",
    b"0000000000000000: 00000003 00000000 00000000 0001 03    17",
    b"0000000000000000: 00000002 00000000 00010000 0005 01 870865 @abstract\tx",
    b"ffff8a0c12345678: 00000002 00000001 00000000 0002 01 870866 /tmp/\xff\xfe.sock",
    b"0000000000000000: 0000000A 00000000 00000000 0002 01 870867 /x  ",
]


def unix_chunks(rows: List[bytes], size: int) -> List[bytes]:
    import io

    from nlstat.backends.procfs.sockets import text_chunks

    return list(text_chunks(io.BytesIO(UNIX_TITLE + b"".join(row + b"\n" for row in rows)), size))


def by_line(rows: List[bytes], warnings: List[str]) -> List[object]:
    lines = [row.decode("utf-8", "surrogateescape") for row in rows]
    return list(parse_unix(lines, "/proc/net/unix", warnings.append))


@pytest.mark.parametrize("size", [64, 200, 1 << 16])
def test_unix_text_gives_parse_unix_records(size: int) -> None:
    """The expression path keeps every field parse_unix() keeps: blanks and tabs inside
    paths, short inodes, bytes that are not UTF-8, trailing blanks, any chunk border."""
    from nlstat.backends.procfs.sockets import UnixText

    rows = UNIX_ROWS * 40
    parser = UnixText("/proc/net/unix", None)
    records = [record for chunk in unix_chunks(rows, size) for record in parser.parse(chunk)]
    assert records == by_line(rows, [])
    assert parser.kinds  # the expression path was taken


@pytest.mark.parametrize(
    "odd",
    [
        b"short line",
        b"0000000000000000: 00000002 00000000 00010000 0001 01 870870  /lead/blank",
        b"0000000000000000: 0000000G 00000000 00010000 0001 01 870871 /not/hex",
        b"0000000000000000:  00000002 00000000 00010000 0001 01 870872 /two/blanks",
        b"",
    ],
)
def test_unix_text_leaves_odd_lines_to_parse_unix(odd: bytes) -> None:
    """A line the kernel would not print goes through parse_unix() with its chunk: the same
    records and the same warning, with the file's line number."""
    from nlstat.backends.procfs.sockets import UnixText

    rows = UNIX_ROWS * 3 + [odd] + UNIX_ROWS
    ours: List[str] = []
    parser = UnixText("/proc/net/unix", ours.append)
    records = [record for chunk in unix_chunks(rows, 1 << 16) for record in parser.parse(chunk)]
    theirs: List[str] = []
    assert records == by_line(rows, theirs)
    assert ours == theirs
    if odd in (b"short line", b""):
        assert ours == ["warning, got bogus unix line. (/proc/net/unix line 20)"]


# Pieces a /proc/net/unix line is made of, and the odd bytes a crafted file may hold instead.
_HEX_FIELDS = st.sampled_from([
    "00000002 00000000 00010000 0001 01", "00000003 00000000 00000000 0001 03",
    "00000002 00000000 00000000 0002 01", "0000000A 00000001 00000000 0005 02",
])
_PATHS = st.one_of(
    st.just(""),
    st.text(alphabet="/@abc xyz\t\x0b\x0c\r\x1c\x85\xa0\x7f\u00e9.", min_size=1, max_size=12)
    .map(lambda t: " " + t),
)
_LINES = st.one_of(
    st.builds(lambda fields, inode, path: f"0000000000000000: {fields} {inode:5d}{path}",
              _HEX_FIELDS, st.integers(0, 10**9), _PATHS),
    st.text(alphabet="0123456789ABCDEFabcdef: \t\x0b\xa0/@x", max_size=60),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINES, max_size=40), st.sampled_from([64, 256, 1 << 16]))
def test_unix_text_equals_parse_unix_on_any_lines(lines: List[str], size: int) -> None:
    """Whatever the lines, the expression path and its fallback give parse_unix()'s records
    and warnings, across any chunk borders."""
    from nlstat.backends.procfs.sockets import UnixText

    rows = [line.encode("utf-8", "surrogateescape") for line in lines]
    ours: List[str] = []
    parser = UnixText("/proc/net/unix", ours.append)
    records = [record for chunk in unix_chunks(rows, size) for record in parser.parse(chunk)]
    theirs: List[str] = []
    assert records == by_line(rows, theirs)
    assert ours == theirs


# Found by tests/unit/test_fuzz_procfs.py against netstat 2.10 on the same (bind-mounted) file.
_FULL = ("   0: 0100007F:8ED4 0100007F:DB89 01 00000000:00000001 02:0000000A 00000003  1000"
         "        5 4242 1 0")
_PREVIOUS = ("   0: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000  33"
             "        0 777 1 0")


@pytest.mark.parametrize("protocol,fewest", [("tcp", 7), ("udp", 6), ("udplite", 6), ("raw", 6)])
def test_a_line_cut_short_is_read_as_far_as_netstats_sscanf_reads_it(protocol: str,
                                                                     fewest: int) -> None:
    """netstat accepts a line once sscanf() has converted 11 fields (tcp_do_one; 10 for
    udp_do_one, raw_do_one): a line cut after its retransmits (tcp) or its timer (udp, raw) is
    printed, the fields it lacks keeping the previous line's values (its inode excepted: 0,
    see docs/compat.md). nlstat called such lines bogus and left them out."""
    fields = _FULL.split()
    for count in range(1, len(fields)):
        warnings: List[str] = []
        cut = " ".join(fields[:count])
        records = parse_inet([_PREVIOUS, cut], protocol, socket.AF_INET, "/p", warnings.append)
        if count < fewest:
            assert len(records) == 1 and warnings, count
            continue
        assert not warnings, count
        record = records[1]
        assert (record.local_port, record.remote_port, record.recv_q, record.timer) == (
            0x8ED4, 0xDB89, 1, 2)
        assert record.retransmits == (3 if count >= 7 else 0)
        assert record.uid == (1000 if count >= 8 else 33)
        assert record.probes == (5 if count >= 9 else 0)
        assert record.inode == (4242 if count >= 10 else 0)


def test_a_damaged_inode_is_read_up_to_its_first_non_digit() -> None:
    line = _FULL.replace(" 4242 ", " 42x2 ")
    (record,) = parse_inet([line], "tcp", socket.AF_INET)
    assert record.inode == 42
    assert parse_inet([_FULL.replace("0100007F:8ED4", "ZZ00007F:8ED4")], "tcp",
                      socket.AF_INET) == []


def test_inet_once_keeps_each_socket_once_across_chunks() -> None:
    """The record outputs (JSON, API, --count, --watch) drop a row read twice while the
    kernel's hash changed between two reads, as the text listing does (InetSeen)."""
    from nlstat.backends.procfs.sockets import InetOnce
    from nlstat.model.sockets import InetSocket

    def tcp(remote_port: int, inode: int, state: int = 1) -> InetSocket:
        return InetSocket(protocol="tcp", family=2, state=state, local_address="127.0.0.1",
                          local_port=7000, remote_address="127.0.0.1",
                          remote_port=remote_port, recv_q=0, send_q=0, uid=0, inode=inode)

    once = InetOnce()
    first = [tcp(40000, 11), tcp(40001, 0), tcp(0, 12, state=10)]
    assert once.records(first) == first
    # the same connection again, now with the inode accept() gave it; a listener again; a
    # new socket: only the new one is kept
    second = [tcp(40001, 13), tcp(0, 12, state=10), tcp(40002, 14)]
    assert once.records(second) == [tcp(40002, 14)]
    # within one chunk too
    assert once.records([tcp(40003, 15), tcp(40003, 15)]) == [tcp(40003, 15)]
    udp = InetOnce()
    row = tcp(53, 21)._replace(protocol="udp")
    assert udp.records([row, row._replace(inode=22)]) == [row, row._replace(inode=22)]
    assert udp.records([row]) == []
