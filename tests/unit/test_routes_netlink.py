"""The RTM_GETROUTE decoders on captured kernel answers (tests/data/routes, made by
tests/routes_support.py) and on synthetic dumps, checked against pyroute2's parse of the same
bytes, against the kernel's own /proc files captured at the same moment, and against the
one-message-at-a-time decoder (the expression-split fast path must not change a single row)."""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyroute2.netlink.rtnl import marshal as pyroute2_marshal  # a declared dependency

from nlstat.backends.netlink import routes6 as netlink_routes6
from nlstat.backends.netlink.routes import (
    NOT_FIXED,
    Ipv4Decoder,
    _decode_route4,
    decode_ipv4,
)
from nlstat.backends.netlink.routes6 import decode_ipv6
from nlstat.backends.procfs.routes import read_ipv4, read_ipv6
from nlstat.cscan import to_s32
from nlstat.errors import BackendUnavailable
from nlstat.kernel import rtnetlink as rt
from nlstat.model.routes import Route, Route6
from tests.routes_support import DATA, read_links

REPO = Path(__file__).resolve().parents[2]

NLMSGHDR = struct.Struct("=IHHII")
RTMSG = struct.Struct("=BBBBBBBBI")


def links() -> Dict[int, str]:
    return read_links(DATA)


def ifname(index: int) -> str:
    return links().get(index, "*")


def captured(name: str) -> bytes:
    return (DATA / name).read_bytes()


# -- an independent reading of the same bytes ------------------------------------------------


def pyroute2_messages(data: bytes) -> List[object]:
    return [m for m in pyroute2_marshal.MarshalRtnl().parse(data) if m["header"]["type"] == 24]


def expected_ipv4_rows(data: bytes) -> List[Tuple[object, ...]]:
    """fib_route_seq_show()'s rules (net/ipv4/fib_trie.c) applied to pyroute2's parse."""
    rows = []
    for msg in pyroute2_messages(data):
        table = msg.get_attr("RTA_TABLE") or msg["table"]
        if table != rt.RT_TABLE_MAIN or msg["type"] in (rt.RTN_BROADCAST, rt.RTN_MULTICAST):
            continue
        gateway = msg.get_attr("RTA_GATEWAY")
        oif = msg.get_attr("RTA_OIF")
        multipath = msg.get_attr("RTA_MULTIPATH")
        if multipath:
            gateway = multipath[0].get_attr("RTA_GATEWAY")
            oif = multipath[0]["oif"]
        metrics = msg.get_attr("RTA_METRICS")
        advmss = window = rtt = 0
        if metrics is not None:
            advmss = metrics.get_attr("RTAX_ADVMSS") or 0
            window = metrics.get_attr("RTAX_WINDOW") or 0
            rtt = metrics.get_attr("RTAX_RTT") or 0
        flags = rt.RTF_UP
        if msg["type"] in (rt.RTN_UNREACHABLE, rt.RTN_PROHIBIT):
            flags |= rt.RTF_REJECT
        if gateway:
            flags |= rt.RTF_GATEWAY
        if msg["dst_len"] == 32:
            flags |= rt.RTF_HOST
        mask = (0xFFFFFFFF << (32 - msg["dst_len"])) & 0xFFFFFFFF if msg["dst_len"] else 0
        rows.append((
            msg.get_attr("RTA_DST") or "0.0.0.0",
            socket.inet_ntoa(mask.to_bytes(4, "big")),
            gateway or "0.0.0.0",
            flags,
            to_s32(msg.get_attr("RTA_PRIORITY") or 0),
            to_s32(advmss + 40) if advmss else 0,
            to_s32(window),
            rtt >> 3,
            ifname(oif) if oif else "*",
        ))
    return rows


def row4(route: Route) -> Tuple[object, ...]:
    d = route.data
    return (route.destination, d.genmask, d.gateway, d.flags, d.metric, d.mtu, d.window, d.irtt,
            d.iface)


# -- IPv4 ----------------------------------------------------------------------------------


def test_ipv4_capture_matches_pyroute2() -> None:
    data = captured("ipv4.bin")
    routes = decode_ipv4([data], ifname)
    assert [row4(r) for r in routes] == expected_ipv4_rows(data)
    assert len(routes) > 10


def test_ipv4_capture_matches_proc_route() -> None:
    """The dump, decoded, is /proc/net/route captured right after it, row for row."""
    routes = decode_ipv4([captured("ipv4.bin")], ifname)
    proc = read_ipv4(str(DATA / "proc" / "net" / "route"))
    assert proc.error is None
    assert [(r.destination, r.data[:10]) for r in routes] == [
        (r.destination, r.data[:10]) for r in proc.routes
    ]


