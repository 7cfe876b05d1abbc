"""Each socket once, dumps retried when the kernel flags them, faults injected (issue 12).

The /proc de-duplication is fed tables that repeat rows the way a seq_file does when its table
changes between two reads; the netlink retry is fed captured answers flagged NLM_F_DUMP_INTR
through the netlink socket stand-in of tests/faults.py.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

from nlstat import app
from nlstat.backends.netlink import nlsocket
from nlstat.env import Environment
from nlstat.kernel.netlink import NETLINK_ROUTE
from tests.cli_support import run_nlstat
from tests.faults import Cue, StandIn, install

DATA = Path(__file__).resolve().parents[1] / "data"

TCP_TITLE = (
    b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout"
    b" inode\n"
)


def tcp_row(
    slot: int, port: int, inode: int, state: str = "01", timer: str = "00:00000000"
) -> bytes:
    return (
        b"%4d: 0100007F:%04X 0100007F:1F90 %s 00000000:00000000 %s 00000000     0        0 %d 1"
        b" 0000000000000000 20 4 30 10 -1\n"
        % (slot, port, state.encode(), timer.encode(), inode)
    )


def listing(tmp_path: Path, files: Dict[str, bytes], argv: List[str]) -> Tuple[int, str, str]:
    """`python -m nlstat` with NLSTAT_BACKEND=proc on a substitute /proc tree (a process of
    its own: a long listing forks a helper that writes to the real stdout)."""
    net = tmp_path / "net"
    net.mkdir(exist_ok=True)
    for name, data in files.items():
        (net / name).write_bytes(data)
    done = run_nlstat(argv, extra_env={"NLSTAT_BACKEND": "proc", "NLSTAT_PROC_ROOT": str(tmp_path)})
    return done.status, done.stdout.decode(), done.stderr.decode()


def test_a_row_printed_again_after_a_page_edge_is_listed_once(tmp_path: Path) -> None:
    # 3,000 rows: several 64 KiB chunks, parsed partly by the forked helper. Sockets added
    # ahead of the reader's place make the kernel print rows again, with new slot numbers:
    # a row of the chunk before (another process parsed it), and rows just printed.
    rows = [tcp_row(n, 10000 + n, 100000 + n) for n in range(3000)]
    again = [tcp_row(2500 + n, 10000 + n, 100000 + n) for n in (1200, 2498, 2499)]
    table = TCP_TITLE + b"".join(rows[:2500] + again + rows[2500:])
    status, text, err = listing(tmp_path, {"tcp": table}, ["-ant4"])
    listed = text.splitlines()[2:]
    assert (status, err) == (0, "")
    assert len(listed) == len(set(listed)) == 3000
    assert [int(line.split()[3].rsplit(":", 1)[1]) for line in listed] == list(range(10000, 13000))


def test_inode_zero_rows_are_known_by_their_addresses_and_state(tmp_path: Path) -> None:
    time_wait = [tcp_row(n, 50000 + n, 0, "06", "03:00000100") for n in range(4)]
    # The same TIME_WAIT socket printed again (its timer moved on); another state on the same
    # ports is another socket (a SYN_RECV reusing the 4-tuple).
    repeat = tcp_row(4, 50001, 0, "06", "03:000000F0")
    syn_recv = tcp_row(5, 50001, 0, "03", "01:00000010")
    table = TCP_TITLE + b"".join(time_wait) + repeat + syn_recv
    status, text, _ = listing(tmp_path, {"tcp": table}, ["-ant4"])
    states = [(line.split()[3], line.split()[5]) for line in text.splitlines()[2:]]
    assert states == [("127.0.0.1:%d" % (50000 + n), "TIME_WAIT") for n in range(4)] + [
        ("127.0.0.1:50001", "SYN_RECV")
    ]


def test_a_malformed_line_is_still_named_by_its_line_number(tmp_path: Path) -> None:
    rows = [tcp_row(n, 40000 + n, 2000 + n) for n in range(200)]
    rows[57] = b"   57: this line is not a socket\n"
    rows.insert(30, rows[20])
    status, text, err = listing(tmp_path, {"tcp": TCP_TITLE + b"".join(rows)}, ["-ant4"])
    assert len(text.splitlines()[2:]) == 199
    path = tmp_path / "net" / "tcp"
    assert err == f"warning, got bogus tcp line. ({path} line 60)\n"


UNIX_TITLE = b"Num       RefCount Protocol Flags    Type St Inode Path\n"


def unix_row(address: str, inode: int, path: bytes = b"") -> bytes:
    tail = b" " + path if path else b""
    return b"%s: 00000002 00000000 00000000 0001 03 %5d%s\n" % (address.encode(), inode, tail)


def test_unix_rows_by_inode_and_embryos_by_kernel_address(tmp_path: Path) -> None:
    rows = [unix_row("%016x" % (0xFFFF0000 + n), 3000 + n, b"/run/s%d" % n) for n in range(5000)]
    embryo = unix_row("00000000ffff9999", 0)
    hidden = unix_row("0000000000000000", 0)  # %pK hidden: embryos cannot be told apart
    table = UNIX_TITLE + b"".join(
        rows[:4000] + [rows[100], embryo, hidden, hidden, rows[3999], embryo] + rows[4000:]
    )
    status, text, err = listing(tmp_path, {"unix": table}, ["-anx"])
    listed = text.splitlines()[2:]
    assert (status, err) == (0, "")
    inodes = [line.split()[-2] if line.split()[-1].startswith("/") else line.split()[-1]
              for line in listed]
    assert inodes.count("0") == 3  # the embryo once, both hidden ones
    named = [inode for inode in inodes if inode != "0"]
    assert named == [str(3000 + n) for n in range(5000)]


# -- netlink: NLM_F_DUMP_INTR ----------------------------------------------------------------


@pytest.fixture
def restore_factory() -> Iterator[None]:
    saved = nlsocket.socket_factory, nlsocket.notify
    yield
    nlsocket.socket_factory, nlsocket.notify = saved
    nlsocket.inconsistent.clear()


def routes_answer() -> List[bytes]:
    return [(DATA / "routes" / "ipv4.bin").read_bytes()]


def route_listing(cue: Cue) -> tuple:
    install({NETLINK_ROUTE: cue})
    notes: List[str] = []
    nlsocket.notify = notes.append
    out = io.BytesIO()
    env = Environment(stdout=out, stderr=io.StringIO(), backend="netlink")
    status = app.main(["-rn"], env)
    return status, out.getvalue(), notes, StandIn.requests.get(NETLINK_ROUTE, 0)


def test_an_interrupted_route_dump_is_asked_again_and_printed_once(restore_factory: None) -> None:
    clean = route_listing(Cue(answer=routes_answer()))
    assert clean[0] == 0 and clean[2] == [] and clean[3] == 1
    retried = route_listing(Cue(answer=routes_answer(), interrupted=2))
    assert retried[:3] == clean[:3]  # the same rows, once; nothing said
    assert retried[3] == 3
    assert nlsocket.inconsistent == []


def test_a_dump_interrupted_every_time_is_kept_and_said(restore_factory: None) -> None:
    clean = route_listing(Cue(answer=routes_answer()))
    status, text, notes, requests = route_listing(Cue(answer=routes_answer(), interrupted=99))
    assert (status, text) == clean[:2]
    assert requests == nlsocket.DUMP_ATTEMPTS
    assert nlsocket.inconsistent == ["IPv4 routes"]
    assert notes == [
        "nlstat: the kernel's IPv4 routes changed during every one of 3 dumps;"
        " this snapshot may be inconsistent"
    ]


def json_route_listing(cue: Cue, form: str) -> Tuple[int, List[dict], List[str]]:
    import json

    install({NETLINK_ROUTE: cue})
    notes: List[str] = []
    nlsocket.notify = notes.append
    out = io.BytesIO()
    env = Environment(stdout=out, stderr=io.StringIO(), backend="netlink")
    status = app.main(["-rn", form], env)
    return status, [json.loads(line) for line in out.getvalue().splitlines()], notes


@pytest.mark.parametrize("form", ["--json", "--ndjson"])
def test_json_marks_a_dump_interrupted_every_time(restore_factory: None, form: str) -> None:
    from tests.json_support import errors

    clean = json_route_listing(Cue(answer=routes_answer()), form)
    status, documents, notes = json_route_listing(
        Cue(answer=routes_answer(), interrupted=99), form)
    assert status == clean[0] == 0
    assert StandIn.requests[NETLINK_ROUTE] == nlsocket.DUMP_ATTEMPTS
    assert len(notes) == 1 and notes[0].endswith("this snapshot may be inconsistent")
    ending = documents[-1]
    assert ending["inconsistent"] == ["IPv4 routes"]
    assert "inconsistent" not in clean[1][-1]
    # The same records as the clean answer's, once each.
    if form == "--json":
        assert documents[0]["records"] == clean[1][0]["records"]
        assert errors("routes", documents[0]) == []
    else:
        assert documents[1:-1] == clean[1][1:-1]
        assert all(errors("routes", line, line=True) == [] for line in documents)


def test_json_retried_dump_is_not_marked(restore_factory: None) -> None:
    clean = json_route_listing(Cue(answer=routes_answer()), "--ndjson")
    status, documents, notes = json_route_listing(
        Cue(answer=routes_answer(), interrupted=2), "--ndjson")
    assert StandIn.requests[NETLINK_ROUTE] == 3  # asked again, not just marked
    assert (status, documents[1:], notes) == (0, clean[1][1:], [])


def test_json_marker_is_per_document_under_continuous(restore_factory: None) -> None:
    """-c: each pass's document says what was inconsistent in that pass only."""
    import json

    install({NETLINK_ROUTE: Cue(answer=routes_answer(), interrupted=3)})
    nlsocket.notify = lambda line: None
    out = io.BytesIO()
    passes = []

    def sleep(seconds: float) -> None:
        passes.append(seconds)
        if len(passes) == 2:
            raise SystemExit(0)  # out of the -c loop (Ctrl-C would kill this process)

    env = Environment(stdout=out, stderr=io.StringIO(), backend="netlink", sleep=sleep)
    try:
        app.main(["-rn", "-c", "--json"], env)
    except SystemExit:
        pass
    documents = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(documents) >= 2
    # The first pass used up the 3 flagged answers; the second one was clean.
    assert documents[0]["inconsistent"] == ["IPv4 routes"]
    assert "inconsistent" not in documents[1]


