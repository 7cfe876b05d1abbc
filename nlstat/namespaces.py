"""Network namespaces: find them (`--netns SPEC`, `--all-netns`) and enter one.

A namespace is known by its nsfs inode (st_dev, st_ino): the same namespace reached through
/run/netns/NAME and /proc/PID/ns/net is one namespace. Each is held open from the moment it is
found, so it cannot disappear while a child runs inside it (an open nsfs descriptor keeps
the namespace alive even after its last process and its name are gone).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

from nlstat.errors import NlstatError

NETNS_RUN_DIR = "/run/netns"
ETC_NETNS_DIR = "/etc/netns"
CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SLAVE = 1 << 19
# linux/nsfs.h: _IO(0xb7, 0x3), the namespace type (a CLONE_NEW* flag) of an nsfs descriptor.
NS_GET_NSTYPE = 0xB703


class NamespaceUnavailable(NlstatError):
    """A namespace that does not exist, is not a network namespace, or may not be opened."""


class Member(NamedTuple):
    """One network namespace to run in: how it is named, its inode, an open descriptor."""

    label: str  # its /run/netns name, else "pid:PID" of a process in it, else the path given
    key: Tuple[int, int]  # (st_dev, st_ino) of its nsfs file
    fd: int
    name: Optional[str] = None  # its /run/netns name, if it was reached through one

    @property
    def inode(self) -> int:
        return self.key[1]

    def header(self) -> str:
        """The line that introduces this namespace's block under --all-netns."""
        return f"netns: {self.label} (inode {self.inode})\n"


def _open(path: str, label: str, name: Optional[str] = None) -> Member:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        if label.startswith("pid:"):
            raise NamespaceUnavailable(f"netns {label}: no such process") from None
        raise NamespaceUnavailable(f"netns {label}: no such network namespace") from None
    except OSError as err:
        raise NamespaceUnavailable(f"netns {label}: {err.strerror}") from None
    try:
        _check_network(fd, label)
        info = os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise
    return Member(label, (info.st_dev, info.st_ino), fd, name)


def _check_network(fd: int, label: str) -> None:
    import fcntl

    try:
        kind = fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError:
        # ENOTTY: not an nsfs file at all (a plain file, a /run/netns name left unmounted).
        raise NamespaceUnavailable(f"netns {label}: not a network namespace") from None
    if kind != CLONE_NEWNET:
        raise NamespaceUnavailable(f"netns {label}: not a network namespace")


def resolve(spec: str) -> Member:
    """`--netns SPEC`: "pid:PID", a path (anything with a '/'), else a name under /run/netns."""
    if spec.startswith("pid:"):
        pid = spec[4:]
        if not pid.isdigit() or not pid.isascii():
            raise NamespaceUnavailable(f"netns {spec}: not a process id")
        return _open(f"/proc/{int(pid)}/ns/net", f"pid:{int(pid)}")
    if "/" in spec:
        directory, base = os.path.split(os.path.normpath(spec))
        return _open(spec, spec, base if directory == NETNS_RUN_DIR else None)
    if spec in ("", ".", ".."):
        raise NamespaceUnavailable(f"netns '{spec}': no such network namespace")
    return _open(os.path.join(NETNS_RUN_DIR, spec), spec, spec)


def _named(nsfs: int) -> Dict[Tuple[int, int], str]:
    """The /run/netns names by inode (the first name in sorted order when a namespace has two).

    A name whose file is not an nsfs mount (left by an `ip netns add` that failed) names no
    namespace: `ip netns exec` cannot enter it either."""
    names: Dict[Tuple[int, int], str] = {}
    try:
        entries = sorted(os.listdir(NETNS_RUN_DIR))
    except OSError:
        return names
    for name in entries:
        try:
            info = os.stat(os.path.join(NETNS_RUN_DIR, name))
        except OSError:  # deleted since the listing
            continue
        if info.st_dev == nsfs:
            names.setdefault((info.st_dev, info.st_ino), name)
    return names


def _process_namespaces(skip: frozenset[int]) -> Dict[Tuple[int, int], int]:
    """Every process's namespace by inode, with the lowest pid in it (pids in `skip` aside)."""
    found: Dict[Tuple[int, int], int] = {}
    try:
        pids = sorted(int(entry) for entry in os.listdir("/proc") if entry.isdigit())
    except OSError:
        return found
    for pid in pids:
        if pid in skip:
            continue
        try:
            info = os.stat(f"/proc/{pid}/ns/net")
        except OSError:  # exited since the listing, a kernel thread, or not ours to look at
            continue
        found.setdefault((info.st_dev, info.st_ino), pid)
    return found


