"""`-g` live: netstat and nlstat in the same private namespace, byte for byte, both backends.

The lab (tests/links_support.py) has memberships on both families, some joined twice (RefCnt
2), on a 15-character device name, on a device moved in from another namespace (so the kernel's
device order is not the ifindex order), and host names for some groups in its /etc/hosts.
`-g` is step 7 of the socket listing; `-4 -g` and `-6 -g` also list Internet sockets, so the
group table is compared on its own and the whole output as well. `write_groups` is also run
directly, so the table is checked even without the socket listing around it.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, Sequence, Tuple

import pytest

from tests.links_support import NETSTAT, Lab, Outcome, compare_live, links_lab
from tests.netns import on_proc_tree, skip_unless_root, write_proc_tree

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.netns

BACKENDS = ("netlink", "proc")
GROUP_TITLE = b"IPv6/IPv4 Group Memberships\n"
GROUP_ARGS: Tuple[Tuple[str, ...], ...] = (
    ("-g",),
    ("-gn",),
    ("--groups",),
    ("-g", "--numeric-hosts"),
    ("-g", "--numeric-ports"),
    ("-ga",),
    ("-gl",),
    ("-ge",),
    ("-gv",),
    ("-gW",),
    ("-4", "-g"),
    ("-6", "-g"),
    ("-g", "-A", "inet"),
    ("-g", "-A", "inet6"),
    ("-g", "-A", "inet,inet6", "-n"),
    ("-g", "-x"),
)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    skip_unless_root()
    with links_lab() as built:
        yield built


def _table(text: bytes) -> bytes:
    """The group table of an output: from its title to the next section (or the end)."""
    start = text.find(GROUP_TITLE)
    if start < 0:
        return b""
    rest = text[start:]
    end = rest.find(b"\nActive ")
    return rest if end < 0 else rest[: end + 1]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("args", GROUP_ARGS, ids=" ".join)
def test_groups(lab: Lab, args: Sequence[str], backend: str) -> None:
    theirs, ours = compare_live(lab, args, backend)
    assert _table(theirs.stdout).count(b"\n") > 10
    assert _table(ours.stdout) == _table(theirs.stdout), ours.stderr.decode(errors="replace")
    assert ours.stdout == theirs.stdout
    assert ours.status == theirs.status == 0


WRITE_GROUPS = """
import sys
from nlstat.env import Environment
from nlstat.modes.groups import write_groups
from nlstat.query import Query
inet, inet6, numeric = (int(x) for x in sys.argv[1:4])
query = Query(groups=True, inet=inet, inet6=inet6, selections=1 + inet + inet6,
              implicit_protocols=bool(inet + inet6), numeric_hosts=bool(numeric))
status = write_groups(query, Environment.from_os())
sys.stdout.flush()
sys.exit(status)
"""


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("args, families", [
    (("-g",), (1, 1, 0)),
    (("-gn",), (1, 1, 1)),
    (("-4", "-g"), (1, 0, 0)),
    (("-6", "-gn"), (0, 1, 1)),
], ids=["-g", "-gn", "-4 -g", "-6 -gn"])
def test_write_groups_alone(lab: Lab, args: Sequence[str], families: Tuple[int, int, int],
                            backend: str) -> None:
    """write_groups() by itself writes exactly netstat's group table and returns 0."""
    theirs = lab.netstat(args)
    code = WRITE_GROUPS.replace("sys.argv[1:4]", repr([str(f) for f in families]))
    ours = lab.python(code, backend)
    assert ours.stdout == _table(theirs.stdout)
    assert ours.status == 0 and ours.stderr == b""


def test_continuous_groups(lab: Lab) -> None:
    """netstat garbles -c -g from the second iteration on; nlstat repeats the first layout."""
    theirs = lab.netstat(["-gn"]).stdout
    process = lab.ns.popen(
        ["env", f"PYTHONPATH={REPO}", "LC_ALL=C", sys.executable, "-m", "nlstat", "-cgn"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        out, err = process.communicate(timeout=2.5)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    iterations = out.split(GROUP_TITLE)[1:]
    assert len(iterations) >= 2
    assert GROUP_TITLE + iterations[0] == theirs
    assert iterations[0] == iterations[1]
    assert b"bogus" not in err


# -- crafted /proc files --------------------------------------------------------------------------


def _with_files(lab: Lab, name: str, files: Dict[str, bytes]) -> Path:
    return Path(write_proc_tree(Path(lab.ns.scratch) / name, files))


def _netstat_on(lab: Lab, root: Path, args: Sequence[str]) -> Outcome:
    result = lab.ns.run(on_proc_tree(root, ["env", "LC_ALL=C", NETSTAT, *args]))
    return Outcome(result.stdout, result.stderr, result.returncode)


def test_crafted_group_files(lab: Lab) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare")
    igmp = lab.read("/proc/net/igmp")
    igmp6 = lab.read("/proc/net/igmp6")
    lines = igmp.splitlines(True)
    bogus_igmp = b"".join(lines[:3] + [b"\t\t\t\tzz\n", b"oops\n", b"\tno\n"] + lines[3:])
    bogus_igmp6 = igmp6 + b"x y\n3    nlsveth0        ff15\n\n"
    device_first = (b"1    Device0         ff020000000000000000000000000001     1 0000000C 0\n"
                    + igmp6)
    cases = [
        ("missing-igmp", {"igmp6": igmp6}, ("-gn",)),
        ("missing-igmp-4", {"igmp6": igmp6}, ("-4", "-gn")),
        ("missing-igmp-v", {}, ("-gnv",)),
        ("missing-igmp6", {"igmp": igmp}, ("-gn",)),
        ("bogus", {"igmp": bogus_igmp, "igmp6": bogus_igmp6}, ("-gn",)),
        ("device-first", {"igmp": igmp, "igmp6": device_first}, ("-gn",)),
        ("empty", {"igmp": b"", "igmp6": b""}, ("-gn",)),
        ("names", {"igmp": igmp, "igmp6": igmp6}, ("-g",)),
    ]
    for name, files, args in cases:
        root = _with_files(lab, name, files)
        theirs = _netstat_on(lab, root, args)
        ours = lab.nlstat(args, "proc", {"NLSTAT_PROC_ROOT": str(root)})
        assert (ours.stdout, ours.status) == (theirs.stdout, theirs.status), name
        assert ours.stderr == theirs.stderr, name
