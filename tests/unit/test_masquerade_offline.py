"""`-M` offline: the ctnetlink decoder against pyroute2 on captured bytes, /proc parsing, layout.

tests/data/conntrack/ was captured in the private NAT network of tests/masquerade_support.py:
nat.dump (the raw CT_GET answer), nat.nf_conntrack (/proc/net/nf_conntrack at the same moment),
nat.flows (what the test's own sockets saw: client ports and the translated port), and
eperm.dump (the kernel's answer to an unprivileged dump).
"""

from __future__ import annotations

import errno
import io
import socket
import struct
import sys
from pathlib import Path
from typing import Any, List, Optional, Tuple

import pytest

from nlstat.backends.netlink import conntrack as netlink_conntrack
from nlstat.backends.netlink.nlsocket import read_chunks
from nlstat.backends.procfs import conntrack as procfs_conntrack
from nlstat.env import Environment
from nlstat.errors import BackendUnavailable, MalformedInput
from nlstat.format.masquerade import masq_port, render, render_row
from nlstat.model.conntrack import ConntrackEntry, is_nat
from nlstat.modes import masquerade
from nlstat.query import MODE_MASQUERADE, Query
from nlstat.resolve import Names

REPO = Path(__file__).resolve().parents[2]

DATA = REPO / "tests" / "data" / "conntrack"
NO_SUPPORT = "netstat: no support for `ip_masquerade' on this system.\n"


def captured() -> List[ConntrackEntry]:
    return list(netlink_conntrack.decode_entries(read_chunks(str(DATA / "nat.dump"))))


def flows() -> List[Tuple[str, str, int, str, int, int]]:
    rows = []
    for line in (DATA / "nat.flows").read_text().splitlines():
        proto, src, sport, dst, dport, mport = line.split()
        rows.append((proto, src, int(sport), dst, int(dport), int(mport)))
    return rows


# -- decoder vs pyroute2 ---------------------------------------------------------------------------


def _pyroute2_entries(data: bytes) -> List[dict[str, Any]]:
    """The same bytes through pyroute2's nfct_msg, the independent reference decoder."""
    from pyroute2.netlink.nfnetlink.nfctsocket import nfct_msg

    result = []
    offset = 0
    while offset + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        if kind == netlink_conntrack.CT_NEW:
            msg = nfct_msg(data[offset : offset + length])
            msg.decode()
            entry: dict[str, Any] = {"family": msg["nfgen_family"]}
            for direction in ("ORIG", "REPLY"):
                tup = msg.get_attr(f"CTA_TUPLE_{direction}")
                ip = tup.get_attr("CTA_TUPLE_IP")
                proto = tup.get_attr("CTA_TUPLE_PROTO")
                number = proto.get_attr("CTA_PROTO_NUM")
                if number == 1:
                    sport = proto.get_attr("CTA_PROTO_ICMP_ID")
                    dport = (proto.get_attr("CTA_PROTO_ICMP_TYPE") << 8) | proto.get_attr(
                        "CTA_PROTO_ICMP_CODE"
                    )
                else:
                    sport = proto.get_attr("CTA_PROTO_SRC_PORT")
                    dport = proto.get_attr("CTA_PROTO_DST_PORT")
                entry[direction] = (ip.get_attr("CTA_IP_V4_SRC"), ip.get_attr("CTA_IP_V4_DST"),
                                    number, sport, dport)
            for name in ("STATUS", "TIMEOUT", "MARK", "ID"):
                entry[name] = msg.get_attr(f"CTA_{name}") or 0
            result.append(entry)
        offset += (length + 3) & ~3
    return result


def test_decoder_matches_pyroute2() -> None:
    reference = _pyroute2_entries((DATA / "nat.dump").read_bytes())
    ours = captured()
    assert len(ours) == len(reference) == 8
    for mine, theirs in zip(ours, reference):
        assert mine.family == theirs["family"] == socket.AF_INET
        assert (mine.orig_src, mine.orig_dst, mine.protocol, mine.orig_sport,
                mine.orig_dport) == theirs["ORIG"]
        assert (mine.reply_src, mine.reply_dst, mine.protocol, mine.reply_sport,
                mine.reply_dport) == theirs["REPLY"]
        assert (mine.status, mine.timeout, mine.mark, mine.id) == (
            theirs["STATUS"], theirs["TIMEOUT"], theirs["MARK"], theirs["ID"])


