"""--count: options, the raw-chunk tally against decoded records, the table and JSON, and the
single-flight snapshots of --serve."""

from __future__ import annotations

import _socket
import io
import json
import struct
import threading
from collections import Counter
from typing import List, Tuple

import pytest

from nlstat.aggregate import KEYS, Tally, parse_keys, sorted_groups
from nlstat.app import main
from nlstat.backends.netlink.sockdiag import INET_MSG_V4, INET_MSG_V6, InetDecoder
from nlstat.env import Environment
from nlstat.format.count import render
from nlstat.kernel.sockdiag import SOCK_DIAG_BY_FAMILY, TCPDIAG_GETSOCK
from nlstat.model.sockets import TCP, UnixBatch, UnixKind
from nlstat.query import MODE_COUNT, MODE_METRICS
from tests import cli_support

DONE = struct.pack("=IHHIIi", 20, 3, 2, 1, 0, 0)
STATES = (1, 1, 1, 8, 5, 10, 6, 1)  # ESTABLISHED x4, CLOSE_WAIT, FIN_WAIT2, LISTEN, TIME_WAIT


def message(index: int, family: int, msg_type: int, state: int, attrs: bytes = b"") -> bytes:
    if family == _socket.AF_INET:
        layout, src, dst = INET_MSG_V4, bytes([198, 18, 0, index & 255]), bytes([198, 19, 0, 1])
    else:
        layout = INET_MSG_V6
        src = _socket.inet_pton(_socket.AF_INET6, f"2001:db8::{index:x}")
        dst = _socket.inet_pton(_socket.AF_INET6, "2001:db8::ffff")
    sport = struct.unpack("=H", struct.pack(">H", 1024 + index % 7))[0]
    dport = struct.unpack("=H", struct.pack(">H", 443))[0]
    return layout.pack(88 + len(attrs), msg_type, 2, 1, 0, family, state, 0, 0, sport, dport,
                       src, dst, index % 2, index, 0, 0, 0, index % 3, 5000 + index) + attrs


ATTRS = b"\x08\x00\x08\x00\x00\x00\x00\x00"


def chunks(count: int, families: Tuple[int, ...], msg_type: int, odd_every: int = 0
           ) -> List[bytes]:
    """Chunks of 50 messages, the last ending with NLMSG_DONE (as the kernel sends them).
    With odd_every, every so many messages has no attributes (as a TIME_WAIT socket's)."""
    messages = [message(i, families[i % len(families)], msg_type, STATES[i % len(STATES)],
                        b"" if odd_every and i % odd_every == 0 else ATTRS)
                for i in range(count)]
    parts = [b"".join(messages[start:start + 50]) for start in range(0, count, 50)]
    parts[-1] += DONE
    return parts


def decoded(parts: List[bytes], msg_type: int) -> Counter[Tuple[str, str]]:
    decoder = InetDecoder(TCP, msg_type=msg_type)
    tally = Tally(("proto", "state"))
    for part in parts:
        tally.records(decoder.chunk(part))
    assert decoder.done
    return Counter(tally.groups())  # type: ignore[arg-type]


@pytest.mark.parametrize("odd_every", [0, 7, 1])
@pytest.mark.parametrize("families", [(_socket.AF_INET,), (_socket.AF_INET6,),
                                      (_socket.AF_INET, _socket.AF_INET6)])
@pytest.mark.parametrize("msg_type", [SOCK_DIAG_BY_FAMILY, TCPDIAG_GETSOCK])
def test_raw_chunks_count_as_the_decoded_records(families: Tuple[int, ...], msg_type: int,
                                                 odd_every: int) -> None:
    parts = chunks(420, families, msg_type, odd_every)
    tally = Tally(("proto", "state"))
    ends = [tally.chunk(part, TCP, msg_type) for part in parts]
    # Every chunk is counted raw, mixed sizes and families too; the last one ends the dump.
    assert ends == [False] * (len(parts) - 1) + [True]
    assert Counter(tally.groups()) == decoded(parts, msg_type)
    assert sum(tally.groups().values()) == 420
    assert tally.groups()[("tcp" if families[0] == _socket.AF_INET else "tcp6",
                           "ESTABLISHED")] > 0


def test_chunk_with_other_messages_is_left_to_the_decoder() -> None:
    tally = Tally(("proto", "state"))
    record = message(1, _socket.AF_INET, SOCK_DIAG_BY_FAMILY, 1, ATTRS)
    error = struct.pack("=IHHIIi", 36, 2, 0, 1, 0, -1) + bytes(16)
    assert tally.chunk(record * 3 + error, TCP, SOCK_DIAG_BY_FAMILY) is None
    other_type = message(1, _socket.AF_INET, TCPDIAG_GETSOCK, 1) * 3
    assert tally.chunk(other_type, TCP, SOCK_DIAG_BY_FAMILY) is None
    assert tally.chunk(record[:60], TCP, SOCK_DIAG_BY_FAMILY) is None  # cut short
    assert tally.groups() == {}  # nothing of a refused chunk was counted
    assert tally.chunk(DONE, TCP, SOCK_DIAG_BY_FAMILY) is True
    keyed = Tally(("proto", "lport"))  # a key the raw bytes do not give: always decoded
    assert keyed.chunk(record, TCP, SOCK_DIAG_BY_FAMILY) is None