def enumerate_all(skip: frozenset[int] = frozenset()) -> Tuple[List[Member], List[str]]:
    """`--all-netns`: every network namespace on the host, each once, opened.

    The caller's own namespace first, then the others by inode. Returns the members and the
    error lines of namespaces found but not opened (a name or a process gone since the
    listing is not an error: it is simply no longer on the host).
    """
    own = os.stat("/proc/self/ns/net")
    own_key = (own.st_dev, own.st_ino)
    names = _named(own.st_dev)
    pids = _process_namespaces(skip | {os.getpid()})
    members: List[Member] = []
    errors: List[str] = []
    for key in sorted(set(names) | set(pids) | {own_key}, key=lambda k: (k != own_key, k)):
        name = names.get(key)
        pid: Optional[int] = pids.get(key)
        try:
            if name is not None:
                member = _open(os.path.join(NETNS_RUN_DIR, name), name, name)
            elif key == own_key:
                member = _open("/proc/self/ns/net", f"pid:{pid if pid else os.getpid()}")
            else:
                member = _open(f"/proc/{pid}/ns/net", f"pid:{pid}")
        except NamespaceUnavailable as err:
            if "no such" not in str(err):
                errors.append(str(err))
            continue
        if member.key != key:  # the name or pid was reused for another namespace meanwhile
            os.close(member.fd)
            continue
        members.append(member)
    return members, errors


# The namespace this process was moved into (a --netns/--all-netns child, netns_run sets
# it once inside): counts and metrics name their namespace by it.
entered: Optional[Member] = None


def own() -> Member:
    """The namespace this process lists, labelled as --all-netns labels it: the entered one
    in a child; else this process's own (its /run/netns name, else pid:PID of the lowest
    other process in it, else this process). Its fd is -1: nothing is held open."""
    if entered is not None:
        return entered
    info = os.stat("/proc/self/ns/net")
    key = (info.st_dev, info.st_ino)
    name = _named(info.st_dev).get(key)
    if name is not None:
        return Member(name, key, -1, name)
    pid = _process_namespaces(frozenset({os.getpid()})).get(key, os.getpid())
    return Member(f"pid:{pid}", key, -1)


def enter(member: Member) -> None:
    """Move the calling process (a single-threaded child) into the member's namespace.

    Not when it is there already: setns() wants CAP_SYS_ADMIN even for one's own namespace,
    and a user without it can still list that one."""
    own = os.stat("/proc/self/ns/net")
    if (own.st_dev, own.st_ino) == member.key:
        return
    fd = member.fd
    setns = getattr(os, "setns", None)
    if setns is not None:  # Python 3.12+
        setns(fd, CLONE_NEWNET)
        return
    _check(_libc().setns(fd, CLONE_NEWNET))


def use_etc_of(name: str, warn: Callable[[str], None]) -> None:
    """Name lookups as `ip netns exec NAME` makes them: /etc/netns/NAME/* over /etc/*.

    iproute2's netns_switch() does it in a private mount namespace, so a namespace's own
    hosts, networks and resolv.conf name its addresses; only the calling child sees them.
    """
    directory = os.path.join(ETC_NETNS_DIR, name)
    try:
        entries = sorted(os.listdir(directory))
    except OSError:
        return
    libc = _libc()
    _check(libc.unshare(CLONE_NEWNS))
    # Mounts made here must not propagate back to the host's mount namespace.
    _check(libc.mount(b"", b"/", b"none", MS_SLAVE | MS_REC, None))
    for entry in entries:
        source = os.fsencode(os.path.join(directory, entry))
        target = os.fsencode(os.path.join("/etc", entry))
        if libc.mount(source, target, b"none", MS_BIND, None) != 0:
            warn(f"nlstat: netns {name}: bind {os.fsdecode(source)} -> {os.fsdecode(target)} "
                 f"failed: {os.strerror(_errno())}")


def _libc() -> Any:
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _errno() -> int:
    import ctypes

    return ctypes.get_errno()


def _check(result: int) -> None:
    if result != 0:
        err = _errno()
        raise OSError(err, os.strerror(err))