def test_error_answer_raises_backend_unavailable() -> None:
    with pytest.raises(BackendUnavailable) as caught:
        list(netlink_conntrack.decode_entries(read_chunks(str(DATA / "eperm.dump"))))
    assert caught.value.errno == errno.EPERM


def test_truncated_dump_does_not_crash() -> None:
    data = (DATA / "nat.dump").read_bytes()
    # Cut inside the last message: the walker stops at the incomplete header or attribute.
    entries = list(netlink_conntrack.decode_entries([data[: len(data) - 7]]))
    assert 0 < len(entries) <= 8


def test_dump_request_layout() -> None:
    assert netlink_conntrack.dump_request(socket.AF_INET) == b"\x02\x00\x00\x00"
    assert netlink_conntrack.CT_GET == 0x0101


# -- /proc/net/nf_conntrack ---------------------------------------------------------------------


def _key(entry: ConntrackEntry) -> Tuple[Any, ...]:
    return (entry.family, entry.protocol, entry.orig_src, entry.orig_dst, entry.orig_sport,
            entry.orig_dport, entry.reply_src, entry.reply_dst, entry.reply_sport,
            entry.reply_dport, entry.timeout, entry.mark, entry.zone)


def test_procfs_agrees_with_netlink() -> None:
    from_proc = list(procfs_conntrack.read_entries(str(DATA / "nat.nf_conntrack")))
    assert sorted(map(_key, from_proc)) == sorted(map(_key, captured()))


def test_procfs_flags() -> None:
    line = ("ipv4     2 udp      17 29 src=198.18.1.2 dst=198.19.2.2 sport=40000 dport=53 "
            "[UNREPLIED] src=198.19.2.2 dst=198.19.2.1 sport=53 dport=40000 mark=7 zone=3 use=2")
    entry = procfs_conntrack.parse_line(line)
    assert entry.status & (1 << 1) == 0  # not SEEN_REPLY
    assert (entry.mark, entry.zone, entry.timeout) == (7, 3, 29)
    assert is_nat(entry)  # reply goes to 198.19.2.1, not 198.18.1.2


def test_procfs_malformed_line() -> None:
    with pytest.raises(MalformedInput) as caught:
        procfs_conntrack.parse_line("ipv4 2 tcp six 10 src=1.2.3.4", "/proc/net/nf_conntrack", 4)
    assert "/proc/net/nf_conntrack:4:" in str(caught.value)
    with pytest.raises(MalformedInput):
        procfs_conntrack.parse_line("ipv4 2 tcp 6 10 ESTABLISHED src=1.2.3.4 dst=5.6.7.8")


# -- which entries, which ports ----------------------------------------------------------------


def test_nat_entries_are_exactly_the_flows_and_the_ping() -> None:
    names = {1: "icmp", 6: "tcp", 17: "udp"}
    nat = [e for e in captured() if is_nat(e)]
    rows = {(names[e.protocol], e.orig_src, e.orig_sport, e.orig_dst, e.orig_dport, masq_port(e))
            for e in nat if e.protocol != 1}
    assert rows == set(flows())
    assert sum(1 for e in nat if e.protocol == 1) == 1


def _entry(**fields: Any) -> ConntrackEntry:
    base: dict[str, Any] = dict(
        family=socket.AF_INET, protocol=6, orig_src="198.18.1.2", orig_dst="198.19.2.2",
        orig_sport=47012, orig_dport=8080, reply_src="198.19.2.2", reply_dst="198.19.2.1",
        reply_sport=8080, reply_dport=61118, status=0x19E, timeout=431999,
    )
    base.update(fields)
    return ConntrackEntry(**base)


def test_is_nat() -> None:
    plain = _entry(reply_dst="198.18.1.2", reply_dport=47012, status=0x0E)
    assert not is_nat(plain)
    assert is_nat(plain._replace(status=0x0E | (1 << 5)))  # DST_NAT bit alone
    assert is_nat(plain._replace(reply_dport=5000))  # port remapped, no bits
    icmp = _entry(protocol=1, orig_sport=7, orig_dport=0x800, reply_src="198.19.2.2",
                  reply_dst="198.18.1.2", reply_sport=7, reply_dport=0, status=0x0A)
    assert not is_nat(icmp)
    assert is_nat(icmp._replace(reply_sport=8))