def test_keys_resolve_once_per_value() -> None:
    asked: List[int] = []

    def user(uid: int) -> str:
        asked.append(uid)
        return f"user{uid}"

    decoder = InetDecoder(TCP)
    records = decoder.chunk(b"".join(chunks(60, (_socket.AF_INET,), SOCK_DIAG_BY_FAMILY)))
    tally = Tally(("user", "state", "dev", "lport"), user=user,
                  interface=lambda index: f"if{index}")
    tally.records(records)
    groups = tally.groups()
    assert sorted(asked) == [0, 1, 2]
    assert sum(groups.values()) == 60
    assert ("user1", "ESTABLISHED", "if1", 1024 + 1) in groups
    assert all(dev in (None, "if1") for _, _, dev, _ in groups)


def test_unix_batches_count_by_netstat_state() -> None:
    listening = UnixKind(1, 1, 0x10000, 2, 0)
    connected = UnixKind(1, 3, 0, 3, 0)
    dgram = UnixKind(2, 1, 0, 2, 0)
    batch = UnixBatch([listening, connected, connected, dgram], [10, 11, 12, 13],
                      ["/run/a", "", "", "@x"])
    tally = Tally(("proto", "state", "laddr", "program"), programs={11: "7/sshd", 12: "8/sshd"})
    tally.unix_batch(batch)
    assert tally.groups() == {
        ("unix", "LISTENING", "/run/a", None): 1,
        ("unix", "CONNECTED", None, "sshd"): 2,
        ("unix", "", "@x", None): 1,
    }


def test_table_and_json() -> None:
    tally = Tally(("proto", "state"))
    tally.unix_batch(UnixBatch([UnixKind(2, 1, 0, 2, 0)] * 3 + [UnixKind(1, 3, 0, 3, 0)],
                               [1, 2, 3, 4], ["", "", "", ""]))
    assert render(tally) == (
        "PROTO  STATE      COUNT\n"
        "unix   -              3\n"
        "unix   CONNECTED      1\n")
    assert json.loads(render(tally, "json")) == [
        {"proto": "unix", "state": "", "count": 3},
        {"proto": "unix", "state": "CONNECTED", "count": 1}]
    lines = render(tally, "ndjson").splitlines()
    assert [json.loads(line)["count"] for line in lines] == [3, 1]


def test_sorted_by_count_then_keys() -> None:
    groups = {("b", 2): 5, ("a", None): 5, ("a", 10): 5, ("c", 1): 9}
    assert [group for group, _ in sorted_groups(groups)] == [
        ("c", 1), ("a", None), ("a", 10), ("b", 2)]


def test_parse_keys() -> None:
    assert parse_keys("state,proto,state") == ("state", "proto")
    assert parse_keys(",".join(KEYS)) == KEYS
    with pytest.raises(ValueError, match="colour"):
        parse_keys("proto,colour")
    with pytest.raises(ValueError):
        parse_keys("")


def test_options_make_the_query() -> None:
    query = cli_support.parse_in_process(["--count", "-t"]).query
    assert query is not None and query.mode == MODE_COUNT
    assert query.count_by == ("proto", "state")
    query = cli_support.parse_in_process(["-an", "--count", "--by", "dev,user", "--json"]).query
    assert query is not None and query.count_by == ("dev", "user") and query.output == "json"
    query = cli_support.parse_in_process(["--serve", "[::1]:9100", "--by", "lport"]).query
    assert query is not None and query.mode == MODE_METRICS and query.metrics == "serve"
    assert (query.serve_address, query.serve_port) == ("::1", 9100)
    assert query.metrics_by == ("proto", "state", "lport")
    query = cli_support.parse_in_process(["--serve=9100", "--serve-max-age", "2.5"]).query
    assert query is not None and query.serve_address == "127.0.0.1"
    assert query.serve_cache_seconds == 2.5


@pytest.mark.parametrize("argv", [
    ["--count", "--by", "proto,colour"],
    ["--count", "--by", ""],
    ["--by", "state"],
    ["-r", "--count"],
    ["-s", "--prometheus"],
    ["--serve", "host:9100"],
    ["--serve", "0"],
    ["--serve", "127.0.0.1:"],
    ["--serve", "9100", "--serve-max-age", "nan"],
    ["--prometheus", "--max-series", "\u00b2"],
    ["--prometheus", "--json"],
])
def test_bad_values_are_one_line_and_status_1(argv: List[str]) -> None:
    out = io.BytesIO()
    err = io.StringIO()
    status = main(argv, Environment(stdout=out, stderr=err))
    assert status == 1
    assert out.getvalue() == b""
    assert len(err.getvalue().splitlines()) == 1, err.getvalue()
    if "colour" in argv[-1]:
        assert "'colour'" in err.getvalue()


