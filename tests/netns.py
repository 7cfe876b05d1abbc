"""Private network namespaces for live tests: create, configure, run commands inside, always delete.

A `Namespace` gets loopback up, a veth pair (both ends inside it, so frames sent to a
neighbour that does not exist go nowhere else), documentation addresses (198.18.0.0/15,
2001:db8::/32), its own /etc/netns/<name>/{hosts,resolv.conf,networks} (`ip netns exec`
bind-mounts them over /etc, so no name lookup leaves the machine: the resolver asks
127.0.0.1 inside the namespace, where nothing answers), and a scratch directory for unix
socket files. Deletion kills what still runs inside, removes the namespace, its /etc/netns
directory and the scratch directory, even after a failure or Ctrl-C; namespaces left by a
test run that was killed outright are swept at the next creation (their names carry the
creator's pid).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    TypeVar,
)

IP = shutil.which("ip") or "/usr/sbin/ip"
NETNS_RUN_DIR = "/run/netns"
NETNS_ETC_DIR = "/etc/netns"
CLONE_NEWNET = 0x40000000

DEFAULT_HOSTS = (
    "127.0.0.1\tlocalhost\n"
    "::1\tip6-localhost ip6-loopback\n"
)
DEFAULT_RESOLV = "nameserver 127.0.0.1\n"
DEFAULT_NETWORKS = "default\t\t0.0.0.0\nloopback\t127.0.0.0\nlink-local\t169.254.0.0\n"

# veth0/veth1 live in the namespace; addresses are added without DAD so that they can be bound
# at once (a tentative IPv6 address gives EADDRNOTAVAIL for about a second).
DEFAULT_ADDRESSES: Dict[str, Tuple[str, ...]] = {
    "veth0": ("198.18.0.1/24", "2001:db8::1/64"),
    "veth1": ("198.19.0.1/24", "2001:db8:1::1/64"),
}

_T = TypeVar("_T")
_LIVE: Set[Namespace] = set()
_NAME_RE = re.compile(r"^(?P<prefix>nlst-[a-z0-9]+)-(?P<pid>\d+)-[0-9a-f]+$")


class NamespaceError(RuntimeError):
    """A namespace could not be built; the message has the failing command and its stderr."""


def have_privileges() -> bool:
    """True when this process can build namespaces (root, `ip` present)."""
    return os.geteuid() == 0 and os.path.exists(IP)


def skip_unless_root() -> None:
    """pytest.skip() the calling test or fixture unless namespaces can be built."""
    import pytest

    if os.geteuid() != 0:
        pytest.skip("needs root to build network namespaces")
    if not os.path.exists(IP):
        pytest.skip("needs iproute2's ip")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [IP, *args], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
    )
    if check and result.returncode != 0:
        raise NamespaceError(f"ip {' '.join(args)}: status {result.returncode}: {result.stderr}")
    return result


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(prefix: str) -> List[str]:
    """Delete namespaces named `<prefix>-<pid>-<hex>` whose creating process is gone.

    Only names built by this module with this prefix are touched, so other areas' namespaces
    and other live test runs are left alone.
    """
    removed: List[str] = []
    try:
        names = os.listdir(NETNS_RUN_DIR)
    except OSError:
        names = []
    try:
        names += [n for n in os.listdir(NETNS_ETC_DIR) if n not in names]
    except OSError:
        pass
    try:  # scratch directories outlive an interrupted deletion
        names += [n[:-2] for n in os.listdir("/tmp") if n.endswith(".d") and n[:-2] not in names]
    except OSError:
        pass
    for name in names:
        match = _NAME_RE.match(name)
        if not match or match.group("prefix") != prefix:
            continue
        if _pid_alive(int(match.group("pid"))):
            continue
        _destroy(name, scratch=os.path.join("/tmp", name + ".d"))
        removed.append(name)
    return removed


def _namespace_pids(name: str) -> List[int]:
    result = _ip("netns", "pids", name, check=False)
    return [int(p) for p in result.stdout.split() if p.isdigit()]


@contextlib.contextmanager
def _no_interrupts() -> Iterator[None]:
    """Hold off Ctrl-C while cleaning up (a second Ctrl-C would leave half a namespace)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: List[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if pending and callable(previous):
            previous(signal.SIGINT, None)


def _destroy(name: str, scratch: Optional[str]) -> None:
    # Whatever still runs inside was started by us (the namespace is ours): end it first, or the
    # namespace would outlive its /run/netns name.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [p for p in _namespace_pids(name) if p != os.getpid()]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
            time.sleep(0.05)
    if os.path.exists(os.path.join(NETNS_RUN_DIR, name)):
        _ip("netns", "del", name, check=False)
    shutil.rmtree(os.path.join(NETNS_ETC_DIR, name), ignore_errors=True)
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)


