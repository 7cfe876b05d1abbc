"""One backend rule for every table (nlstat.backends), checked table by table.

Each mode runs through app.main on a snapshot of this host's /proc files, with netlink's entry
points for the table replaced by a refusal (and counted), and is held to the rule:
forced netlink refused -> a one-line error and status 1; auto refused -> /proc, the same output
as the proc backend on the same files; NLSTAT_PROC_ROOT set -> /proc, netlink never asked.
"""

from __future__ import annotations

import errno
import io
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence, Tuple

import pytest

from nlstat import app
from nlstat.backends.netlink import conntrack as netlink_conntrack
from nlstat.backends.netlink import groups as netlink_groups
from nlstat.backends.netlink import links as netlink_links
from nlstat.backends.netlink import routes as netlink_routes
from nlstat.backends.netlink import routes6 as netlink_routes6
from nlstat.backends.netlink import sockdiag
from nlstat.env import Environment
from nlstat.errors import BackendUnavailable

DATA = Path(__file__).resolve().parent.parent / "data"

# The files the modes below read, copied from this host's /proc (the snapshot is the capture).
SNAPSHOT = (
    "tcp", "tcp6", "udp", "udp6", "udplite", "udplite6", "raw", "raw6", "unix",
    "route", "ipv6_route", "rt_cache", "dev", "if_inet6", "igmp", "igmp6",
    "snmp", "snmp6", "netstat",
)
NO_SUPPORT_M = "netstat: no support for `ip_masquerade' on this system.\n"


class Case(NamedTuple):
    table: str
    argv: Tuple[str, ...]
    # (module, attribute) of the netlink entry points that the refusal replaces
    entry_points: Tuple[Tuple[object, str], ...]
    asked_under_auto: bool  # netlink gives every column netstat prints for this table


CASES = [
    Case("inet", ("-antuw",), ((sockdiag, "SockDiag"),), True),
    Case("unix", ("-anx",), ((sockdiag, "SockDiag"),), False),  # RefCnt: /proc only
    Case("routes4", ("-rn",), ((netlink_routes, "ipv4_chunks"),), True),
    Case("routes6", ("-rn", "-6"), ((netlink_routes6, "read_ipv6"),), False),  # no Ref
    Case("links", ("-ie",), ((netlink_links, "NetlinkInterfaces"),
                             (netlink_links, "ipv6_addresses")), True),
    Case("groups", ("-gn",), ((netlink_groups, "dump_memberships"),), False),  # no Users
    Case("conntrack", ("-Mn",), ((netlink_conntrack, "entries"),), True),
]


class Run(NamedTuple):
    status: int
    stdout: bytes
    stderr: str


@pytest.fixture(scope="module")
def proc_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("proc")
    net = root / "net"
    net.mkdir()
    for name in SNAPSHOT:
        try:
            data = Path("/proc/net", name).read_bytes()  # not copyfile: /proc sizes read 0
        except OSError:
            continue
        (net / name).write_bytes(data)
    (net / "nf_conntrack").write_bytes((DATA / "conntrack" / "nat.nf_conntrack").read_bytes())
    return root


def refuse(monkeypatch: pytest.MonkeyPatch, case: Case, code: int = errno.EPERM) -> List[str]:
    """Replace the table's netlink entry points with a refusal; the list counts the asks."""
    asked: List[str] = []
    for module, attribute in case.entry_points:

        def refusal(*args: object, _name: str = attribute, **kwargs: object) -> None:
            asked.append(_name)
            raise BackendUnavailable(f"netlink: {errno.errorcode[code]}", code)

        monkeypatch.setattr(module, attribute, refusal)
    return asked


