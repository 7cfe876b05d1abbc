"""Odd data made live, printed as netstat prints it and kept exactly in --json (issue 12.4).

One private namespace holds what real hosts do hold now and then:

* unix socket paths with blanks, a newline, control characters, bytes that are not UTF-8, and
  one that fills all 108 bytes of `sun_path` (no terminating NUL); abstract names holding
  NULs and a newline, and one of the maximal 107 bytes;
* a veth pair whose names are 15 characters (IFNAMSIZ - 1), with an IPv4 address, link-local
  IPv6 addresses (fe80::/64, scoped to that device), routes through them, multicast groups
  joined on them, and sockets bound to the device and to the scoped addresses;
* sockets owned by uid 3000000000 (beyond 2^31, and with no name in the password database:
  `-e` shows the number), made by a forked child that setresuid()s before socket();
* processes holding sockets whose argv[0] has blanks, a newline and an escape sequence, bytes
  that are not UTF-8, 300 characters, and whose comm (15 characters, prctl PR_SET_NAME) has
  blanks.

netstat, run in the same namespace, is the oracle: every listing is compared byte for byte
(stdout, stderr and status) under each backend. The --json records are checked against the
shipped schemas and against the exact bytes the test made.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
from typing import Iterator, List, NamedTuple, Sequence, Tuple

import pytest

from tests import json_support as js
from tests import netns
from tests.routes_support import mask_ipv6_refcnt
from tests.system import sockets_cases as cases

pytestmark = pytest.mark.netns

IFNAME = "veth-odd-15ch-a"  # 15 characters: the longest name the kernel takes
PEER = "veth-odd-15ch-b"
BIG_UID = 3_000_000_000
PR_SET_NAME = 15


class OddPaths(NamedTuple):
    """The unix names the test binds (exact bytes, as the kernel holds them)."""

    files: List[bytes]
    abstract: List[bytes]


class Odd(NamedTuple):
    ns: netns.Namespace
    held: List[socket.socket]
    programs: List[subprocess.Popen[bytes]]
    paths: OddPaths
    ifindex: int
    big_uid_inodes: List[int]
    argv0s: List[bytes]


def unix_names(scratch: str) -> OddPaths:
    base = scratch.encode() + b"/"
    files = [
        base + b"with blanks .sock",
        base + b"new\nline.sock",
        base + b"tab\tand\x01ctl\x1b[7m.sock",
        base + b"not-utf8-\xff\xfe\xc3.sock",
        base + b"caf\xc3\xa9 utf8.sock",
    ]
    full = base + b"full-"
    files.append(full + b"x" * (108 - len(full)))  # no room for a NUL: sun_path is full
    abstract = [
        b"\0odd\0name\0with\0nuls",
        b"\0abstract\nnewline",
        b"\0" + b"m" * 106 + b"\0",  # 108 bytes: a NUL last, kept by the kernel
        b"\0\0\0",
    ]
    return OddPaths(files, abstract)


def bind_exactly(sock: socket.socket, name: bytes) -> None:
    """bind() with `name` as the whole sun_path: Python's bind() refuses a 108-byte path (it
    wants room for a NUL), the kernel does not."""
    import ctypes

    address = struct.pack("=H", socket.AF_UNIX) + name
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.bind(sock.fileno(), ctypes.c_char_p(address), len(address)) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"bind({name!r}): {os.strerror(error)}")


def make_unix(paths: OddPaths, held: List[socket.socket]) -> None:
    for index, name in enumerate(paths.files + paths.abstract):
        kind = socket.SOCK_STREAM if index % 2 == 0 else socket.SOCK_DGRAM
        sock = socket.socket(socket.AF_UNIX, kind)
        bind_exactly(sock, name)
        if kind == socket.SOCK_STREAM:
            sock.listen(1)
        held.append(sock)


def owned_by_big_uid() -> List[socket.socket]:
    """Sockets made by a forked child running as uid 3000000000 (socket() takes the owner
    from the creator's fsuid), handed back over SCM_RIGHTS; the child exits."""
    parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            parent_end.close()
            os.setresgid(BIG_UID, BIG_UID, BIG_UID)
            os.setresuid(BIG_UID, BIG_UID, BIG_UID)
            made = [socket.socket(socket.AF_INET, socket.SOCK_STREAM),
                    socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)]
            socket.send_fds(child_end, [b"x"], [s.fileno() for s in made])
            os._exit(0)
        except BaseException:
            os._exit(1)
    child_end.close()
    _, fds, _, _ = socket.recv_fds(parent_end, 1, 2)
    parent_end.close()
    _, status = os.waitpid(pid, 0)
    assert status == 0 and len(fds) == 2
    tcp = socket.socket(fileno=fds[0])
    tcp.bind(("127.0.0.1", 7104))
    tcp.listen(1)
    udp = socket.socket(fileno=fds[1])
    udp.bind(("::1", 7105))
    return [tcp, udp]


