"""`-M` live: nlstat inside a NAT namespace lists exactly the translated connections we made.

The network (tests/masquerade_support.py): inner -> nat (nftables masquerade to ports
61000-61999 and a port forward, set up over netlink) -> outer. The test's own sockets make TCP
and UDP exchanges, so it knows each flow's client port and the port the NAT substituted, and
checks `-Mn`, `-M` (names from the namespace's /etc/hosts and /etc/services), `-Me`, under both
backends, against those flows and against pyroute2's view of the same conntrack table. The
unavailable path is checked against netstat itself: as an unprivileged user both print the same
message, status 1.
"""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path
from typing import Iterator, List, Set, Tuple

import pytest

from tests.masquerade_support import (
    AS_NOBODY,
    INNER,
    OUTER,
    Flow,
    NatNetwork,
    Traffic,
    nat_network,
    nobodys_nlstat,
    run_nlstat_in,
    udp_burst,
)
from tests.netns import skip_unless_root

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.netns

TITLE = "IP masquerading entries"
HEADER = "prot   expire source               destination          ports"
HEADER_EXTENDED = (
    "prot   expire    initseq delta prevd source               destination          ports"
)
ROW = re.compile(
    r"^(?P<proto>\S+)\s*(?P<minutes>\d+):(?P<seconds>\d\d)\.00 "
    r"(?P<seq>\s*\d+\s+-?\d+\s+-?\d+ )?"
    r"(?P<src>\S+)\s+(?P<dst>\S+)\s+(?P<sport>\S+) -> (?P<dport>\S+) \((?P<mport>\S+)\)$"
)
HOST_NAMES = {INNER: "inner-host", OUTER: "outer-host.example"}


class Setup:
    def __init__(self, network: NatNetwork, traffic: Traffic) -> None:
        self.network = network
        self.traffic = traffic


@pytest.fixture(scope="module")
def nat() -> Iterator[Setup]:
    skip_unless_root()
    with nat_network() as network:
        traffic = Traffic(network)
        try:
            for _ in range(3):
                traffic.tcp()
                traffic.udp()
            traffic.forwarded()
            yield Setup(network, traffic)
        finally:
            traffic.close()


def rows(stdout: bytes, header: str = HEADER) -> List[re.Match[str]]:
    lines = stdout.decode().splitlines()
    assert lines[:2] == [TITLE, header]
    matches = []
    for line in lines[2:]:
        match = ROW.match(line)
        assert match, line
        matches.append(match)
    return matches


def expected(flows: List[Flow], names: bool) -> Set[Tuple[str, str, str, str, str, str]]:
    def host(address: str) -> str:
        return HOST_NAMES.get(address, address) if names else address

    def port(number: int, proto: str) -> str:
        if not names:
            return str(number)
        try:
            return socket.getservbyport(number, proto)
        except OSError:
            return str(number)

    return {(f.protocol, host(f.source), host(f.destination), port(f.source_port, f.protocol),
             port(f.destination_port, f.protocol), port(f.translated_port, f.protocol))
            for f in flows}


def seen(matches: List[re.Match[str]]) -> Set[Tuple[str, ...]]:
    return {m.group("proto", "src", "dst", "sport", "dport", "mport") for m in matches}


@pytest.mark.parametrize("backend", ["netlink", "proc", "auto"])
def test_numeric_lists_exactly_our_flows(nat: Setup, backend: str) -> None:
    done = run_nlstat_in(nat.network.nat, ["-Mn"], backend)
    assert (done.returncode, done.stderr) == (0, b"")
    matches = rows(done.stdout)
    assert len(matches) == len(nat.traffic.flows) == 7
    assert seen(matches) == expected(nat.traffic.flows, names=False)
    for match in matches:
        # Open TCP connections: 5 days of ESTABLISHED timeout; UDP: 30 s (unreplied) or more.
        minutes = int(match.group("minutes"))
        assert minutes >= 7100 if match.group("proto") == "tcp" else minutes <= 3


def test_names_from_the_namespace(nat: Setup) -> None:
    done = run_nlstat_in(nat.network.nat, ["-M"])
    assert (done.returncode, done.stderr) == (0, b"")
    assert seen(rows(done.stdout)) == expected(nat.traffic.flows, names=True)
    assert b"inner-host" in done.stdout and b"http-alt" in done.stdout


