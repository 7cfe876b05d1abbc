"""`-s` live: netstat and nlstat in the same private namespace, and on random files, byte for byte.

1. A namespace with its own traffic (pings over a veth pair to a second namespace, TCP and UDP
   over loopback) is compared for many argument sets under NLSTAT_BACKEND=netlink and =proc.
   The two programs run at different instants, so each comparison is netstat, nlstat, netstat:
   when netstat's two outputs differ a counter moved and the comparison is retried.
2. Seeded random /proc files (odd tokens, unknown sections, malformed lines) are read by the
   real netstat (bind-mounted over /proc in a private mount namespace) and by nlstat.
"""

from __future__ import annotations

import random
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List, Sequence, Tuple

import pytest

from nlstat.format import stats_tables
from tests.differential import bracketed
from tests.stats_support import (
    NETSTAT,
    Outcome,
    can_fake_proc,
    environ,
    make_traffic,
    netstat_on_files,
    nlstat_command,
    nlstat_in_process,
    stats_network,
)

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.netns

ATTEMPTS = 4

# At least 15 argument sets; -c must be ignored (one report, status 0), "-4 -6" refused.
LIVE_ARGS: Tuple[Tuple[str, ...], ...] = (
    ("-s",),
    ("-st",),
    ("-su",),
    ("-sw",),
    ("-sU",),
    ("-sS",),
    ("-sx",),
    ("-s6",),
    ("-s", "-6"),
    ("-s6t",),
    ("-s6u",),
    ("-s6w",),
    ("-A", "inet", "-s"),
    ("-A", "inet6", "-s"),
    ("-4", "-6", "-s"),
    ("-s", "-4", "-4"),
    ("-s", "-A", "inet,inet6"),
    ("-sc",),
    ("--statistics",),
    ("--statistics", "--tcp", "--udp"),
    ("-s", "-n"),
    ("-s", "-e", "-a", "-p", "-l"),
    ("-s", "--inet6"),
    ("-s", "-4"),
    ("-s", "-A", "ip"),
    ("-stuw",),
)


@pytest.fixture(scope="module")
def busy_namespace() -> Iterator[str]:
    from tests.netns import skip_unless_root

    skip_unless_root()
    with stats_network() as (inner, _peer):
        make_traffic(inner)
        yield inner.name