def test_ipv4_capture_covers_the_cases() -> None:
    routes = decode_ipv4([captured("ipv4.bin")], ifname)
    by_destination = {}
    for route in routes:
        by_destination.setdefault(route.destination, []).append(route.data)
    # Reject routes: no device, RTF_REJECT; a blackhole is a plain host route on "*".
    assert by_destination["198.18.7.7"][0].flags == rt.RTF_UP | rt.RTF_REJECT | rt.RTF_HOST
    assert by_destination["198.18.8.0"][0].iface == "*"
    assert by_destination["198.18.9.9"][0].flags == rt.RTF_UP | rt.RTF_HOST
    # advmss 1360 -> MTU column 1400; rtt 100 ms -> irtt 100.
    metrics = by_destination["198.18.10.0"][0]
    assert (metrics.mtu, metrics.window, metrics.irtt) == (1400, 65535, 100)
    # u32 window and priority print as netstat's %d reads them.
    assert by_destination["198.18.17.0"][0].window == -1
    assert by_destination["198.18.17.0"][0].metric == -1
    # Multipath: the first next hop, even a dead one.
    assert by_destination["198.18.18.0"][0].iface == "vdown"
    # Other tables, broadcast and multicast entries are not listed; a local route in main is.
    assert "198.18.13.0" not in by_destination
    assert "198.18.15.255" not in by_destination
    assert "224.1.0.0" not in by_destination
    assert by_destination["198.18.14.1"][0].flags == rt.RTF_UP | rt.RTF_HOST


def message4(
    destination: str,
    dst_len: int = 32,
    gateway: Optional[str] = "198.18.0.2",
    oif: int = 3,
    table: int = rt.RT_TABLE_MAIN,
    rtm_type: int = rt.RTN_UNICAST,
    priority: Optional[int] = None,
    seq: int = 7,
    with_table_attr: bool = True,
) -> bytes:
    """One RTM_NEWROUTE message laid out as fib_dump_info() writes it."""
    attrs = b""
    if with_table_attr:
        attrs += struct.pack("=HHI", 8, rt.RTA_TABLE, table)
    if dst_len:
        attrs += struct.pack("=HH", 8, rt.RTA_DST) + socket.inet_aton(destination)
    if priority is not None:
        attrs += struct.pack("=HHI", 8, rt.RTA_PRIORITY, priority)
    if gateway is not None:
        attrs += struct.pack("=HH", 8, rt.RTA_GATEWAY) + socket.inet_aton(gateway)
    if oif:
        attrs += struct.pack("=HHI", 8, rt.RTA_OIF, oif)
    body = RTMSG.pack(socket.AF_INET, dst_len, 0, 0, min(table, 252) if table > 255 else table,
                      3, 0, rtm_type, 0) + attrs
    return NLMSGHDR.pack(16 + len(body), rt.RTM_NEWROUTE, 2, seq, 1234) + body


DONE = NLMSGHDR.pack(20, 3, 2, 7, 1234) + b"\0\0\0\0"


def slow_rows(messages: List[bytes]) -> List[Route]:
    rows = []
    for message in messages:
        route = _decode_route4(message, 0, len(message), ifname)
        if route is not None:
            rows.append(route)
    return rows


def host(index: int) -> str:
    return socket.inet_ntoa((0xC6124000 + index).to_bytes(4, "big"))


