"""`netstat -r` output, offline: the routes mode run in-process on captured /proc files and
captured netlink answers, compared byte for byte with what netstat printed for the same files
(tests/data/routes/golden and crafted/*/golden), plus the layout rules and flag letters."""

from __future__ import annotations

import errno
import io
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import pytest

from nlstat import cli, resolve
from nlstat.backends.netlink import routes as netlink_routes
from nlstat.backends.netlink import routes6 as netlink_routes6
from nlstat.env import Environment
from nlstat.errors import BackendUnavailable, NlstatError
from nlstat.format.routes import ipv4_flags, ipv6_flags, route_layout
from nlstat.modes import routes as routes_mode
from nlstat.query import Query
from tests.routes_support import (
    CRAFTED,
    CRAFTED_ARGS,
    DATA,
    GOLDEN_ARGS,
    mask_ipv6_refcnt,
    read_links,
)

REPO = Path(__file__).resolve().parents[2]

GOLDEN = DATA / "golden"
CRAFTED_DIR = DATA / "crafted"


class Run:
    def __init__(self, status: int, stdout: bytes, stderr: str) -> None:
        self.status = status
        self.stdout = stdout
        self.stderr = stderr


def run_mode(args: Sequence[str], proc_root: Path, backend: str,
             sleep: Optional[Callable[[float], None]] = None, replay: Optional[bool] = None) -> Run:
    out = io.BytesIO()
    err = io.StringIO()
    env = Environment(stdout=out, stderr=err, proc_root=str(proc_root), backend=backend,
                      sleep=sleep or (lambda seconds: None), replay=replay)
    query = cli.parse(list(args), env)
    assert isinstance(query, Query), err.getvalue()
    status = routes_mode.run(query, env)
    return Run(status, out.getvalue(), err.getvalue())


def golden(directory: Path, name: str) -> Tuple[int, bytes]:
    return (
        int((directory / f"{name}.status").read_text()),
        (directory / f"{name}.out").read_bytes(),
    )


# -- names as the capture lab had them -------------------------------------------------------


def _hosts() -> Dict[str, str]:
    names: Dict[str, str] = {}
    for line in (DATA / "hosts").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 2:
            names.setdefault(fields[0], fields[1])
    return names


def _networks() -> Dict[int, str]:
    """The lab's networks file as glibc's files backend reads it: the first line of a number
    wins, and a short number is padded with zero octets ("198.18.10" is 198.18.10.0)."""
    names: Dict[int, str] = {}
    for line in (DATA / "networks").read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        octets = [int(part) for part in fields[1].split(".")]
        number = int.from_bytes(bytes(octets + [0] * (4 - len(octets))), "big")
        names.setdefault(number, fields[0])
    return names


@pytest.fixture
def lab_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """The resolver as it answered inside the lab: its hosts and networks files, no DNS."""
    hosts = _hosts()
    networks = _networks()
    monkeypatch.setattr(resolve, "lookup_host", hosts.get)
    monkeypatch.setattr(resolve, "lookup_host6", lambda address: hosts.get(address, address))
    monkeypatch.setattr(resolve, "lookup_network", networks.get)


@pytest.fixture
def captured_netlink(monkeypatch: pytest.MonkeyPatch) -> None:
    """The netlink backend answering with the captured dumps."""
    links = read_links(DATA)

    def ifname(index: int) -> str:
        return links.get(index, "*")

    def ipv4_chunks(last: bool = True) -> Iterator[bytes]:
        return iter([(DATA / "ipv4.bin").read_bytes()])

    def read_ipv6(names: object = None) -> List[object]:
        return netlink_routes6.decode_ipv6([(DATA / "ipv6.bin").read_bytes()], ifname)

    monkeypatch.setattr(netlink_routes, "ipv4_chunks", ipv4_chunks)
    monkeypatch.setattr(netlink_routes, "InterfaceNames", lambda: ifname)
    monkeypatch.setattr(netlink_routes6, "read_ipv6", read_ipv6)