def _run_inside(namespace: str, command: Sequence[str], extra: Dict[str, str]) -> Outcome:
    done = subprocess.run(
        ["ip", "netns", "exec", namespace, *command],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=environ(extra),
        timeout=60,
        cwd=str(REPO),
        check=False,
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def test_the_echoes_moved_the_icmp_counters(busy_namespace: str) -> None:
    """make_traffic's echoes (tests/echo.py) were each answered: the comparisons below see
    non-zero ICMP counters, as they did with ping."""
    snmp = _run_inside(busy_namespace, ["cat", "/proc/net/snmp", "/proc/net/snmp6"], {})
    lines = snmp.stdout.decode().splitlines()
    names, values = [ln.split()[1:] for ln in lines if ln.startswith("Icmp: ")][:2]
    icmp = dict(zip(names, map(int, values)))
    icmp6 = {ln.split()[0]: int(ln.split()[1]) for ln in lines if ln.startswith("Icmp6")}
    # 3 echoes to the peer and 3 to the namespace's own address, each one answered.
    assert icmp["OutEchos"] >= 6 and icmp["InEchoReps"] >= 6, icmp
    assert icmp6["Icmp6OutEchos"] >= 3 and icmp6["Icmp6InEchoReplies"] >= 3, icmp6


@pytest.mark.parametrize("backend", ["netlink", "proc"])
@pytest.mark.parametrize("argv", LIVE_ARGS, ids=[" ".join(a) for a in LIVE_ARGS])
def test_live_namespace(busy_namespace: str, argv: Tuple[str, ...], backend: str) -> None:
    extra = {"NLSTAT_BACKEND": backend}
    before, ours, _, steady = bracketed(
        lambda: _run_inside(busy_namespace, [NETSTAT, *argv], {}),
        lambda: _run_inside(busy_namespace, nlstat_command(argv), extra),
        ATTEMPTS)
    if not steady:
        pytest.fail("the namespace's counters kept moving")
    assert before.stdout  # every argument set prints something (a refusal goes to stdout too)
    assert ours.stdout.decode("latin-1").splitlines() == before.stdout.decode(
        "latin-1"
    ).splitlines()
    assert (ours.status, ours.stdout, ours.stderr) == (before.status, before.stdout, before.stderr)


# -- random files ---------------------------------------------------------------------------------

_KNOWN_V4 = {
    name: [row[0] for row in table] for name, table in stats_tables.IPV4_TABLES.items()
}
_KNOWN_V6 = [row[0].strip() for table in stats_tables.IPV6_TABLES.values() for row in table]
_VALUES = ["0", "0", "1", "7", "42", "-1", "+3", "18446744073709551615", "18446744073709551616",
           "99999999999999999999999", "x", "5z", "-", "007"]
_JUNK_NAMES = ["InCsumErrors", "OutTransmits", "Foo", "Caf\xe9", "A:B", "x\ry", "TCPTimeouts",
               "Forwarding", "TWKilled", "InType3"]


def _name(rng: random.Random, section: str) -> str:
    pool = _KNOWN_V4.get(section)
    if pool and rng.random() < 0.7:
        return rng.choice(pool)
    return rng.choice(_JUNK_NAMES)


def _pairs_file(rng: random.Random, sections: Sequence[str]) -> str:
    text = ""
    for section in rng.sample(list(sections), k=rng.randint(0, len(sections))):
        names = [_name(rng, section) for _ in range(rng.randint(0, 12))]
        values = [rng.choice(_VALUES) for _ in range(len(names) + rng.randint(-2, 2))]
        separator = rng.choice([" ", " ", "\t", "  "])
        if rng.random() < 0.1:
            text += "\n"  # a blank title line
        text += f"{section}:{separator}{separator.join(names)}\n"
        value_line = f"{section}: {' '.join(values)}\n"
        if rng.random() < 0.04:
            value_line = value_line.replace(":", "", 1)  # malformed: parse stops here
        text += value_line
    return text


def _snmp6_file(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(1, 40)):
        roll = rng.random()
        if roll < 0.75:
            name = rng.choice(_KNOWN_V6)
        elif roll < 0.9:
            name = rng.choice(["Icmp6InType1", "Udp6RcvbufErrors", "UdpLite6InDatagrams",
                               "Odd", "OddToo", "Ip6OutTransmits"])
        else:
            lines.append(rng.choice(["", "   "]))  # repeats the previous counter
            continue
        lines.append(f"{name:<32}{rng.choice(_VALUES)}")
    first = f"Ip6InReceives {rng.choice(_VALUES)}"  # netstat needs a name on its first line
    return "\n".join([first, *lines]) + "\n"


def _sctp_file(rng: random.Random) -> str:
    names = [row[0] for row in stats_tables.SCTP] + ["SctpT1InitExpireds", ""]
    return "".join(
        f"{rng.choice(names)}{rng.choice([' ', chr(9), '    '])}{rng.choice(_VALUES)}\n"
        for _ in range(rng.randint(0, 20))
    )


def _random_case(rng: random.Random, root: Path) -> None:
    net = root / "net"
    net.mkdir(parents=True)
    files: Dict[str, str] = {
        "snmp": _pairs_file(rng, ["Ip", "Icmp", "IcmpMsg", "Tcp", "Udp", "UdpLite", "Zed"]),
        "netstat": _pairs_file(rng, ["TcpExt", "IpExt", "MPTcpExt", "Tcp"]),
        "snmp6": _snmp6_file(rng),
    }
    if rng.random() < 0.3:
        files["sctp/snmp"] = _sctp_file(rng)
    for name, text in files.items():
        if rng.random() < 0.08:
            continue  # missing file
        path = net / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("latin-1"))


RANDOM_ARGS: List[Tuple[str, ...]] = [("-s",), ("-s6",), ("-st",), ("-suw",), ("-s6t",), ("-sU",)]


@pytest.mark.parametrize("seed", range(30))
def test_random_files_against_netstat(seed: int) -> None:
    if not can_fake_proc():
        pytest.skip("needs root, unshare and netstat")
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="nlst-stats-") as scratch:
        root = Path(scratch)
        _random_case(rng, root)
        for argv in rng.sample(RANDOM_ARGS, 3):
            want = netstat_on_files(root, argv)
            got = nlstat_in_process(argv, root)
            assert got.stdout.decode("latin-1").splitlines() == want.stdout.decode(
                "latin-1"
            ).splitlines(), argv
            assert got == want, argv
