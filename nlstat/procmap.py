"""inode -> "PID/program" for -p, from one pass over /proc/*/fd (netstat.c prg_cache_load).

There is no kernel API from socket to process: every tool walks /proc/PID/fd. netstat and ss
join through fixed 211/256-bucket hash chains, which is what makes `-p` take seconds on busy
hosts; a dict makes the join O(1). Built only when -p is given.
"""

from __future__ import annotations

import errno
import os
from array import array
from itertools import repeat
from typing import Dict, FrozenSet, Iterable, Iterator, List, Mapping, Optional, Set, Tuple

from nlstat import procio

# netstat cuts "PID/name" to 19 characters (PROGNAME_WIDTH 20, minus the NUL).
PROGRAM_TEXT_WIDTH = 19


class DenseOwners(Mapping[int, str]):
    """inode -> "PID/name" for very many sockets, in 4 bytes per inode of their span.

    The kernel numbers socket inodes from one counter, so a million sockets hold inodes from
    a narrow range: one array slot per inode in it (0, or an index into `texts`) takes a
    tenth of a dict's memory.
    Looking up costs a Python call per row, so it is only used past DENSE_MINIMUM sockets.
    """

    def __init__(self, base: int, slots: array[int], texts: List[str]) -> None:
        self.base = base
        self.slots = slots
        self.texts = texts
        self.size = len(slots)
        self.count = self.size - slots.count(0)

    def get(self, inode: int, default: Optional[str] = None) -> Optional[str]:  # type: ignore[override]
        offset = inode - self.base
        if 0 <= offset < self.size:
            slot = self.slots[offset]
            if slot:
                return self.texts[slot]
        return default

    def __getitem__(self, inode: int) -> str:
        text = self.get(inode)
        if text is None:
            raise KeyError(inode)
        return text

    def __iter__(self) -> Iterator[int]:
        base = self.base
        return (base + offset for offset, slot in enumerate(self.slots) if slot)

    def __len__(self) -> int:
        return self.count


class InodeMap:
    """The result of one scan: inode -> "PID/name", and whether some /proc/PID/fd was denied."""

    def __init__(self, owners: Mapping[int, str], denied: bool) -> None:
        self.owners = owners
        self.denied = denied

    def notice(self) -> str:
        """netstat's stderr notice after a scan that was denied somewhere ("" when none)."""
        if not self.denied:
            return ""
        if not self.owners:
            return (
                '(No info could be read for "-p": geteuid()=%d but you should be root.)'
                % procio.geteuid()
            )
        return (
            "(Not all processes could be identified, non-owned process info\n"
            " will not be shown, you would have to be root to see it all.)"
        )


def program_name(proc_root: str, pid: str) -> Optional[str]:
    """argv[0] as netstat shows it: the part after the last "/" only if argv[0] starts with "/".

    "/usr/bin/python3 x.py" -> "python3"; "./relative/prog" -> "./relative/prog";
    "sshd: root@pts/0" -> "sshd: root@pts/0"; kernel threads (empty cmdline) -> "".
    None when the process ended before its cmdline was read: netstat.c prg_cache_load() then
    skips its sockets ("continue" when the open() fails), and they show "-".
    """
    try:
        data = procio.read(os.path.join(proc_root, pid, "cmdline"), 511)
    except OSError:
        return None
    argv0 = data.split(b"\0", 1)[0]
    if argv0.startswith(b"/"):
        argv0 = argv0[argv0.rfind(b"/") + 1 :]
    return argv0.decode("utf-8", "surrogateescape")


# Below this many descriptors one process walks them all: a fork costs about 3 ms.
PARALLEL_MINIMUM = 20000
# Without descriptor counts (Linux before 6.2), processes to have before walking in two.
PARALLEL_MINIMUM_PIDS = 64

# (index of the pid in ascending order, pid, part, parts): the descriptors names[part::parts] of
# one process, in the order listdir() gives them.
Item = Tuple[int, str, int, int]
# (index, socket inodes as the bytes of an array("Q"), whether /proc/PID/fd was denied): 8
# bytes per inode instead of an int object and a list slot (a lower peak at a million
# sockets), and what marshal sends from the second walker as it is.
Found = Tuple[int, bytes, bool]


