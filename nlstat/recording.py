"""--save FILE and --load FILE: one run's kernel answers kept in a file, and runs that replay them.

A Tape stands between the decoders and the kernel at two seams: the netlink socket
(nlsocket.socket_factory makes its stand-in) and the /proc reader (procio.tape). Recording, it
passes each call on to the kernel and keeps the answer; replaying, it answers from the file,
so the same decoders and formatters run on the same bytes. Nothing here is imported, and no
stand-in is made, unless --save or --load is given. The file format is docs/save-format.md.
"""

from __future__ import annotations

import _socket
import errno
import json
import os
import struct
import time
import zlib
from typing import Callable, Dict, List, Optional, Tuple, cast

from nlstat import __version__, procio
from nlstat.errors import NlstatError

MAGIC = b"NLSTAT-RECORDING"
VERSION = 1
# magic, format version, flags (none yet: 0), length of the metadata (JSON) that follows
HEADER = struct.Struct(">16sHHI")
# Each entry of the compressed body: kind, two errno values, key length, item count; then
# the key, then each item as a 4-byte length and its bytes (all little-endian).
ENTRY = struct.Struct("<BiiII")
ITEM = struct.Struct("<I")

# Entry kinds.
NETLINK_OPEN = 1  # key: protocol (decimal); code: socket()'s errno
SOCKOPT = 2  # key: "protocol level name"; code: setsockopt()'s errno (only failures are kept)
DUMP = 3  # key: protocol (4 bytes) + request with seq and pid zeroed; items: recv()'d chunks,
#           each a zlib stream of its own; code: the errno that ended the recv()s (0: the
#           decoder stopped asking)
FILE = 4  # key: path; code: open errno, code2: read errno; items: [content]
LISTING = 5  # key: directory path; code: errno; items: names
DESCRIPTORS = 6  # key: /proc/PID/fd; code: errno of opening it; items: the socket link targets
IFNAME = 7  # key: ifindex (decimal); code: errno; items: [name]
IOCTL = 8  # key: command (4 bytes) + the request as given; code: errno; items: [request after]
ANSWER = 9  # key: what was asked ("SIOCGIFCONF"); code: errno; items: the answer's strings

# How a missing answer is named (NETLINK_ROUTE, NETLINK_SOCK_DIAG, NETLINK_NETFILTER).
NETLINK_NAMES = {0: "rtnetlink", 4: "sock_diag", 12: "ctnetlink"}

COMPRESSION_LEVEL = 1  # netlink answers are repetitive: level 1 keeps --save quick


class RecordingError(NlstatError):
    """A --save or --load file that cannot be used: one line naming it, status 1."""


class NotRecorded(NlstatError):
    """A replayed run asked for something the recorded run did not (other options)."""


def _request_key(protocol: int, request: bytes) -> bytes:
    # nlmsg_seq and nlmsg_pid (bytes 8..16) differ between runs; the rest is the question.
    return struct.pack("<I", protocol) + request[:8] + bytes(8) + request[16:]


class Tape:
    """What --save and --load share: the metadata and the seam's calls."""

    def __init__(self, path: str, proc_root: str, meta: Dict[str, object]) -> None:
        self.path = path
        self.proc_root = proc_root.rstrip("/") + "/"
        self.meta = meta
        self.euid = int(cast(int, meta.get("euid", 0)))
        # What opened netlink sockets before the tape was installed (the kernel's socket(),
        # or a test's fault-injecting stand-in): what a Recorder records from.
        self.opener: Callable[[int, int, int], _socket.socket] = _socket.socket

    @property
    def time(self) -> float:
        return float(cast(float, self.meta["time"]))

    def key(self, path: str) -> str:
        """A /proc path without the run's /proc root, so a file replays under any root."""
        if path.startswith(self.proc_root):
            return "/proc/" + path[len(self.proc_root):]
        return path

    # The seam (procio and nlsocket); each subclass answers.
    def file(self, path: str) -> procio.Outcome:
        raise NotImplementedError

    def listdir(self, path: str) -> List[str]:
        raise NotImplementedError

    def descriptors(self, path: str) -> Tuple[int, List[str]]:
        raise NotImplementedError

    def interface_name(self, index: int) -> str:
        raise NotImplementedError

    def netlink_socket(self, family: int, kind: int, protocol: int) -> _socket.socket:
        raise NotImplementedError

    def ioctl(self, fd: int, command: int, request: bytearray) -> None:
        """fcntl.ioctl() on a struct ifreq (netstat's interface list under the proc backend)."""
        raise NotImplementedError

    def answer(self, what: str, ask: Callable[[], List[str]]) -> List[str]:
        """What ask() returns (a question answered with more than a file or an ioctl)."""
        raise NotImplementedError


