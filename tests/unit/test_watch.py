"""--watch without a namespace: its command line, bad values, the tcp_info byte counters of
crafted messages (short ones too), the tick comparison on /proc-keyed records, and the
incremental -p map on a crafted /proc tree."""

from __future__ import annotations

import io
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Union

import pytest

from nlstat import cli
from nlstat.backends.netlink.sockdiag import INET_MSG_V4, InetDecoder
from nlstat.env import Environment
from nlstat.kernel.netlink import NLMSGHDR
from nlstat.kernel.sockdiag import INET_DIAG_INFO, SOCK_DIAG_BY_FAMILY, TCP_INFO
from nlstat.model.sockets import InetSocket, UnixSocket
from nlstat.procmap import IncrementalOwners
from nlstat.query import MODE_WATCH, Query
from nlstat.watchdiff import CLOSED, OPENED, STATE, TRAFFIC, Table, compare

REPO = Path(__file__).resolve().parent.parent.parent


def parse(args: List[str]) -> Union[Query, int, str]:
    err = io.StringIO()
    parsed = cli.parse(args, Environment(stdout=io.BytesIO(), stderr=err))
    return err.getvalue() if isinstance(parsed, int) and parsed else parsed


# -- the command line ---------------------------------------------------------------------------


@pytest.mark.parametrize("args, seconds, ticks", [
    (["--watch"], 1.0, 0),
    (["--watch", "2"], 2.0, 0),
    (["--watch", "2", "-ant"], 2.0, 0),
    (["-ant", "--watch=0.25", "--ticks", "5"], 0.25, 5),
    (["--watch", "--ticks=3"], 1.0, 3),
])
def test_watch_value_is_optional(args: List[str], seconds: float, ticks: int) -> None:
    query = parse(args)
    assert isinstance(query, Query)
    assert (query.mode, query.watch_seconds, query.watch_ticks) == (MODE_WATCH, seconds, ticks)


@pytest.mark.parametrize("args, field", [
    (["--watch", "-ant"], "all"),  # an option after --watch stays an option
    (["--watch", "-4"], "inet"),  # -4 is netstat's option, not a negative interval
    (["--watch", "--tcp"], "tcp"),
])
def test_watch_does_not_steal_the_next_option(args: List[str], field: str) -> None:
    query = parse(args)
    assert isinstance(query, Query)
    assert query.watch_seconds == 1.0 and getattr(query, field)


@pytest.mark.parametrize("args, message", [
    (["--watch", "0"], "bad --watch value '0'"),
    (["--watch", "-1"], "bad --watch value '-1'"),
    (["--watch", "abc"], "bad --watch value 'abc'"),
    (["--watch=nan"], "bad --watch value 'nan'"),
    (["--watch", "inf"], "bad --watch value 'inf'"),
    (["--watch", "--ticks", "0"], "bad --ticks value '0'"),
    (["--ticks", "3"], "--ticks needs --watch"),
    (["--watch", "-c"], "--watch and -c exclude each other"),
    (["--watch", "--json"], "use --ndjson, not --json"),
    (["--watch", "-r"], "it does not go with -r"),
    (["--watch", "--count"], "--watch does not go with --count"),
    (["--watch", "--all-netns"], "--watch does not go with --all-netns"),
])
def test_bad_watch_lines_are_one_line(args: List[str], message: str) -> None:
    said = parse(args)
    assert isinstance(said, str) and said.count("\n") == 1 and message in said, said


@pytest.mark.parametrize("value", ["0", "-1", "abc"])
def test_bad_watch_value_from_the_command_line(value: str) -> None:
    environ = {**os.environ, "PYTHONPATH": str(REPO), "LC_ALL": "C"}
    done = subprocess.run([sys.executable, "-m", "nlstat", "--watch", value, "-ant"],
                          capture_output=True, env=environ, timeout=60)
    assert done.returncode == 1
    assert done.stdout == b""
    assert done.stderr.decode().startswith(f"nlstat: bad --watch value '{value}'")
    assert done.stderr.count(b"\n") == 1


# -- tcp_info byte counters from crafted messages -----------------------------------------------


def attribute(kind: int, payload: bytes) -> bytes:
    data = struct.pack("=HH", 4 + len(payload), kind) + payload
    return data + bytes(-len(data) % 4)


def message(cookie: int, info: Optional[bytes], state: int = 1, before: bytes = b"") -> bytes:
    """One tcp inet_diag answer (IPv4) with attributes `before`, then INET_DIAG_INFO."""
    attributes = before
    if info is not None:
        attributes += attribute(INET_DIAG_INFO, info)
    length = INET_MSG_V4.size + len(attributes)
    port = struct.unpack("=H", struct.pack(">H", 7000))[0]
    head = INET_MSG_V4.pack(length, SOCK_DIAG_BY_FAMILY, 2, 1, 0, socket.AF_INET, state, 0, 0,
                            port, port, socket.inet_aton("127.0.0.1"),
                            socket.inet_aton("127.0.0.1"), 0, cookie, 0, 0, 0, 0, 42)
    return head + attributes