def scan_descriptors(proc_root: str, item: Item) -> Found:
    """The socket inodes behind one process's descriptors (or a part of them)."""
    index, pid, part, parts = item
    if procio.tape is not None:
        return recorded_descriptors(proc_root, item)
    try:
        # readlink relative to an open directory skips a path walk per descriptor (half
        # the time of readlink("/proc/PID/fd/N").
        dir_fd = os.open(os.path.join(proc_root, pid, "fd"), os.O_RDONLY | os.O_DIRECTORY)
    except OSError as err:
        # The process ended, or is not ours: netstat skips it silently, noting EACCES.
        return index, b"", err.errno == errno.EACCES
    inodes = array("Q")
    append = inodes.append
    readlink = os.readlink
    try:
        names = os.listdir(dir_fd)
        if parts > 1:
            names = names[part::parts]
        for name in names:
            try:
                target = readlink(name, dir_fd=dir_fd)
            except OSError:
                continue  # the descriptor closed meanwhile
            # The kernel writes these links; a substitute /proc tree may hold anything,
            # and netstat.c extract_type_1_socket_inode() skips a link that does not parse.
            try:
                if target.startswith("socket:["):
                    append(int(target[8:-1]))
                elif target.startswith("[0000]:"):
                    append(int(target[7:]))
            except (ValueError, OverflowError):
                continue
    except OSError:
        pass
    finally:
        os.close(dir_fd)
    return index, inodes.tobytes(), False


def recorded_descriptors(proc_root: str, item: Item) -> Found:
    """scan_descriptors() through the --save/--load tape: the descriptors' link targets as
    the tape answers them (recorded from, or replayed as, the kernel's readlink())."""
    assert procio.tape is not None
    index, pid, part, parts = item
    code, targets = procio.tape.descriptors(os.path.join(proc_root, pid, "fd"))
    if code:
        return index, b"", code == errno.EACCES
    if parts > 1:
        targets = targets[part::parts]
    inodes = array("Q")
    for target in targets:
        # as scan_descriptors() reads them
        if target.startswith("socket:["):
            inodes.append(int(target[8:-1]))
        elif target.startswith("[0000]:"):
            inodes.append(int(target[7:]))
    return index, inodes.tobytes(), False


def walk(proc_root: str, items: List[Item]) -> List[Found]:
    return [scan_descriptors(proc_root, item) for item in items]


def descriptor_count(proc_root: str, pid: str) -> int:
    """How many descriptors a process has: st_size of /proc/PID/fd (Linux 6.2+; 0 before)."""
    try:
        return os.stat(os.path.join(proc_root, pid, "fd")).st_size
    except OSError:
        return 0


def shares(proc_root: str, pids: List[str]) -> Optional[Tuple[List[Item], List[Item]]]:
    """Two shares of about the same number of descriptors, or None when one is enough.

    A process holding more than a quarter of them is cut in two (every other descriptor):
    a server with all of a host's sockets in one process is the common case.
    """
    counts = [descriptor_count(proc_root, pid) for pid in pids]
    total = sum(counts)
    if not total:
        if len(pids) < PARALLEL_MINIMUM_PIDS:
            return None
        whole = [(index, pid, 0, 1) for index, pid in enumerate(pids)]
        return whole[0::2], whole[1::2]
    if total < PARALLEL_MINIMUM:
        return None
    first: List[Item] = []
    second: List[Item] = []
    loads = [0, 0]
    for index, (pid, count) in enumerate(zip(pids, counts)):
        if count * 4 > total:
            first.append((index, pid, 0, 2))
            second.append((index, pid, 1, 2))
            loads[0] += count // 2
            loads[1] += count - count // 2
        elif loads[0] <= loads[1]:
            first.append((index, pid, 0, 1))
            loads[0] += count
        else:
            second.append((index, pid, 0, 1))
            loads[1] += count
    return first, second