def _oserror(code: int, path: Optional[str] = None) -> OSError:
    return OSError(code, os.strerror(code), *((path,) if path is not None else ()))


# -- recording ------------------------------------------------------------------------------


class Recorder(Tape):
    """--save: every answer passed on as it came, and kept for write()."""

    def __init__(self, path: str, proc_root: str, argv: List[str], backend: str,
                 overwrite: bool) -> None:
        from nlstat.format.json_document import network_namespace

        meta: Dict[str, object] = {
            "time": time.time(),
            "kernel": os.uname().release,
            "host": _socket.gethostname(),
            "netns": network_namespace(proc_root),
            "nlstat": __version__,
            "argv": list(argv),
            "backend": backend,
            "euid": os.geteuid(),
        }
        super().__init__(path, proc_root, meta)
        self.entries: List[bytes] = []
        self.sockets: List[_RecordingSocket] = []
        self.temporary, self.unnamed = self._claim(path, overwrite)

    @staticmethod
    def _claim(path: str, overwrite: bool) -> Tuple[str, Optional[int]]:
        """Refuse an existing file (unless `overwrite`) and open the file to write now, so that a
        path that cannot be written fails before anything is printed: the temporary file's name
        beside the target, and, where the file system allows it, an unnamed file (O_TMPFILE)
        in that directory, which gets the temporary name only at the end, for the rename. A
        run killed outright (SIGKILL) then leaves nothing behind; without O_TMPFILE the named
        temporary is made at once and a killed run leaves it."""
        if os.path.isdir(path):
            raise RecordingError(f"{path}: is a directory")
        if os.path.lexists(path) and not overwrite:
            raise RecordingError(f"{path}: file exists (add --overwrite to replace it)")
        directory, name = os.path.split(path)
        temporary = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
        unnamed = getattr(os, "O_TMPFILE", 0)
        if unnamed:
            try:
                fd = os.open(directory or ".", unnamed | os.O_WRONLY | os.O_CLOEXEC, 0o644)
                return temporary, fd
            except OSError as err:
                if err.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                    raise RecordingError(f"{path}: cannot write ({err.strerror})") from None
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise RecordingError(f"{path}: cannot write ({err.strerror})") from None
        os.close(fd)
        return temporary, None

    def discard(self) -> None:
        if self.unnamed is not None:
            os.close(self.unnamed)  # an unnamed file is gone with its last descriptor
            self.unnamed = None
        try:
            os.unlink(self.temporary)
        except OSError:
            pass

    def add(self, kind: int, key: bytes, items: List[bytes], code: int = 0,
            code2: int = 0) -> None:
        parts = [ENTRY.pack(kind, code, code2, len(key), len(items)), key]
        for item in items:
            parts.append(ITEM.pack(len(item)))
            parts.append(item)
        self.entries.append(b"".join(parts))

    def write(self) -> None:
        """The file, whole or not at all: written beside the target, then renamed over it."""
        for sock in self.sockets:
            sock.keep()  # an answer whose socket was never closed
        self.sockets = []
        meta = json.dumps(self.meta, sort_keys=True, ensure_ascii=False,
                          separators=(",", ":")).encode("utf-8", "surrogateescape")
        body = zlib.compress(b"".join(self.entries), COMPRESSION_LEVEL)
        unnamed, self.unnamed = self.unnamed, None
        try:
            with (os.fdopen(unnamed, "wb") if unnamed is not None
                  else open(self.temporary, "wb")) as handle:
                handle.write(HEADER.pack(MAGIC, VERSION, 0, len(meta)))
                handle.write(meta)
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
                if unnamed is not None:
                    _name(unnamed, self.temporary)
            os.rename(self.temporary, self.path)
        except OSError as err:
            self.discard()
            raise RecordingError(f"{self.path}: cannot write ({err.strerror})") from None

    def file(self, path: str) -> procio.Outcome:
        result = procio.read_outcome(path)
        self.add(FILE, _fs(self.key(path)), [result[0]], result[1], result[2])
        return result

    def listdir(self, path: str) -> List[str]:
        try:
            names = os.listdir(path)
        except OSError as err:
            self.add(LISTING, _fs(self.key(path)), [], err.errno or errno.EIO)
            raise
        self.add(LISTING, _fs(self.key(path)), [_fs(name) for name in names])
        return names

    def descriptors(self, path: str) -> Tuple[int, List[str]]:
        try:
            dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as err:
            code = err.errno or errno.EIO
            self.add(DESCRIPTORS, _fs(self.key(path)), [], code)
            return code, []
        targets: List[str] = []
        try:
            for name in os.listdir(dir_fd):
                try:
                    target = os.readlink(name, dir_fd=dir_fd)
                except OSError:
                    continue  # the descriptor closed meanwhile
                # Only sockets: other targets are other processes' file names, which -p
                # never shows and a recording made for a bug report must not carry.
                if target.startswith(("socket:[", "[0000]:")):
                    targets.append(target)
        except OSError:
            pass
        finally:
            os.close(dir_fd)
        self.add(DESCRIPTORS, _fs(self.key(path)), [_fs(target) for target in targets])
        return 0, targets

    def interface_name(self, index: int) -> str:
        try:
            name = _socket.if_indextoname(index)
        except OSError as err:
            self.add(IFNAME, str(index).encode(), [], err.errno or errno.ENXIO)
            raise
        self.add(IFNAME, str(index).encode(), [_fs(name)])
        return name

    def ioctl(self, fd: int, command: int, request: bytearray) -> None:
        import fcntl

        key = struct.pack("<I", command) + bytes(request)
        try:
            fcntl.ioctl(fd, command, request)
        except OSError as err:
            self.add(IOCTL, key, [], err.errno or errno.EIO)
            raise
        self.add(IOCTL, key, [bytes(request)])

    def answer(self, what: str, ask: Callable[[], List[str]]) -> List[str]:
        try:
            result = ask()
        except OSError as err:
            self.add(ANSWER, _fs(what), [], err.errno or errno.EIO)
            raise
        self.add(ANSWER, _fs(what), [_fs(item) for item in result])
        return result

    def netlink_socket(self, family: int, kind: int, protocol: int) -> _socket.socket:
        try:
            sock = self.opener(family, kind, protocol)
        except OSError as err:
            self.add(NETLINK_OPEN, str(protocol).encode(), [], err.errno or errno.EIO)
            raise
        recording = _RecordingSocket(self, sock, protocol)
        self.sockets.append(recording)
        return cast(_socket.socket, recording)