@pytest.mark.parametrize("chunk_size", [60 * 7, 60 * 100, 32768])
def test_mixed_chunks_give_the_rows_of_the_plain_decoder(chunk_size: int) -> None:
    """Uniform stretches, stretches with one odd message in them, shapes changing within a
    chunk, other tables, rows without RTA_DST and RTA_TABLE, and chunk borders anywhere."""
    messages: List[bytes] = [message4("0.0.0.0", dst_len=0, gateway="198.18.0.254")]
    messages += [message4(host(i)) for i in range(600)]
    messages += [message4(host(i), gateway="198.18.0.9" if i % 3 else "198.18.0.2")
                 for i in range(600, 900)]
    messages += [message4(host(i), table=100 if i % 50 == 0 else rt.RT_TABLE_MAIN)
                 for i in range(900, 1300)]
    messages += [message4(host(i), rtm_type=rt.RTN_BROADCAST if i % 7 == 0 else rt.RTN_UNICAST)
                 for i in range(1300, 1400)]
    messages += [message4(host(i), dst_len=24 if i % 11 == 0 else 32) for i in range(1400, 1600)]
    messages += [message4(host(i), with_table_attr=False) for i in range(1600, 1620)]
    messages += [message4(host(i), priority=i) for i in range(1620, 1700)]
    messages += [message4(host(i), table=1000) for i in range(1700, 1720)]
    stream = b"".join(messages) + DONE
    # The kernel never splits a message across recv() chunks.
    chunks: List[bytes] = []
    current = b""
    for message in messages + [DONE]:
        if current and len(current) + len(message) > chunk_size:
            chunks.append(current)
            current = b""
        current += message
    chunks.append(current)
    assert b"".join(chunks) == stream
    fast = decode_ipv4(chunks, ifname)
    assert [tuple(r) for r in fast] == [tuple(r) for r in slow_rows(messages)]
    broadcasts = sum(1 for i in range(1300, 1400) if i % 7 == 0)
    assert len(fast) == 1 + 600 + 300 + 392 + (100 - broadcasts) + 200 + 20 + 80


def metrics_attr(advmss: int, count: int) -> bytes:
    """RTA_METRICS holding RTAX_ADVMSS `count` times: 4 + 8 * count bytes."""
    inner = struct.pack("=HHI", 8, rt.RTAX_ADVMSS, advmss) * count
    return struct.pack("=HH", 4 + len(inner), rt.RTA_METRICS) + inner


def with_attr(message: bytes, attr: bytes) -> bytes:
    (length,) = struct.unpack_from("=I", message)
    return struct.pack("=I", length + len(attr)) + message[4:] + attr


def decode_chunks(chunks: List[bytes]) -> Tuple[List[Route], Ipv4Decoder]:
    decoder = Ipv4Decoder(ifname)
    rows: List[Route] = []
    for chunk in chunks:
        done = decoder.feed(chunk)
        rows += decoder.take()
        if done:
            break
    return rows, decoder


def test_fixed_chunks_are_split_by_the_expression() -> None:
    """A chunk of fixed-layout messages (short metrics included) takes the one-expression path
    and gives the plain decoder's rows; the next chunk, with NLMSG_DONE, goes message by
    message."""
    messages = [message4(host(i), priority=i % 3 or None) for i in range(300)]
    messages += [with_attr(message4(host(i)), metrics_attr(1360, 4)) for i in range(300, 320)]
    rows, decoder = decode_chunks([b"".join(messages), DONE])
    assert [tuple(r) for r in rows] == [tuple(r) for r in slow_rows(messages)]
    assert len(decoder.fixed) == 4 and not decoder.known
    assert rows[310].data.mtu == 1400


def test_chunks_the_expression_cannot_tile_go_message_by_message() -> None:
    """An attribute longer than any the expression knows (a 44-byte RTA_METRICS) ends its
    match early; a message without RTA_DST leaves bytes no match covers. Both chunks must
    still give every row, in order."""
    long_metrics = [with_attr(message4(host(i)), metrics_attr(1360, 5)) for i in range(50)]
    default = [message4("0.0.0.0", dst_len=0, gateway="198.18.0.254")]
    plain = [message4(host(i)) for i in range(50, 100)]
    chunks = [b"".join(long_metrics + plain), b"".join(plain[:10] + default + plain[10:]), DONE]
    rows, decoder = decode_chunks(chunks)
    expected = slow_rows(long_metrics + plain) + slow_rows(plain[:10] + default + plain[10:])
    assert [tuple(r) for r in rows] == [tuple(r) for r in expected]
    assert not decoder.fixed


def test_a_match_shorter_than_its_message_is_never_trusted() -> None:
    """A message whose last 44 bytes look like a whole route message: the expression tiles
    the chunk with two matches, but the first is shorter than its length field says, so the
    chunk is decoded message by message (one row, not two)."""
    inner = message4(host(2), gateway=None, oif=0)
    assert len(inner) == 44
    outer = with_attr(message4(host(1)), inner)
    rows, decoder = decode_chunks([outer + message4(host(3)), DONE])
    assert [r.destination for r in rows] == [host(1), host(3)]
    assert [tuple(r) for r in rows] == [tuple(r) for r in slow_rows([outer, message4(host(3))])]
    assert NOT_FIXED in decoder.fixed.values()


def test_uniform_tables_share_one_data_record() -> None:
    messages = [message4(host(i)) for i in range(500)]
    routes = decode_ipv4([b"".join(messages) + DONE], ifname)
    assert len({id(r.data) for r in routes}) == 1
    assert routes[499].destination == host(499)