def walk_in_two(proc_root: str, mine: List[Item], theirs: List[Item]) -> List[Found]:
    """Walk one share in a forked process and the other here.

    readlink() is nearly all kernel time (it prints "socket:[N]" for each descriptor) and
    releases the GIL, but two threads still serialised on taking it back after every call,
    so two processes are faster.
    """
    import marshal
    import signal

    try:
        results_read, results_write = os.pipe()
    except OSError:
        return walk(proc_root, mine + theirs)
    try:
        child = os.fork()
    except OSError:
        os.close(results_read)
        os.close(results_write)
        return walk(proc_root, mine + theirs)
    if child == 0:  # pragma: no cover - runs in the child
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.close(results_read)
            with os.fdopen(results_write, "wb") as pipe:
                pipe.write(marshal.dumps(walk(proc_root, theirs)))
        finally:
            os._exit(0)  # never return into the parent's code (no atexit, no flushes)
    os.close(results_write)
    results = walk(proc_root, mine)
    with os.fdopen(results_read, "rb") as pipe:
        data = pipe.read()  # until the child has written all and exited
    os.waitpid(child, 0)
    try:
        results += marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        results += walk(proc_root, theirs)  # the child failed: walk its share here
    return results


# A map built ahead for the children of a run over several network namespaces (netns_run):
# every namespace's processes are in the one PID namespace, so one walk serves them all.
_prepared: Optional[InodeMap] = None


def prepare_inode_map(proc_root: str = "/proc") -> None:
    """Build the map now; the next build_inode_map() of this process or of a child forked
    afterwards returns it instead of walking /proc again (once: a -c pass walks anew)."""
    global _prepared
    _prepared = build_inode_map(proc_root)


def build_inode_map(proc_root: str = "/proc", parallel: bool = True) -> InodeMap:
    """Scan /proc/*/fd once; the lowest pid owns a shared socket, as in netstat.

    On a busy host the walk is cut into two shares taken by two processes (walk_in_two()).
    """
    global _prepared
    if _prepared is not None:
        prepared, _prepared = _prepared, None
        return prepared
    try:
        pids = [pid for pid in procio.listdir(proc_root) if pid.isdigit()]
    except OSError:
        return InodeMap({}, False)
    # netstat.c prg_cache_add() keeps the first owner readdir() gives, and /proc lists
    # processes by ascending pid. Sorting gives that order from any directory (a captured
    # tree on tmpfs lists newest first), so a shared socket goes to its lowest pid.
    pids.sort(key=int)
    # A recording or its replay is walked here, in the process that holds the tape.
    parallel = parallel and (os.cpu_count() or 1) > 1 and procio.tape is None
    split = shares(proc_root, pids) if parallel else None
    if split is None:
        results = walk(proc_root, [(index, pid, 0, 1) for index, pid in enumerate(pids)])
    else:
        results = walk_in_two(proc_root, *split)
    denied = False
    inodes_of: Dict[int, array[int]] = {}
    for index, inodes, was_denied in results:
        denied = denied or was_denied
        if inodes:
            inodes_of.setdefault(index, array("Q")).frombytes(inodes)
    del results
    return InodeMap(owner_table(proc_root, pids, inodes_of), denied)


# From this many sockets on, a DenseOwners table when their inodes are close enough together.
DENSE_MINIMUM = 300000
# ... and when their span is at most this many times their number (4 bytes per slot).
DENSE_SPREAD = 4


def owner_table(
    proc_root: str, pids: List[str], inodes_of: Dict[int, array[int]]
) -> Mapping[int, str]:
    """The lowest pid (the first in /proc order) owns a shared socket, as in netstat: later
    processes are entered first, so that an earlier pid's entry overwrites. Packed inode
    arrays until here keep the peak memory at about the table's."""
    texts = {}
    for index in sorted(inodes_of, reverse=True):
        name = program_name(proc_root, pids[index])
        if name is None:
            del inodes_of[index]
        else:
            texts[index] = (pids[index] + "/" + name)[:PROGRAM_TEXT_WIDTH]
    order = list(texts)
    total = sum(map(len, inodes_of.values()))
    if total >= DENSE_MINIMUM:
        low = min(map(min, inodes_of.values()))
        span = max(map(max, inodes_of.values())) - low + 1
        if span <= DENSE_SPREAD * total:
            slots = array("I", [0]) * span
            for slot, index in enumerate(order, 1):
                for inode in inodes_of.pop(index):
                    slots[inode - low] = slot
            return DenseOwners(low, slots, [""] + [texts[index] for index in order])
    owners: Dict[int, str] = {}
    for index in order:
        owners.update(zip(inodes_of.pop(index), repeat(texts[index])))
    return owners