class Namespace:
    """One private network namespace, configured on `create()` and removed on `delete()`.

    Use it as a context manager (`with Namespace(...) as ns:`) or through `namespace()` /
    `netns_fixture()`. `hosts`, `resolv_conf` and `networks` are the texts of the namespace's
    /etc files; `addresses` maps veth0/veth1 to "addr/len" strings; `neighbours` are permanent
    (address, lladdr, device) entries, so a connect() to such an address stays in SYN_SENT with
    its SYNs dropped by the other veth end; `sysctls` are set inside the namespace.
    """

    def __init__(
        self,
        prefix: str = "nlst-test",
        hosts: str = DEFAULT_HOSTS,
        resolv_conf: str = DEFAULT_RESOLV,
        networks: Optional[str] = DEFAULT_NETWORKS,
        veth: bool = True,
        addresses: Optional[Mapping[str, Sequence[str]]] = None,
        neighbours: Sequence[Tuple[str, str, str]] = (),
        sysctls: Optional[Mapping[str, str]] = None,
    ) -> None:
        if not re.fullmatch(r"nlst-[a-z0-9]+", prefix):
            raise ValueError(f"prefix must look like nlst-<area>: {prefix!r}")
        self.prefix = prefix
        self.name = f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"
        self.hosts = hosts
        self.resolv_conf = resolv_conf
        self.networks = networks
        self.veth = veth
        self.addresses: Dict[str, Tuple[str, ...]] = {
            dev: tuple(addrs) for dev, addrs in (addresses or DEFAULT_ADDRESSES).items()
        }
        self.neighbours = tuple(neighbours)
        self.sysctls = dict(sysctls or {})
        self.etc_dir = os.path.join(NETNS_ETC_DIR, self.name)
        self.scratch = os.path.join("/tmp", self.name + ".d")
        self.created = False
        self._lock = threading.Lock()

    # -- life cycle -------------------------------------------------------------------------

    def create(self) -> Namespace:
        sweep_stale(self.prefix)
        with self._lock:
            _LIVE.add(self)
            self.created = True
        try:
            self._write_etc()
            os.makedirs(self.scratch, mode=0o755, exist_ok=True)
            _ip("netns", "add", self.name)
            self._ip("link", "set", "lo", "up")
            if self.veth:
                self._ip("link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
                for dev in ("veth0", "veth1"):
                    self._ip("link", "set", dev, "up")
            for dev, addrs in self.addresses.items():
                for addr in addrs:
                    if ":" in addr:
                        self._ip("-6", "addr", "add", addr, "dev", dev, "nodad")
                    else:
                        self._ip("addr", "add", addr, "dev", dev)
            for addr, lladdr, dev in self.neighbours:
                family = "-6" if ":" in addr else "-4"
                self._ip(family, "neigh", "replace", addr, "lladdr", lladdr, "dev", dev,
                         "nud", "permanent")
            for key, value in self.sysctls.items():
                self.check(["sysctl", "-q", "-w", f"{key}={value}"])
        except BaseException:
            self.delete()
            raise
        return self

    def delete(self) -> None:
        """Remove everything `create()` made; safe to call twice or after a partial create."""
        with self._lock:
            if not self.created:
                return
            self.created = False
            _LIVE.discard(self)
        with _no_interrupts():
            _destroy(self.name, self.scratch)

    def _write_etc(self) -> None:
        os.makedirs(self.etc_dir, mode=0o755, exist_ok=True)
        files = {"hosts": self.hosts, "resolv.conf": self.resolv_conf}
        # `ip netns exec` only bind-mounts over files that exist in /etc.
        if self.networks is not None and os.path.exists("/etc/networks"):
            files["networks"] = self.networks
        for base, text in files.items():
            with open(os.path.join(self.etc_dir, base), "w", encoding="utf-8") as handle:
                handle.write(text)

    def __enter__(self) -> Namespace:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.delete()

    # -- running things inside ----------------------------------------------------------------

    def argv(self, command: Sequence[str]) -> List[str]:
        """`command` wrapped in `ip netns exec <name>`."""
        return [IP, "netns", "exec", self.name, *command]

    def run(
        self,
        command: Sequence[str],
        env: Optional[Mapping[str, str]] = None,
        timeout: float = 60.0,
        input: Optional[bytes] = None,  # noqa: A002 - mirrors subprocess.run
        cwd: Optional[str] = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run `command` inside; stdout and stderr are captured as bytes, status not checked."""
        return subprocess.run(
            self.argv(command),
            env=None if env is None else dict(env),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            cwd=cwd,
        )

    def check(self, command: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
        result = self.run(command, **kwargs)  # type: ignore[arg-type]
        if result.returncode != 0:
            raise NamespaceError(
                f"{' '.join(command)} in {self.name}: status {result.returncode}: "
                + result.stderr.decode(errors="replace")
            )
        return result

    def popen(self, command: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        """Start `command` inside; the caller owns the process (stop it before `delete()`)."""
        return subprocess.Popen(self.argv(command), **kwargs)  # type: ignore[call-overload,no-any-return]

    def _ip(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _ip("-n", self.name, *args)

    def call_inside(self, function: Callable[[], _T]) -> _T:
        """Run `function` in a thread switched into this namespace and return its result.

        Sockets it creates belong to the namespace but to this process, so a test can hold
        sockets with known properties itself. The thread ends afterwards: the namespace switch
        never leaks to other threads.
        """
        box: Dict[str, object] = {}

        def body() -> None:
            try:
                setns(os.path.join(NETNS_RUN_DIR, self.name))
                box["result"] = function()
            except BaseException as err:  # re-raised in the caller's thread
                box["error"] = err

        worker = threading.Thread(target=body, name=f"in-{self.name}")
        worker.start()
        worker.join()
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        return box["result"]  # type: ignore[return-value]


@contextlib.contextmanager
def holding(ns: Namespace, make: Callable[[], List[Any]]) -> Iterator[List[Any]]:
    """The sockets `make` opens inside `ns` (through call_inside), closed on exit."""
    held = ns.call_inside(make)
    try:
        yield held
    finally:
        for sock in held:
            sock.close()


def setns(path: str) -> None:
    """Move the calling thread into the network namespace at `path` (os.setns is 3.12+)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


@contextlib.contextmanager
def namespace(**options: object) -> Iterator[Namespace]:
    """`with namespace(prefix="nlst-x", ...) as ns:`: a created namespace, always deleted."""
    ns = Namespace(**options)  # type: ignore[arg-type]
    ns.create()
    try:
        yield ns
    finally:
        ns.delete()


def netns_fixture(scope: str = "module", **options: object) -> Callable[..., object]:
    """A pytest fixture (skipping unless root) that yields one `Namespace` per `scope`.

    `my_ns = netns_fixture(prefix="nlst-route", addresses={...})` at module level.
    """
    import pytest

    def _fixture() -> Iterator[Namespace]:
        skip_unless_root()
        with namespace(**options) as ns:
            yield ns

    return pytest.fixture(scope=scope)(_fixture)  # type: ignore[call-overload,no-any-return]


@atexit.register
def _delete_leftovers() -> None:
    for ns in list(_LIVE):
        with contextlib.suppress(Exception):
            ns.delete()



# -- crafted /proc trees ----------------------------------------------------------------------


def write_proc_tree(root: os.PathLike[str] | str, files: Mapping[str, object]) -> str:
    """A /proc-like tree at `root` (emptied first) holding `files` under net/: each value is
    the file's bytes, or text (written with surrogateescape). Returns the root's path."""
    shutil.rmtree(root, ignore_errors=True)
    net = os.path.join(root, "net")
    os.makedirs(net)
    for relative, content in files.items():
        path = os.path.join(net, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = content if isinstance(content, bytes) else str(content).encode(
            errors="surrogateescape")
        with open(path, "wb") as handle:
            handle.write(data)
    return os.fspath(root)


def on_proc_tree(root: os.PathLike[str] | str, argv: Sequence[str]) -> List[str]:
    """`argv` run with `root` bind-mounted over /proc in a private mount namespace: netstat
    has its /proc paths compiled in, and this is how it reads crafted files. Root only."""
    script = 'mount --bind "$0" /proc && exec "$@"'
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, os.fspath(root),
            *argv]