def tcp_info(acked: int, received: int, size: int = TCP_INFO.size) -> bytes:
    data = bytearray(max(size, TCP_INFO.size))
    data[2] = 3  # tcpi_retransmits
    struct.pack_into("=QQ", data, TCP_INFO.offset("tcpi_bytes_acked"), acked, received)
    return bytes(data[:size])


def test_byte_counters_are_kept_by_cookie() -> None:
    done = NLMSGHDR.pack(20, 3, 2, 1, 0) + struct.pack("=i", 0)
    counters: dict = {}
    decoder = InetDecoder("tcp", byte_counters=counters)
    records = decoder.chunk(message(7, tcp_info(1000, 20)) + message(8, tcp_info(5, 6)) + done)
    assert [record.cookie for record in records] == [7, 8]
    assert counters == {7: 1000 << 64 | 20, 8: 5 << 64 | 6}
    assert records[0].retransmits == 3  # the RETR of -o, from the same tcp_info


def test_short_tcp_info_has_no_byte_counters() -> None:
    """A kernel before 4.1 sends a tcp_info that ends before tcpi_bytes_acked: no counters,
    the record as before; a tcp_info cut inside the counters: the same."""
    done = NLMSGHDR.pack(20, 3, 2, 1, 0) + struct.pack("=i", 0)
    before_bytes = TCP_INFO.offset("tcpi_pacing_rate")
    inside = TCP_INFO.offset("tcpi_bytes_received") + 4
    counters: dict = {}
    decoder = InetDecoder("tcp", byte_counters=counters)
    records = decoder.chunk(message(7, tcp_info(1, 2, before_bytes))
                            + message(8, tcp_info(1, 2, inside)) + message(9, b"\x01")
                            + message(10, None) + done)
    assert [record.cookie for record in records] == [7, 8, 9, 10]
    assert counters == {}
    assert [record.retransmits for record in records] == [3, 3, 0, 0]


def test_tcp_info_layout_is_the_kernels() -> None:
    """Offsets of include/uapi/linux/tcp.h (what ss reads too), and this kernel's own copy."""
    assert TCP_INFO.offset("tcpi_rto") == 8
    assert TCP_INFO.offset("tcpi_pacing_rate") == 104
    assert TCP_INFO.offset("tcpi_bytes_acked") == 120
    assert TCP_INFO.offset("tcpi_bytes_received") == 128
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    with listener, socket.create_connection(listener.getsockname()) as client:
        server, _ = listener.accept()
        with server:
            client.sendall(b"y" * 777)
            got = 0
            while got < 777:
                got += len(server.recv(4096))
            info = server.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO.size)
    assert len(info) >= TCP_INFO.offset("tcpi_bytes_received") + 8
    values = dict(zip(TCP_INFO.fields, TCP_INFO.unpack_from(info.ljust(TCP_INFO.size, b"\0"))))
    assert values["tcpi_bytes_received"] == 777
    assert values["tcpi_state"] == 1


SHUTDOWN = attribute(8, b"\0")  # INET_DIAG_SHUTDOWN, as the kernel always sends it
MARK = attribute(15, struct.pack("=I", 7))  # another attribute, as some sockets carry


def test_tcp_tick_decodes_only_what_changed() -> None:
    """tcpwatch reads states and counters of every message and decodes only the sockets
    that are new, changed state or moved data; messages whose attributes are laid out
    otherwise than the last one's are read by a walk, as exactly."""
    from nlstat.backends.netlink.tcpwatch import TcpTick

    done = NLMSGHDR.pack(20, 3, 2, 1, 0) + struct.pack("=i", 0)
    old_counters: dict = {}
    first = InetDecoder("tcp", byte_counters=old_counters)
    old = first.chunk(b"".join(message(cookie, tcp_info(10, 10), before=SHUTDOWN)
                               for cookie in (1, 2, 3, 4)) + done)
    old_records = {record.cookie: record for record in old}
    old_states = {record.cookie: record.state for record in old}
    counters: dict = {}
    decoder = InetDecoder("tcp", byte_counters=counters)
    tick = TcpTick(decoder, old_records, old_states, old_counters)
    tick.chunk(message(1, tcp_info(10, 10), before=SHUTDOWN)  # unchanged
               + message(2, tcp_info(10, 10), 8, before=SHUTDOWN + MARK)  # state, other layout
               + message(3, tcp_info(10, 99), before=SHUTDOWN)  # received 89 bytes
               + message(6, tcp_info(1, 0), before=SHUTDOWN + MARK)  # new
               + message(7, tcp_info(1, 0), before=SHUTDOWN)  # new
               + done)
    assert decoder.done
    assert list(tick.records) == [1, 2, 3, 6, 7]  # 4 closed
    assert tick.records[1] is old_records[1]  # not decoded again
    assert tick.decoded == 4
    assert tick.states == {1: 1, 2: 8, 3: 1, 6: 1, 7: 1}
    assert counters == {1: 10 << 64 | 10, 2: 10 << 64 | 10, 3: 10 << 64 | 99, 6: 1 << 64,
                        7: 1 << 64}
    assert tick.records[2].state == 8 and tick.records[6].cookie == 6


