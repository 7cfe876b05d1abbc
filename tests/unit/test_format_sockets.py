"""The socket formatter on records: netstat's columns, cuts and quirks."""

from __future__ import annotations

import socket
from typing import List

import pytest

from nlstat.format.sockets import (
    InetRows,
    inet_header,
    join_endpoint,
    timer_text,
    unix_header,
    unix_renderer,
)
from nlstat.model.sockets import InetSocket, UnixBatch, UnixKind, UnixSocket
from nlstat.query import Query
from nlstat.resolve import Names

NUMERIC = Query(numeric_hosts=True, numeric_ports=True, numeric_users=True)


def tcp(local: str, lport: int, remote: str, rport: int, state: int, **kw: int) -> InetSocket:
    family = socket.AF_INET6 if ":" in local else socket.AF_INET
    fields = dict(recv_q=0, send_q=0, uid=0, inode=0)
    fields.update(kw)
    return InetSocket("tcp", family, state, local, lport, remote, rport, **fields)  # type: ignore[arg-type]


def render(query: Query, record: InetSocket, programs: dict | None = None) -> str:
    names = Names(query.numeric_hosts, query.numeric_ports, query.numeric_users)
    return InetRows(query, names, programs).renderer(record.protocol, record.family)([record])


@pytest.mark.parametrize(
    ("host", "port", "text"),
    [
        ("localhost", "afs3-fileserver", "localho:afs3-fileserver"),
        ("10.1.2.3", "kerberos-master", "10.1.2.:kerberos-master"),
        ("203.0.113.254", "clc-build-daemon", "203.0.:clc-build-daemon"),
        ("2001:db8:1234:5678:9abc:def0:1234:5678", "12345", "2001:db8:1234:567:12345"),
        ("2001:db8:1234:5678:9abc:def0:1234:5678", "8990", "2001:db8:1234:5678:8990"),
        ("2001:db8:1234:5678:9abc:def0:1234:5678", "clc-build-daemon", "2001:d:clc-build-daemon"),
        ("fe80::1234:5678:9abc:def0", "7000", "fe80::1234:5678:9a:7000"),
        ("h", "a-service-name-longer-than-eighteen", "h:a-service-name-lon"),
    ],
)
def test_truncation_examples_from_netstat(host: str, port: str, text: str) -> None:
    assert join_endpoint(host, port, False) == text
    assert join_endpoint(host, port, True) == host + ":" + port


def test_headers() -> None:
    assert inet_header(Query(all=True)) == (
        "Active Internet connections (servers and established)\n"
        "Proto Recv-Q Send-Q Local Address           Foreign Address         State      \n"
    )
    assert inet_header(Query(listening=True, extend=1, programs=True, timers=True)).endswith(
        "State       User       Inode      PID/Program name     Timer\n"
    )
    assert unix_header(Query()) == (
        "Active UNIX domain sockets (w/o servers)\n"
        "Proto RefCnt Flags       Type       State         I-Node   Path\n"
    )
    assert unix_header(Query(programs=True)).endswith("I-Node   PID/Program name     Path\n")


def test_tcp_rows_numeric() -> None:
    assert render(NUMERIC, tcp("127.0.0.1", 6000, "0.0.0.0", 0, 10, recv_q=3)) == (
        "tcp        3      0 127.0.0.1:6000          0.0.0.0:*               LISTEN     \n"
    )
    assert render(NUMERIC, tcp("::ffff:127.0.0.1", 5555, "::ffff:127.0.0.1", 42, 8)) == (
        "tcp6       0      0 127.0.0.1:5555          127.0.0.1:42            CLOSE_WAIT \n"
    )
    assert render(NUMERIC, tcp("::", 8443, "::", 0, 10)) == (
        "tcp6       0      0 :::8443                 :::*                    LISTEN     \n"
    )


def test_symbolic_wildcards() -> None:
    query = Query(numeric_hosts=False, numeric_ports=True)
    assert render(query, tcp("0.0.0.0", 8080, "0.0.0.0", 0, 10)).split()[3:5] == [
        "0.0.0.0:8080", "0.0.0.0:*",
    ]
    assert render(query, tcp("::", 8443, "::", 0, 10)).split()[3:5] == ["[::]:8443", "[::]:*"]