def run(argv: Sequence[str], root: Path, backend: str, replay: Optional[bool] = None,
        debug: bool = False) -> Run:
    out, err = io.BytesIO(), io.StringIO()
    env = Environment(stdout=out, stderr=err, proc_root=str(root), backend=backend,
                      debug=debug, replay=replay, sleep=lambda seconds: None)
    status = app.main(list(argv), env)
    return Run(status, out.getvalue(), err.getvalue())


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.table)
def test_forced_netlink_refused_is_an_error(
    monkeypatch: pytest.MonkeyPatch, proc_root: Path, case: Case
) -> None:
    asked = refuse(monkeypatch, case)
    got = run(case.argv, proc_root, "netlink")
    assert asked, "forced netlink must ask netlink"
    assert got.status == 1
    if case.table == "conntrack":
        # -M's error is netstat's own -M line (what netstat -M always prints).
        assert got.stderr == NO_SUPPORT_M
    else:
        assert got.stderr.count("\n") == 1
        assert got.stderr.startswith("nlstat: ")
        assert got.stderr.endswith("; no /proc fallback with the backend netlink\n")


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.table)
def test_auto_refused_falls_back_to_proc(
    monkeypatch: pytest.MonkeyPatch, proc_root: Path, case: Case
) -> None:
    proc = run(case.argv, proc_root, "proc")
    asked = refuse(monkeypatch, case)
    # replay=False: the snapshot stands for the live /proc, so auto may ask netlink.
    got = run(case.argv, proc_root, "auto", replay=False)
    assert got == proc
    assert bool(asked) == case.asked_under_auto
    if case.asked_under_auto:
        told = run(case.argv, proc_root, "auto", replay=False, debug=True)
        assert told.stdout == proc.stdout
        notes = [line for line in told.stderr.splitlines()
                 if line.startswith("nlstat: ") and not line.startswith("nlstat: debug:")
                 and " refused " in line]
        assert notes and all("; reading " + str(proc_root) in note for note in notes)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.table)
def test_a_proc_root_is_replayed_without_netlink(
    monkeypatch: pytest.MonkeyPatch, proc_root: Path, case: Case
) -> None:
    proc = run(case.argv, proc_root, "proc")
    asked = refuse(monkeypatch, case)
    assert run(case.argv, proc_root, "auto") == proc
    assert asked == []


def test_proc_backend_never_asks_netlink(monkeypatch: pytest.MonkeyPatch, proc_root: Path) -> None:
    for case in CASES:
        asked = refuse(monkeypatch, case)
        run(case.argv, proc_root, "proc", replay=False)
        assert asked == [], case.table


def test_a_missing_sock_diag_handler_is_not_a_refusal(
    monkeypatch: pytest.MonkeyPatch, proc_root: Path
) -> None:
    """ENOENT: this kernel has no diag handler (CONFIG_INET_RAW_DIAG=n): /proc under every
    backend, said on stderr when netlink was forced, silent under auto (-v stays netstat's)."""
    case = CASES[0]
    proc = run(case.argv, proc_root, "proc")
    refuse(monkeypatch, case, errno.ENOENT)
    forced = run(case.argv, proc_root, "netlink")
    assert (forced.status, forced.stdout) == (proc.status, proc.stdout)
    lines = forced.stderr.splitlines()
    assert lines and all(line.startswith("nlstat: sock_diag has no ") for line in lines)
    assert run(case.argv, proc_root, "auto", replay=False) == proc
    assert run((*case.argv, "-v"), proc_root, "auto", replay=False) == run(
        (*case.argv, "-v"), proc_root, "proc")


def test_route_cache_and_counters_under_each_backend(proc_root: Path) -> None:
    """-rC: the cache left Linux in 3.6; /proc keeps its title line, netlink has nothing
    (forced: the modern empty layout). -s: no netlink source, the backend changes nothing."""
    for argv in (("-rnC",), ("-s",), ("-s", "-6")):
        proc = run(argv, proc_root, "proc")
        assert run(argv, proc_root, "auto", replay=False) == proc
        if argv[0] == "-s":
            assert run(argv, proc_root, "netlink") == proc
    assert run(("-rnC",), proc_root, "netlink").status == 0