def test_dump_all_retries_low_volume_dumps(restore_factory: None) -> None:
    answer = [(DATA / "links" / "links.nl").read_bytes()]
    install({NETLINK_ROUTE: Cue(answer=answer, interrupted=1)})
    with nlsocket.NetlinkSocket(NETLINK_ROUTE) as sock:
        chunks = sock.dump_all(18, b"\0" * 16, "links")
    assert chunks == answer and StandIn.requests[NETLINK_ROUTE] == 2
    assert nlsocket.inconsistent == []


# -- /proc faults: files missing, cut short, processes gone during the -p walk -----------------


def test_missing_tables_give_netstats_notices(tmp_path: Path) -> None:
    rows = TCP_TITLE + tcp_row(0, 40000, 7000)
    # tcp6 missing (no IPv6): skipped silently.
    status, text, err = listing(tmp_path, {"tcp": rows}, ["-ant"])
    assert (status, err) == (0, "") and len(text.splitlines()) == 3
    # tcp missing when asked for by name: netstat's notice, status 1.
    (tmp_path / "net" / "tcp").unlink()
    status, text, err = listing(tmp_path, {}, ["-ant4"])
    assert (status, err) == (1, "netstat: no support for `AF INET (tcp)' on this system.\n")
    # unix missing: likewise.
    status, text, err = listing(tmp_path, {}, ["-anx"])
    assert (status, text) == (1, "")
    assert err == "netstat: no support for `AF UNIX' on this system.\n"