def test_decoder_stops_at_done_and_ignores_the_rest() -> None:
    chunk = b"".join(message4(host(i)) for i in range(3)) + DONE + message4(host(9))
    assert [r.destination for r in decode_ipv4([chunk, message4(host(10))], ifname)] == [
        host(0), host(1), host(2)
    ]


def test_decoder_raises_backend_unavailable_on_error() -> None:
    error = NLMSGHDR.pack(36, 2, 0, 7, 1234) + struct.pack("=i", -1) + NLMSGHDR.pack(
        28, 26, 0x301, 7, 0)
    with pytest.raises(BackendUnavailable) as caught:
        decode_ipv4([error], ifname)
    assert caught.value.errno == 1


def test_truncated_message_ends_the_dump_without_traceback() -> None:
    chunk = message4(host(1)) + message4(host(2))[:30]
    assert [r.destination for r in decode_ipv4([chunk], ifname)] == [host(1)]


def test_ipv6_gateway_sets_g_from_its_first_four_bytes() -> None:
    """fib_flag_trans() tests nhc_gw.ipv4, which overlaps the start of an IPv6 gateway."""
    body = RTMSG.pack(socket.AF_INET, 24, 0, 0, 254, 3, 0, 1, 0)
    body += struct.pack("=HHI", 8, rt.RTA_TABLE, 254)
    body += struct.pack("=HH", 8, rt.RTA_DST) + socket.inet_aton("198.18.40.0")
    via = struct.pack("=H", socket.AF_INET6) + socket.inet_pton(socket.AF_INET6, "fe80::1")
    body += struct.pack("=HH", 4 + len(via), rt.RTA_VIA) + via
    body += struct.pack("=HHI", 8, rt.RTA_OIF, 3)
    message = NLMSGHDR.pack(16 + len(body), 24, 2, 7, 1) + body
    (route,) = decode_ipv4([message + DONE], ifname)
    assert route.data.gateway == "0.0.0.0"
    assert route.data.flags == rt.RTF_UP | rt.RTF_GATEWAY


def test_metrics_with_a_congestion_control_name() -> None:
    """RTAX_CC_ALGO is a string inside RTA_METRICS; it must not upset the numbers."""
    routes = decode_ipv4([captured("ipv4.bin")], ifname)
    (reno,) = [r for r in routes if r.destination == "198.18.21.0"]
    assert (reno.data.mtu, reno.data.window, reno.data.irtt) == (0, 0, 0)


# -- IPv6 ----------------------------------------------------------------------------------


def test_ipv6_capture_matches_proc_but_for_refcnt() -> None:
    """The dump plus the null entries, ECMP rows split: /proc/net/ipv6_route, Ref aside."""
    routes = decode_ipv6([captured("ipv6.bin")], ifname)
    proc = read_ipv6(str(DATA / "proc" / "net" / "ipv6_route"))

    def key(route: Route6) -> Tuple[object, ...]:
        d = route.data
        return (route.destination, d.prefix_len, d.next_hop, d.metric, d.use, d.flags, d.iface)

    assert [key(r) for r in routes] == [key(r) for r in proc]
    assert all(r.data.refcnt is None for r in routes)


def test_ipv6_capture_matches_pyroute2() -> None:
    """Every pyroute2 message becomes one row per next hop, in order."""
    data = captured("ipv6.bin")
    expected = []
    for msg in pyroute2_messages(data):
        hops = msg.get_attr("RTA_MULTIPATH") or [None]
        for hop in hops:
            gateway = hop.get_attr("RTA_GATEWAY") if hop is not None else msg.get_attr(
                "RTA_GATEWAY")
            oif = hop["oif"] if hop is not None else msg.get_attr("RTA_OIF")
            expected.append((msg.get_attr("RTA_DST") or "::", msg["dst_len"], gateway or "::",
                             ifname(oif) if oif else "", msg.get_attr("RTA_TABLE")))
    got = [
        (r.destination, r.data.prefix_len, r.data.next_hop, r.data.iface, r.data.table)
        for r in decode_ipv6([data], ifname)
        if r.data.metric != -1  # the null entries are not in the dump
    ]
    assert got == expected