def test_masq_port_directions() -> None:
    assert masq_port(_entry()) == 61118  # masquerade: where replies come back to
    forward = _entry(orig_src="198.19.2.2", orig_dst="198.19.2.1", orig_sport=37326,
                     orig_dport=7000, reply_src="198.18.1.2", reply_dst="198.19.2.2",
                     reply_sport=7001, reply_dport=37326, status=0x1AE)
    assert masq_port(forward) == 7001  # port forward: where it really goes


# -- layout ------------------------------------------------------------------------------------


def numeric() -> Names:
    return Names(numeric_hosts=True, numeric_ports=True)


def symbolic_ports() -> Names:
    names = Names(numeric_hosts=True)
    names._services = {"tcp": {8080: "http-alt"}, "udp": {5353: "mdns"}, "raw": {}}
    return names


def test_row_layout_short() -> None:
    assert render_row(_entry(), numeric(), 1) == (
        "tcp 7199:59.00 198.18.1.2           198.19.2.2           47012 -> 8080 (61118)"
    )
    assert render_row(_entry(protocol=17, orig_dport=5353, timeout=29), symbolic_ports(), 1) == (
        "udp   0:29.00 198.18.1.2           198.19.2.2           47012 -> mdns (61118)"
    )
    assert render_row(_entry(timeout=0, orig_sport=0), symbolic_ports(), 1) == (
        "tcp   0:00.00 198.18.1.2           198.19.2.2           * -> http-alt (61118)"
    )


def test_row_layout_other_protocols() -> None:
    icmp = _entry(protocol=1, orig_sport=3687, orig_dport=0x800, reply_sport=3687, reply_dport=0,
                  timeout=5)
    assert render_row(icmp, symbolic_ports(), 1) == (
        "icmp  0:05.00 198.18.1.2           198.19.2.2           3687 -> 2048 (3687)"
    )
    # Only tcp and udp have service lists; an unknown protocol is masq's "ip".
    assert render_row(_entry(protocol=132, orig_dport=8080), symbolic_ports(), 1).startswith(
        "sctp7199:59.00 "
    )
    assert render_row(_entry(protocol=99), symbolic_ports(), 1).startswith("ip  7199:59.00 ")
    assert render_row(_entry(protocol=99), symbolic_ports(), 1).endswith("47012 -> 8080 (61118)")


def test_row_layout_extended() -> None:
    entry = _entry(timeout=61, seq_correction_pos=4294967295, seq_offset_before=-5,
                   seq_offset_after=70000)
    assert render_row(entry, numeric(), 2) == (
        "tcp   1:01.00 4294967295  4464    -5 198.18.1.2           198.19.2.2           "
        "47012 -> 8080 (61118)"
    )
    assert render_row(_entry(timeout=61), numeric(), 3).startswith(
        "tcp   1:01.00          0     0     0 198.18.1.2 "
    )


def test_long_host_names_are_not_cut() -> None:
    names = Names()
    names._hosts[("198.18.1.2", True)] = "a-very-long-host-name.example"
    row = render_row(_entry(), names, 1)
    assert " a-very-long-host-name.example " in row


def test_render_titles() -> None:
    assert render([], numeric(), 1) == b""
    assert render([_entry()], numeric(), 1).split(b"\n")[:2] == [
        b"IP masquerading entries",
        b"prot   expire source               destination          ports",
    ]
    assert render([_entry()], numeric(), 2).split(b"\n")[1] == (
        b"prot   expire    initseq delta prevd source               destination          ports"
    )


# -- the mode -----------------------------------------------------------------------------------


class _Stop(Exception):
    pass


def run_mode(query: Query, proc_root: Path, backend: str,
             sleeps_before_stop: Optional[int] = None,
             replay: Optional[bool] = None) -> Tuple[int, bytes, str, int]:
    out = io.BytesIO()
    err = io.StringIO()
    calls = []

    def sleep(seconds: float) -> None:
        calls.append(seconds)
        if sleeps_before_stop is not None and len(calls) >= sleeps_before_stop:
            raise _Stop

    env = Environment(stdout=out, stderr=err, proc_root=str(proc_root), backend=backend,
                      sleep=sleep, replay=replay)
    try:
        status = masquerade.run(query, env)
    except _Stop:
        status = -1
    return status, out.getvalue(), err.getvalue(), len(calls)


