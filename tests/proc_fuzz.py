"""Damaged copies of real /proc files, for the /proc fuzzers (issue 12, item 3).

Seeds are files captured from a quiet test namespace (tests/data/procnet: a tcp listener and
a connection, udp, udplite and raw sockets, IPv4 and IPv6; unix sockets bound to a path, an
abstract name and none; an IPv4 and an IPv6 multicast group; refresh with
`python3 -m tests.proc_fuzz capture` as root) and the route and conntrack captures of the
other suites. A mutation works on lines and their columns, since that is how every /proc/net
parser reads: a line cut short, a column dropped, doubled, inserted or replaced by an odd token
(non-hex, huge, negative, empty, non-UTF-8, a NUL), a hex digit made non-hex, lines dropped or
repeated, binary junk inserted; and on the whole file: emptied, cut at any byte, junk
appended, the last newline removed.

`Table` says which file a fuzzer damages and how nlstat reads it: through the Python API
(fast, many examples) and through command lines (in-process and, fewer, as a subprocess).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from typing import Callable, Dict, Iterable, List, NamedTuple, Sequence, Tuple

from hypothesis import strategies as st

import nlstat

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
SEEDS = DATA / "procnet"

# Files under net/ and where their seed is.
SEED_FILES: Dict[str, Path] = {
    name: SEEDS / name
    for name in (
        "tcp", "tcp6", "udp", "udp6", "udplite", "udplite6", "raw", "raw6", "unix", "route",
        "ipv6_route", "dev", "if_inet6", "igmp", "igmp6", "dev_mcast", "snmp", "netstat", "snmp6",
    )
}
SEED_FILES["rt_cache"] = SEEDS / "rt_cache"  # crafted: kernels since 3.6 list no cache rows
SEED_FILES["nf_conntrack"] = DATA / "conntrack" / "nat.nf_conntrack"


class Table(NamedTuple):
    """One /proc file under net/, the API call that reads it (given a proc root) and the
    command lines that print it (all numeric: a fuzzed address must not be looked up)."""

    file: str
    read: Callable[[str], Iterable[object]]
    argvs: Tuple[Tuple[str, ...], ...]
    # netstat reads this file the same way, so its output on the same bytes is the oracle.
    netstat_argvs: Tuple[Tuple[str, ...], ...] = ()


def _sockets(kind: str, family: int) -> Callable[[str], Iterable[object]]:
    return lambda root: nlstat.sockets(kind, family=family, backend="proc", proc_root=root)


TABLES: Tuple[Table, ...] = (
    Table("tcp", _sockets("tcp", 4), (("-ant",), ("-anteo",), ("-lnt4",)),
          (("-ant", "-4"), ("-anteo", "-4"))),
    Table("tcp6", _sockets("tcp", 6), (("-ant",), ("-lnte6",)), (("-ant", "-6"),)),
    Table("udp", _sockets("udp", 4), (("-anu",), ("-anuo",)), (("-anu", "-4"),)),
    Table("udp6", _sockets("udp", 6), (("-anu6",),), (("-anu", "-6"),)),
    Table("udplite", _sockets("udplite", 4), (("-anU",),), (("-anU", "-4"),)),
    Table("udplite6", _sockets("udplite", 6), (("-anU6",),), (("-anU", "-6"),)),
    Table("raw", _sockets("raw", 4), (("-anw",), ("-anwe",)), (("-anw", "-4"),)),
    Table("raw6", _sockets("raw", 6), (("-anw6",),), (("-anw", "-6"),)),
    Table("unix", lambda root: nlstat.sockets("unix", backend="proc", proc_root=root),
          (("-anx",), ("-lx",), ("-anxe",)), (("-anx",), ("-anxe",))),
    Table("route", lambda root: nlstat.routes(4, backend="proc", proc_root=root),
          (("-rn",), ("-rnee",)), (("-rn",), ("-rnee",))),
    Table("rt_cache", lambda root: [], (("-rnC",), ("-rnCF",)), (("-rnC",),)),
    Table("ipv6_route", lambda root: nlstat.routes(6, backend="proc", proc_root=root),
          (("-rn6",), ("-rn6e",))),
    Table("dev", lambda root: nlstat.interfaces(backend="proc", proc_root=root),
          (("-ia",), ("-i",))),
    Table("if_inet6", lambda root: [], (("-iea",),)),
    Table("igmp", lambda root: nlstat.groups(backend="proc", proc_root=root),
          (("-gn",),), (("-gn",),)),
    Table("igmp6", lambda root: nlstat.groups(backend="proc", proc_root=root),
          (("-gn",), ("-gn6",)), (("-gn",),)),
    Table("snmp", lambda root: nlstat.statistics(4, proc_root=root),
          (("-s",), ("-st",), ("-su",), ("-sw",)), (("-s",), ("-su",))),
    Table("netstat", lambda root: nlstat.statistics(4, proc_root=root),
          (("-s",), ("-st",)), (("-s",), ("-st",))),
    Table("snmp6", lambda root: nlstat.statistics(6, proc_root=root),
          (("-s6",), ("-s6u",)), (("-s", "-6"),)),
    Table("nf_conntrack", lambda root: nlstat.masquerade(backend="proc", proc_root=root),
          (("-Mn",), ("-Mne",))),
)
TABLE_NAMES = tuple(table.file for table in TABLES)
BY_NAME = {table.file: table for table in TABLES}

# Tokens a damaged column may hold. Bytes, since /proc files are bytes (a path may be any).
TOKENS: Tuple[bytes, ...] = (
    b"", b"0", b"-1", b"-", b"+7", b"ZZZZ", b"0x10", b"1e5", b":", b"::", b"0:0",
    b"FFFFFFFF", b"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", b"99999999999999999999",
    b"18446744073709551616", b"340282366920938463463374607431768211456", b"-2147483649",
    b"0100007F:ZZZZ", b"0100007F:", b":0016", b"0100007F:0016:0016", b"\xff\xfe", b"\xc3\x28",
    b"\x00", b"\t", b"a b", b"lo:", b"eth0:1", b"abcdefghijklmnopqrstu", b"V3", b"\xe2\x82\xac",
    b"=", b"src=", b"sport=99999", b"[ASSURED]", b"nan", b"\x1b[31m",
)

# Kinds of damage (see mutate()).
KINDS: Tuple[str, ...] = (
    "cut_line", "drop_column", "double_column", "insert_column", "replace_column", "non_hex",
    "drop_line", "repeat_line", "junk_line", "join_lines", "cut_file", "append_junk",
    "no_newline", "tabs", "empty", "header_only", "drop_row", "repeat_row",
)
# One mutation: (kind, line, column, token index, junk).
MUTATION = st.tuples(
    st.sampled_from(KINDS),
    st.integers(0, 1 << 16),
    st.integers(0, 64),
    st.integers(0, len(TOKENS) - 1),
    st.binary(max_size=48),
)
MUTATIONS = st.lists(MUTATION, min_size=1, max_size=5)

# Damage that leaves every line either whole or gone: what netstat and nlstat must read alike in
# every table (tests/unit/test_fuzz_procfs.py compares them). Column damage is compared only
# in the tables where nlstat follows netstat's sscanf() through it (FULL_PARITY); elsewhere
# netstat keeps values from the line before or from uninitialised memory (docs/compat.md,
# "damaged /proc lines"), which the long survey in benchmarks/fuzz.py counts.
WHOLE_LINE_KINDS = ("drop_row", "empty", "header_only", "no_newline", "tabs", "repeat_row")
FULL_PARITY = ("snmp", "netstat", "snmp6")
# Tables where nlstat lists each socket once on purpose (docs/compat.md): no repeated rows.
DEDUPLICATED = ("tcp", "tcp6", "udp", "udp6", "udplite", "udplite6", "raw", "raw6", "unix")


def parity_mutations(table: str) -> st.SearchStrategy[List[Tuple[str, int, int, int, bytes]]]:
    """The damage netstat and nlstat must read alike in `table`."""
    if table in FULL_PARITY:
        return MUTATIONS
    kinds = [k for k in WHOLE_LINE_KINDS if not (k == "repeat_row" and table in DEDUPLICATED)]
    return st.lists(st.tuples(st.sampled_from(kinds), st.integers(0, 1 << 16), st.just(0),
                              st.just(0), st.just(b"")), min_size=1, max_size=4)

_COLUMN = re.compile(rb"\S+")


def _columns(line: bytes) -> List[Tuple[int, int]]:
    return [match.span() for match in _COLUMN.finditer(line)]


def mutate(data: bytes, mutations: Sequence[Tuple[str, int, int, int, bytes]]) -> bytes:
    """`data` with the mutations applied in turn (each one a no-op where it cannot apply)."""
    for kind, line_pos, column_pos, token_index, junk in mutations:
        token = TOKENS[token_index]
        lines = data.split(b"\n")
        index = line_pos % len(lines)
        line = lines[index]
        spans = _columns(line)
        span = spans[column_pos % len(spans)] if spans else None
        if kind == "cut_line":
            lines[index] = line[: column_pos % (len(line) + 1)]
        elif kind == "drop_column" and span:
            lines[index] = line[: span[0]] + line[span[1]:]
        elif kind == "double_column" and span:
            lines[index] = line[: span[1]] + b" " + line[span[0]: span[1]] + line[span[1]:]
        elif kind == "insert_column" and span:
            lines[index] = line[: span[0]] + token + b" " + line[span[0]:]
        elif kind == "replace_column" and span:
            lines[index] = line[: span[0]] + token + line[span[1]:]
        elif kind == "non_hex" and span and span[1] > span[0]:
            where = span[0] + token_index % (span[1] - span[0])
            lines[index] = line[:where] + b"G" + line[where + 1:]
        elif kind == "drop_line":
            del lines[index]
        elif kind == "drop_row" and len(lines) > 1:
            del lines[1 + line_pos % (len(lines) - 1)]  # never the title line
        elif kind == "repeat_row" and len(lines) > 1:
            row = 1 + line_pos % (len(lines) - 1)
            lines.insert(row, lines[row])
        elif kind == "repeat_line":
            lines.insert(index, line)
        elif kind == "junk_line":
            lines.insert(index, junk)
        elif kind == "join_lines" and index + 1 < len(lines):
            lines[index: index + 2] = [line + token + lines[index + 1]]
        elif kind == "tabs":
            lines[index] = line.replace(b" ", b"\t")
        data = b"\n".join(lines)
        if kind == "cut_file":
            data = data[: line_pos % (len(data) + 1)]
        elif kind == "append_junk":
            data += junk
        elif kind == "no_newline":
            data = data.rstrip(b"\n")
        elif kind == "empty":
            data = b""
        elif kind == "header_only":
            data = data.split(b"\n", 1)[0] + b"\n"
    return data


def seed_tree(root: os.PathLike[str] | str, damaged: Dict[str, bytes]) -> str:
    """A /proc tree at `root` (emptied first): every seed under net/, with `damaged` files
    in place of theirs. Returns the root's path."""
    root = os.fspath(root)
    shutil.rmtree(root, ignore_errors=True)
    net = os.path.join(root, "net")
    os.makedirs(net)
    for name, seed in SEED_FILES.items():
        data = damaged[name] if name in damaged else seed.read_bytes()
        with open(os.path.join(net, name), "wb") as handle:
            handle.write(data)
    return root