# -- goldens ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("lab_names")
@pytest.mark.parametrize("name", sorted(GOLDEN_ARGS))
def test_golden_from_proc(name: str) -> None:
    run = run_mode(GOLDEN_ARGS[name], DATA / "proc", "proc")
    status, stdout = golden(GOLDEN, name)
    assert run.stdout.decode() == stdout.decode()
    assert run.status == status


@pytest.mark.usefixtures("lab_names", "captured_netlink")
@pytest.mark.parametrize("name", sorted(GOLDEN_ARGS))
def test_golden_from_netlink(name: str) -> None:
    """Same output from the captured dumps; IPv6 Ref is not in netlink (masked)."""
    run = run_mode(GOLDEN_ARGS[name], DATA / "proc", "netlink")
    status, stdout = golden(GOLDEN, name)
    assert mask_ipv6_refcnt(run.stdout).decode() == mask_ipv6_refcnt(stdout).decode()
    assert run.status == status
    if "-6" not in GOLDEN_ARGS[name]:
        assert run.stdout == stdout


def _without_garbage(case: str, text: bytes) -> bytes:
    """cache_odd: netstat prints uninitialised memory as the Iface of its rows."""
    if case != "cache_odd":
        return text
    return b"\n".join(
        line[: line.rindex(b" ")] if line.startswith(b"0.0.0.0 ") else line
        for line in text.split(b"\n")
    )


@pytest.mark.parametrize("case", sorted(CRAFTED))
@pytest.mark.parametrize("name", sorted(CRAFTED_ARGS))
def test_crafted_proc_files(case: str, name: str) -> None:
    root = CRAFTED_DIR / case
    run = run_mode(CRAFTED_ARGS[name], root, "proc")
    status, stdout = golden(root / "golden", name)
    assert _without_garbage(case, run.stdout).decode() == _without_garbage(case, stdout).decode()
    assert run.status == status


def test_missing_route_file_messages(tmp_path: Path) -> None:
    run = run_mode(["-rn"], tmp_path, "proc")
    assert run.status == 1
    assert run.stdout == b"INET (IPv4) not configured in this system.\n"
    assert run.stderr == f"{tmp_path}/net/route: No such file or directory\n"
    run = run_mode(["-6", "-rn"], tmp_path, "proc")
    assert run.stdout == b"INET6 (IPv6) not configured in this system.\n"
    assert run.status == 1


# -- families, layouts, flags ---------------------------------------------------------------


@pytest.mark.parametrize(
    "args, status, stderr",
    [
        (["-rn", "-A", "unix"], 3, "No routing for address family `unix'.\n"),
        (["-rn", "-A", "econet"], 3, "No routing for address family `ec'.\n"),
        (["-rn", "-A", "ash"], 3, "No routing for address family `ash'.\n"),
        (["-rn", "-A", "bluetooth"], 3, "Address family `bluetooth' not supported.\n"),
        (["-rn", "-A", "x25"], 1, ""),
        (["-rn", "-A", "ipx"], 1, "No such file or directory\n"),
    ],
)
def test_family_statuses(tmp_path: Path, args: List[str], status: int, stderr: str) -> None:
    run = run_mode(args, tmp_path, "proc")
    assert (run.status, run.stderr) == (status, stderr)


def test_family_named_twice_prints_twice() -> None:
    once = run_mode(["-rn"], DATA / "proc", "proc")
    twice = run_mode(["-4", "-A", "inet", "-rn"], DATA / "proc", "proc")
    assert twice.stdout == once.stdout * 2


def test_walk_stops_at_the_first_failing_family() -> None:
    run = run_mode(["-A", "inet,unix,inet6", "-rn"], DATA / "proc", "proc")
    assert run.status == 3
    assert run.stdout == run_mode(["-rn"], DATA / "proc", "proc").stdout


def test_continuous_reprints_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """-c: title, header and rows every pass, stdout flushed before each 1-second sleep."""
    sleeps: List[float] = []

    class Stop(Exception):
        pass

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise Stop

    once = run_mode(["-rn"], DATA / "proc", "proc").stdout
    out = io.BytesIO()
    env = Environment(stdout=out, stderr=io.StringIO(), proc_root=str(DATA / "proc"),
                      backend="proc", sleep=sleep)
    query = cli.parse(["-rnc"], env)
    assert isinstance(query, Query)
    with pytest.raises(Stop):
        routes_mode.run(query, env)
    assert sleeps == [1, 1]
    assert out.getvalue() == once * 2