def test_namespaces_add_a_netns_label() -> None:
    for argv in (["--serve", "9100", "--all-netns"], ["--prometheus", "--netns", "blue"],
                 ["--prometheus", "--by", "netns,lport"]):
        query = cli_support.parse_in_process(argv).query
        assert query is not None and "netns" in query.metrics_by, argv
    query = cli_support.parse_in_process(["--prometheus", "--by", "lport"]).query
    assert query is not None and query.metrics_by == ("proto", "state", "lport")
    query = cli_support.parse_in_process(["--count", "--by", "netns,state"]).query
    assert query is not None and query.count_by == ("netns", "state")


def test_with_value_puts_the_namespace_in_its_place() -> None:
    from nlstat.aggregate import tally_keys, with_value

    keys = ("state", "netns", "proto")
    assert tally_keys(keys) == ("state", "proto")
    merged = with_value({("LISTEN", "tcp"): 2}, keys, "netns", "blue")
    with_value({("LISTEN", "tcp"): 3}, keys, "netns", "green", merged)
    with_value({("LISTEN", "tcp"): 1}, keys, "netns", "blue", merged)
    assert merged == {("LISTEN", "blue", "tcp"): 3, ("LISTEN", "green", "tcp"): 3}
    # Without the key: summed over the namespaces.
    total = with_value({("LISTEN", "tcp"): 2}, ("state", "proto"), "netns", "blue")
    with_value({("LISTEN", "tcp"): 3}, ("state", "proto"), "netns", "green", total)
    assert total == {("LISTEN", "tcp"): 5}


def test_count_json_spells_the_namespace_as_the_header_does() -> None:
    import json

    from nlstat.format.count import render_groups

    groups = {("blue", "LISTEN"): 2, ("pid:7", ""): 1}
    objects = {"blue": {"inode": 11, "name": "blue"}, "pid:7": {"inode": 12, "name": None}}
    assert json.loads(render_groups(("netns", "state"), groups, "json", objects)) == [
        {"netns": {"inode": 11, "name": "blue"}, "state": "LISTEN", "count": 2},
        {"netns": {"inode": 12, "name": None}, "state": "", "count": 1}]
    assert render_groups(("netns", "state"), groups).splitlines() == [
        "NETNS  STATE   COUNT", "blue   LISTEN      2", "pid:7  -           1"]


def test_single_flight_shares_the_dump_in_flight() -> None:
    pytest.importorskip("prometheus_client")
    from nlstat.metrics import Snapshot
    from nlstat.serve import Snapshots

    now = [1.0]
    release = threading.Event()
    taken: List[int] = []

    class Sampler:
        def take(self) -> Snapshot:
            taken.append(1)
            release.wait(10)
            return Snapshot({}, {}, 0.0, now[0] + 1.0, len(taken))  # finished after arrivals

    class Exposition:
        def render(self, snapshot: Snapshot) -> bytes:
            return str(snapshot.dumps).encode()

    snapshots = Snapshots(Sampler(), Exposition(), 0.0, lambda: now[0])  # type: ignore[arg-type]
    answers: List[bytes] = []
    threads = [threading.Thread(target=lambda: answers.append(snapshots.latest()))
               for _ in range(6)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(10)
    assert answers == [b"1"] * 6 and len(taken) == 1
    now[0] = 3.0  # later than the dump's end, and max age 0: a new dump
    assert snapshots.latest() == b"2"
    cached = Snapshots(Sampler(), Exposition(), 5.0, lambda: now[0])  # type: ignore[arg-type]
    assert cached.latest() == b"3"
    now[0] = 8.5  # 4.5 s after that dump ended: within --serve-max-age 5
    assert cached.latest() == b"3"
    now[0] = 10.0
    assert cached.latest() == b"4"


def test_listing_imports_nothing_of_count_or_metrics() -> None:
    """Start-up of the plain modes does not grow: the counting, the metrics, prometheus_client
    and json are imported on their own paths only."""
    import subprocess
    import sys

    code = (
        "import io, sys\n"
        "from nlstat.app import main\n"
        "from nlstat.env import Environment\n"
        "main(['-lnt'], Environment(stdout=io.BytesIO(), stderr=io.StringIO()))\n"
        "main(['-s'], Environment(stdout=io.BytesIO(), stderr=io.StringIO()))\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, cwd=str(cli_support.REPO))
    loaded = set(result.stdout.split())
    assert "nlstat.modes.sockets" in loaded, result.stderr
    for module in ("nlstat.aggregate", "nlstat.own_options", "nlstat.metrics", "nlstat.serve",
                   "nlstat.modes.count", "prometheus_client", "json", "http.server"):
        assert module not in loaded, module
