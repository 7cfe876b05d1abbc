"""sock_diag decoders on captured kernel answers, checked against pyroute2's own parse."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyroute2.netlink import diag as pyroute2_diag  # a declared dependency

from nlstat.backends.netlink.nlsocket import NLMSGHDR, dump_ended, read_chunks
from nlstat.backends.netlink.sockdiag import (
    INET_MSG_V4,
    INET_MSG_V6,
    STATES_ALL,
    _unix_path,
    decode_inet,
    decode_unix,
    inet_request,
    port_table,
    unix_request,
)
from nlstat.errors import BackendUnavailable
from nlstat.kernel.sockdiag import SOCK_DIAG_BY_FAMILY, TCP_LISTEN
from nlstat.model.sockets import InetSocket

DATA = Path(__file__).resolve().parent.parent / "data" / "sockdiag"


def reference(name: str) -> list:
    """pyroute2's parse of the same bytes: the independent decoder."""
    data = (DATA / name).read_bytes()
    return [m for m in pyroute2_diag.MarshalDiag().parse(data) if m["header"]["type"] == 20]


@pytest.mark.parametrize(
    ("name", "protocol"),
    [("tcp4.bin", "tcp"), ("tcp6.bin", "tcp"), ("udp4.bin", "udp"), ("udp6.bin", "udp")],
)
def test_inet_records_equal_pyroute2(name: str, protocol: str) -> None:
    ours = list(decode_inet(read_chunks(str(DATA / name)), protocol, want_info=True))
    theirs = reference(name)
    assert len(ours) == len(theirs) > 0
    for record, msg in zip(ours, theirs):
        assert record.family == msg["idiag_family"]
        assert record.state == msg["idiag_state"]
        assert record.local_address == msg["idiag_src"]
        assert record.remote_address == msg["idiag_dst"]
        assert record.local_port == msg["idiag_sport"]
        assert record.remote_port == msg["idiag_dport"]
        assert record.recv_q == msg["idiag_rqueue"]
        # /proc prints 0 as a listener's Send-Q; the diag message carries the backlog limit.
        expected_send_q = 0 if msg["idiag_state"] == TCP_LISTEN and protocol == "tcp" else (
            msg["idiag_wqueue"]
        )
        assert record.send_q == expected_send_q
        assert record.uid == msg["idiag_uid"]
        assert record.inode == msg["idiag_inode"]
        assert record.cookie == msg["idiag_cookie"]
        assert record.timer == msg["idiag_timer"]
        assert record.timer_ms == msg["idiag_expires"]
        info = msg.get_attr("INET_DIAG_INFO")
        if info is not None:
            assert record.retransmits == info["tcpi_retransmits"]
            assert record.probes == info["tcpi_probes"]


def test_captured_population_is_what_was_built() -> None:
    """The capture (tests/data/sockdiag, made by a script in a private namespace) holds a
    listener on 127.0.0.1:6000 with a connection carrying 777 unread bytes."""
    records = list(decode_inet(read_chunks(str(DATA / "tcp4.bin")), "tcp"))
    listeners = [r for r in records if r.state == TCP_LISTEN]
    assert [(r.local_address, r.local_port) for r in listeners] == [("127.0.0.1", 6000)]
    assert any(r.remote_port == 6000 and r.state == 1 for r in records)
    assert any(r.local_port == 6000 and r.recv_q == 777 for r in records)


def test_unix_records_equal_pyroute2() -> None:
    ours = list(decode_unix(read_chunks(str(DATA / "unix.bin"))))
    theirs = reference("unix.bin")
    assert len(ours) == len(theirs) > 0
    for record, msg in zip(ours, theirs):
        assert record.type == msg["udiag_type"]
        assert record.state == msg["udiag_state"]
        assert record.inode == msg["udiag_ino"]
        assert record.cookie == msg["udiag_cookie"]
        assert record.peer_inode == (msg.get_attr("UNIX_DIAG_PEER") or 0)
    paths = {r.path for r in ours}
    assert "@nlstat-abstract" in paths
    assert "/tmp/lead/dg.sock" in paths


def test_missing_diag_handler_is_a_refusal_not_an_empty_table() -> None:
    # CONFIG_INET_RAW_DIAG=n: the kernel answers a raw dump with NLMSG_DONE carrying -ENOENT.
    with pytest.raises(BackendUnavailable) as caught:
        list(decode_inet(read_chunks(str(DATA / "raw4.bin")), "raw"))
    assert caught.value.errno == 2


def test_nlmsg_error_raises() -> None:
    error = NLMSGHDR.pack(36, 2, 0, 1, 0) + struct.pack("=i", -22) + NLMSGHDR.pack(16, 20, 1, 1, 0)
    with pytest.raises(BackendUnavailable) as caught:
        list(decode_inet([error], "tcp"))
    assert caught.value.errno == 22