def test_udp_and_raw_states() -> None:
    udp = InetSocket("udp", 2, 7, "0.0.0.0", 53, "0.0.0.0", 0, 0, 0, 0, 0)
    assert render(NUMERIC, udp) == (
        "udp        0      0 0.0.0.0:53              0.0.0.0:*                          \n"
    )
    lite = udp._replace(protocol="udplite", family=socket.AF_INET6, local_address="::",
                        remote_address="::", state=1)
    assert render(NUMERIC, lite).startswith("udpl6      0      0 :::53 ")
    assert render(NUMERIC, lite).endswith("ESTABLISHED\n")
    assert render(NUMERIC, udp._replace(state=3)).endswith("UNKNOWN    \n")
    raw = InetSocket("raw", 2, 7, "0.0.0.0", 1, "0.0.0.0", 0, 0, 0, 0, 0)
    assert render(NUMERIC, raw).endswith(" 7          \n")


def test_optional_columns() -> None:
    query = NUMERIC._replace(extend=1, programs=True, timers=True)
    record = tcp("127.0.0.1", 1, "127.0.0.1", 2, 1, uid=4242, inode=77)
    line = render(query, record._replace(timer=2, timer_ms=7179920), {77: "1234/python3"})
    assert line.endswith(
        " 4242       77         1234/python3         keepalive (7179.92/0/0)\n"
    )
    assert render(query._replace(timers=False), record).endswith(
        " 4242       77         -                   \n"
    )


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        (dict(timer=0, timer_ms=0), "off (0.00/0/0)"),
        (dict(timer=1, timer_ms=12260, retransmits=9), "on (12.26/9/0)"),
        (dict(timer=3, timer_ms=39920), "timewait (39.92/0/0)"),
        (dict(timer=4, timer_ms=100, probes=2), "probe (0.10/0/2)"),
        (dict(timer=9, timer_ms=0), "unkn-9 (0.00/0/0)"),
    ],
)
def test_tcp_timers(fields: dict, text: str) -> None:
    assert timer_text(tcp("127.0.0.1", 1, "127.0.0.1", 2, 1)._replace(**fields)) == text


def test_udp_timers() -> None:
    udp = InetSocket("udp", 2, 7, "0.0.0.0", 53, "0.0.0.0", 0, 0, 0, 0, 0)
    assert timer_text(udp) == "off (0.00/0/0)"
    assert timer_text(udp._replace(timer=2, timer_ms=1500)) == "on2 (1.50/0/0)"


def test_raw_timers_show_the_retransmits_and_udp_timers_do_not() -> None:
    """Found by tests/unit/test_fuzz_procfs.py against netstat on a bind-mounted file:
    raw_do_one prints the retransmits column, udp_do_one a 0 (the kernel's raw rows hold 0
    there, so only a crafted /proc shows it)."""
    base = tcp("127.0.0.1", 1, "127.0.0.1", 2, 1)._replace(retransmits=3, probes=5)
    assert timer_text(base._replace(protocol="raw")) == "off (0.00/3/5)"
    assert timer_text(base._replace(protocol="raw", timer=2, timer_ms=100)) == "on2 (0.10/3/5)"
    assert timer_text(base._replace(protocol="raw", timer=5, timer_ms=100)) == "unkn-5 (0.10/3/5)"
    assert timer_text(base._replace(protocol="udp", timer=2, timer_ms=100)) == "on2 (0.10/0/5)"
    assert timer_text(base._replace(protocol="udplite")) == "off (0.00/0/5)"