def process_sockets(
    proc_root: str, pid: Optional[int] = None, program: Optional[str] = None
) -> Tuple[bool, FrozenSet[int]]:
    """(whether such a process runs, the socket inodes of its descriptors) for --pid and
    --program-name: only the selected processes' descriptors are walked. `program` is
    compared with argv[0] as -p shows it (program_name()), uncut."""
    if pid is not None:
        pids = [str(pid)]
    else:
        try:
            pids = [name for name in procio.listdir(proc_root) if name.isdigit()]
        except OSError:
            pids = []
    found = False
    inodes: List[int] = []
    for name in pids:
        if not procio.isdir(os.path.join(proc_root, name)):
            continue
        if program is not None and program_name(proc_root, name) != program:
            continue
        found = True
        _index, packed, _denied = scan_descriptors(proc_root, (0, name, 0, 1))
        inodes.extend(array("Q", packed))
    return found, frozenset(inodes)


class IncrementalOwners:
    """inode -> "PID/name" kept up to date across --watch ticks instead of rebuilt.

    `update(inodes)` is given the socket inodes of a tick. Owners of processes that exited
    and of sockets that closed are dropped; only inodes not seen before are looked up, by
    walking the descriptors of the processes in ascending pid order (netstat's lowest-pid
    owner) until every one of them is found, and no walk at all when there is none. An
    inode that no process holds (a listener's not yet accepted connection, a socket of a
    process that is not ours) is looked for once more at the next tick, then taken as
    ownerless until it closes.
    """

    def __init__(self, proc_root: str = "/proc") -> None:
        self.proc_root = proc_root
        self.owners: Dict[int, str] = {}
        self.owner_pid: Dict[int, str] = {}  # inode -> pid, to drop a process's sockets
        self.texts: Dict[str, Optional[str]] = {}  # pid -> "PID/name" (None: it vanished)
        self.ownerless: Dict[int, int] = {}  # inode -> walks that did not find it
        self.denied = False
        self.walks = 0  # walks made (for tests and -v)

    def update(self, inodes: Iterable[int]) -> Mapping[int, str]:
        current = set(inodes)
        current.discard(0)
        try:
            pids = [pid for pid in os.listdir(self.proc_root) if pid.isdigit()]
        except OSError:
            pids = []
        running = set(pids)
        for pid in [pid for pid in self.texts if pid not in running]:
            del self.texts[pid]
        owners = self.owners
        owner_pid = self.owner_pid
        for inode in [inode for inode, pid in owner_pid.items()
                      if inode not in current or pid not in running]:
            del owner_pid[inode]
            del owners[inode]
        ownerless = self.ownerless
        for inode in [inode for inode in ownerless if inode not in current]:
            del ownerless[inode]
        wanted = {inode for inode in current
                  if inode not in owners and ownerless.get(inode, 0) < 2}
        if wanted:
            pids.sort(key=int)
            self._look_up(pids, wanted)
        return owners

    def _look_up(self, pids: List[str], wanted: Set[int]) -> None:
        self.walks += 1
        missing = set(wanted)
        for pid in pids:
            _index, packed, denied = scan_descriptors(self.proc_root, (0, pid, 0, 1))
            self.denied = self.denied or denied
            if not packed:
                continue
            found = missing.intersection(array("Q", packed))
            if not found:
                continue
            text = self.texts.get(pid, "")
            if text == "":
                name = program_name(self.proc_root, pid)
                text = self.texts[pid] = (
                    None if name is None else (pid + "/" + name)[:PROGRAM_TEXT_WIDTH])
            if text is not None:
                for inode in found:
                    self.owners[inode] = text
                    self.owner_pid[inode] = pid
            missing -= found
            if not missing:
                break
        for inode in missing:
            self.ownerless[inode] = self.ownerless.get(inode, 0) + 1

    def notice(self) -> str:
        return InodeMap(self.owners, self.denied).notice()
