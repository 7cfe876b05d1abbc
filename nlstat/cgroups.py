"""Socket cgroups: cgroup v2 ids (INET_DIAG_CGROUP_ID) to paths and back.

On cgroup v2 a cgroup's id is the inode number of its directory (kernfs), so one walk of the
cgroup2 tree gives every id's path. Paths are written as /proc/PID/cgroup's "0::" line and
`ss --cgroup` write them: relative to the cgroup2 mount, "/" for the root.

The mount is found in /proc/self/mountinfo (filesystem type cgroup2): /sys/fs/cgroup on a
unified host, /sys/fs/cgroup/unified on a hybrid one. The walk is done once per run and only
when a cgroup id needs a name.
"""

from __future__ import annotations

import os
from typing import Dict, Optional, Tuple

# Linux 5.7 added INET_DIAG_CGROUP_ID and INET_DIAG_BC_CGROUP_COND (net/ipv4/inet_diag.c).
KERNEL_WITH_CGROUPS = (5, 7)


def kernel_version(release: str) -> Tuple[int, int]:
    """"6.1.0-13-amd64" -> (6, 1); (0, 0) when unreadable."""
    parts = release.split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1][:3] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return (0, 0)


def kernel_reports_cgroups() -> bool:
    """Does this kernel's inet_diag report socket cgroups (and test them in bytecode)?"""
    return kernel_version(os.uname().release) >= KERNEL_WITH_CGROUPS


def cgroup2_mount(mountinfo: str = "/proc/self/mountinfo") -> Optional[str]:
    """Where the cgroup2 filesystem is mounted; None when it is not."""
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as file:
            for line in file:
                fields = line.split()
                # "36 25 0:31 / /sys/fs/cgroup rw,... shared:9 - cgroup2 cgroup2 rw,..."
                if "-" in fields:
                    dash = fields.index("-")
                    if fields[dash + 1:dash + 2] == ["cgroup2"] and fields[3] == "/":
                        return _unescape(fields[4])
    except OSError:
        return None
    return None


def _unescape(text: str) -> str:
    """mountinfo writes blanks, tabs, newlines and backslashes as octal escapes."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        text = text.replace(code, chr(int(code[1:], 8)))
    return text


class CgroupPaths:
    """cgroup id -> path (relative to the cgroup2 mount), from one walk of the tree."""

    def __init__(self, mount: Optional[str] = None) -> None:
        self.mount = mount if mount is not None else cgroup2_mount()
        self._paths: Optional[Dict[int, str]] = None

    def _walk(self) -> Dict[int, str]:
        paths: Dict[int, str] = {}
        if self.mount is None:
            return paths
        try:
            paths[os.stat(self.mount).st_ino] = "/"
        except OSError:
            return paths
        pending = [(self.mount, "")]
        while pending:
            directory, relative = pending.pop()
            try:
                entries = list(os.scandir(directory))
            except OSError:
                continue  # removed while walked
            for entry in entries:
                try:
                    if not entry.is_dir(follow_symlinks=False):
                        continue
                    inode = entry.inode()
                except OSError:
                    continue
                path = relative + "/" + entry.name
                paths[inode] = path
                pending.append((entry.path, path))
        return paths

    def path(self, cgroup_id: int) -> Optional[str]:
        """The path of a cgroup id; None for 0 (unknown) or a cgroup that has gone."""
        if not cgroup_id:
            return None
        if self._paths is None:
            self._paths = self._walk()
        return self._paths.get(cgroup_id)


def cgroup_id(path: str, mount: Optional[str] = None) -> int:
    """The id of the cgroup at `path` (relative to the cgroup2 mount, or absolute under it).

    ValueError with a reason when there is no such cgroup."""
    if mount is None:
        mount = cgroup2_mount()
    if mount is None:
        raise ValueError("no cgroup2 filesystem is mounted")
    if not path.startswith("/"):
        raise ValueError("a cgroup path starts with / (as in /proc/PID/cgroup)")
    full = path if path == mount or path.startswith(mount.rstrip("/") + "/") else (
        mount.rstrip("/") + path)
    try:
        info = os.stat(full)
    except (OSError, ValueError):
        raise ValueError(f"no such cgroup under {mount}") from None
    import stat

    if not stat.S_ISDIR(info.st_mode):
        raise ValueError(f"no such cgroup under {mount}")
    return info.st_ino
