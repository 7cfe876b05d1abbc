"""Micro-benchmarks of the hot paths on their own: sock_diag decoding, row formatting, -p inode map.

    python3 -m pytest benchmarks/test_micro.py --benchmark-enable            # timings
    python3 -m pytest benchmarks/test_micro.py                               # run each once
    NLST_MICRO_SOCKETS=10000 python3 -m pytest benchmarks/test_micro.py ...  # smaller inputs

The inputs are synthetic and built with `struct` here (not by the code under test): inet_diag
and unix_diag answers cut into 32 KiB chunks as the kernel sends them, and a fake /proc tree of
processes whose fd directories hold `socket:[N]` links. Every benchmark also checks what it got,
so a fast wrong answer fails. When `nlstat -ant` gets slower, these say which stage did.
"""

from __future__ import annotations

import io
import os
import socket
import struct
from collections import deque
from typing import Any, Iterator, List

import pytest

from nlstat import cli
from nlstat.backends.netlink.sockdiag import InetDecoder, decode_inet, decode_unix
from nlstat.env import Environment
from nlstat.format.sockets import InetRows, unix_renderer
from nlstat.model.sockets import TCP, InetSocket, UnixBatch
from nlstat.procmap import build_inode_map
from nlstat.resolve import Names

SOCKETS = int(os.environ.get("NLST_MICRO_SOCKETS", "100000"))
# Fake /proc: PROCESSES processes sharing FDS descriptors (all sockets but one in ten).
PROCESSES = 20
FDS = int(os.environ.get("NLST_MICRO_FDS", "20000"))

NLMSG_DONE = 3
SOCK_DIAG_BY_FAMILY = 20
NLM_F_MULTI = 2
CHUNK = 32768
NLMSGHDR = struct.Struct("=IHHII")
# struct inet_diag_msg: family, state, timer, retrans; sockid (be16 sport, be16 dport,
# be32 src[4], be32 dst[4], u32 if, u32 cookie[2]); expires, rqueue, wqueue, uid, inode.
INET_DIAG_MSG = struct.Struct("=BBBBHH16s16sIQIIIII")
SOCKID_PORTS = struct.Struct(">HH")
# struct unix_diag_msg: family, type, state, pad; ino; cookie[2].
UNIX_DIAG_MSG = struct.Struct("=BBBxIQ")
NLATTR = struct.Struct("=HH")
UNIX_DIAG_NAME = 0
UNIX_DIAG_PEER = 2


def nlmsg(payload: bytes, msg_type: int = SOCK_DIAG_BY_FAMILY, seq: int = 1) -> bytes:
    length = NLMSGHDR.size + len(payload)
    pad = (-length) % 4
    return NLMSGHDR.pack(length, msg_type, NLM_F_MULTI, seq, 4242) + payload + b"\0" * pad


def chunked(messages: Iterator[bytes]) -> List[bytes]:
    """Messages packed into <= 32 KiB receive buffers, ending with NLMSG_DONE, as a dump does."""
    chunks: List[bytes] = []
    current: List[bytes] = []
    size = 0
    for msg in messages:
        if size + len(msg) > CHUNK:
            chunks.append(b"".join(current))
            current, size = [], 0
        current.append(msg)
        size += len(msg)
    current.append(nlmsg(struct.pack("=i", 0), NLMSG_DONE))
    chunks.append(b"".join(current))
    return chunks


def v4(n: int) -> bytes:
    return n.to_bytes(4, "big") + b"\0" * 12