def test_unix_rows() -> None:
    batch_render = unix_renderer(Query())

    def render_unix(record: UnixSocket) -> str:
        return batch_render(UnixBatch.of([record]))

    listener = UnixSocket(1, 1, 0x10000, 870859, "/tmp/srv.sock", 2)
    assert render_unix(listener) == (
        "unix  2      [ ACC ]     STREAM     LISTENING     870859   /tmp/srv.sock\n"
    )
    unbound = UnixSocket(1, 3, 0, 870869, "", 3)
    assert render_unix(unbound) == (
        "unix  3      [ ]         STREAM     CONNECTED     870869   \n"
    )
    dgram = UnixSocket(2, 1, 0, 5, "/x", 2, protocol=1)
    assert render_unix(dgram) == "??    2      [ ]         DGRAM                    5        /x\n"
    assert render_unix(UnixSocket(9, 4, 0x60000, 1, "", 1)).startswith(
        "unix  1      [ W N ]     UNKNOWN    DISCONNECTING"
    )
    with_programs = unix_renderer(Query(programs=True), {5: "12/sshd"})
    row = with_programs(UnixBatch.of([UnixSocket(1, 3, 0, 5, "/p", 2)]))
    assert row.endswith("5        12/sshd              /p\n")


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("/tmp/with space.sock", "/tmp/with"),
        ("/tmp/tab\there", "/tmp/tab"),
        ("@abstract name", "@abstract"),
        ("/plain", "/plain"),
        ("/caf\u00e9\u00a0x", "/caf\u00e9\u00a0x"),  # only ASCII blanks stop scanf's %s
        ("", ""),
    ],
)
def test_unix_path_is_cut_like_scanf(path: str, shown: str) -> None:
    line = unix_renderer(Query())(UnixBatch.of([UnixSocket(1, 1, 0x10000, 5, path, 2)]))
    assert line.endswith("5        " + shown + "\n")


def test_dense_owner_table_renders_as_the_dict() -> None:
    """-p rows through the dense inode table (past 300k sockets) read as through a dict."""
    from array import array

    from nlstat.procmap import DenseOwners

    owners = {100: "12/sshd", 102: "7/nginx: worker"}
    dense = DenseOwners(100, array("I", [1, 0, 2]), ["", "12/sshd", "7/nginx: worker"])
    records = UnixBatch.of(
        UnixSocket(1, 3, 0, inode, "/p", 2) for inode in (99, 100, 101, 102, 103)
    )
    query = Query(programs=True)
    assert unix_renderer(query, dense)(records) == unix_renderer(query, owners)(records)
    assert "7/nginx: worker" in unix_renderer(query, dense)(records)


def test_unix_batch_rows_and_records() -> None:
    """A batch is its records as columns: of() and records() are inverse, where() keeps the
    rows whose kind passes (asked once per kind), and the rows render as the records do."""
    records = [
        UnixSocket(1, 1, 0x10000, 10, "/srv", 2),
        UnixSocket(1, 3, 0, 11, "", 3),
        UnixSocket(1, 3, 0, 12, "/x", 3),
        UnixSocket(2, 1, 0, 13, "", 2, protocol=1),
    ]
    batch = UnixBatch.of(records)
    assert batch.records() == records
    assert batch.kinds[1] == UnixKind(1, 3, 0, 3, 0) == batch.kinds[2]
    asked: List[UnixKind] = []

    def connected(kind: UnixKind) -> bool:
        asked.append(kind)
        return kind.socket_state == 3

    kept = batch.where(connected)
    assert kept.records() == records[1:3]
    assert sorted(asked) == sorted(set(batch.kinds))
    assert batch.where(lambda kind: True) is batch
    render = unix_renderer(Query())
    assert render(batch) == "".join(render(UnixBatch.of([record])) for record in records)
    assert render(UnixBatch([], [], [])) == ""


@pytest.mark.parametrize(
    "inodes", [[12345678, 123456789, 99999999], [5, 12345678, 1234567], [10000000]]
)
def test_unix_rows_from_the_kernels_inode_texts(inodes: List[int]) -> None:
    """A /proc batch keeps the inodes as the kernel printed them; its rows are the rows of the
    same sockets given as numbers, whether every inode fills the 8 columns or not, with -p too."""
    kind = UnixKind(1, 3, 0, 3, 0)
    paths = ["/run/a.sock", "", "@abstract"][: len(inodes)]
    as_texts = UnixBatch([kind] * len(inodes), None, paths, [str(i) for i in inodes])
    as_numbers = UnixBatch([kind] * len(inodes), inodes, paths)
    render = unix_renderer(Query())
    assert render(as_texts) == render(as_numbers)
    assert render(as_texts).splitlines()[0].endswith(" %-8d %s" % (inodes[0], paths[0]))
    owners = {inodes[0]: "42/sshd"}
    with_programs = unix_renderer(Query(programs=True), owners)
    assert with_programs(as_texts) == with_programs(as_numbers)
    assert "42/sshd" in with_programs(as_texts)
    assert as_texts.inodes == inodes and as_numbers.inode_texts == [str(i) for i in inodes]