def make_inet(ifindex: int, held: List[socket.socket]) -> None:
    def keep(sock: socket.socket) -> socket.socket:
        held.append(sock)
        return sock

    scoped = keep(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
    scoped.bind(("fe80::1", 7101, 0, ifindex))
    scoped.listen(2)
    client = keep(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
    client.bind(("fe80::1", 0, 0, ifindex))
    client.connect(("fe80::1", 7101, 0, ifindex))
    keep(scoped.accept()[0])
    udp = keep(socket.socket(socket.AF_INET6, socket.SOCK_DGRAM))
    udp.bind(("fe80::1", 7102, 0, ifindex))
    udp.connect(("fe80::2", 7102, 0, ifindex))
    bound = keep(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    bound.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, IFNAME.encode())
    bound.bind(("0.0.0.0", 7103))
    bound.listen(1)
    group = keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    mreqn = socket.inet_aton("239.1.2.3") + socket.inet_aton("0.0.0.0") + struct.pack(
        "i", ifindex)
    group.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    group6 = keep(socket.socket(socket.AF_INET6, socket.SOCK_DGRAM))
    group6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                      socket.inet_pton(socket.AF_INET6, "ff15::1234") + struct.pack("I", ifindex))
    for sock in owned_by_big_uid():
        keep(sock)


# A process that binds a unix socket and a tcp listener, names itself (comm), says so, waits.
PROGRAM = r"""
import ctypes, os, socket, sys
comm, port = sys.argv[1].encode(), int(sys.argv[2])
ctypes.CDLL(None).prctl(15, ctypes.c_char_p(comm), 0, 0, 0)
tcp = socket.socket(); tcp.bind(("127.0.0.1", port)); tcp.listen(1)
unix = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); unix.bind(b"\0odd-program-%d" % port)
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.read()
"""

# (argv[0], comm): what netstat.c prg_cache_load() reads (cmdline's first string, after its
# last "/") and the 15-character comm the kernel keeps beside it.
PROGRAMS: List[Tuple[bytes, str]] = [
    (b"/opt/odd dir/prog with spaces", "comm with spc15"),
    (b"/x/" + b"a long name " * 25, "abcdefghijklmno"),
    (b"/x/caf\xe9-\xff prog", "not utf8 argv0"),
    (b"/x/ctl\x1b[31mred\nline", "ctl \x1b name"),
    (b"relative name", "r"),
]


def start_programs(ns: netns.Namespace) -> List[subprocess.Popen[bytes]]:
    started: List[subprocess.Popen[bytes]] = []
    for number, (argv0, comm) in enumerate(PROGRAMS):
        exec_line = ("import os, sys; os.execv(sys.executable, [bytes.fromhex(sys.argv[1]),"
                     " '-c', sys.argv[2], sys.argv[3], sys.argv[4]])")
        process = ns.popen(
            [sys.executable, "-c", exec_line, argv0.hex(), PROGRAM, comm, str(7200 + number)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        started.append(process)
    for process in started:
        assert process.stdout is not None
        assert process.stdout.readline() == b"ready\n"
    return started


def configure_links(ns: netns.Namespace) -> None:
    ip = ns._ip  # noqa: SLF001 - the namespace's own `ip -n NAME`
    ip("link", "add", IFNAME, "type", "veth", "peer", "name", PEER)
    for dev in (IFNAME, PEER):
        # No automatic link-local address (random, with DAD): only the ones set here.
        ip("link", "set", dev, "addrgenmode", "none")
        ip("link", "set", dev, "up")
    ip("addr", "add", "198.18.7.1/24", "dev", IFNAME)
    ip("-6", "addr", "add", "fe80::1/64", "dev", IFNAME, "nodad")
    ip("-6", "addr", "add", "fe80::2/64", "dev", PEER, "nodad")
    ip("route", "add", "198.18.8.0/24", "via", "198.18.7.2", "dev", IFNAME)
    ip("-6", "route", "add", "2001:db8:8::/64", "via", "fe80::2", "dev", IFNAME)


@pytest.fixture(scope="module")
def odd() -> Iterator[Odd]:
    netns.skip_unless_root()
    with netns.namespace(prefix="nlst-odd") as ns:
        configure_links(ns)
        ifindex = int(ns.check(["cat", f"/sys/class/net/{IFNAME}/ifindex"]).stdout)
        paths = unix_names(ns.scratch)
        held: List[socket.socket] = []
        programs: List[subprocess.Popen[bytes]] = []
        try:
            ns.call_inside(lambda: make_unix(paths, held))
            ns.call_inside(lambda: make_inet(ifindex, held))
            programs = start_programs(ns)
            big = [os.fstat(s.fileno()).st_ino for s in held[-2:]]
            yield Odd(ns, held, programs, paths, ifindex, big, [a for a, _ in PROGRAMS])
        finally:
            for process in programs:
                process.kill()
                process.communicate()
            for sock in held:
                sock.close()


# -- byte for byte with netstat --------------------------------------------------------------

# Each mode once, under each backend: the socket listings that show paths, users, programs,
# timers and scoped addresses, and the tables that show interface names.
SOCKET_MODES = ["-an", "-ae", "-aneW", "-anp", "-aenp", "-ap", "-ano", "-anue"]
OTHER_MODES = ["-i", "-ie", "-rn", "-rne", "-A inet6 -rn", "-A inet6 -r", "-gn", "-6 -gn"]


class Output(NamedTuple):
    status: int
    stdout: bytes
    stderr: bytes


def netstat(odd: Odd, args: Sequence[str]) -> Output:
    done = odd.ns.run(cases.netstat_command(args), env=cases.base_env(), cwd="/")
    return Output(done.returncode, cases.mask_timers(done.stdout), done.stderr)


def nlstat(odd: Odd, args: Sequence[str], backend: str, *extra: str) -> Output:
    done = odd.ns.run(cases.nlstat_command([*args, *extra]), env=cases.nlstat_env(backend),
                      cwd="/")
    return Output(done.returncode, cases.mask_timers(done.stdout), done.stderr)


_PROC_LINE = re.compile(rb" \(/proc/net/[a-z0-9_]+ line \d+\)$", re.M)


def comparable(output: Output, backend: str) -> Output:
    """What must be equal, with nlstat's documented differences taken out of stderr.

    * nlstat's /proc warnings end with the file and line (docs/architecture.md);
    * under NLSTAT_BACKEND=netlink, a missing sock_diag handler is said on stderr, the IPv6
      route Ref column is not in the dump (masked, as in test_routes_differential.py), and
      a unix path holding a newline is exact from unix_diag: no /proc line was cut in two,
      so netstat's `warning, got bogus unix line.` for the second half has no counterpart
      (docs/compat.md).
    """
    stderr = _PROC_LINE.sub(b"", output.stderr)
    stdout = output.stdout
    if backend == "netlink":
        stdout = mask_ipv6_refcnt(stdout)
        dropped = (b"nlstat: sock_diag has no ", b"warning, got bogus unix line.")
        stderr = b"".join(line for line in stderr.splitlines(keepends=True)
                          if not line.startswith(dropped))
    return Output(output.status, stdout, stderr)


def same_as_netstat(odd: Odd, args: Sequence[str], backend: str) -> None:
    from tests.differential import bracketed

    def settle(attempt: int) -> None:
        time.sleep(0.3 * attempt)

    mine = comparable(nlstat(odd, args, backend), backend)
    if mine == comparable(netstat(odd, args), backend):
        return  # equal at once; otherwise judged between two netstat runs (counters move)
    before, got, after, _ = bracketed(
        lambda: comparable(netstat(odd, args), backend),
        lambda: comparable(nlstat(odd, args, backend), backend), attempts=5,
        settle=settle, judged=lambda b, g, a: g in (b, a))
    assert got in (before, after), _explain(before, got)


def _explain(want: Output, got: Output) -> str:
    import difflib

    lines = [f"status {want.status} / {got.status}; stderr {want.stderr!r} / {got.stderr!r}"]
    lines += difflib.unified_diff(
        [repr(line) for line in want.stdout.split(b"\n")],
        [repr(line) for line in got.stdout.split(b"\n")], "netstat", "nlstat", lineterm="")
    return "\n".join(lines)


@pytest.mark.parametrize("backend", cases.BACKENDS)
@pytest.mark.parametrize("case", SOCKET_MODES + OTHER_MODES)
def test_odd_data_printed_as_netstat_prints_it(odd: Odd, case: str, backend: str) -> None:
    same_as_netstat(odd, case.split(), backend)


def test_the_odd_data_is_there(odd: Odd) -> None:
    """netstat itself shows what the test made, so the comparisons above compare something."""
    text = netstat(odd, ["-anep"]).stdout
    for name in odd.paths.files:  # netstat reads a path with scanf's %s: up to a blank
        assert name.split()[0] + b"\n" in text
    assert b"@odd@name@with@nuls" in text
    assert b"fe80::1:7101" in text
    assert b" %d " % (BIG_UID - (1 << 32)) in text
    assert b"/x/ctl" not in text and b"/ctl\x1b[31mred" in text  # basename, raw bytes
    assert b"/prog with s" in text  # cut at 19 with the pid
    assert IFNAME.encode() in netstat(odd, ["-ie"]).stdout
    assert IFNAME.encode() in netstat(odd, ["-A", "inet6", "-rn"]).stdout
    assert IFNAME.encode() in netstat(odd, ["-gn"]).stdout


# -- --json: valid, and exact ----------------------------------------------------------------


def json_records(odd: Odd, args: Sequence[str], backend: str) -> List[js.Doc]:
    doc = js.document(args, {"NLSTAT_BACKEND": backend}, wrap=odd.ns)
    records: List[js.Doc] = doc["records"]
    head, lines, _ = js.ndjson(args, {"NLSTAT_BACKEND": backend}, wrap=odd.ns)
    assert head["mode"] == doc["mode"]
    assert len(lines) == len(records)
    return records


def name_bytes(record: js.Doc) -> bytes:
    """The exact name a unix record gives: path_b64 when present, else the path's UTF-8."""
    if "path_b64" in record:
        return base64.b64decode(record["path_b64"])
    path: str = record["path"]
    if record["abstract"]:
        return b"\0" + path[1:].encode()
    return path.encode()


@pytest.mark.parametrize("backend", cases.BACKENDS)
def test_unix_names_are_exact_in_json(odd: Odd, backend: str) -> None:
    records = [r for r in json_records(odd, ["-anx"], backend) if r["path"] is not None]
    got = {name_bytes(r) for r in records}
    for name in odd.paths.files:
        if backend == "proc":
            # A newline ends the line of /proc/net/unix: the rest of the name is a line of its
            # own there, which no reader can tell from a malformed row (docs/schema.md).
            name = name.split(b"\n")[0]
        assert name in got, name
    for name in odd.paths.abstract:
        if backend == "proc":
            # /proc/net/unix already shows NULs as "@" (docs/schema.md): the text is all there is.
            shown = b"\0" + name[1:].replace(b"\0", b"@")
            assert shown.split(b"\n")[0] in got, name
        else:
            assert name in got, name
    for record in records:  # the text field is netstat's text, U+FFFD for what is not UTF-8
        exact = name_bytes(record)
        shown = b"@" + exact[1:].replace(b"\0", b"@") if record["abstract"] else exact
        assert record["path"] == shown.decode("utf-8", "replace")


def test_json_escapes_every_control_character(odd: Odd) -> None:
    """The names above hold \\n, \\t, \\x01 and ESC: the JSON text carries none of them raw
    (RFC 8259 strings), where the text listing prints them as netstat does."""
    for args in (["-anxp", "--json"], ["-anxp", "--ndjson"]):
        done = js.run(args, wrap=odd.ns)
        assert done.status == 0
        body = done.stdout.replace(b"\n", b"") if "--ndjson" in args else done.stdout[:-1]
        assert [byte for byte in body if byte < 0x20 or byte == 0x7F] == []
        assert b"\\u001b" in done.stdout and b"\\n" in done.stdout


@pytest.mark.parametrize("backend", ["auto", "netlink"])
def test_dev_names_a_15_character_interface(odd: Odd, backend: str) -> None:
    """--dev with the longest interface name selects exactly the sockets bound to it (by
    SO_BINDTODEVICE or by the scope of a link-local address), text and JSON alike."""
    every = json_records(odd, ["-an"], backend)
    bound = sorted(r["inode"] for r in every if r.get("ifindex") == odd.ifindex)
    assert len(bound) >= 4  # the scoped listener, connection ends, udp, SO_BINDTODEVICE
    chosen = json_records(odd, ["-an", "--dev", IFNAME], backend)
    assert sorted(r["inode"] for r in chosen) == bound
    text = nlstat(odd, ["-ane", "--dev", IFNAME], backend)  # -e: the inode ends each row
    assert text.status == 0
    rows = [line for line in text.stdout.split(b"\n") if line.startswith((b"tcp", b"udp"))]
    assert sorted(int(row.split()[-1]) for row in rows) == bound


@pytest.mark.parametrize("backend", cases.BACKENDS)
def test_uids_scopes_and_devices_in_json(odd: Odd, backend: str) -> None:
    records = json_records(odd, ["-anep"], backend)
    inet = [r for r in records if r["type"] == "inet"]
    big = [r for r in inet if r["inode"] in odd.big_uid_inodes]
    assert len(big) == 2 and all(r["uid"] == BIG_UID for r in big)
    # `user` is netstat's User column: its `int uid` printed with %d (no passwd name).
    assert all(r["user"] == str(BIG_UID - (1 << 32)) for r in big)
    scoped = [r for r in inet if r["local_address"] == "fe80::1"]
    assert sorted(r["proto"] for r in scoped) == ["tcp", "tcp", "tcp", "udp"]
    bound = [r for r in inet if r["local_port"] == 7103]
    if backend == "proc":
        assert all(r["ifindex"] is None for r in scoped + bound)
    else:  # sk_bound_dev_if: the scope of a link-local bind, or SO_BINDTODEVICE
        assert [r["ifindex"] for r in scoped] == [odd.ifindex] * 4
        assert [r["ifindex"] for r in bound] == [odd.ifindex]


def test_programs_in_json(odd: Odd) -> None:
    records = json_records(odd, ["-antp"], "auto")
    by_pid = {r["pid"]: r["program"] for r in records if r["type"] == "inet" and r["pid"]}
    for process, argv0 in zip(odd.programs, odd.argv0s):
        name = argv0.rsplit(b"/", 1)[-1] if argv0.startswith(b"/") else argv0
        shown = (b"%d/" % process.pid + name)[:19].split(b"/", 1)[1]
        assert by_pid[process.pid] == shown.decode("utf-8", "replace"), by_pid


@pytest.mark.parametrize("args, mode", [(["-ie"], "interfaces"), (["-rn"], "routes"),
                                        (["-A", "inet6", "-rn"], "routes"), (["-gn"], "groups")])
def test_long_interface_names_in_json(odd: Odd, args: List[str], mode: str) -> None:
    doc = js.document(args, wrap=odd.ns)
    assert doc["mode"] == mode
    assert IFNAME in json.dumps(doc["records"])
    whole = IFNAME in {value for record in doc["records"] for value in record.values()
                       if isinstance(value, str)}
    assert whole, doc["records"]


def test_scoped_gateway_in_json(odd: Odd) -> None:
    routes = js.document(["-A", "inet6", "-rn"], wrap=odd.ns)["records"]
    via = [r for r in routes if r["next_hop"] == "fe80::2"]
    assert via and all(r["interface"] == IFNAME for r in via), routes


# -- a name that looks like a row -------------------------------------------------------------

FORGED_INODE = 424242
# /proc/net/unix prints a name's bytes as they are (NULs as "@"), so a newline in it starts a
# line of its own, which netstat reads as one more socket.
FORGING = (b"\0forger\n0000000000000000: 00000002 00000000 00010000 0001 01 "
           + b"%d /forged/row" % FORGED_INODE)


def test_a_name_holding_a_row_forges_nothing_from_unix_diag(odd: Odd) -> None:
    """From /proc (netstat, nlstat's proc and auto text) the forged line is a row: nlstat
    prints what netstat prints, byte for byte. From unix_diag the name is one name: forced
    netlink lists no socket 424242, and --json (unix_diag under auto) keeps the exact name."""
    def made_inside() -> socket.socket:  # a socket belongs to the namespace it was made in
        made = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        made.bind(FORGING)
        return made

    sock = odd.ns.call_inside(made_inside)
    try:
        theirs = netstat(odd, ["-anx"])
        assert b" LISTENING     %-8d /forged/row\n" % FORGED_INODE in theirs.stdout
        for backend in ("proc", "auto"):
            assert nlstat(odd, ["-anx"], backend).stdout == theirs.stdout
        mine = nlstat(odd, ["-anx"], "netlink")
        assert mine.status == 0 and mine.stderr == b""
        assert b"%d" % FORGED_INODE not in mine.stdout
        assert b" @forger\n" in mine.stdout
        assert mine.stdout.count(b"\n") == theirs.stdout.count(b"\n") - 1
        records = js.document(["-anx"], wrap=odd.ns)["records"]
        assert [r for r in records if r["inode"] == FORGED_INODE] == []
        assert FORGING in {name_bytes(r) for r in records if r["path"] is not None}
    finally:
        sock.close()


# -- processes that vanish during the -p walk -------------------------------------------------

# Forks children that open a socket and exit at once, as fast as it can, until stdin closes
# (or 2,000 children: the load is bounded).
CHURN = r"""
import os, socket, sys, threading
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
sys.stdout.write("ready\n"); sys.stdout.flush()
forked = 0
while not done.is_set() and forked < 2000:
    pid = os.fork()
    if pid == 0:
        s = socket.socket(); s2 = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        os._exit(0)
    forked += 1
    os.waitpid(pid, 0)
sys.stdout.write("%d\n" % forked); sys.stdout.flush()
"""


def _program_rows(text: bytes) -> List[bytes]:
    """The rows of the test's long-lived programs (ports 7200-7204 and their unix names)."""
    return sorted(line for line in text.split(b"\n")
                  if b"127.0.0.1:72" in line or b"@odd-program-72" in line)


@pytest.mark.parametrize("backend", cases.BACKENDS)
def test_processes_vanishing_during_the_walk(odd: Odd, backend: str) -> None:
    """-p while processes come and go: their /proc/PID entries vanish between listdir() and
    reading fd/ and cmdline. Every run ends 0 with nothing on stderr, and the rows of the
    processes that stayed are netstat's rows for them."""
    reference = netstat(odd, ["-anp"])
    want = _program_rows(reference.stdout)
    assert len(want) == 2 * len(PROGRAMS)
    churn = odd.ns.popen([sys.executable, "-c", CHURN], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    try:
        assert churn.stdout is not None and churn.stdout.readline() == b"ready\n"
        for _ in range(2):
            got = nlstat(odd, ["-anp"], backend)
            assert got.status == 0
            # only the odd names' warnings, as netstat's (nothing about the vanished)
            assert comparable(got, backend).stderr == comparable(
                reference, backend).stderr
            assert _program_rows(got.stdout) == want
    finally:
        forked = churn.communicate(b"", timeout=60)[0]
    assert int(forked) > 0  # the churn ran while nlstat walked