# -- comparing ticks ----------------------------------------------------------------------------


def inet(inode: int, state: int = 1, port: int = 1000, cookie: int = 0) -> InetSocket:
    return InetSocket("tcp", socket.AF_INET, state, "127.0.0.1", port, "127.0.0.1", 7000, 0, 0,
                      0, inode, cookie=cookie)


def test_proc_records_are_keyed_by_inode_and_time_wait_by_endpoints() -> None:
    old, new = Table("tcp"), Table("tcp")
    old.add_inet([inet(11), inet(12), inet(13), inet(0, 6, 2000)], netlink=False)
    # 12 closed, 13 changed state, 14 opened; the TIME_WAIT row (inode 0) is the same socket
    # although /proc prints its timer anew: not a change.
    new.add_inet([inet(11), inet(13, 8), inet(0, 6, 2000), inet(14)], netlink=False)
    closed, changed = compare(old, new)
    assert [(change.kind, change.record.inode) for change in closed] == [(CLOSED, 12)]
    assert [(change.kind, change.record.inode) for change in changed] == [
        (STATE, 13), (OPENED, 14)]
    assert changed[0].old_state == 1 and changed[0].sent is None


def test_unchanged_ticks_compare_to_nothing() -> None:
    records = [inet(n, cookie=n + 100) for n in range(1, 50)]
    old, new = Table("tcp"), Table("tcp")
    old.add_inet(records, netlink=True)
    new.add_inet(list(records), netlink=True)
    counters = {n + 100: n << 64 | n for n in range(1, 50)}
    assert compare(old, new, counters, dict(counters)) == ([], [])


def test_traffic_only_where_the_counters_moved() -> None:
    records = [inet(n, cookie=n) for n in (1, 2, 3)]
    old, new = Table("tcp"), Table("tcp")
    old.add_inet(records, netlink=True)
    new.add_inet(records, netlink=True)
    closed, changed = compare(old, new, {1: 10 << 64, 2: 5 << 64 | 5, 3: 0},
                              {1: 10 << 64, 2: 905 << 64 | 15, 3: 0})
    assert closed == []
    assert [(c.kind, c.record.cookie, c.sent, c.received) for c in changed] == [
        (TRAFFIC, 2, 900, 10)]


def test_unix_records_change_by_socket_state() -> None:
    def unix(inode: int, socket_state: int, flags: int = 0) -> UnixSocket:
        return UnixSocket(1, socket_state, flags, inode, "/run/x")

    old, new = Table("unix"), Table("unix")
    old.add_unix([unix(5, 1, 0x10000), unix(6, 3), unix(0, 2)])
    new.add_unix([unix(5, 1, 0x10000), unix(6, 4), unix(0, 2)])
    closed, changed = compare(old, new)
    assert closed == [] and [(c.kind, c.record.inode, c.old_state) for c in changed] == [
        (STATE, 6, (3, 0))]


# -- the -p map, kept up to date -------------------------------------------------------------


def process(root: Path, pid: int, name: str, inodes: List[int]) -> None:
    fd = root / str(pid) / "fd"
    fd.mkdir(parents=True, exist_ok=True)
    for entry in fd.iterdir():
        entry.unlink()
    for number, inode in enumerate(inodes, 3):
        os.symlink(f"socket:[{inode}]", fd / str(number))
    (root / str(pid) / "cmdline").write_bytes(f"/usr/bin/{name}\0--flag\0".encode())


def test_incremental_owners_look_up_only_new_inodes(tmp_path: Path) -> None:
    process(tmp_path, 10, "alpha", [100, 101])
    process(tmp_path, 20, "beta", [101, 200])
    owners = IncrementalOwners(str(tmp_path))
    assert dict(owners.update([100, 101, 200, 0])) == {
        100: "10/alpha", 101: "10/alpha", 200: "20/beta"}  # the lowest pid owns a shared one
    assert owners.walks == 1
    owners.update([100, 101, 200])
    assert owners.walks == 1  # nothing new: no walk
    # beta opens 201, alpha closes 100; pid 30 starts with 300.
    process(tmp_path, 20, "beta", [101, 200, 201])
    process(tmp_path, 10, "alpha", [101])
    process(tmp_path, 30, "gamma", [300])
    assert dict(owners.update([101, 200, 201, 300])) == {
        101: "10/alpha", 200: "20/beta", 201: "20/beta", 300: "30/gamma"}
    assert owners.walks == 2
    # alpha exits: its entries go; 101 is still held by beta and found there.
    for entry in (tmp_path / "10" / "fd").iterdir():
        entry.unlink()
    (tmp_path / "10" / "fd").rmdir()
    (tmp_path / "10" / "cmdline").unlink()
    (tmp_path / "10").rmdir()
    assert owners.update([101, 200, 201, 300])[101] == "20/beta"
    # A socket no process holds is looked for twice, then left alone until it closes.
    walks = owners.walks
    for _ in range(4):
        owners.update([101, 200, 201, 300, 999])
    assert owners.walks == walks + 2 and 999 not in owners.owners