def test_ipv6_null_entries_follow_each_table_without_a_default_route() -> None:
    routes = decode_ipv6([captured("ipv6.bin")], ifname)
    nulls = [(i, r.data.table) for i, r in enumerate(routes) if r.data.metric == -1]
    # Table 100 (bucket 100) first, then main (has ::/0, so none), then local (bucket 255).
    assert [table for _, table in nulls] == [100, 255]
    assert nulls[-1][0] == len(routes) - 1


def test_ipv6_empty_dump_still_lists_main_and_local_null_entries() -> None:
    routes = decode_ipv6([DONE], ifname, loopback="lo")
    assert [(r.destination, r.data.table, r.data.flags) for r in routes] == [
        ("::", 254, rt.RTF_REJECT | rt.RTF_NONEXTHOP),
        ("::", 255, rt.RTF_REJECT | rt.RTF_NONEXTHOP),
    ]


def test_ipv6_flags_rebuilt_from_type_and_protocol() -> None:
    flags = netlink_routes6._flags6
    assert flags(rt.RTN_UNREACHABLE, 3, 48, 0) == 0x00200200
    assert flags(rt.RTN_BLACKHOLE, 3, 48, 0) == 0x00200200
    assert flags(rt.RTN_LOCAL, rt.RTPROT_KERNEL, 128, 0) == 0x80200001
    assert flags(rt.RTN_LOCAL, rt.RTPROT_BOOT, 128, 0) == 0x80000001
    assert flags(rt.RTN_UNICAST, rt.RTPROT_BOOT, 48, 1234) == rt.RTF_UP | rt.RTF_EXPIRES
    assert flags(rt.RTN_UNICAST, rt.RTPROT_RA, 0, 1) == (
        rt.RTF_UP | rt.RTF_ADDRCONF | rt.RTF_DEFAULT | rt.RTF_EXPIRES
    )


# -- the decoder class directly -------------------------------------------------------------


def test_feed_reports_the_end_of_the_dump() -> None:
    decoder = Ipv4Decoder(ifname)
    assert decoder.feed(message4(host(1))) is False
    assert decoder.feed(DONE) is True
    assert [r.destination for r in decoder.routes] == [host(1)]


def test_unexpanded_nexthop_object_is_refused() -> None:
    """nexthop_compat_mode=0 leaves only RTA_NH_ID: the mode must read /proc instead."""
    body = RTMSG.pack(socket.AF_INET, 24, 0, 0, 254, 3, 0, 1, 0)
    body += struct.pack("=HHI", 8, rt.RTA_TABLE, 254)
    body += struct.pack("=HH", 8, rt.RTA_DST) + socket.inet_aton("198.18.50.0")
    body += struct.pack("=HHI", 8, rt.RTA_NH_ID, 10)
    message = NLMSGHDR.pack(16 + len(body), 24, 2, 7, 1) + body
    with pytest.raises(BackendUnavailable, match="nexthop object 10"):
        decode_ipv4([message + DONE], ifname)
    expanded = NLMSGHDR.pack(16 + len(body) + 8, 24, 2, 7, 1) + body + struct.pack(
        "=HHI", 8, rt.RTA_OIF, 3)
    (route,) = decode_ipv4([expanded + DONE], ifname)
    assert route.data.iface == ifname(3)


def _shaped(index: int, shape: int) -> bytes:
    """Message `index` in one of several shapes the expression must split or leave alone."""
    if shape == 0:
        return message4(host(index))
    if shape == 1:
        return message4(host(index), gateway=None, priority=index % 7)
    if shape == 2:
        return with_attr(message4(host(index)), metrics_attr(1360, 1 + index % 6))
    if shape == 3:
        return message4("0.0.0.0", dst_len=0, gateway="198.18.0.254")
    if shape == 4:
        return message4(host(index), table=100 if index % 2 else rt.RT_TABLE_MAIN)
    if shape == 5:
        return message4(host(index), rtm_type=rt.RTN_BROADCAST)
    return message4(host(index), dst_len=24)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 6), max_size=120), st.integers(60, 2000))
def test_any_mix_of_shapes_and_chunk_borders(shapes: List[int], chunk_size: int) -> None:
    """Random shapes cut into chunks anywhere between messages: the rows are always the plain
    decoder's, in order."""
    messages = [_shaped(index, shape) for index, shape in enumerate(shapes)]
    chunks: List[bytes] = []
    current = b""
    for message in messages:
        if current and len(current) + len(message) > chunk_size:
            chunks.append(current)
            current = b""
        current += message
    chunks += [current, DONE] if current else [DONE]
    rows, _ = decode_chunks(chunks)
    assert [tuple(r) for r in rows] == [tuple(r) for r in slow_rows(messages)]
