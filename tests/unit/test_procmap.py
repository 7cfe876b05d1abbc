"""The -p map over a /proc tree built in a temporary directory (same layout, real symlinks)."""

from __future__ import annotations

import os
from pathlib import Path

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


def test_vanished_and_missing_entries_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "77").mkdir()  # no fd directory: the process ended mid-scan
    assert build_inode_map(str(tmp_path)).owners == {}
    assert build_inode_map(str(tmp_path / "absent")).owners == {}
    assert program_name(str(tmp_path), "77") == ""


def test_notices() -> None:
    from nlstat.procmap import InodeMap

    assert InodeMap({}, True).notice().startswith('(No info could be read for "-p": geteuid()=')
    assert InodeMap({1: "1/x"}, True).notice() == (
        "(Not all processes could be identified, non-owned process info\n"
        " will not be shown, you would have to be root to see it all.)"
    )
