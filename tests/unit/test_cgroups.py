"""Socket cgroups without a live kernel: INET_DIAG_CGROUP_ID read from captured-shape
messages, the cgroup2 mount found in mountinfo, ids to paths over a directory tree, when a
query pays for them, and the bytecode operation."""

from __future__ import annotations

import io
import os
import socket
import struct
from pathlib import Path

import pytest

from nlstat.backends.netlink.bytecode import bytecode
from nlstat.backends.netlink.sockdiag import INET_MSG_V6, InetDecoder
from nlstat.cgroups import CgroupPaths, cgroup2_mount, cgroup_id, kernel_version
from nlstat.cli import parse
from nlstat.env import Environment
from nlstat.filters import Filters
from nlstat.kernel.netlink import NLATTR
from nlstat.kernel.sockdiag import (
    INET_DIAG_BC_CGROUP_COND,
    INET_DIAG_CGROUP_ID,
    INET_DIAG_PAD,
    INET_DIAG_SHUTDOWN,
    INET_DIAG_SOCKOPT,
)


def attribute(kind: int, payload: bytes) -> bytes:
    data = NLATTR.pack(NLATTR.size + len(payload), kind) + payload
    return data + bytes(-len(data) % 4)


def message(port: int, attributes: bytes) -> bytes:
    """An inet_diag message as this kernel sends one (shutdown, cgroup id, sockopt)."""
    values = {
        "nlmsg_len": INET_MSG_V6.size + len(attributes), "nlmsg_type": 20, "nlmsg_flags": 2,
        "nlmsg_seq": 1, "nlmsg_pid": 0, "idiag_family": socket.AF_INET, "idiag_state": 10,
        "idiag_timer": 0, "idiag_retrans": 0, "idiag_sport": socket.htons(port),
        "idiag_dport": 0, "idiag_src": bytes([127, 0, 0, 1]) + bytes(12), "idiag_dst": bytes(16),
        "idiag_if": 0, "idiag_cookie": port, "idiag_expires": 0, "idiag_rqueue": 0,
        "idiag_wqueue": 0, "idiag_uid": 0, "idiag_inode": port,
    }
    return INET_MSG_V6.pack(*[values[name] for name in INET_MSG_V6.fields]) + attributes


def cgroup(value: int) -> bytes:
    return attribute(INET_DIAG_CGROUP_ID, struct.pack("=Q", value))


SHUTDOWN = attribute(INET_DIAG_SHUTDOWN, b"\0")
SOCKOPT = attribute(INET_DIAG_SOCKOPT, b"\x52\0")


def test_the_cgroup_id_is_read_only_when_wanted() -> None:
    chunk = b"".join([
        message(1, SHUTDOWN + cgroup(7) + SOCKOPT),
        message(2, SHUTDOWN + cgroup(8) + SOCKOPT),  # the position learnt from the first
        # a pad before the u64 (arches without unaligned access): another position
        message(3, SHUTDOWN + attribute(INET_DIAG_PAD, b"") + cgroup(9) + SOCKOPT),
        message(4, SHUTDOWN + SOCKOPT),  # a kernel before 5.7
        message(5, b""),  # TIME_WAIT and SYN_RECV sockets come without attributes
        message(6, SHUTDOWN + cgroup(1) + SOCKOPT),
    ])
    wanted = InetDecoder("tcp", want_cgroup=True).chunk(chunk)
    assert [(r.inode, r.cgroup_id) for r in wanted] == [
        (1, 7), (2, 8), (3, 9), (4, 0), (5, 0), (6, 1)]
    plain = InetDecoder("tcp").chunk(chunk)
    assert [r.cgroup_id for r in plain] == [0] * 6
    assert [r._replace(cgroup_id=0) for r in wanted] == plain


def test_a_truncated_attribute_reads_as_no_cgroup() -> None:
    cut = SHUTDOWN + NLATTR.pack(12, INET_DIAG_CGROUP_ID) + b"\1\2"  # runs past the message
    (record,) = InetDecoder("tcp", want_cgroup=True).chunk(message(1, cut))
    assert record.cgroup_id == 0


def test_only_queries_that_show_count_or_filter_cgroups_pay() -> None:
    def wants(*argv: str) -> bool:
        env = Environment(stdout=io.BytesIO(), stderr=io.StringIO())
        query = parse(list(argv), env)
        assert not isinstance(query, int), argv
        return query.wants_cgroup

    assert not wants("-ant")
    assert not wants("-ante")  # the text has no cgroup column
    assert not wants("-ant", "--json")
    assert wants("-ante", "--json") and wants("-ante", "--ndjson")
    assert wants("-ant", "--count", "--by", "state,cgroup")
    assert not wants("-ant", "--count")
    assert wants("-t", "--prometheus", "--by", "cgroup")
    assert wants("-ant", "--cgroup", "/")


def test_kernel_versions() -> None:
    assert kernel_version("6.18.44-fc-v857") == (6, 18)
    assert kernel_version("5.7.0") == (5, 7) and kernel_version("5.6.19-arch1") == (5, 6)
    assert kernel_version("5.10rc1") == (5, 10) and kernel_version("garbage") == (0, 0)


def test_the_cgroup2_mount_is_found_in_mountinfo(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "24 29 0:22 / /sys rw,nosuid - sysfs sysfs rw\n"
        "31 24 0:26 / /sys/fs/cgroup ro shared:9 - tmpfs tmpfs ro,mode=755\n"
        "41 31 0:38 / /sys/fs/cgroup/with\\040blank rw,relatime shared:10 - cgroup2 cgroup2 rw\n"
    )
    assert cgroup2_mount(str(info)) == "/sys/fs/cgroup/with blank"
    info.write_text("24 29 0:22 / /sys rw,nosuid - sysfs sysfs rw\n")
    assert cgroup2_mount(str(info)) is None
    assert cgroup2_mount(str(tmp_path / "missing")) is None


def test_ids_are_directory_inodes(tmp_path: Path) -> None:
    (tmp_path / "system.slice" / "x.service").mkdir(parents=True)
    (tmp_path / "user.slice").mkdir()
    (tmp_path / "cgroup.procs").write_text("")
    paths = CgroupPaths(str(tmp_path))
    ino = os.stat(tmp_path / "system.slice" / "x.service").st_ino
    assert paths.path(ino) == "/system.slice/x.service"
    assert paths.path(os.stat(tmp_path).st_ino) == "/"
    assert paths.path(0) is None and paths.path(os.stat(tmp_path / "cgroup.procs").st_ino) is None
    assert cgroup_id("/system.slice/x.service", str(tmp_path)) == ino
    assert cgroup_id(str(tmp_path / "system.slice" / "x.service"), str(tmp_path)) == ino
    for bad in ("/nope", "relative", "/cgroup.procs"):
        with pytest.raises(ValueError):
            cgroup_id(bad, str(tmp_path))
    assert CgroupPaths("/nonexistent-mount").path(5) is None


def test_the_cgroup_condition_is_a_u64_after_its_op() -> None:
    program = bytecode(Filters(cgroup=0x1122334455))
    code, yes, no = struct.unpack_from("=BBH", program)
    assert (code, yes, no) == (INET_DIAG_BC_CGROUP_COND, 12, 16)
    assert struct.unpack_from("=Q", program, 4) == (0x1122334455,)