class _RecordingSocket:
    """A netlink socket whose requests and answers are kept (only under --save)."""

    def __init__(self, recorder: Recorder, sock: _socket.socket, protocol: int) -> None:
        self.recorder = recorder
        self.sock = sock
        self.protocol = protocol
        self.chunks: List[bytes] = []
        self.key = b""

    def setsockopt(self, level: int, name: int, value: object) -> None:
        try:
            self.sock.setsockopt(level, name, value)  # type: ignore[call-overload]
        except OSError as err:
            key = f"{self.protocol} {level} {name}".encode()
            self.recorder.add(SOCKOPT, key, [], err.errno or errno.EIO)
            raise

    def bind(self, address: Tuple[int, int]) -> None:
        self.sock.bind(address)

    def sendto(self, data: bytes, address: Tuple[int, int]) -> int:
        self.keep()
        sent: int = self.sock.sendto(data, address)
        self.key = _request_key(self.protocol, data)
        return sent

    def recv(self, size: int) -> bytes:
        try:
            chunk = self.sock.recv(size)
        except InterruptedError:
            raise
        except OSError as err:
            self.keep(err.errno or errno.EIO)
            raise
        self.chunks.append(chunk)
        return chunk

    def keep(self, code: int = 0) -> None:
        """The answer to the request before, as far as it was read."""
        if self.key:
            # Each chunk is deflated on its own, and inflated only when a replay receives it:
            # loading a big dump then costs no up-front pass over it, and the inflating of
            # each chunk overlaps the formatting of the one before (pipeline.py).
            chunks = [zlib.compress(chunk, COMPRESSION_LEVEL) for chunk in self.chunks]
            self.recorder.add(DUMP, self.key, chunks, code)
        self.key = b""
        self.chunks = []

    def close(self) -> None:
        self.keep()
        self.sock.close()