# -- /proc/PID trees for -p --------------------------------------------------------------------




_PIDS = st.sampled_from(["1", "42", "4194304", "99999999999999999999", "0", "007"])
_CMDLINES = st.one_of(
    st.none(),
    st.sampled_from([
        b"", b"/usr/sbin/sshd\x00-D\x00", b"nginx: worker process\x00", b"\x00\x00",
        b"/x/" + b"a" * 300, b"prog with spaces", b"\xff\xfe\x00", b"/bin/\x1b[31mred\x00",
        b"a/b/c/", b"////", b"\n\t\x00",
    ]),
    st.binary(max_size=40),
)
_TARGETS = st.one_of(
    st.sampled_from([
        b"socket:[25970796]", b"socket:[25970812]", b"socket:[0]", b"socket:[]", b"socket:[",
        b"socket:[-1]", b"socket:[99999999999999999999999]", b"socket:[25970796]x",
        b"socket:[ 25970796]", b"socket:[0x10]", b"pipe:[25970796]", b"/dev/null",
        b"anon_inode:[eventfd]", b"socket:[\xff]",
    ]),
    st.binary(min_size=1, max_size=30).filter(lambda b: b"\x00" not in b),
)
_FDS = st.dictionaries(st.sampled_from(["0", "1", "3", "255", "x", "99999999999"]), _TARGETS,
                       max_size=4)
