"""`-i` live: netstat and nlstat in the same private namespace, byte for byte, both backends.

The lab (tests/links_support.py) holds veth pairs into a second namespace with traffic, a
bridge, a tun device, down ifb/veth devices, alias labels, a 15-character name, promisc,
odd queue lengths and IPv6 addresses of every scope. Each comparison runs netstat, nlstat,
netstat and retries when netstat's two runs differ (a counter moved in between).
Further cases: a label that names no device (netstat's fetch error), crafted /proc files
(bind-mounted over /proc for netstat, NLSTAT_PROC_ROOT for nlstat), and `-c`.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Sequence, Tuple

import pytest

from tests.links_support import (
    NETSTAT,
    Lab,
    Outcome,
    compare_live,
    compare_runs,
    links_lab,
    wait_quiet,
)
from tests.netns import Namespace, on_proc_tree, skip_unless_root, write_proc_tree

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.netns

BACKENDS = ("netlink", "proc")
INTERFACE_ARGS: Tuple[Tuple[str, ...], ...] = (
    ("-i",),
    ("-ia",),
    ("-ie",),
    ("-iea",),
    ("-iee",),
    ("-ieea",),
    ("-in",),
    ("-iv",),
    ("-ie", "-a"),
    ("-iW",),
    ("-ian", "-v"),
    ("-i", "-A", "inet6"),
    ("--interfaces",),
    ("--interfaces", "--all", "--extend"),
    ("-a", "-i", "-e", "-e", "-e", "-N"),
)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    skip_unless_root()
    with links_lab() as built:
        yield built


def _show(outcome: Outcome) -> str:
    return outcome.stdout.decode(errors="replace") + outcome.stderr.decode(errors="replace")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("args", INTERFACE_ARGS, ids=" ".join)
def test_interfaces(lab: Lab, args: Sequence[str], backend: str) -> None:
    theirs, ours = compare_live(lab, args, backend)
    assert ours.stdout == theirs.stdout, _show(ours)
    assert ours.status == theirs.status == 0
    assert ours.stderr == b""


def test_auto_backend(lab: Lab) -> None:
    for args in (("-i",), ("-iea",)):
        theirs, ours = compare_live(lab, args, "auto")
        assert (ours.stdout, ours.status) == (theirs.stdout, theirs.status)


def test_lab_shows_what_it_should(lab: Lab) -> None:
    """The lab really has the cases the comparisons are meant to cover."""
    text = lab.netstat(["-iea"]).stdout.decode(errors="surrogateescape")
    for needle in ("nlsveth0:10: flags", "lo:7: flags", "scopeid 0x40<site>",
                   "scopeid 0x80<compat,global>", "inet6 198.18.0.5  prefixlen 128",
                   "destination 198.18.2.2", "unspec 00-00", "PROMISC,ALLMULTI",
                   "txqueuelen -2147483648", "ether", "(Local Loopback)", "nlsé0:1: flags",
                   "nls\udcff1: flags"):
        assert needle in text, needle
    short = lab.netstat(["-i"]).stdout.decode(errors="surrogateescape").splitlines()
    long_name = [line for line in short if line.startswith("nlsverylongname")]
    assert long_name and long_name[0].split()[2] == "0"  # Debian's bug zeroes it...
    assert b"nlsverylongname:" in lab.read("/proc/net/dev")
    proc_net_dev = lab.read("/proc/net/dev").decode(errors="surrogateescape")
    counters = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].split()
                for line in proc_net_dev.splitlines()[2:]}
    # ...although it has packets: the lab's echoes (tests/echo.py), each one answered, moved
    # the receive and transmit packet counts of the veths that carried them.
    for device, echoes in (("nlsverylongname", 3), ("nlsveth0", 4 + 3)):
        rx_packets, tx_packets = int(counters[device][1]), int(counters[device][9])
        assert rx_packets >= echoes and tx_packets >= echoes, (device, counters[device])


# -- a label whose device does not exist --------------------------------------------------------


@pytest.fixture(scope="module")
def ghost() -> Iterator[Namespace]:
    skip_unless_root()
    ns = Namespace(prefix="nlst-linkg")
    try:
        ns.create()
        code = (
            "from pyroute2 import IPRoute\n"
            "with IPRoute() as ipr:\n"
            "    index = ipr.link_lookup(ifname='veth0')[0]\n"
            "    ipr.addr('add', index=index, address='198.18.5.1', prefixlen=24, label='zz:1')\n"
        )
        ns.check([sys.executable, "-c", code])
        wait_quiet(ns)
        yield ns
    finally:
        ns.delete()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("args", [("-i",), ("-ie",), ("-ia",)], ids=" ".join)
def test_fetch_error(ghost: Namespace, args: Sequence[str], backend: str) -> None:
    """netstat lists the label, SIOCGIFFLAGS("zz:1") fails, it prints what came before and stops."""
    def run(command: List[str]) -> Outcome:
        result = ghost.run(command)
        return Outcome(result.stdout, result.stderr, result.returncode)

    theirs, ours = compare_runs(
        lambda: run(["env", "LC_ALL=C", NETSTAT, *args]),
        lambda: run(["env", f"PYTHONPATH={REPO}", "LC_ALL=C", f"NLSTAT_BACKEND={backend}",
                     sys.executable, "-m", "nlstat", *args]),
        lambda: wait_quiet(ghost, settle=0.5, limit=5.0))
    assert b"lo" in theirs.stdout and b"zz:1" not in theirs.stdout
    assert ours.stdout == theirs.stdout
    assert ours.status == theirs.status == 1
    assert ours.stderr == theirs.stderr == (
        b"zz:1: error fetching interface information: Device not found\n"
        b"missing interface information: No such device\n"
    )


# -- crafted /proc files (procfs backend) -------------------------------------------------------


def _fake_proc(lab: Lab, name: str, files: Dict[str, object]) -> Path:
    return Path(write_proc_tree(Path(lab.ns.scratch) / name, files))


def _netstat_on(lab: Lab, root: Path, args: Sequence[str]) -> Outcome:
    result = lab.ns.run(on_proc_tree(root, ["env", "LC_ALL=C", NETSTAT, *args]))
    return Outcome(result.stdout, result.stderr, result.returncode)


def _nlstat_on(lab: Lab, root: Path, args: Sequence[str]) -> Outcome:
    return lab.nlstat(args, "proc", {"NLSTAT_PROC_ROOT": str(root)})


def _proc_net_dev(lab: Lab, header: str, names: Sequence[str]) -> str:
    lines = lab.read("/proc/net/dev").decode(errors="surrogateescape").splitlines(True)
    body = [line for line in lines[2:] if line.split(":", 1)[0].strip() in names]
    return "".join(lines[:1]) + header + "".join(body)


FULL_HEADER = (" face |bytes    packets errs drop fifo frame compressed multicast|bytes    "
               "packets errs drop fifo colls carrier compressed\n")


def _crafted_cases(lab: Lab) -> List[Tuple[str, dict, Tuple[str, ...]]]:  # type: ignore[type-arg]
    if_inet6 = lab.read("/proc/net/if_inet6")
    real = _proc_net_dev(lab, FULL_HEADER, ["lo", "nlsveth0", "nlsverylongname", "nlstun0"])
    return [
        # no /proc/net/dev: a warning, then only SIOCGIFCONF's names, without counters
        ("no-dev", {"if_inet6": if_inet6}, ("-ia",)),
        ("no-dev-long", {"if_inet6": if_inet6}, ("-iea",)),
        # no if_inet6 either: no inet6 lines
        ("nothing", {}, ("-ie",)),
        # a name that is in /proc/net/dev but not in the kernel: fetch error, status 1
        ("vanished", {"dev": real + "nlsgone: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"},
         ("-ia",)),
        # the 13-column layout of old kernels, odd numbers, a malformed line
        ("old-layout", {
            "dev": "Inter-|   Receive                  |  Transmit\n"
                   " face |bytes    packets errs drop fifo frame|bytes    packets errs drop fifo "
                   "colls carrier\n"
                   "    lo: 1 2 3 4 5 6 7 8 9 10 11 12 13\n"
                   "nlsveth0: 99999999999 18446744073709551615 x 1 2\n"
                   "nlsverylongname: 5 6 7 8 9 10 11 12 13 14 15 16 17\n",
            "if_inet6": if_inet6}, ("-iea",)),
        ("old-layout-short", {
            "dev": "Inter-|\n face |packets errs drop fifo frame|packets errs drop fifo colls "
                   "carrier\n"
                   "    lo: 1 2 3 4 5 6 7 8 9 10 11 12 13\n"}, ("-ia",)),
        ("real-subset", {"dev": real, "if_inet6": if_inet6}, ("-iea",)),
    ]


def test_crafted_proc_files(lab: Lab) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare")
    for name, files, args in _crafted_cases(lab):
        root = _fake_proc(lab, name, files)
        for _attempt in range(3):
            theirs = _netstat_on(lab, root, args)
            ours = _nlstat_on(lab, root, args)
            if ours.stdout == theirs.stdout:
                break
        assert (ours.stdout, ours.status) == (theirs.stdout, theirs.status), (name, _show(ours))
        # stderr names the file nlstat was pointed at; otherwise the same words
        assert ours.stderr.replace(str(root).encode(), b"/proc") == theirs.stderr, name


# -- continuous mode ----------------------------------------------------------------------------


def _continuous(lab: Lab, args: Sequence[str], seconds: float = 2.5) -> Dict[str, bytes]:
    """netstat and nlstat (each backend) with -c, started together, stopped with SIGINT."""
    commands = {"netstat": ["env", "LC_ALL=C", NETSTAT, *args]}
    for backend in BACKENDS:
        commands[backend] = ["env", f"PYTHONPATH={REPO}", "LC_ALL=C",
                             f"NLSTAT_BACKEND={backend}", sys.executable, "-m", "nlstat", *args]
    processes = {
        name: lab.ns.popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           stdin=subprocess.DEVNULL)
        for name, command in commands.items()
    }
    time.sleep(seconds)
    outputs = {}
    for name, process in processes.items():
        process.send_signal(signal.SIGINT)
        outputs[name] = process.communicate(timeout=10)[0]
    return outputs


def test_continuous_short(lab: Lab) -> None:
    """-ci: the title once, then the column header and the rows every second."""
    header = b"Iface             MTU"
    for _attempt in range(3):
        outputs = _continuous(lab, ["-ci"])
        iterations = {name: [header + part for part in text.split(header)[1:3]]
                      for name, text in outputs.items()}
        if all(iterations[backend] == iterations["netstat"] for backend in BACKENDS):
            break
    for name, text in outputs.items():
        assert text.count(b"Kernel Interface table") == 1, name
        assert text.startswith(b"Kernel Interface table\n" + header), name
        assert len(iterations[name]) == 2, name
    for backend in BACKENDS:
        assert iterations[backend] == iterations["netstat"], backend


def test_continuous_long(lab: Lab) -> None:
    """-cie: the title once, then the interface blocks again and again."""
    blocks = lab.netstat(["-ie"]).stdout.count(b"\n\n")
    for _attempt in range(3):
        outputs = _continuous(lab, ["-cie"])
        iterations = {name: text.split(b"\n\n")[: 2 * blocks] for name, text in outputs.items()}
        if all(iterations[backend] == iterations["netstat"] for backend in BACKENDS):
            break
    for name, text in outputs.items():
        assert text.count(b"Kernel Interface table") == 1, name
        assert len(iterations[name]) == 2 * blocks, name
    for backend in BACKENDS:
        assert iterations[backend] == iterations["netstat"], backend
