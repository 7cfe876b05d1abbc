"""Run a mode inside other network namespaces without leaving the main process there.

Each namespace gets a forked child that enters it (setns) and then runs the ordinary mode
code, writing to the same standard output: sockets, netlink and /proc/net (a link to
/proc/self/net, which follows the reading process's namespace) all answer for that namespace,
and the /proc/PID/fd walk of `-p` still sees every process of the PID namespace (under
--all-netns one walk, done by the parent before the forks, serves every namespace). Blocks
come out whole and in order: `--netns` has one child writing to stdout itself; `--all-netns`
without -c runs two namespaces at a time, the next one writing into pipes that the parent
copies out when the current block is done.

`-c` keeps one child per namespace for the whole run: the mode's own loop calls
`env.sleep()` between passes, and in a child that call reports "pass done" to the parent and
waits for its turn in the next tick. So every mode keeps its -c state (netstat's name cache,
-i's title on the first pass only) exactly as in one namespace. Under `--all-netns` the host
is searched again before every tick: a new namespace gets a child, a gone one loses its own.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from nlstat import namespaces
from nlstat.env import Environment
from nlstat.errors import ExitStatus
from nlstat.namespaces import Member, enter, enumerate_all, resolve, use_etc_of
from nlstat.query import MODE_INTERFACES, MODE_ROUTE, MODE_SOCKETS, OUTPUT_TEXT, Query

Body = Callable[[], int]

# The parent's ends of every child's pipes and the namespaces it holds open: a new child
# closes them all, or a child killed parent would leave the others waiting on each other.
_PARENT_FDS: Set[int] = set()


class _Child:
    """A child running the mode in one namespace, driven tick by tick through two pipes."""

    def __init__(
        self, member: Member, env: Environment, body: Body, header: bool, names: bool
    ) -> None:
        self.member = member
        self.status: Optional[int] = None
        go_read, self._go = os.pipe()
        self._done, done_write = os.pipe()
        pid, parent = _fork(env)
        if pid == 0:  # pragma: no cover - runs in the child, which never returns
            _in_child(lambda: _child_main(member, env, body, header, names, go_read,
                                          done_write), env, {self._go, self._done}, member.fd,
                      parent)
        self.pid = pid
        os.close(go_read)
        os.close(done_write)
        _PARENT_FDS.update((self._go, self._done))

    def wait_pass(self) -> bool:
        """Wait until the pass ends; True when the child waits for another tick."""
        if os.read(self._done, 1):
            return True
        self._reap()
        return False

    def next_pass(self) -> bool:
        try:
            os.write(self._go, b".")
        except BrokenPipeError:  # it is gone already
            self._reap()
            return False
        return self.wait_pass()

    def stop(self) -> None:
        """End a waiting child: its `go` pipe closes, it leaves quietly."""
        self._close()
        if self.status is None:
            self._reap()

    def _reap(self) -> None:
        self._close()
        _, wait_status = os.waitpid(self.pid, 0)
        self.status = _exit_status(wait_status)

    def _close(self) -> None:
        for fd in (self._go, self._done):
            _PARENT_FDS.discard(fd)
            try:
                os.close(fd)
            except OSError:
                pass
        self._go = self._done = -1


def _exit_status(wait_status: int) -> int:
    if os.WIFSIGNALED(wait_status):
        import signal

        # The child died of the reader leaving or of Ctrl-C: so does the run (app maps these
        # two the way netstat ends on them).
        signum = os.WTERMSIG(wait_status)
        if signum == signal.SIGPIPE:
            raise BrokenPipeError
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        return ExitStatus.SOFTWARE
    return os.WEXITSTATUS(wait_status)


def _fork(env: Environment) -> Tuple[int, int]:
    """os.fork() for a child of this module, and the parent's pid (for _in_child). ctypes,
    which the child needs for prctl() (and before Python 3.12 for setns()), is imported here
    once rather than in every child."""
    _flush(env)
    try:
        import ctypes  # noqa: F401 - imported for the children
    except ImportError:
        pass
    parent = os.getpid()
    return os.fork(), parent


def _in_child(
    main: Callable[[], None], env: Environment, close: Set[int], keep: int, parent: int
) -> None:  # pragma: no cover - forked
    """The child's whole life: it ends here whatever happens, never back in the parent's code
    (an exception escaping from here would run the parent's loop a second time). It is killed
    with its parent (PR_SET_PDEATHSIG): a parent killed outright must not leave a child
    behind, blocked on a stdout nobody reads or on a namespace's dump."""
    status: int = ExitStatus.SOFTWARE
    try:
        from nlstat.pipeline import _die_with

        _die_with(parent)
        for fd in _PARENT_FDS | close:
            if fd != keep:
                os.close(fd)
        main()
    except SystemExit as stop:
        status = stop.code if isinstance(stop.code, int) else ExitStatus.ERROR
    except KeyboardInterrupt:  # Ctrl-C before the mode's own handling began
        status = ExitStatus.SIGINT
    except BaseException as err:  # noqa: BLE001 - the child must end here, always
        try:
            env.warn(f"nlstat: internal error: {type(err).__name__}: {err}")
        except BaseException:  # noqa: BLE001
            pass
    os._exit(status)


def _child_main(
    member: Member, env: Environment, body: Body, header: bool, names: bool, go: int, done: int
) -> None:  # pragma: no cover - forked
    status: int = ExitStatus.ERROR
    try:
        _enter(member, env)
        if names and member.name is not None:
            try:
                use_etc_of(member.name, env.warn)
            except OSError as err:
                env.warn(f"nlstat: netns {member.label}: cannot use /etc/netns: {err.strerror}")
                _leave(env, ExitStatus.ERROR)

        def next_tick(_seconds: float) -> None:
            _flush(env)
            os.write(done, b".")
            if not os.read(go, 1):  # the parent is gone or this namespace is: stop here
                _leave(env, ExitStatus.OK)
            if header:
                env.stdout.write(member.header().encode("utf-8", "surrogateescape"))

        env.sleep = next_tick
        if header:
            env.stdout.write(member.header().encode("utf-8", "surrogateescape"))
        status = body()
    finally:
        _leave(env, status)


def _enter(member: Member, env: Environment) -> None:  # pragma: no cover - forked
    try:
        enter(member)
    except OSError as err:
        env.warn(f"nlstat: netns {member.label}: cannot enter: {err.strerror}")
        _leave(env, ExitStatus.ERROR)
    namespaces.entered = member


def _leave(env: Environment, status: int) -> None:  # pragma: no cover - forked
    """End the child; output that cannot be flushed now was reported by the mode's run."""
    for stream in (env.stdout, env.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - OutputError included: said once already
            pass
    os._exit(status)


def _header(query: Query) -> bool:
    """The `netns: ...` line before each block: text only. JSON and NDJSON output is one
    document (or header line, records and end line) per namespace, whose header names it."""
    return query.output == OUTPUT_TEXT


def _names(query: Query) -> bool:
    """Does the mode look names up (then a named namespace's /etc/netns files apply)?"""
    return not (query.numeric_hosts and query.numeric_ports and query.numeric_users)


def _release(fd: int) -> None:
    _PARENT_FDS.discard(fd)
    os.close(fd)


def _flush(env: Environment) -> None:
    """Nothing buffered may be written twice (once by each process after the fork)."""
    env.stdout.flush()
    env.stderr.flush()


def run(query: Query, env: Environment, body: Body) -> int:
    """Run `body` (the mode, its failures already mapped to statuses) in the asked namespaces."""
    if query.all_netns:
        return _run_all(query, env, body)
    assert query.netns is not None
    member = resolve(query.netns)
    child = _Child(member, env, body, False, _names(query))
    while child.wait_pass():
        env.sleep(1)
        if not child.next_pass():
            break
    os.close(member.fd)
    assert child.status is not None
    return child.status


# What each child would import on its own, imported once by the parent before the first fork
# (a child's imports die with it: 10-25 ms a namespace on a loaded host). Only a cost
# saving: a module missing here is simply imported by each child.
_PREFETCH = {
    MODE_SOCKETS: ("nlstat.backends.netlink.sockdiag", "signal"),
    MODE_ROUTE: ("nlstat.backends.netlink.routes", "nlstat.pipeline"),
    MODE_INTERFACES: ("nlstat.backends.netlink.links",),
}


def _prefetch(query: Query) -> None:
    import importlib

    names = _PREFETCH.get(query.mode, ())
    if not hasattr(os, "setns"):  # namespaces.enter() uses ctypes before Python 3.12
        names += ("ctypes",)
    for name in names:
        importlib.import_module(name)


class _Overlapped:
    """A child whose output goes into pipes, so that it can run while the previous namespace's
    block is still being written; the parent copies it out when its turn comes."""

    # The block of a namespace of a few thousand sockets fits whole (the child then never
    # waits); a bigger one waits for its turn with the pipe full.
    PIPE_SIZE = 1 << 20

    def __init__(
        self, member: Member, env: Environment, body: Body, header: bool, names: bool
    ) -> None:
        import fcntl

        self.member = member
        self.status = 0
        self._out, out_write = os.pipe()
        self._err, err_write = os.pipe()
        try:
            fcntl.fcntl(out_write, getattr(fcntl, "F_SETPIPE_SZ", 1031), self.PIPE_SIZE)
        except OSError:  # above /proc/sys/fs/pipe-max-size for this user: the default size
            pass
        pid, parent = _fork(env)
        if pid == 0:  # pragma: no cover - runs in the child, which never returns

            def overlapped() -> None:
                import io

                from nlstat import pipeline

                pipeline.HELPERS = False  # two namespaces run at a time already
                env.stdout = io.BufferedWriter(io.FileIO(out_write, "wb"))
                env.stderr = io.TextIOWrapper(
                    io.FileIO(err_write, "wb"), encoding=env.stderr.encoding or "utf-8",
                    errors="backslashreplace", line_buffering=True, write_through=True)
                _child_main(member, env, body, header, names, -1, -1)

            _in_child(overlapped, env, {self._out, self._err}, member.fd, parent)
        self.pid = pid
        os.close(out_write)
        os.close(err_write)
        _PARENT_FDS.update((self._out, self._err))

    def copy_out(self, env: Environment) -> None:
        """Its stdout and stderr to ours as they come, until it ends; then its status."""
        import select

        sources = [self._out, self._err]
        while sources:
            readable, _, _ = select.select(sources, [], [])
            for fd in readable:
                data = os.read(fd, self.PIPE_SIZE)
                if not data:
                    sources.remove(fd)
                    _PARENT_FDS.discard(fd)
                    os.close(fd)
                elif fd == self._out:
                    # Through the run's stdout: a write error is an OutputError, said once.
                    env.stdout.write(data)
                    env.stdout.flush()
                else:
                    _to_stderr(env, data)
        _, wait_status = os.waitpid(self.pid, 0)
        self.status = _exit_status(wait_status)


def _to_stderr(env: Environment, data: bytes) -> None:
    """A child's messages, as they are (stderr's own encoding was applied by the child);
    dropped when stderr cannot take them, as netstat's stdio drops them."""
    env.stderr.flush()
    try:
        fd = env.stderr.fileno()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except (OSError, ValueError):
        pass


def _run_all_once(query: Query, env: Environment, body: Body) -> int:
    """--all-netns without -c: two namespaces at a time (one written out, the next running)."""
    members, errors = enumerate_all()
    _PARENT_FDS.update(member.fd for member in members)
    failed = 0
    for line in errors:
        _flush(env)
        env.warn(f"nlstat: {line}")
        failed = ExitStatus.ERROR
    pending = list(reversed(members))
    running: List[_Overlapped] = []
    while pending or running:
        while pending and len(running) < 2:
            member = pending.pop()
            running.append(_Overlapped(member, env, body, _header(query), _names(query)))
            _release(member.fd)
        current = running.pop(0)
        started = time.perf_counter()
        current.copy_out(env)
        env.trace(f"netns {current.member.label}: {(time.perf_counter() - started) * 1000:.1f} ms")
        failed = failed or current.status
    return failed


def _run_all(query: Query, env: Environment, body: Body) -> int:
    _prefetch(query)
    if query.programs and query.mode == MODE_SOCKETS and not query.continuous:
        # -p: one /proc/*/fd walk for every namespace (50 namespaces: 50 walks otherwise).
        from nlstat.procmap import prepare_inode_map

        prepare_inode_map(env.proc_root)
    if not query.continuous:
        return _run_all_once(query, env, body)
    children: Dict[Tuple[int, int], _Child] = {}
    finished: set[Tuple[int, int]] = set()
    failed = 0
    while True:
        skip = frozenset(child.pid for child in children.values())
        members, errors = enumerate_all(skip)
        _PARENT_FDS.update(member.fd for member in members)
        alive: List[Tuple[int, int]] = []
        for line in errors:
            _flush(env)
            env.warn(f"nlstat: {line}")
            failed = failed or ExitStatus.ERROR
        current = {member.key for member in members}
        for key in [key for key in children if key not in current]:
            # Its last process and its name are gone: only our child still held it.
            gone = children.pop(key)
            gone.stop()
            _flush(env)
            env.warn(f"nlstat: netns {gone.member.label} (inode {gone.member.inode}): gone")
            failed = failed or ExitStatus.ERROR
        for member in members:
            started = time.perf_counter()
            child = children.get(member.key)
            if child is not None:
                _release(member.fd)  # the child holds the namespace already
                waiting = child.next_pass()
            elif member.key in finished:
                _release(member.fd)
                continue
            else:
                child = _Child(member, env, body, _header(query), _names(query))
                _release(member.fd)
                children[member.key] = child
                waiting = child.wait_pass()
            env.trace(f"netns {member.label}: {(time.perf_counter() - started) * 1000:.1f} ms")
            if waiting:
                alive.append(member.key)
            else:
                del children[member.key]
                finished.add(member.key)
                failed = failed or (child.status or 0)
        if not query.continuous or not alive:
            for child in children.values():
                child.stop()
            return failed
        env.sleep(1)


# -- one answer from each namespace (--count, --prometheus and --serve over namespaces) -------

# What gather() returns: each namespace that answered with its answer, and the run's status
# so far (1 when a namespace could not be opened, entered or counted: said on stderr).
Answers = Tuple[List[Tuple[Member, Any]], int]


def members(query: Query, env: Environment) -> Tuple[List[Member], int]:
    """The namespaces a run over namespaces covers, opened: --netns's one, or every one."""
    if not query.all_netns:
        assert query.netns is not None
        return [resolve(query.netns)], 0
    found, errors = enumerate_all()
    failed = 0
    for line in errors:
        _flush(env)
        env.warn(f"nlstat: {line}")
        failed = ExitStatus.ERROR
    return found, failed


class _Answering:
    """A child that enters a namespace, computes work() there and sends it back pickled."""

    def __init__(self, member: Member, env: Environment, work: Callable[[], Any]) -> None:
        self.member = member
        self._result, result_write = os.pipe()
        pid, parent = _fork(env)
        if pid == 0:  # pragma: no cover - runs in the child, which never returns

            def answer() -> None:
                import pickle

                from nlstat import pipeline

                pipeline.HELPERS = False  # two namespaces run at a time already
                _enter(member, env)
                data = pickle.dumps(_answer(work, env), pickle.HIGHEST_PROTOCOL)
                view = memoryview(data)
                while view:
                    view = view[os.write(result_write, view):]
                _leave(env, ExitStatus.OK)

            _in_child(answer, env, {self._result}, member.fd, parent)
        self.pid = pid
        os.close(result_write)
        _PARENT_FDS.add(self._result)

    def collect(self) -> Tuple[Any, int]:
        """(its answer or None, its exit status)."""
        import pickle

        parts = []
        while True:
            data = os.read(self._result, 1 << 20)
            if not data:
                break
            parts.append(data)
        _release(self._result)
        _, wait_status = os.waitpid(self.pid, 0)
        status = _exit_status(wait_status)
        if status or not parts:
            return None, status or ExitStatus.SOFTWARE
        return pickle.loads(b"".join(parts)), ExitStatus.OK


def _answer(work: Callable[[], Any], env: Environment) -> Any:  # pragma: no cover - forked
    """work()'s value; its failure said as the run says it (app), and the child's status."""
    from nlstat.errors import NlstatError

    try:
        return work()
    except NlstatError as err:
        _flush(env)
        env.warn(f"nlstat: {err}")
        _leave(env, err.status)
    except OSError as err:
        _flush(env)
        env.warn(f"nlstat: {err}")
        _leave(env, ExitStatus.ERROR)


def gather(query: Query, env: Environment, work: Callable[[], Any]) -> Answers:
    """work() run inside each namespace of the query (two at a time), its picklable answers
    brought back to this process in the namespaces' order. A namespace that cannot be
    entered or whose work fails is said on stderr, left out, and makes the status 1."""
    _prefetch(query)
    if query.programs or "program" in query.count_by or "program" in query.metrics_by:
        from nlstat.procmap import prepare_inode_map

        # One /proc/*/fd walk for every namespace's child (they share the PID namespace).
        prepare_inode_map(env.proc_root)
    found, failed = members(query, env)
    _PARENT_FDS.update(member.fd for member in found)
    answers: List[Tuple[Member, Any]] = []
    pending = list(reversed(found))
    running: List[_Answering] = []
    while pending or running:
        while pending and len(running) < 2:
            member = pending.pop()
            running.append(_Answering(member, env, work))
            _release(member.fd)
        current = running.pop(0)
        value, status = current.collect()
        if status:
            failed = failed or status
        else:
            answers.append((current.member, value))
    return answers, failed


class Gatherer:
    """gather() from a process that has threads (--serve's HTTP server): the forks are made
    by a helper forked before any thread started, asked over a pipe once per snapshot, so no
    child is ever forked from a threaded process."""

    def __init__(self, query: Query, env: Environment, work: Callable[[], Any]) -> None:
        request_read, self._request = os.pipe()
        self._answer, answer_write = os.pipe()
        pid, parent = _fork(env)
        if pid == 0:  # pragma: no cover - the helper, which never returns

            def helper() -> None:
                import pickle

                while os.read(request_read, 1):
                    data = pickle.dumps(gather(query, env, work), pickle.HIGHEST_PROTOCOL)
                    view = memoryview(len(data).to_bytes(8, "little") + data)
                    while view:
                        view = view[os.write(answer_write, view):]
                _leave(env, ExitStatus.OK)

            _in_child(helper, env, {self._request, self._answer}, -1, parent)
        self.pid = pid
        os.close(request_read)
        os.close(answer_write)

    def take(self) -> Answers:
        import pickle

        os.write(self._request, b".")
        size = int.from_bytes(self._read(8), "little")
        answers: Answers = pickle.loads(self._read(size))
        return answers

    def _read(self, size: int) -> bytes:
        parts = []
        while size:
            data = os.read(self._answer, min(size, 1 << 20))
            if not data:
                raise OSError("the namespace helper ended")
            parts.append(data)
            size -= len(data)
        return b"".join(parts)

    def close(self) -> None:
        for fd in (self._request, self._answer):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.waitpid(self.pid, 0)
        except OSError:
            pass
