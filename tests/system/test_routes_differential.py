"""`-r` live: netstat and nlstat in the same private namespace, stdout and status byte for byte,
under NLSTAT_BACKEND=netlink and =proc (and the default), on the routing lab of
tests/routes_support.py, on a namespace with thousands of routes, and on crafted /proc files
(bind-mounted over /proc for netstat).

IPv6 Ref (fib6_ref) moves while the lab's interfaces send their first packets, so every
comparison runs netstat before and after nlstat and retries until the two netstat runs agree.
Under NLSTAT_BACKEND=netlink the IPv6 Ref column is masked on both sides: rtnetlink does not
export it (see nlstat/modes/routes.py); everything else must still match.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Dict, Iterator, Sequence, Tuple

import pytest

from tests.differential import bracketed
from tests.netns import Namespace, namespace, skip_unless_root
from tests.routes_support import (
    CRAFTED,
    Outcome,
    add_bulk_routes,
    ip_batch,
    mask_ipv6_refcnt,
    netstat_in,
    netstat_with_proc,
    nlstat_in,
    nlstat_with_proc,
    routes_lab,
    write_crafted,
)

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.netns

BACKENDS = ("netlink", "proc", "auto")
ROUTE_ARGS: Tuple[Tuple[str, ...], ...] = (
    ("-r",),
    ("-rn",),
    ("-re",),
    ("-rne",),
    ("-ree",),
    ("-rnee",),
    ("-reee",),
    ("-rN",),
    ("-rC",),
    ("-rF",),
    ("-rnCF",),
    ("-rneeC",),
    ("-6", "-r"),
    ("-6", "-rn"),
    ("-A", "inet6", "-rn"),
    ("-6", "-rnC"),
    ("-6", "-rCF"),
    ("-4", "-6", "-rn"),
    ("-A", "inet,inet6", "-r"),
    ("-4", "-A", "inet", "-rn"),
    ("-rv",),
    ("-rnW",),
    ("-r", "--numeric-hosts"),
    ("-r", "--numeric-ports", "--numeric-users"),
    ("--route", "--numeric", "--extend"),
    ("-A", "unix", "-r"),
    ("-A", "inet,unix,inet6", "-rn"),
    ("-rn", "-A", "bluetooth"),
    ("-rn", "-A", "ax25"),
    ("-rn", "-A", "x25"),
)


@pytest.fixture(scope="module")
def lab() -> Iterator[Namespace]:
    skip_unless_root()
    with routes_lab() as built:
        yield built


def _has_ipv6(args: Sequence[str]) -> bool:
    return any("6" in arg for arg in args)


def compare(ns: Namespace, args: Sequence[str], backends: Sequence[str] = BACKENDS,
            attempts: int = 8) -> Tuple[Outcome, Dict[str, Outcome]]:
    """netstat, nlstat under each backend, netstat again; retried while netstat's two runs
    differ (IPv6 reference counts settling). Netlink outputs get their IPv6 Ref masked."""
    before, ours, _, _ = bracketed(
        lambda: netstat_in(ns, args),
        lambda: {backend: nlstat_in(ns, args, backend) for backend in backends},
        attempts, settle=lambda attempt: time.sleep(0.5 * attempt))
    if "netlink" in ours and _has_ipv6(args):
        masked = ours["netlink"]
        ours["netlink"] = Outcome(masked.status, mask_ipv6_refcnt(masked.stdout), masked.stderr)
        ours["netlink-masked-netstat"] = Outcome(
            before.status, mask_ipv6_refcnt(before.stdout), before.stderr
        )
    return before, ours


def _expected(theirs: Outcome, ours: Dict[str, Outcome], backend: str) -> bytes:
    if backend == "netlink" and "netlink-masked-netstat" in ours:
        return ours["netlink-masked-netstat"].stdout
    return theirs.stdout


@pytest.mark.parametrize("args", ROUTE_ARGS, ids=" ".join)
def test_routes_against_netstat(lab: Namespace, args: Sequence[str]) -> None:
    theirs, ours = compare(lab, args)
    for backend in BACKENDS:
        got = ours[backend]
        assert got.stdout.decode() == _expected(theirs, ours, backend).decode(), backend
        assert got.status == theirs.status, backend


def test_lab_shows_what_it_should(lab: Namespace) -> None:
    """The lab really has the cases the comparisons are about (a guard against a lab that
    silently lost its routes and compares two empty tables)."""
    text = netstat_in(lab, ["-rn"]).stdout.decode()
    text += netstat_in(lab, ["-6", "-rn"]).stdout.decode()
    for needle in ("!H", "UGH", " *\n", "abcdefghijklmno", "1400 65535    100", "!n", "UGe",
                   "2001:db8:100::/48", "vdown"):
        assert needle in text, needle
    assert "198.18.13.0" not in text  # table 100 stays out of the IPv4 listing
    symbolic = netstat_in(lab, ["-r"]).stdout.decode()
    assert "router-with-a-v" in symbolic and "network-with-a-" in symbolic


# -- thousands of routes ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def crowded() -> Iterator[Namespace]:
    skip_unless_root()
    with namespace(prefix="nlst-routesbulk") as ns:
        # IPv4: enough chunks for the second formatting process to take part.
        add_bulk_routes(ns, 6000, socket.AF_INET)
        add_bulk_routes(ns, 2500, socket.AF_INET6)
        # A few shapes in between (another gateway, metrics of several sizes, one metrics
        # attribute longer than the decoder's expression knows), so that chunks mix shapes.
        def host(index: int) -> str:
            return f"198.18.{64 + index // 256}.{index % 256}/32"

        ip_batch(ns, [f"route replace {host(i)} via 198.18.0.9" for i in range(0, 6000, 97)])
        ip_batch(ns, [f"route replace {host(i)} via 198.18.0.2 advmss 1360 window 65535"
                      for i in range(5, 6000, 89)])
        ip_batch(ns, [f"route replace {host(i)} via 198.18.0.2 mtu lock 1400 advmss 1360 "
                      f"rtt 100ms window 1000 cwnd 10 initcwnd 5" for i in range(7, 6000, 1001)])
        yield ns


@pytest.mark.parametrize("args", [("-rn",), ("-r",), ("-rne",), ("-6", "-rn")], ids=" ".join)
def test_thousands_of_routes(crowded: Namespace, args: Sequence[str]) -> None:
    theirs, ours = compare(crowded, args)
    assert theirs.stdout.count(b"\n") > 2500
    for backend in BACKENDS:
        got = ours[backend]
        assert got.stdout == _expected(theirs, ours, backend), backend
        assert got.status == theirs.status == 0, backend


# -- nexthop objects ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nexthops() -> Iterator[Namespace]:
    """Thousands of routes, the last ones through a nexthop object (`ip nexthop`): with
    net.ipv4.nexthop_compat_mode=0 their dump messages name the object only, so the refusal
    comes from a chunk that the second formatting process decodes."""
    skip_unless_root()
    with namespace(prefix="nlst-nexthop") as ns:
        add_bulk_routes(ns, 6000, socket.AF_INET)
        ip_batch(ns, ["nexthop add id 10 via 198.18.0.2 dev veth0"] + [
            f"route add 198.19.{200 + index // 256}.{index % 256}/32 nhid 10"
            for index in range(20)
        ])
        yield ns


@pytest.mark.parametrize("compat", ["1", "0"])
def test_routes_through_nexthop_objects(nexthops: Namespace, compat: str) -> None:
    ns = nexthops
    ns.run(["sysctl", "-q", "-w", f"net.ipv4.nexthop_compat_mode={compat}"])
    try:
        theirs = netstat_in(ns, ("-rn",))
        assert theirs.stdout.count(b"\n") > 6000 and b"198.19.200.19" in theirs.stdout
        for backend in ("auto", "proc"):
            ours = nlstat_in(ns, ("-rn",), backend)
            assert (ours.status, ours.stdout, ours.stderr) == (0, theirs.stdout, b""), backend
        forced = nlstat_in(ns, ("-rn",), "netlink")
        if compat == "1":
            assert (forced.status, forced.stdout) == (0, theirs.stdout)
        else:
            # The refusal is one line and no row is printed twice (or at all) from netlink.
            assert forced.status == 1 and forced.stdout == b""
            assert forced.stderr.count(b"\n") == 1
            assert b"nexthop object 10" in forced.stderr
            assert b"no /proc fallback with the backend netlink" in forced.stderr
    finally:
        ns.run(["sysctl", "-q", "-w", "net.ipv4.nexthop_compat_mode=1"])


# -- crafted /proc files ---------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(set(CRAFTED) - {"cache_odd"}))
@pytest.mark.parametrize("args", [("-rn",), ("-rneeCF",), ("-6", "-rnCF")], ids=" ".join)
def test_crafted_proc_files_live(tmp_path: Path, case: str, args: Sequence[str]) -> None:
    _compare_crafted(tmp_path, case, args)


def _compare_crafted(tmp_path: Path, case: str, args: Sequence[str]) -> None:
    skip_unless_root()
    root = str(write_crafted(tmp_path, case))
    theirs = netstat_with_proc(root, args)
    ours = nlstat_with_proc(root, args)
    assert ours.stdout.decode() == theirs.stdout.decode()
    assert ours.status == theirs.status
    # netstat names the file it opened; nlstat the one under NLSTAT_PROC_ROOT.
    assert ours.stderr.replace(root.encode(), b"/proc") == theirs.stderr


@pytest.mark.parametrize("case", ["legacy", "legacy_old_x25", "legacy_half_netrom", "missing"])
@pytest.mark.parametrize(
    "args",
    [("-rn", "-A", "ax25,netrom,x25,rose"), ("-r", "--netrom"), ("-rn", "-A", "x25"),
     ("-rn", "-A", "rose"), ("-rn", "-A", "ipx"), ("-rn", "--ddp")],
    ids=" ".join,
)
def test_legacy_families_live(tmp_path: Path, case: str, args: Sequence[str]) -> None:
    _compare_crafted(tmp_path, case, args)