def synthetic(family: int, src: bytes, dst: bytes, sport: int, dport: int, state: int) -> bytes:
    layout = INET_MSG_V4 if family == socket.AF_INET else INET_MSG_V6
    # Ports travel big-endian inside a native-endian message.
    swapped_s = struct.unpack("=H", struct.pack(">H", sport))[0]
    swapped_d = struct.unpack("=H", struct.pack(">H", dport))[0]
    return layout.pack(
        88, SOCK_DIAG_BY_FAMILY, 2, 1, 0, family, state, 2, 0, swapped_s, swapped_d,
        src, dst, 0, 0x1122334455, 7000, 3, 4, 1000, 99,
    )


def test_known_bytes_decode_to_known_record() -> None:
    done = NLMSGHDR.pack(20, 3, 2, 1, 0) + struct.pack("=i", 0)
    v4 = synthetic(socket.AF_INET, socket.inet_aton("198.18.0.1"), socket.inet_aton("0.0.0.0"),
                   22, 0, TCP_LISTEN)
    mapped = socket.inet_pton(socket.AF_INET6, "::ffff:127.0.0.1")
    v6 = synthetic(socket.AF_INET6, mapped, socket.inet_pton(socket.AF_INET6, "2001:db8::1"),
                   5555, 443, 1)
    (first,) = list(decode_inet([v4 + done], "tcp"))
    assert first.local_address == "198.18.0.1" and first.local_port == 22
    assert first.send_q == 0 and first.recv_q == 3 and first.uid == 1000 and first.inode == 99
    assert first.cookie == 0x1122334455 and first.timer == 2 and first.timer_ms == 7000
    (second,) = list(decode_inet([v6, done], "tcp"))  # messages may span chunks
    assert second.local_address == "::ffff:127.0.0.1" and second.local_port == 5555
    assert second.remote_address == "2001:db8::1" and second.remote_port == 443
    assert second.send_q == 4
    (raw,) = list(decode_inet([v4 + done], "raw"))
    assert raw.remote_port == 0  # /proc/net/raw always prints remote port 0


def test_port_swap_table() -> None:
    native = struct.unpack("=H", struct.pack(">H", 0x1F90))[0]
    table = port_table()
    assert len(table) == 65536 and table is port_table()  # built once
    assert table[native] == 0x1F90
    assert list(table) == [socket.ntohs(native) for native in range(65536)]


def test_requests_have_kernel_layouts() -> None:
    request = inet_request("raw", socket.AF_INET6, STATES_ALL)
    assert len(request) == 56
    family, protocol, ext, raw_protocol, states = struct.unpack_from("=BBBBI", request)
    assert (family, protocol, ext, raw_protocol, states) == (10, 255, 0, 255, STATES_ALL)
    assert struct.unpack_from("=BBBBI", inet_request("tcp", 2, 1 << 10, True))[2] == 2
    assert len(unix_request()) == 24


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (b"/tmp/x.sock\0", "/tmp/x.sock"),
        (b"\0abstract", "@abstract"),
        (b"\0a\0b", "@a@b"),
        (b"", ""),
        (b"/tmp/with space\0", "/tmp/with space"),
    ],
)
def test_unix_path_text_is_procs(name: bytes, text: str) -> None:
    assert _unix_path(name) == text


@pytest.mark.parametrize("name", ["tcp4.bin", "udp6.bin", "unix.bin", "raw4.bin"])
def test_dump_ended_only_on_the_last_captured_chunk(name: str) -> None:
    """The tail check sees NLMSG_DONE (also one carrying -ENOENT) on the last chunk only."""
    chunks = list(read_chunks(str(DATA / name)))
    assert [dump_ended(chunk) for chunk in chunks] == [False] * (len(chunks) - 1) + [True]


def test_dump_ended_on_a_refusal_and_a_runt() -> None:
    error = NLMSGHDR.pack(36, 2, 0, 1, 0) + struct.pack("=i", -1) + NLMSGHDR.pack(16, 20, 1, 1, 0)
    assert dump_ended(error)
    assert dump_ended(b"\x10\0\0")
    assert dump_ended(NLMSGHDR.pack(16, 3, 2, 1, 0))  # NLMSG_DONE without its errno
    # A message whose tail is 20 bytes of anything else is not the end.
    other = synthetic(socket.AF_INET, b"\x7f\0\0\x01" + bytes(12), bytes(16), 80, 0, TCP_LISTEN)
    assert not dump_ended(other)


def expected_record(message: bytes, protocol: str) -> tuple:
    """What one inet_diag message should decode to, read field by field with the message
    layouts (an independent path from the decoder's per-chunk loop)."""
    family = message[16]
    layout = INET_MSG_V4 if family == socket.AF_INET else INET_MSG_V6
    (_l, _t, _f, _s, _p, family, state, timer, retrans, sport, dport, src, dst, ifindex, cookie,
     expires, rqueue, wqueue, uid, inode) = layout.unpack_from(message)
    text = socket.inet_ntoa if family == socket.AF_INET else (
        lambda a: socket.inet_ntop(socket.AF_INET6, a))
    retransmits = probes = 0
    if protocol == "tcp":
        wqueue = 0 if state == TCP_LISTEN else wqueue
        retransmits, probes = (retrans, 0) if timer == 1 else (0, retrans)
    return InetSocket(
        protocol=protocol, family=family, state=state, local_address=text(src),
        local_port=socket.ntohs(sport), remote_address=text(dst),
        remote_port=0 if protocol == "raw" else socket.ntohs(dport), recv_q=rqueue,
        send_q=wqueue, uid=uid, inode=inode, timer=timer, timer_ms=expires,
        retransmits=retransmits, probes=probes, cookie=cookie, interface=ifindex)