def test_a_table_cut_short_mid_line_lists_what_came_and_warns(tmp_path: Path) -> None:
    # A FIFO stands for /proc/net/tcp: its writer gives 500 rows and half of one more, then
    # goes away (as a table does whose namespace is torn down while it is read).
    import threading

    net = tmp_path / "net"
    net.mkdir()
    fifo = net / "tcp"
    os.mkfifo(fifo)
    rows = [tcp_row(n, 40000 + n, 9000 + n) for n in range(501)]

    def write() -> None:
        with open(fifo, "wb") as handle:
            handle.write(TCP_TITLE + b"".join(rows[:500]))
            handle.flush()
            handle.write(rows[500][:40])

    writer = threading.Thread(target=write)
    writer.start()
    try:
        status, text, err = listing(tmp_path, {}, ["-ant4"])
    finally:
        writer.join(30)
    assert status == 0
    assert len(text.splitlines()[2:]) == 500
    assert err == f"warning, got bogus tcp line. ({fifo} line 502)\n"


def test_processes_and_descriptors_gone_during_the_walk(tmp_path: Path) -> None:
    rows = [tcp_row(n, 40000 + n, 7000 + n) for n in range(5)]
    tree = {
        "100": {"fd": {"3": "socket:[7000]"}, "cmdline": b"/usr/bin/holder\0-x\0"},
        "200": {"cmdline": b"gone\0"},  # exited before its fd directory was read
        "300": {"fd": {"4": None}, "cmdline": b"closing\0"},  # a descriptor closed meanwhile
        # Exited before its cmdline was read: netstat.c prg_cache_load() skips its sockets.
        "400": {"fd": {"5": "socket:[7003]"}},
        "500": {"fd": {"6": "socket:[7004]", "7": "pipe:[1]"}, "cmdline": b"./rel/prog\0"},
    }
    for pid, parts in tree.items():
        directory = tmp_path / pid
        directory.mkdir()
        if "cmdline" in parts:
            (directory / "cmdline").write_bytes(parts["cmdline"])  # type: ignore[arg-type]
        if "fd" in parts:
            (directory / "fd").mkdir()
            for name, target in parts["fd"].items():  # type: ignore[union-attr]
                if target is None:
                    (directory / "fd" / name).write_bytes(b"")  # readlink: EINVAL
                else:
                    (directory / "fd" / name).symlink_to(target)
    status, text, err = listing(tmp_path, {"tcp": TCP_TITLE + b"".join(rows)}, ["-antp4"])
    assert (status, err) == (0, "")
    owners = [line.split()[6] for line in text.splitlines()[2:]]
    assert owners == ["100/holder", "-", "-", "-", "500/./rel/prog"]


def test_the_netlink_unix_join_keeps_what_only_proc_listed_and_drops_proc_repeats(
    tmp_path: Path,
) -> None:
    from nlstat.backends.sockets import SocketSource
    from nlstat.model.sockets import UnixSocket
    from nlstat.query import Query

    rows = [unix_row("%016x" % (0xFFFF0000 + n), 3000 + n, b"/run/s%d" % n) for n in range(4)]
    path = tmp_path / "unix"
    path.write_bytes(UNIX_TITLE + b"".join(rows[:3] + [rows[1]] + rows[3:]))
    # unix_diag passed over 3002 (its bucket lost a socket ahead of it while the dump was
    # resumed) and gave 3009, which /proc did not list.
    records = [UnixSocket(1, 3, 0, inode, "/run/s", 0, 0) for inode in (3000, 3001, 3003, 3009)]
    source = SocketSource(Query(), Environment())
    joined = list(source._join_unix(iter(records), str(path)))
    assert [(record.inode, record.refcnt) for record in joined] == [
        (3000, 2), (3001, 2), (3002, 2), (3003, 2), (3009, 0)
    ]
    assert joined[2].path == "/run/s2"  # /proc's own row