def _fs(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


# -- replaying ------------------------------------------------------------------------------


class Player(Tape):
    """--load: every answer from the file; a question it does not hold ends the run."""

    def __init__(self, path: str, proc_root: str) -> None:
        meta, body = read_file(path)
        super().__init__(path, proc_root, meta)
        self.opens: Dict[str, int] = {}
        self.sockopts: Dict[bytes, int] = {}
        # A question asked several times (a dump retried after NLM_F_DUMP_INTR) gets its
        # answers in the order recorded; the last one answers any further asking.
        self.dumps: Dict[bytes, List[Tuple[List[bytes], int]]] = {}
        self.files: Dict[str, procio.Outcome] = {}
        self.listings: Dict[str, Tuple[int, List[str]]] = {}
        self.fds: Dict[str, Tuple[int, List[str]]] = {}
        self.ifnames: Dict[int, Tuple[int, str]] = {}
        self.ioctls: Dict[bytes, Tuple[int, bytes]] = {}
        self.answers: Dict[str, Tuple[int, List[str]]] = {}
        try:
            self._load(body)
        except (struct.error, ValueError, IndexError):
            raise RecordingError(f"{path}: damaged recording") from None

    def _load(self, body: bytes) -> None:
        view = memoryview(body)
        unpack_entry = ENTRY.unpack_from
        unpack_item = ITEM.unpack_from
        entry_size = ENTRY.size
        offset = 0
        end = len(body)
        while offset < end:
            kind, code, code2, key_size, count = unpack_entry(body, offset)
            offset += entry_size
            key = bytes(view[offset:offset + key_size])
            offset += key_size
            items: List[bytes] = []
            for _ in range(count):
                (size,) = unpack_item(body, offset)
                offset += 4
                if offset + size > end:
                    raise ValueError("item past the end")
                items.append(bytes(view[offset:offset + size]))
                offset += size
            if offset > end:
                raise ValueError("entry past the end")
            if kind == DUMP:
                self.dumps.setdefault(key, []).append((items, code))
            elif kind == FILE:
                self.files[_text(key)] = (items[0] if items else b"", code, code2)
            elif kind == LISTING:
                self.listings[_text(key)] = (code, [_text(item) for item in items])
            elif kind == DESCRIPTORS:
                self.fds[_text(key)] = (code, [_text(item) for item in items])
            elif kind == IFNAME:
                self.ifnames[int(key)] = (code, _text(items[0]) if items else "")
            elif kind == IOCTL:
                self.ioctls[key] = (code, items[0] if items else b"")
            elif kind == ANSWER:
                self.answers[_text(key)] = (code, [_text(item) for item in items])
            elif kind == NETLINK_OPEN:
                self.opens[_text(key)] = code
            elif kind == SOCKOPT:
                self.sockopts[key] = code
            else:
                raise ValueError(f"entry kind {kind}")

    def missing(self, what: str) -> NotRecorded:
        argv = " ".join(cast(List[str], self.meta.get("argv", [])))
        return NotRecorded(f"{self.path}: the recorded run (nlstat {argv}) did not read {what};"
                           " load it with the options it was saved with")

    def file(self, path: str) -> procio.Outcome:
        found = self.files.get(self.key(path))
        if found is None:
            raise self.missing(path)
        return found

    def listdir(self, path: str) -> List[str]:
        found = self.listings.get(self.key(path))
        if found is None:
            raise self.missing(path)
        code, names = found
        if code:
            raise _oserror(code, path)
        return list(names)

    def descriptors(self, path: str) -> Tuple[int, List[str]]:
        found = self.fds.get(self.key(path))
        if found is None:
            raise self.missing(path)
        return found

    def interface_name(self, index: int) -> str:
        found = self.ifnames.get(index)
        if found is None:
            raise self.missing(f"the name of interface {index}")
        code, name = found
        if code:
            raise _oserror(code)
        return name

    def ioctl(self, fd: int, command: int, request: bytearray) -> None:
        found = self.ioctls.get(struct.pack("<I", command) + bytes(request))
        if found is None:
            raise self.missing(f"the answer to ioctl {command:#x}")
        code, after = found
        if code:
            raise _oserror(code)
        request[:] = after

    def answer(self, what: str, ask: Callable[[], List[str]]) -> List[str]:
        found = self.answers.get(what)
        if found is None:
            raise self.missing(what)
        code, result = found
        if code:
            raise _oserror(code)
        return list(result)

    def netlink_socket(self, family: int, kind: int, protocol: int) -> _socket.socket:
        code = self.opens.get(str(protocol), 0)
        if code:
            raise _oserror(code)
        return cast(_socket.socket, _ReplayingSocket(self, protocol))

    def dump_answer(self, key: bytes) -> Tuple[List[bytes], int]:
        answers = self.dumps.get(key)
        if not answers:
            protocol = self.protocol_of(key)
            name = NETLINK_NAMES.get(protocol, f"netlink protocol {protocol}")
            raise self.missing(f"the answer to a {name} request")
        return answers.pop(0) if len(answers) > 1 else answers[0]

    @staticmethod
    def protocol_of(key: bytes) -> int:
        return int(struct.unpack_from("<I", key)[0])


class _ReplayingSocket:
    """A netlink socket that is a recording: each request gets its recorded answer."""

    def __init__(self, player: Player, protocol: int) -> None:
        self.player = player
        self.protocol = protocol
        self.chunks: List[bytes] = []
        self.code = errno.EAGAIN

    def setsockopt(self, level: int, name: int, value: object) -> None:
        code = self.player.sockopts.get(f"{self.protocol} {level} {name}".encode(), 0)
        if code:
            raise _oserror(code)

    def bind(self, address: Tuple[int, int]) -> None:
        pass

    def sendto(self, data: bytes, address: Tuple[int, int]) -> int:
        chunks, code = self.player.dump_answer(_request_key(self.protocol, data))
        self.chunks = list(chunks)
        self.chunks.reverse()
        # An answer read to its end was followed by nothing: recv() would have timed out.
        self.code = code or errno.EAGAIN
        return len(data)

    def recv(self, size: int) -> bytes:
        if self.chunks:
            try:
                return zlib.decompress(self.chunks.pop())
            except zlib.error:
                raise RecordingError(f"{self.player.path}: damaged recording") from None
        raise _oserror(self.code)

    def close(self) -> None:
        pass


def read_file(path: str) -> Tuple[Dict[str, object], bytes]:
    """(metadata, uncompressed body) of a recording; RecordingError naming the file when it
    is not one, is damaged or cut short, or comes from a newer format version."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise RecordingError(f"{path}: cannot read ({err.strerror})") from None
    if len(data) < HEADER.size or not data.startswith(MAGIC):
        if MAGIC.startswith(data[:len(MAGIC)]) and len(data) < HEADER.size:
            raise RecordingError(f"{path}: truncated recording")
        raise RecordingError(f"{path}: not an nlstat recording")
    _magic, version, _flags, meta_size = HEADER.unpack_from(data)
    if version > VERSION:
        raise RecordingError(
            f"{path}: recording format version {version} is newer than this nlstat reads"
            f" (up to {VERSION}); load it with a newer nlstat")
    if version < 1:
        raise RecordingError(f"{path}: not an nlstat recording")
    start = HEADER.size + meta_size
    if start > len(data):
        raise RecordingError(f"{path}: truncated recording")
    try:
        meta = json.loads(data[HEADER.size:start].decode("utf-8", "surrogateescape"))
    except ValueError:
        raise RecordingError(f"{path}: damaged recording") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("time"), (int, float)):
        raise RecordingError(f"{path}: damaged recording")
    inflater = zlib.decompressobj()
    try:
        body = inflater.decompress(memoryview(data)[start:])
    except zlib.error:
        raise RecordingError(f"{path}: damaged recording") from None
    if not inflater.eof:
        raise RecordingError(f"{path}: truncated recording")
    if inflater.unused_data:
        raise RecordingError(f"{path}: damaged recording (data after its end)")
    return meta, body


# -- a run with a tape ----------------------------------------------------------------------


def install(tape: Tape) -> Callable[[], None]:
    """Put `tape` under the run's netlink sockets and /proc reads; returns what undoes it."""
    from nlstat.backends.netlink import nlsocket

    factory = nlsocket.socket_factory
    tape.opener = factory
    procio.tape = tape
    nlsocket.socket_factory = tape.netlink_socket

    def uninstall() -> None:
        procio.tape = None
        nlsocket.socket_factory = factory

    return uninstall


def argv_of_run(argv: List[str]) -> List[str]:
    """The command line as the metadata keeps it: the options, without --save's own."""
    kept: List[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--save":
            skip = True
            continue
        if arg.startswith("--save=") or arg == "--overwrite":
            continue
        kept.append(arg)
    return kept


def describe(meta: Dict[str, object]) -> str:
    """One line about a recording (NLSTAT_DEBUG under --load)."""
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(cast(float, meta["time"]))))
    return (f"recording of 'nlstat {' '.join(cast(List[str], meta.get('argv', [])))}'"
            f" on {meta.get('host')} ({meta.get('kernel')}) at {when},"
            f" nlstat {meta.get('nlstat')}")



def _name(fd: int, path: str) -> None:
    """Give the unnamed (O_TMPFILE) file open as `fd` the name `path`: linkat() of its
    /proc/self/fd entry with AT_SYMLINK_FOLLOW, as open(2) says. os.link() passes that flag
    only to linkat(), which it calls when given a directory descriptor; plain link(2) would
    try to link the /proc entry itself (EXDEV)."""
    entries = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.link(str(fd), path, src_dir_fd=entries)
    finally:
        os.close(entries)