def with_attributes(message: bytes, extra: int) -> bytes:
    """The message grown by `extra` bytes of attributes, its length field to match."""
    grown = message + bytes(extra)
    return struct.pack("=I", len(grown)) + grown[4:]


def with_timer(message: bytes, timer: int, retrans: int) -> bytes:
    return message[:18] + bytes([timer, retrans]) + message[20:]  # idiag_timer, idiag_retrans


_V4 = st.builds(lambda s, d, sp, dp, state, timer, retrans: with_timer(
    synthetic(socket.AF_INET, s, d, sp, dp, state), timer, retrans),
    st.binary(min_size=4, max_size=4), st.binary(min_size=4, max_size=4),
    st.integers(0, 65535), st.integers(0, 65535), st.integers(0, 12), st.integers(0, 4),
    st.integers(0, 255))
_V6 = st.builds(lambda s, d, sp, dp, state: synthetic(socket.AF_INET6, s, d, sp, dp, state),
                st.binary(min_size=16, max_size=16), st.binary(min_size=16, max_size=16),
                st.integers(0, 65535), st.integers(0, 65535), st.integers(0, 12))
_MESSAGES = st.lists(
    st.tuples(st.one_of(_V4, _V6), st.sampled_from([0, 4, 8, 36])), min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(_MESSAGES, st.sampled_from(["tcp", "udp", "raw"]), st.booleans(), st.integers(1, 30))
def test_any_messages_decode_as_read_one_by_one(
    messages: list, protocol: str, noop_inside: bool, per_chunk: int
) -> None:
    """Families mixed in a chunk, attributes of any size, an NLMSG_NOOP among the records,
    any cut into chunks: every record is what its own message says, in order."""
    bodies = [with_attributes(message, extra) for message, extra in messages]
    noop = NLMSGHDR.pack(16, 1, 0, 1, 0)
    if noop_inside:
        bodies.insert(len(bodies) // 2, noop)
    done = NLMSGHDR.pack(20, 3, 2, 1, 0) + struct.pack("=i", 0)
    stream = bodies + [done]
    chunks = [b"".join(stream[i : i + per_chunk]) for i in range(0, len(stream), per_chunk)]
    decoded = [tuple(record) for record in decode_inet(chunks, protocol)]
    assert decoded == [expected_record(body, protocol) for body in bodies if body != noop]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 400))
def test_any_bytes_end_in_records_or_a_refusal(data: bytes, cut: int) -> None:
    """Whatever a saved answer holds, decoding ends, with records or BackendUnavailable."""
    try:
        list(decode_inet([data[:cut], data[cut:]], "tcp"))
    except BackendUnavailable:
        pass


@settings(max_examples=150, deadline=None)
@given(_MESSAGES, st.integers(1, 30))
def test_dump_of_both_families_splits_them_in_order(messages: list, per_chunk: int) -> None:
    """TCPDIAG_GETSOCK answers for both families in one walk: a decoder for IPv4 returns the
    IPv4 records and keeps the IPv6 ones in `others`, each family in the kernel's order."""
    from nlstat.backends.netlink.sockdiag import InetDecoder
    from nlstat.kernel.sockdiag import TCPDIAG_GETSOCK

    bodies = [with_attributes(message, extra) for message, extra in messages]
    compat = [body[:4] + struct.pack("=H", TCPDIAG_GETSOCK) + body[6:] for body in bodies]
    stream = compat + [NLMSGHDR.pack(20, 3, 2, 1, 0) + struct.pack("=i", 0)]
    chunks = [b"".join(stream[i : i + per_chunk]) for i in range(0, len(stream), per_chunk)]
    decoder = InetDecoder("tcp", False, socket.AF_INET, TCPDIAG_GETSOCK)
    ipv4 = [tuple(record) for chunk in chunks for record in decoder.chunk(chunk)]
    assert decoder.done
    expected = [expected_record(body, "tcp") for body in bodies]
    assert ipv4 == [e for e in expected if e[1] == socket.AF_INET]
    assert [tuple(r) for r in decoder.others] == [e for e in expected if e[1] != socket.AF_INET]


def test_dump_of_both_families_has_the_kernels_layout() -> None:
    from nlstat.backends.netlink.sockdiag import tcp_both_request

    request = tcp_both_request(1 << TCP_LISTEN, True)
    assert len(request) == 60  # sizeof(struct inet_diag_req)
    assert struct.unpack_from("=BBBB", request) == (0, 0, 0, 2)  # INET_DIAG_INFO asked
    assert struct.unpack_from("=II", request, 52) == (1 << TCP_LISTEN, 0)