PROCESSES = st.lists(st.tuples(_PIDS, _CMDLINES, _FDS), max_size=4)


def write_processes(root: str, processes: Sequence[Tuple[str, object, Dict[str, bytes]]]) -> None:
    """PID directories beside net/: cmdline and an fd directory of symbolic links."""
    for pid, cmdline, fds in processes:
        directory = os.path.join(root, pid)
        if os.path.exists(directory):
            continue
        os.makedirs(os.path.join(directory, "fd"))
        if isinstance(cmdline, bytes):
            with open(os.path.join(directory, "cmdline"), "wb") as handle:
                handle.write(cmdline)
        for name, target in fds.items():
            os.symlink(target, os.path.join(directory.encode(), b"fd", name.encode()))


# -- refreshing the seeds ------------------------------------------------------------------------

_INSIDE = r"""
import os, socket, struct, sys
out, scratch = sys.argv[1], sys.argv[2]
held = []
for fam, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    listener = socket.socket(fam, socket.SOCK_STREAM); listener.bind((addr, 0)); listener.listen(8)
    client = socket.socket(fam, socket.SOCK_STREAM); client.connect(listener.getsockname()[:2])
    udp = socket.socket(fam, socket.SOCK_DGRAM); udp.bind((addr, 0))
    udp.connect(listener.getsockname()[:2])
    lite = socket.socket(fam, socket.SOCK_DGRAM, 136); lite.bind((addr, 0))
    raw = socket.socket(fam, socket.SOCK_RAW, 1 if fam == socket.AF_INET else 58)
    held += [listener, client, listener.accept()[0], udp, lite, raw]
group = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
group.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 socket.inet_aton("239.1.2.3") + socket.inet_aton("198.18.0.1"))
group6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
group6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                  socket.inet_pton(socket.AF_INET6, "ff15::1234")
                  + struct.pack("@I", socket.if_nametoindex("veth0")))
path = os.path.join(scratch, "srv.sock")
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); server.bind(path); server.listen(4)
peer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); peer.connect(path)
abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); abstract.bind(b"\0nlstat-fuzz")
held += [group, group6, server, peer, server.accept()[0], abstract, *socket.socketpair()]
for name in sys.argv[3:]:
    with open("/proc/net/" + name, "rb") as source, open(os.path.join(out, name), "wb") as sink:
        sink.write(source.read())
"""


def capture(directory: Path = SEEDS) -> None:
    """Refresh tests/data/procnet from a quiet namespace holding the sockets above (root)."""
    from tests.netns import namespace

    directory.mkdir(parents=True, exist_ok=True)
    names = [name for name, seed in SEED_FILES.items()
             if seed.parent == SEEDS and name != "rt_cache"]
    with namespace(prefix="nlst-fuzzcap") as ns:
        ns.check([sys.executable, "-c", _INSIDE, str(directory), ns.scratch, *names])


if __name__ == "__main__":
    if sys.argv[1:] == ["capture"]:
        capture()
    else:
        sys.exit("usage: python3 -m tests.proc_fuzz capture")
