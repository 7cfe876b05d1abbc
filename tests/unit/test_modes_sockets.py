"""modes/sockets.py: tcp over both families from one dump prints as two dumps would."""

from __future__ import annotations

import _socket
import io
import struct
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import pytest

from nlstat.backends.netlink.sockdiag import INET_MSG_V4, INET_MSG_V6, InetDecoder, decode_inet
from nlstat.backends.sockets import InetTable
from nlstat.cli import parse
from nlstat.env import Environment
from nlstat.format.sockets import InetRows
from nlstat.kernel.sockdiag import SOCK_DIAG_BY_FAMILY, TCPDIAG_GETSOCK
from nlstat.modes import sockets as mode
from nlstat.query import Query
from nlstat.resolve import Names

DONE = struct.pack("=IHHIIi", 20, 3, 2, 1, 0, 0)


def message(index: int, family: int, msg_type: int) -> bytes:
    """An ESTABLISHED tcp socket's inet_diag_msg, numbered so that every row differs."""
    if family == _socket.AF_INET:
        layout, src, dst = INET_MSG_V4, bytes([198, 18, index >> 8 & 255, index & 255]), \
            bytes([198, 19, 0, 1])
    else:
        layout = INET_MSG_V6
        src = _socket.inet_pton(_socket.AF_INET6, f"2001:db8::{index:x}")
        dst = _socket.inet_pton(_socket.AF_INET6, "2001:db8::ffff")
    sport = struct.unpack("=H", struct.pack(">H", 1024 + index))[0]
    dport = struct.unpack("=H", struct.pack(">H", 443))[0]
    return layout.pack(88, msg_type, 2, 1, 0, family, 1, 0, 0, sport, dport, src, dst,
                       0, index, 0, index % 3, 0, 0, 5000 + index)


def chunks_of(messages: List[bytes], per_chunk: int = 40) -> List[bytes]:
    stream = messages + [DONE]
    return [b"".join(stream[i : i + per_chunk]) for i in range(0, len(stream), per_chunk)]


def kinds(count: int) -> List[int]:
    # Mostly IPv4, an IPv6 socket every seventh row, as the hash tables mix them.
    return [_socket.AF_INET6 if i % 7 == 3 else _socket.AF_INET for i in range(count)]


def expected(query: Query, families: List[int], shown: Tuple[int, ...] = (2, 10)) -> bytes:
    """Two dumps, one per family, rendered one after the other: what netstat shows."""
    text = b""
    for family in shown:
        bodies = [message(i, f, SOCK_DIAG_BY_FAMILY) for i, f in enumerate(families)
                  if f == family]
        records = list(decode_inet(chunks_of(bodies), "tcp"))
        render = InetRows(query, Names(True, True, True)).renderer("tcp", family)
        text += render(records).encode()
    return text


def both_table(families: List[int]) -> InetTable:
    chunks = chunks_of([message(i, f, TCPDIAG_GETSOCK) for i, f in enumerate(families)])
    decoder = InetDecoder("tcp", False, _socket.AF_INET, TCPDIAG_GETSOCK)
    rest: Iterator[bytes] = iter(chunks[1:])
    return InetTable(decoder.chunk(chunks[0]), decoder, rest, "/proc/net/tcp")


@pytest.mark.parametrize("count", [5, 300, 2000])
def test_both_families_from_one_dump_print_as_two_dumps(count: int) -> None:
    """IPv4 rows first, then the IPv6 rows, each in the kernel's order (2000 rows: 50 chunks,
    the formatting helper takes part)."""
    query = parse(["-ant"], Environment())
    assert isinstance(query, Query)
    families = kinds(count)
    stdout = io.BytesIO()
    out = mode.Output(Environment(stdout=stdout))
    assert mode._write_tcp_both(out, both_table(families), InetRows(query, Names(True, True, True)))
    assert stdout.getvalue() == expected(query, families)


def test_too_many_ipv6_rows_are_left_to_their_own_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past HELD_IPV6_LIMIT the IPv6 rows are not held: the IPv4 rows are written and the
    caller is told to ask for IPv6 on its own."""
    monkeypatch.setattr(mode, "HELD_IPV6_LIMIT", 100)
    query = parse(["-ant"], Environment())
    assert isinstance(query, Query)
    families = kinds(2000)
    stdout = io.BytesIO()
    out = mode.Output(Environment(stdout=stdout))
    rows = InetRows(query, Names(True, True, True))
    assert not mode._write_tcp_both(out, both_table(families), rows)
    assert stdout.getvalue() == expected(query, families, (_socket.AF_INET,))


def test_a_refused_dump_of_both_families_falls_back_to_one_family_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A kernel that refuses TCPDIAG_GETSOCK: tcp_both() says so with None, and each family
    is then asked for on its own (SocketSource.inet)."""
    from nlstat.backends.sockets import SocketSource
    from nlstat.errors import BackendUnavailable

    class Refusing:
        def tcp_both_stream(self, states: int, want_info: bool, bytecode: bytes = b"",
                            want_cgroup: bool = False,
                            ports: Tuple[int, int] = (0, 0)) -> None:
            raise BackendUnavailable("netlink: Operation not supported", 95)

    query = parse(["-ant"], Environment())
    assert isinstance(query, Query)
    source = SocketSource(query, Environment(stderr=io.StringIO()))
    monkeypatch.setattr(source, "_sockdiag", lambda: Refusing())
    assert source.tcp_both() is None
    proc_only = SocketSource(query, Environment(backend="proc"))
    assert proc_only.tcp_both() is None  # NLSTAT_BACKEND=proc never asks netlink


@pytest.mark.parametrize(
    ("sockstat6", "in_use"),
    [("TCP6: inuse 25000\nUDP6: inuse 3\n", 25000), ("TCP6: inuse 7\n", 7), ("garbage", 0),
     (None, 0)],
)
def test_many_ipv6_sockets_mean_one_dump_per_family(
    tmp_path: Path, sockstat6: Optional[str], in_use: int
) -> None:
    """/proc/net/sockstat6 says how many IPv6 tcp sockets are in use; past
    ONE_WALK_IPV6_LIMIT their rows would be too many to hold, so tcp_both() declines before
    asking the kernel (a missing file means no IPv6)."""
    from nlstat.backends.sockets import ONE_WALK_IPV6_LIMIT, SocketSource

    (tmp_path / "net").mkdir()
    if sockstat6 is not None:
        (tmp_path / "net" / "sockstat6").write_text(sockstat6)
    query = parse(["-ant"], Environment())
    assert isinstance(query, Query)
    source = SocketSource(query, Environment(proc_root=str(tmp_path), replay=False))
    assert source._tcp6_in_use() == in_use
    if in_use > ONE_WALK_IPV6_LIMIT:
        assert source.tcp_both() is None
