"""Every read of /proc goes through here: the seam --save records and --load replays.

`tape` is None in an ordinary run, and each function is then the plain os call behind one
test of a module global (once per file, never per line or per socket). Under --save or --load
it is the run's recording.Tape, which answers with what the kernel said (recording it) or what
a recording holds. The /proc/PID/fd walk (procmap) asks `tape` once per process and, without
one, keeps its own tight readlink loop.
"""

from __future__ import annotations

import errno
import io
import os
from typing import TYPE_CHECKING, BinaryIO, List, Optional, Tuple

if TYPE_CHECKING:
    from nlstat.recording import Tape

tape: Optional[Tape] = None

# (content, errno of the open, errno of the first read): what fopen() then fread() see.
Outcome = Tuple[bytes, int, int]


def outcome(path: str) -> Outcome:
    """The whole file, or why it could not be opened or read; never raises."""
    if tape is not None:
        return tape.file(path)
    return read_outcome(path)


def read_outcome(path: str) -> Outcome:
    try:
        with open(path, "rb") as handle:
            return handle.read(), 0, 0
    except IsADirectoryError:
        # fopen() of a directory succeeds; it is the first read that fails (EISDIR).
        return b"", 0, errno.EISDIR
    except OSError as err:
        return b"", err.errno or errno.EIO, 0


def read(path: str, limit: Optional[int] = None) -> bytes:
    """The file's bytes (at most `limit`); OSError as open() or read() raise it."""
    if tape is None:
        with open(path, "rb") as handle:
            return handle.read() if limit is None else handle.read(limit)
    content, open_errno, read_errno = tape.file(path)
    code = open_errno or read_errno
    if code:
        raise OSError(code, os.strerror(code), path)
    return content if limit is None else content[:limit]


def read_text(path: str, encoding: str, errors: str, newline: Optional[str]) -> str:
    """The file as open(path, encoding=..., errors=..., newline=...).read() gives it."""
    if tape is None:
        with open(path, encoding=encoding, errors=errors, newline=newline) as handle:
            return handle.read()
    data = read(path)
    return io.TextIOWrapper(io.BytesIO(data), encoding, errors, newline).read()


def open_binary(path: str) -> BinaryIO:
    """The file opened unbuffered for reading as it is consumed (a big /proc/net table)."""
    if tape is None:
        return open(path, "rb", buffering=0)
    return io.BytesIO(read(path))


def listdir(path: str) -> List[str]:
    if tape is None:
        return os.listdir(path)
    return tape.listdir(path)


def isdir(path: str) -> bool:
    if tape is None:
        return os.path.isdir(path)
    try:
        tape.listdir(path)
    except OSError:
        return False
    return True


def geteuid() -> int:
    """The effective uid the /proc reads were made with (a recording's, under --load)."""
    if tape is None:
        return os.geteuid()
    return tape.euid


def interface_name(index: int) -> str:
    """if_indextoname(): the kernel's answer outside /proc and netlink dumps (SIOCGIFNAME),
    recorded and replayed alike; OSError when no interface has that index."""
    if tape is None:
        import _socket

        return _socket.if_indextoname(index)
    return tape.interface_name(index)