@pytest.mark.parametrize("extend, layout", [(0, 2), (1, 1), (2, 3), (3, 0), (4, 1), (5, 2),
                                            (6, 3), (7, 0)])
def test_route_layout(extend: int, layout: int) -> None:
    assert route_layout(extend) == layout


def test_ipv4_flag_letters() -> None:
    assert ipv4_flags(0x0001) == "U"
    assert ipv4_flags(0x0003) == "UG"
    assert ipv4_flags(0x0205) == "!H"
    assert ipv4_flags(0x0207) == "!H"
    everything = 0xFFFFFFFF & ~0x200
    assert ipv4_flags(everything) == "UGHRDMdacoecfpluwin"


def test_ipv6_flag_letters() -> None:
    assert ipv6_flags(0x80200001) == "Un"
    assert ipv6_flags(0x00200200) == "!n"
    assert ipv6_flags(0x00450003) == "UGDAe"
    assert ipv6_flags(0xFFFFFFFF) == "U!GHDACaemnf"


def test_numeric_v4_mapped_ipv6_loses_its_prefix() -> None:
    from nlstat.format.routes import Ipv6Rows
    from nlstat.model.routes import Route6, Route6Data

    data = Route6Data(96, "::ffff:198.18.0.1", 0, 1, 0, 3, "eth0")
    line = Ipv6Rows(None).render(Route6("::ffff:198.18.0.0", data))
    assert line.startswith("198.18.0.0/96                  198.18.0.1                 UG ")


def test_render_all_pieces_join_to_render_lines() -> None:
    from nlstat.backends.procfs.routes import read_ipv4
    from nlstat.format.routes import Ipv4Rows

    routes = read_ipv4(str(DATA / "proc" / "net" / "route")).routes
    for ext in (1, 2, 3):
        rows = Ipv4Rows(ext, None)
        assert "".join(rows.render_all(routes)) == "".join(map(Ipv4Rows(ext, None).render, routes))


# -- backend choice -------------------------------------------------------------------------


@pytest.fixture
def refusing_netlink(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(names: object = None) -> List[object]:
        raise BackendUnavailable("netlink route dump: Operation not permitted", errno.EPERM)

    monkeypatch.setattr(netlink_routes, "ipv4_chunks", refuse)
    monkeypatch.setattr(netlink_routes6, "read_ipv6", refuse)


@pytest.mark.usefixtures("refusing_netlink")
def test_auto_falls_back_to_proc_when_netlink_is_refused() -> None:
    # replay=False: the captured files stand for the live /proc, so auto asks netlink first.
    proc = run_mode(["-rn"], DATA / "proc", "proc")
    auto = run_mode(["-rn"], DATA / "proc", "auto", replay=False)
    assert (auto.status, auto.stdout, auto.stderr) == (0, proc.stdout, "")
    verbose = run_mode(["-rnv"], DATA / "proc", "auto", replay=False)
    assert verbose.stdout == proc.stdout
    assert verbose.stderr.startswith("nlstat: rtnetlink refused the IPv4 routes dump")


@pytest.mark.usefixtures("refusing_netlink")
def test_forced_netlink_reports_the_refusal() -> None:
    with pytest.raises(NlstatError, match="no /proc fallback with the backend netlink"):
        run_mode(["-rn"], DATA / "proc", "netlink")
    with pytest.raises(NlstatError, match="no /proc fallback with the backend netlink"):
        run_mode(["-6", "-rn"], DATA / "proc", "netlink")


@pytest.mark.usefixtures("refusing_netlink")
def test_auto_reads_ipv6_from_proc_without_asking_netlink() -> None:
    run = run_mode(["-6", "-rn"], DATA / "proc", "auto", replay=False)
    assert (run.status, run.stderr) == (0, "")
    assert run.stdout == (GOLDEN / "6rn.out").read_bytes()