def _proc_root(tmp_path: Path) -> Path:
    (tmp_path / "net").mkdir(parents=True)
    (tmp_path / "net" / "nf_conntrack").write_bytes((DATA / "nat.nf_conntrack").read_bytes())
    return tmp_path


def test_unavailable_proc_backend(tmp_path: Path) -> None:
    query = Query(mode=MODE_MASQUERADE)
    assert run_mode(query, tmp_path, "proc") == (1, b"", NO_SUPPORT, 0)
    # -c stops at once when the first round fails, as netstat's loop does.
    assert run_mode(query._replace(continuous=True), tmp_path, "proc") == (1, b"", NO_SUPPORT, 0)


def test_unavailable_netlink_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(family: int = socket.AF_INET) -> List[ConntrackEntry]:
        raise BackendUnavailable("netlink: Operation not permitted", errno.EPERM)

    monkeypatch.setattr(netlink_conntrack, "entries", refused)
    root = _proc_root(tmp_path)
    query = Query(mode=MODE_MASQUERADE, numeric_hosts=True, numeric_ports=True)
    # Forced netlink: no fallback.
    assert run_mode(query, root, "netlink") == (1, b"", NO_SUPPORT, 0)
    # auto (the files standing for the live /proc): falls back to /proc/net/nf_conntrack.
    status, out, err, _ = run_mode(query, root, "auto", replay=False)
    assert (status, err) == (0, "")
    assert out.count(b"\n") == 2 + 7 + 1  # title, header, 7 flows and the ping


def test_proc_backend_output(tmp_path: Path) -> None:
    query = Query(mode=MODE_MASQUERADE, numeric_hosts=True, numeric_ports=True)
    status, out, err, _ = run_mode(query, _proc_root(tmp_path), "proc")
    assert (status, err) == (0, "")
    lines = out.decode().splitlines()
    assert lines[0] == "IP masquerading entries"
    for proto, src, sport, dst, dport, mport in flows():
        assert any(
            line.startswith(proto) and line.split()[2:] == [src, dst, str(sport), "->",
                                                             str(dport), f"({mport})"]
            for line in lines[2:]
        ), (proto, sport)


def test_continuous_repeats_whole_output(tmp_path: Path) -> None:
    query = Query(mode=MODE_MASQUERADE, numeric_hosts=True, numeric_ports=True, continuous=True)
    status, out, err, sleeps = run_mode(query, _proc_root(tmp_path), "proc", sleeps_before_stop=3)
    assert (status, err, sleeps) == (-1, "", 3)
    assert out.count(b"IP masquerading entries\n") == 3
    once = run_mode(query._replace(continuous=False), _proc_root(tmp_path / "x"), "proc")[1]
    assert out == once * 3


def test_masquerade_path_is_import_light(tmp_path: Path) -> None:
    """-M pays for its decoder only: no pyroute2, json, subprocess, re beyond typing's own."""
    import subprocess

    probe = (
        "import sys, io, typing\n"
        "base = set(sys.modules)\n"
        "from nlstat.app import main\n"
        "from nlstat.env import Environment\n"
        "main(['-Mn'], Environment(stdout=io.BytesIO(), stderr=io.StringIO(),"
        f" proc_root={str(tmp_path)!r}))\n"
        "print(' '.join(sorted(set(sys.modules) - base)))\n"
    )
    done = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "LC_ALL": "C"}, timeout=60, check=True)
    imported = set(done.stdout.split())
    assert "nlstat.modes.masquerade" in imported
    heavy = {"json", "dataclasses", "argparse", "subprocess", "ipaddress", "pyroute2", "re"}
    assert not {m for m in imported if m.split(".")[0] in heavy}


@pytest.mark.parametrize("seed", range(200))
def test_damaged_dumps_never_crash(seed: int) -> None:
    """Truncated or bit-flipped answers decode, or end in BackendUnavailable; nothing else."""
    import random

    rng = random.Random(seed)
    data = bytearray((DATA / "nat.dump").read_bytes() + (DATA / "eperm.dump").read_bytes())
    for _ in range(rng.randint(1, 6)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    cut = bytes(data[: rng.randint(0, len(data))])
    try:
        entries = list(netlink_conntrack.decode_entries([cut]))
    except BackendUnavailable:
        return
    assert all(isinstance(entry, ConntrackEntry) for entry in entries)