@pytest.mark.parametrize(
    ("argv", "names"),
    [(["-Me"], True), (["-Mnee"], False), (["--masquerade", "-e", "--numeric"], False)],
)
def test_extended_layout(nat: Setup, argv: List[str], names: bool) -> None:
    done = run_nlstat_in(nat.network.nat, argv)
    assert (done.returncode, done.stderr) == (0, b"")
    matches = rows(done.stdout, HEADER_EXTENDED)
    assert len(matches) == 7
    for match in matches:
        # No connection-tracking helper rewrote sequence numbers here.
        assert match.group("seq").split() == ["0", "0", "0"]
    assert seen(matches) == expected(nat.traffic.flows, names=names)


def test_backends_agree(nat: Setup) -> None:
    def masked(stdout: bytes) -> List[str]:
        return sorted(re.sub(r"\d+:\d\d\.00", "T", line) for line in stdout.decode().splitlines())

    netlink = run_nlstat_in(nat.network.nat, ["-Mn"], "netlink")
    proc = run_nlstat_in(nat.network.nat, ["-Mn"], "proc")
    assert masked(netlink.stdout) == masked(proc.stdout)


def test_pyroute2_sees_the_same_nat_entries(nat: Setup) -> None:
    from nlstat.backends.netlink.conntrack import entries
    from nlstat.model.conntrack import is_nat

    def both() -> Tuple[Set[Tuple[object, ...]], Set[Tuple[object, ...]]]:
        from pyroute2 import Conntrack

        ours = {(e.protocol, e.orig_src, e.orig_sport, e.orig_dst, e.orig_dport, e.reply_src,
                 e.reply_dst, e.reply_sport, e.reply_dport) for e in entries() if is_nat(e)}
        reference = set()
        with Conntrack() as ct:
            for msg in ct.dump():
                if not msg.get_attr("CTA_STATUS") & 0x30:
                    continue
                tuples = []
                for direction in ("CTA_TUPLE_ORIG", "CTA_TUPLE_REPLY"):
                    tup = msg.get_attr(direction)
                    ip = tup.get_attr("CTA_TUPLE_IP")
                    proto = tup.get_attr("CTA_TUPLE_PROTO")
                    tuples.append((proto.get_attr("CTA_PROTO_NUM"), ip.get_attr("CTA_IP_V4_SRC"),
                                   proto.get_attr("CTA_PROTO_SRC_PORT"),
                                   ip.get_attr("CTA_IP_V4_DST"),
                                   proto.get_attr("CTA_PROTO_DST_PORT")))
                (num, osrc, osport, odst, odport), (_n, rsrc, rsport, rdst, rdport) = tuples
                reference.add((num, osrc, osport, odst, odport, rsrc, rdst, rsport, rdport))
        return ours, reference

    ours, reference = nat.network.nat.call_inside(both)
    assert len(ours) == 7
    assert ours == reference


def test_unavailable_like_netstat(nat: Setup) -> None:
    """Unprivileged: ctnetlink answers EPERM and /proc/net/nf_conntrack is root's only, so
    nlstat falls back to netstat's own message; netstat -M says the same, status 1."""
    netstat = nat.network.nat.run([*AS_NOBODY, "netstat", "-M"], env={"LC_ALL": "C"})
    assert netstat.returncode == 1
    python, _tree = nobodys_nlstat(nat.network.nat)
    if nat.network.nat.run([*AS_NOBODY, python, "-c", "pass"]).returncode != 0:
        pytest.skip(f"uid 65534 cannot run {python} (it lies in a private directory)")
    for backend in ("auto", "netlink", "proc"):
        for argv in (["-M"], ["-cM"], ["-Mne"]):
            done = run_nlstat_in(nat.network.nat, argv, backend, user=True)
            assert (done.returncode, done.stdout, done.stderr) == (
                netstat.returncode, netstat.stdout, netstat.stderr
            ), (backend, argv)


def test_no_translations_prints_nothing(nat: Setup) -> None:
    # The outer namespace tracks nothing that was translated: an empty list, status 0.
    done = run_nlstat_in(nat.network.outer, ["-M"])
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")


def test_ten_thousand_entries(nat: Setup) -> None:
    count, first = 10_000, 20_000
    sport = udp_burst(nat.network, first, count)
    started = time.perf_counter()
    done = run_nlstat_in(nat.network.nat, ["-Mn"])
    elapsed = time.perf_counter() - started
    assert (done.returncode, done.stderr) == (0, b"")
    burst = [m for m in rows(done.stdout) if m.group("src") == INNER and m.group("proto") == "udp"
             and m.group("sport") == str(sport)]
    assert sorted(int(m.group("dport")) for m in burst) == list(range(first, first + count))
    assert all(61000 <= int(m.group("mport")) <= 61999 for m in burst)
    print(f"nlstat -Mn with {len(burst) + 7} entries: {elapsed:.3f} s")
