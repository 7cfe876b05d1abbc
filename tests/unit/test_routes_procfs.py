"""The /proc route parsers: the sscanf() stand-in, the title-line layout, and the captured
kernel files of tests/data/routes read into records."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlstat.backends.procfs import routes as procfs
from nlstat.backends.procfs.routes import (
    IPV6_SPECS,
    header_specs,
    hex_ipv4,
    read_ipv4,
    read_ipv4_cache,
    read_ipv6,
    scan,
)
from nlstat.kernel import rtnetlink as rt
from tests.routes_support import CRAFTED, DATA, write_crafted

REPO = Path(__file__).resolve().parents[2]

PROC_NET = DATA / "proc" / "net"


# -- scan(): what glibc's sscanf stores -------------------------------------------------------


@pytest.mark.parametrize(
    "text, specs, expected",
    [
        ("12abc 5", [("d", 0), ("d", 0)], [12]),  # %d stops inside a token; the next fails
        ("0x1F 7", [("x", 0), ("d", 0)], [0x1F, 7]),
        ("-1", [("x", 0)], [0xFFFFFFFF]),  # strtoul wraps negatives
        ("4294967296", [("d", 0)], [0]),  # (int) keeps the low 32 bits
        ("99999999999", [("d", 0)], [99999999999 & 0xFFFFFFFF]),
        ("-2147483649", [("d", 0)], [2147483647]),
        ("4294967295", [("d", 0)], [-1]),
        ("99999999999999999999", [("d", 0)], [-1]),  # strtol saturates at LONG_MAX
        ("+7", [("d", 0)], [7]),
        ("abcdefghijklmnopq x", [("s", 15), ("s", 127)], ["abcdefghijklmno", "pq"]),
        ("4a0", [("x", 2), ("x", 0)], [0x4A, 0]),
        ("a b c", [("s", 0), ("*", 0), ("s", 0)], ["a", "c"]),
        ("", [("s", 0)], []),
        ("0xg", [("x", 0), ("s", 0)], [0, "xg"]),  # "0x" without a digit: just the 0
        ("zz", [("x", 0)], []),
    ],
)
def test_scan(text: str, specs: list, expected: list) -> None:  # type: ignore[type-arg]
    assert scan(text, specs) == expected


def test_ipv6_specs_read_a_kernel_line() -> None:
    line = (PROC_NET / "ipv6_route").read_text().splitlines()[0]
    values = scan(line, IPV6_SPECS)
    assert len(values) == 31
    assert values[8] == int(line[33:35], 16)


def test_hex_ipv4() -> None:
    assert hex_ipv4("010200C0") == "192.0.2.1"
    assert hex_ipv4("010200C0FF") == "192.0.2.1"  # netstat reads only 8 digits
    assert hex_ipv4("0102") is None
    assert hex_ipv4("ZZ0200C0") is None


# -- the title line ------------------------------------------------------------------------


FIELDS = (("A", ("s", 0)), ("B", ("d", 0)), ("C", ("x", 0)))


def test_header_specs_skip_unknown_columns() -> None:
    specs, missing = header_specs("X A|Y B\t\tC Z ", FIELDS)
    assert missing is None
    assert specs == [("*", 0), ("s", 0), ("*", 0), ("d", 0), ("x", 0)]


def test_header_specs_need_the_titles_in_order() -> None:
    assert header_specs("B A C ", FIELDS) == (None, "B")
    assert header_specs("A B ", FIELDS) == (None, "C")


# -- captured kernel files -------------------------------------------------------------------


def test_captured_route_file() -> None:
    table = read_ipv4(str(PROC_NET / "route"))
    assert table.error is None
    rows = {(r.destination, r.data.genmask): r.data for r in table.routes}
    default = rows[("0.0.0.0", "0.0.0.0")]
    assert (default.gateway, default.flags, default.iface) == ("198.18.0.254", 3, "veth0")
    assert rows[("198.18.10.0", "255.255.255.0")].mtu == 1400
    assert rows[("198.18.7.7", "255.255.255.255")].flags & rt.RTF_REJECT
    assert rows[("198.18.9.9", "255.255.255.255")].iface == "*"


def test_kernel_fast_path_equals_line_by_line() -> None:
    lines = procfs._read_lines(str(PROC_NET / "route"))
    specs, _ = header_specs(lines[0] + " ", procfs._ROUTE_FIELDS)
    assert specs is not None
    state = procfs._Ipv4State()
    slow = [r for r in (state.row(line, specs) for line in lines[1:]) if r is not None]
    assert read_ipv4(str(PROC_NET / "route")).routes == slow
    assert procfs._parse_ipv4_kernel(lines[1:], specs) == slow


def test_ipv6_fast_path_equals_line_by_line() -> None:
    lines = procfs._read_lines(str(PROC_NET / "ipv6_route"))
    for cache in (False, True):
        state = procfs._Ipv6State()
        slow = [r for r in (state.row(line, cache) for line in lines) if r is not None]
        assert read_ipv6(str(PROC_NET / "ipv6_route"), cache) == slow
        assert procfs._parse_ipv6_kernel(lines, cache) == slow


def test_captured_ipv6_route_file() -> None:
    rows = read_ipv6(str(PROC_NET / "ipv6_route"))
    nulls = [r for r in rows if r.data.metric == -1]
    assert len(nulls) == 2 and all(r.data.flags == 0x00200200 for r in nulls)
    assert all(r.data.refcnt is not None and r.data.refcnt >= 1 for r in rows)
    assert read_ipv6(str(PROC_NET / "ipv6_route"), cache=True) == []


def test_modern_rt_cache_is_the_22_layout_with_no_rows() -> None:
    cache = read_ipv4_cache(str(PROC_NET / "rt_cache"))
    assert (cache.layout, cache.entries) == (2, [])


def test_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_ipv4(str(tmp_path / "route"))
    with pytest.raises(FileNotFoundError):
        read_ipv6(str(tmp_path / "ipv6_route"))


def test_malformed_files_parse_without_exceptions(tmp_path: Path) -> None:
    for case in CRAFTED:
        root = write_crafted(tmp_path, case)
        for reader in (read_ipv4, read_ipv6, read_ipv4_cache):
            name = {read_ipv4: "route", read_ipv6: "ipv6_route"}.get(reader, "rt_cache")
            path = root / "net" / name
            if path.exists():
                reader(str(path))  # type: ignore[operator]


def test_stale_values_like_netstat(tmp_path: Path) -> None:
    """A line whose IRTT is missing prints the previous IRTT; a bad address the previous one."""
    title = procfs._KERNEL_ROUTE_TITLE
    text = (
        title + "\n"
        "eth0\t0001A8C0\t0100A8C0\t0003\t0\t0\t7\t00FFFFFF\t1500\t0\t12\n"
        "eth0\t0002A8C0\t0100A8C0\t0003\t0\t0\t7\t00FFFFFF\t1500\t9\n"
        "eth1\tZZZZZZZZ\t0200A8C0\t0003\t0\t0\t7\t00FFFFFF\t1500\t0\t5\n"
    )
    path = tmp_path / "route"
    path.write_text(text)
    rows = read_ipv4(str(path)).routes
    assert [(r.destination, r.data.gateway, r.data.irtt) for r in rows] == [
        ("192.168.1.0", "192.168.0.1", 12),
        ("192.168.2.0", "192.168.0.1", 12),
        ("192.168.2.0", "192.168.0.2", 5),
    ]
