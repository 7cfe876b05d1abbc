"""The -p map over a /proc tree built in a temporary directory (same layout, real symlinks)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nlstat.procmap import build_inode_map, program_name


def make_process(root: Path, pid: int, cmdline: bytes, links: dict) -> None:
    base = root / str(pid)
    (base / "fd").mkdir(parents=True)
    (base / "cmdline").write_bytes(cmdline)
    for fd, target in links.items():
        os.symlink(target, base / "fd" / str(fd))


def test_first_pid_wins_and_names_follow_netstat(tmp_path: Path) -> None:
    make_process(tmp_path, 100, b"/usr/bin/python3\0x.py\0", {3: "socket:[11]", 4: "/dev/null"})
    make_process(tmp_path, 200, b"./relative/prog\0", {3: "socket:[11]", 5: "socket:[22]"})
    make_process(tmp_path, 300, b"", {0: "socket:[33]"})
    make_process(tmp_path, 400, b"/usr/sbin/daemon: worker /var/run\0", {1: "[0000]:44"})
    make_process(tmp_path, 12345, b"/opt/averyveryverylongprogramname\0", {7: "socket:[55]"})
    (tmp_path / "self").mkdir()
    result = build_inode_map(str(tmp_path))
    assert result.owners == {
        11: "100/python3",
        22: "200/./relative/prog",
        33: "300/",
        44: "400/run",
        55: "12345/averyveryvery",
    }
    assert not result.denied and result.notice() == ""


def test_the_lowest_pid_owns_a_shared_socket_whatever_the_listing_order(tmp_path: Path) -> None:
    """netstat keeps the first owner in /proc's readdir() order, which is ascending pid. A
    captured tree lists in its file system's order (tmpfs: newest first; ext4: by hash), so
    the lowest pid is made neither first nor last, and its text does not sort first."""
    for pid in (70, 9, 9000, 10, 905, 90, 71, 100):
        make_process(tmp_path, pid, b"/bin/p%d\0" % pid, {3: "socket:[500]", 4: f"socket:[{pid}]"})
    for parallel in (False, True):
        owners = build_inode_map(str(tmp_path), parallel=parallel).owners
        assert owners[500] == "9/p9"
        assert owners[9000] == "9000/p9000" and owners[10] == "10/p10"


def test_vanished_and_missing_entries_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "77").mkdir()  # no fd directory: the process ended mid-scan
    assert build_inode_map(str(tmp_path)).owners == {}
    assert build_inode_map(str(tmp_path / "absent")).owners == {}
    assert program_name(str(tmp_path), "77") is None  # no cmdline: netstat skips its sockets


def test_notices() -> None:
    from nlstat.procmap import InodeMap

    assert InodeMap({}, True).notice().startswith('(No info could be read for "-p": geteuid()=')
    assert InodeMap({1: "1/x"}, True).notice() == (
        "(Not all processes could be identified, non-owned process info\n"
        " will not be shown, you would have to be root to see it all.)"
    )


def test_two_walkers_give_the_map_of_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk in two processes (a dominant process cut in two, the others shared out) gives
    exactly the one-process map, first owners included."""
    from nlstat import procmap

    make_process(tmp_path, 10, b"/srv/big\0", {fd: f"socket:[{1000 + fd}]" for fd in range(3, 400)})
    for pid in range(20, 40):
        links = {3: f"socket:[{pid}]", 4: "socket:[1005]", 5: "/dev/null", 6: "[0000]:77"}
        make_process(tmp_path, pid, b"/bin/worker%d\0" % pid, links)
    monkeypatch.setattr(
        procmap, "descriptor_count", lambda root, pid: len(os.listdir(f"{root}/{pid}/fd"))
    )
    monkeypatch.setattr(procmap, "PARALLEL_MINIMUM", 1)
    split = procmap.shares(str(tmp_path), sorted(os.listdir(tmp_path)))
    assert split is not None
    first, second = split
    assert (0, "10", 0, 2) in first and (0, "10", 1, 2) in second
    assert len(first) > 1 and len(second) > 1
    one = build_inode_map(str(tmp_path), parallel=False)
    two = build_inode_map(str(tmp_path), parallel=True)
    assert two.owners == one.owners
    assert len(one.owners) == 397 + 20 + 1
    # The lowest pid wins, whatever order the directory lists them in.
    assert one.owners[1005] == "10/big"
    assert one.owners[77] == "20/worker20"


def test_dense_table_answers_as_the_dict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past DENSE_MINIMUM sockets whose inodes are close together, the table is an array over
    their span: same owners (first pid in /proc order wins), same defaults; inodes spread
    too far apart keep the dict."""
    from nlstat import procmap

    make_process(tmp_path, 10, b"/srv/a\0", {fd: f"socket:[{5000 + fd}]" for fd in range(3, 60)})
    make_process(tmp_path, 20, b"/srv/b\0", {3: "socket:[5010]", 4: "socket:[5070]"})
    make_process(tmp_path, 30, b"/srv/c\0", {3: "socket:[5100]", 4: "/dev/null"})
    expected = build_inode_map(str(tmp_path), parallel=False).owners
    assert isinstance(expected, dict)
    monkeypatch.setattr(procmap, "DENSE_MINIMUM", 10)
    dense = build_inode_map(str(tmp_path), parallel=False).owners
    assert isinstance(dense, procmap.DenseOwners)
    assert dict(dense) == expected and len(dense) == len(expected)
    for inode in (4999, 5003, 5010, 5070, 5100, 5101, 1 << 40):
        assert dense.get(inode, "-") == expected.get(inode, "-")
    with pytest.raises(KeyError):
        dense[5101]
    make_process(tmp_path, 40, b"/srv/far\0", {3: "socket:[900000000]"})
    spread = build_inode_map(str(tmp_path), parallel=False).owners
    assert isinstance(spread, dict) and spread[900000000].endswith("/far")


def test_links_that_do_not_parse_are_skipped(tmp_path: Path) -> None:
    """Found by tests/unit/test_fuzz_procfs.py: `socket:[]` raised ValueError and
    `socket:[-1]` OverflowError out of the walk (an internal error of -p). The kernel never
    writes them; a substitute /proc may, and netstat.c extract_type_1_socket_inode() skips
    such a link. The process's other sockets are still found."""
    make_process(tmp_path, 100, b"/bin/odd\0", {
        0: "socket:[]", 1: "socket:[-1]", 2: "socket:[99999999999999999999999]",
        3: "socket:[12]x", 4: "[0000]:zz", 5: "socket:[77]",
    })
    assert build_inode_map(str(tmp_path)).owners == {77: "100/odd"}