def inet_messages(count: int, family: int) -> Iterator[bytes]:
    """Established loopback connections as loadgen makes them: 127.1.x.y peers, a few listeners."""
    for i in range(count):
        if family == socket.AF_INET:
            src, dst = v4(0x7F000001), v4(0x7F010000 + i // 50)
        else:
            src = dst = socket.inet_pton(socket.AF_INET6, "::1")
        state = 10 if i < 4 else 1
        sport, dport = 9000 + (i % 7), 10000 + (i * 7919) % 55000
        if state == 10:
            dst, dport = b"\0" * 16, 0
        ports = SOCKID_PORTS.pack(sport, dport)
        sport_raw, dport_raw = struct.unpack("=HH", ports)
        body = INET_DIAG_MSG.pack(family, state, 0, 0, sport_raw, dport_raw, src, dst, 0,
                                  i + 1, 0, i % 3, 4096 if state == 10 else 0, 0,
                                  1_000_000 + i)
        yield nlmsg(body)


def unix_messages(count: int) -> Iterator[bytes]:
    for i in range(count):
        body = UNIX_DIAG_MSG.pack(socket.AF_UNIX, 1 if i % 2 else 2, 1, 2_000_000 + i, i + 1)
        attrs = b""
        if i % 10 == 0:
            name = b"\0nlst-bench/%d" % i
            attrs += NLATTR.pack(4 + len(name), UNIX_DIAG_NAME) + name
            attrs += b"\0" * ((-len(name)) % 4)
        attrs += NLATTR.pack(8, UNIX_DIAG_PEER) + struct.pack("=I", 2_000_000 + (i ^ 1))
        yield nlmsg(body + attrs)


@pytest.fixture(scope="module")
def tcp4_chunks() -> List[bytes]:
    return chunked(inet_messages(SOCKETS, socket.AF_INET))


@pytest.fixture(scope="module")
def tcp6_chunks() -> List[bytes]:
    return chunked(inet_messages(SOCKETS // 4, socket.AF_INET6))


@pytest.fixture(scope="module")
def unix_chunks() -> List[bytes]:
    return chunked(unix_messages(SOCKETS // 4))


@pytest.fixture(scope="module")
def tcp4_batches(tcp4_chunks: List[bytes]) -> List[List[InetSocket]]:
    """Records in the batches the socket mode hands the renderer: one per received chunk."""
    decoder = InetDecoder(TCP)
    return [decoder.chunk(chunk) for chunk in tcp4_chunks]


def query_for(args: List[str]) -> Any:
    env = Environment(stdout=io.BytesIO(), stderr=io.StringIO())
    query = cli.parse(args, env)
    assert not isinstance(query, int), env.stderr.getvalue()  # type: ignore[attr-defined]
    return query


def consume(iterator: Iterator[Any]) -> int:
    """Exhaust an iterator in C and return its length."""
    counter = iter(range(1 << 62))
    deque(zip(iterator, counter), maxlen=0)
    return next(counter)


# ------------------------------------------------------------------------------- decoder


def test_decode_inet_tcp4(benchmark: Any, tcp4_chunks: List[bytes]) -> None:
    count = benchmark(lambda: consume(decode_inet(tcp4_chunks, TCP)))
    assert count == SOCKETS
    first, last = next(decode_inet(tcp4_chunks, TCP)), list(decode_inet(tcp4_chunks[-1:], TCP))[-1]
    assert (first.state, first.local_address, first.local_port, first.send_q) == (
        10, "127.0.0.1", 9000, 0)  # LISTEN: Send-Q reads 0 as in /proc, not the backlog
    i = SOCKETS - 1
    assert last.remote_address == socket.inet_ntoa((0x7F010000 + i // 50).to_bytes(4, "big"))
    assert (last.remote_port, last.inode, last.recv_q) == (10000 + (i * 7919) % 55000,
                                                           1_000_000 + i, i % 3)


def test_inet_decoder_chunks_tcp4(benchmark: Any, tcp4_chunks: List[bytes]) -> None:
    """The chunk-at-a-time decoder the socket mode uses (a list per 32 KiB receive)."""

    def decode_all() -> int:
        decoder = InetDecoder(TCP)
        return sum(len(decoder.chunk(chunk)) for chunk in tcp4_chunks)

    assert benchmark(decode_all) == SOCKETS


def test_decode_inet_tcp6(benchmark: Any, tcp6_chunks: List[bytes]) -> None:
    count = benchmark(lambda: consume(decode_inet(tcp6_chunks, TCP)))
    assert count == SOCKETS // 4
    record = list(decode_inet(tcp6_chunks[:1], TCP))[5]
    assert (record.family, record.local_address, record.remote_address) == (
        socket.AF_INET6, "::1", "::1")


def test_decode_unix(benchmark: Any, unix_chunks: List[bytes]) -> None:
    count = benchmark(lambda: consume(decode_unix(unix_chunks)))
    assert count == SOCKETS // 4
    records = list(decode_unix(unix_chunks[:1]))
    assert records[0].path == "@nlst-bench/0" and records[1].path == ""
    assert records[0].peer_inode == 2_000_001


def proc_tcp_lines(count: int) -> List[str]:
    """/proc/net/tcp rows as tcp4_seq_show() prints them (the title left out)."""
    lines = []
    for i in range(count):
        local = (0x7F000001).to_bytes(4, "little").hex().upper()
        remote = (0x7F010000 + i // 50).to_bytes(4, "little").hex().upper()
        lines.append(
            "%4d: %s:%04X %s:%04X %02X %08X:%08X %02X:%08X %08X %5u %8d %lu %d %016x %u %u %u %u %d"
            % (i, local, 9000 + i % 16, remote, 10000 + (i * 7919) % 55000, 1, 0, i % 3, 0, 0,
               0, 1000, 0, 1_000_000 + i, 1, 0xFFFF888000000000 + i, 20, 4, 30, 10, -1))
    return lines


def proc_tcp_chunks(count: int) -> List[bytes]:
    """A /proc/net/tcp of `count` rows cut as the proc backend reads it (text_chunks())."""
    from nlstat.backends.procfs.sockets import text_chunks

    text = "  sl  local_address rem_address   st ...\n" + "\n".join(proc_tcp_lines(count)) + "\n"
    return list(text_chunks(io.BytesIO(text.encode())))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tcp_proc_chunks() -> List[bytes]:
    return proc_tcp_chunks(SOCKETS)


def test_parse_proc_tcp(benchmark: Any, tcp_proc_chunks: List[bytes]) -> None:
    """/proc/net/tcp chunks -> InetSocket records, as the proc backend of `-ant` parses them."""
    from nlstat.backends.procfs.sockets import parse_inet, split_chunk

    def parse_all() -> List[InetSocket]:
        records: List[InetSocket] = []
        for chunk in tcp_proc_chunks:
            first_line, lines = split_chunk(chunk)
            records += parse_inet(lines, TCP, socket.AF_INET, "", None, first_line)
        return records

    records = benchmark(parse_all)
    assert len(records) == SOCKETS
    last = records[-1]
    i = SOCKETS - 1
    assert (last.state, last.local_port, last.recv_q, last.uid, last.inode) == (
        1, 9000 + i % 16, i % 3, 1000, 1_000_000 + i)


# ------------------------------------------------------------------------------- formatter


def test_format_tcp4_numeric(benchmark: Any, tcp4_batches: List[List[InetSocket]]) -> None:
    query = query_for(["-ant"])
    names = Names(query.numeric_hosts, query.numeric_ports, query.numeric_users)

    def render_all() -> str:
        render = InetRows(query, names).renderer(TCP, socket.AF_INET)
        return "".join(map(render, tcp4_batches))

    text = benchmark(render_all)
    lines = text.splitlines()
    assert len(lines) == SOCKETS
    assert lines[0] == ("tcp        0      0 127.0.0.1:9000          0.0.0.0:*               "
                        "LISTEN     ")
    assert all(len(line) == 79 for line in lines[:1000])


def test_format_tcp4_extended_timers(
    benchmark: Any, tcp4_batches: List[List[InetSocket]]
) -> None:
    query = query_for(["-anteo"])
    names = Names(query.numeric_hosts, query.numeric_ports, query.numeric_users)

    def render_all() -> str:
        render = InetRows(query, names).renderer(TCP, socket.AF_INET)
        return "".join(map(render, tcp4_batches))

    lines = benchmark(render_all).splitlines()
    assert len(lines) == SOCKETS
    assert lines[5].endswith(" 1000005    off (0.00/0/0)")


def test_decode_and_format_tcp4(benchmark: Any, tcp4_chunks: List[bytes]) -> None:
    """The whole `-ant` pipeline minus the kernel and the write: what 100k sockets cost us."""
    query = query_for(["-ant"])
    names = Names(query.numeric_hosts, query.numeric_ports, query.numeric_users)

    def pipeline() -> int:
        render = InetRows(query, names).renderer(TCP, socket.AF_INET)
        decoder = InetDecoder(TCP)
        return sum(len(render(decoder.chunk(chunk)).encode()) for chunk in tcp4_chunks)

    size = benchmark(pipeline)
    assert size == 80 * SOCKETS


def test_format_unix(benchmark: Any, unix_chunks: List[bytes]) -> None:
    query = query_for(["-anx"])
    batches = [UnixBatch.of(decode_unix([chunk])) for chunk in unix_chunks[:-1]]
    batches.append(UnixBatch.of(decode_unix(unix_chunks[-1:])))
    render = unix_renderer(query)
    lines = benchmark(lambda: "".join(map(render, batches))).splitlines()
    assert len(lines) == SOCKETS // 4
    assert lines[0].startswith("unix  0      [ ]         DGRAM      CONNECTED     2000000 ")


# ------------------------------------------------------------------------ /proc/net/unix


@pytest.fixture(scope="module")
def unix_text_chunks() -> List[bytes]:
    """/proc/net/unix as unix_seq_show() prints it (SOCKETS // 4 lines), in text_chunks()."""
    from nlstat.backends.procfs.sockets import text_chunks

    kinds = (
        "00000002 00000000 00010000 0001 01",  # listener
        "00000003 00000000 00000000 0001 03",  # connected stream
        "00000002 00000000 00000000 0002 01",  # datagram
    )
    lines = [b"Num       RefCount Protocol Flags    Type St Inode Path\n"]
    for index in range(SOCKETS // 4):
        path = f" @nlst-bench/{index}" if index % 3 == 0 else ""
        lines.append(f"0000000000000000: {kinds[index % 3]} {3_000_000 + index:5d}{path}\n"
                     .encode())
    return list(text_chunks(io.BytesIO(b"".join(lines))))  # type: ignore[arg-type]


def test_parse_and_format_unix_text(benchmark: Any, unix_text_chunks: List[bytes]) -> None:
    """`-anx` from /proc minus the kernel and the write: parse, then render."""
    from nlstat.backends.procfs.sockets import UnixText

    render = unix_renderer(query_for(["-anx"]))

    def pipeline() -> List[str]:
        parser = UnixText("/proc/net/unix")
        return [render(parser.batch(chunk)) for chunk in unix_text_chunks]

    lines = "".join(benchmark(pipeline)).splitlines()
    assert len(lines) == SOCKETS // 4
    assert lines[0] == "unix  2      [ ACC ]     STREAM     LISTENING     3000000  @nlst-bench/0"
    assert lines[2].startswith("unix  2      [ ]         DGRAM                    3000002 ")


# --------------------------------------------------------------------------------- routes


def route_message(index: int) -> bytes:
    """RTM_NEWROUTE of a /32 as fib_dump_info() lays it out, in four shapes (gateway or not,
    metric or not) like benchmarks/loadgen.py's tables."""
    rtmsg = struct.pack("=BBBBBBBBI", socket.AF_INET, 32, 0, 0, 254, 4, 0, 1, 0)
    attrs = struct.pack("=HHI", 8, 15, 254)  # RTA_TABLE
    attrs += struct.pack("=HH", 8, 1) + (0xC6120100 + index).to_bytes(4, "big")  # RTA_DST
    if index % 5 == 0:
        attrs += struct.pack("=HHI", 8, 6, 10)  # RTA_PRIORITY
    if index % 3 == 0:
        attrs += struct.pack("=HH", 8, 5) + socket.inet_aton("198.18.0.2")  # RTA_GATEWAY
    attrs += struct.pack("=HHI", 8, 4, 2)  # RTA_OIF
    return nlmsg(rtmsg + attrs, msg_type=24)


def test_decode_and_format_routes(benchmark: Any) -> None:
    """`-rn` minus the kernel and the write: 100k routes of mixed shapes."""
    from nlstat.backends.netlink.routes import Ipv4Decoder
    from nlstat.format.routes import Ipv4Rows, route_layout

    chunks = chunked(route_message(index) for index in range(SOCKETS))

    def pipeline() -> int:
        decoder = Ipv4Decoder(lambda index: "bench0")
        rows = Ipv4Rows(route_layout(0), None)
        size = 0
        for chunk in chunks:
            decoder.feed(chunk)
            size += len("".join(rows.render_all(decoder.take())))
        return size

    assert benchmark(pipeline) > 0
    decoder = Ipv4Decoder(lambda index: "bench0")
    for chunk in chunks:
        decoder.feed(chunk)
    text = "".join(Ipv4Rows(route_layout(0), None).render_all(decoder.take())).splitlines()
    assert len(text) == SOCKETS
    assert text[0] == ("198.18.1.0      198.18.0.2      255.255.255.255 UGH       0 0          "
                       "0 bench0")
    assert text[1].split() == ["198.18.1.1", "0.0.0.0", "255.255.255.255", "UH", "0", "0", "0",
                               "bench0"]
    assert decoder.fixed  # the chunks were split by the expression


# ------------------------------------------------------------------------------- inode map


@pytest.fixture(scope="module")
def fake_proc(tmp_path_factory: pytest.TempPathFactory) -> str:
    """PROCESSES processes holding FDS descriptors: 9 in 10 sockets, the rest files and pipes."""
    root = tmp_path_factory.mktemp("proc")
    per_process = FDS // PROCESSES
    inode = 5_000_000
    for p in range(PROCESSES):
        pid = str(1000 + p)
        fd_dir = root / pid / "fd"
        fd_dir.mkdir(parents=True)
        (root / pid / "cmdline").write_bytes(b"/usr/bin/python3\0worker.py\0")
        for fd in range(per_process):
            if fd % 10 == 9:
                target = f"pipe:[{9_000_000 + fd}]" if fd % 20 == 9 else "/dev/null"
            else:
                target = f"socket:[{inode}]"
                inode += 1
            os.symlink(target, fd_dir / str(fd))
    for name in ("self", "net", "sys"):
        (root / name).mkdir()
    return str(root)


def test_build_inode_map(benchmark: Any, fake_proc: str) -> None:
    result = benchmark(build_inode_map, fake_proc)
    per_process = FDS // PROCESSES
    sockets = PROCESSES * (per_process - per_process // 10)
    assert len(result.owners) == sockets
    assert result.owners[5_000_000] == "1000/python3"
    assert not result.denied
