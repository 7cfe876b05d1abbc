"""--json and --ndjson on captured /proc trees (NLSTAT_PROC_ROOT): valid against the shipped
schemas, the two forms agreeing, and every record equal, field by field, to what the text
formatter prints for the same files. Plus the schemas themselves, bad input, -c and imports.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

from nlstat.env import Environment
from nlstat.query import MODE_ROUTE, Query
from tests import json_support as js
from tests import schema_source
from tests.netns import write_proc_tree

DATA = Path(__file__).resolve().parent.parent / "data"
ROUTES = {"NLSTAT_BACKEND": "proc", "NLSTAT_PROC_ROOT": str(DATA / "routes" / "proc")}
STATS = {"NLSTAT_PROC_ROOT": str(DATA / "stats" / "host")}


# -- the schemas --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", schema_source.SCHEMAS)
def test_shipped_schema_is_the_generated_one(mode: str) -> None:
    with open(schema_source.path(mode), encoding="utf-8") as handle:
        assert handle.read() == schema_source.text(mode), "run python3 tests/schema_source.py"
    js.jsonschema.Draft202012Validator.check_schema(js.schema(mode))


def test_pyproject_ships_the_schemas() -> None:
    text = (js.REPO / "pyproject.toml").read_text()
    package_data = [line for line in text.splitlines() if line.startswith("nlstat = [")]
    assert len(package_data) == 1 and '"schema/*.schema.json"' in package_data[0]
    assert '"jsonschema' in text


def test_schema_rejects_what_it_should() -> None:
    good = {"type": "inet", "proto": "tcp", "family": "inet", "state": "LISTEN",
            "local_address": "0.0.0.0", "local_port": 22, "remote_address": "0.0.0.0",
            "remote_port": 0, "recv_q": 0, "send_q": 0, "uid": 0, "inode": 1, "cookie": None,
            "ifindex": None}
    assert js.errors("sockets", good, line=True) == []
    for change in ({"local_port": "22"}, {"state": "listen"}, {"local_port": 70000},
                   {"extra": 1}, {"cookie": 0}):
        assert js.errors("sockets", {**good, **change}, line=True), change
    missing = dict(good)
    del missing["inode"]
    assert js.errors("sockets", missing, line=True)


# -- routes (tests/data/routes/proc) ------------------------------------------------------------


def test_ipv4_routes_equal_the_text_rows() -> None:
    records = js.both(["-rn"], ROUTES)
    rows = [line.split() for line in js.text(["-rn"], ROUTES)[2:]]
    assert len(records) == len(rows) > 2
    for record, row in zip(records, rows):
        assert record["family"] == "inet"
        assert [record["destination"], record["genmask"], record["flags"]] == [
            row[0], row[2], row[3]]
        if not record["flags"].startswith("!"):  # reject routes print "-" columns
            assert [record["gateway"], record["interface"] or "*"] == [row[1], row[7]]
            assert [str(record["mss"]), str(record["window"]), str(record["irtt"])] == row[4:7]


def test_ipv6_routes_equal_the_text_rows() -> None:
    records = js.both(["-rn", "-6"], ROUTES)
    rows = [line.split() for line in js.text(["-rn", "-6"], ROUTES)[2:]]
    assert len(records) == len(rows) > 2
    for record, row in zip(records, rows):
        assert record["family"] == "inet6" and record["cache"] is False
        assert f'{record["destination"]}/{record["prefix_len"]}' == row[0]
        assert [record["next_hop"], record["flags"], str(record["metric"]),
                str(record["refcnt"]), str(record["use"]), record["interface"]] == row[1:7]


def test_route_cache_views() -> None:
    assert js.both(["-rnC"], ROUTES) == []
    assert js.both(["-rnC", "-6"], ROUTES) == []
    both = js.both(["-rn", "-A", "inet,inet6"], ROUTES)
    assert [record["family"] for record in both].count("inet6") == len(
        js.both(["-rn", "-6"], ROUTES))


def test_routes_of_other_families_have_no_json_form() -> None:
    for args in (["-r", "-A", "ax25"], ["-r", "-A", "inet,unix"], ["-r", "--ipx"]):
        done = js.run([*args, "--json"], ROUTES)
        assert (done.status, done.stdout, done.stderr.count(b"\n")) == (1, b"", 1), done
        assert done.stderr.startswith(b"nlstat: --json: no JSON form"), done


# -- statistics (tests/data/stats/host) ---------------------------------------------------------


def _pairs(path: Path) -> Dict[str, Dict[str, int]]:
    """A /proc/net/snmp-style file read independently: section -> counters (as unsigned
    64-bit numbers, the way netstat reads them with strtoull: Tcp MaxConn -1 is 2**64 - 1)."""
    sections: Dict[str, Dict[str, int]] = {}
    lines = path.read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        title, *keys = names.split()
        sections[title.rstrip(":")] = {
            key: int(value) % (1 << 64) for key, value in zip(keys, values.split()[1:])}
    return sections


def test_statistics_counters_equal_the_files() -> None:
    records = js.both(["-s"], STATS)
    net = DATA / "stats" / "host" / "net"
    expected = {("/proc/net/snmp", name): counters
                for name, counters in _pairs(net / "snmp").items()}
    expected.update({("/proc/net/netstat", name): counters
                     for name, counters in _pairs(net / "netstat").items()})
    got = {(record["file"], record["section"]): record["counters"] for record in records}
    assert got == expected
    # The sections are those the text prints, in its order.
    titles = [line[:-1] for line in js.text(["-s"], STATS) if line.endswith(":")
              and not line.startswith(" ")]
    assert [record["section"] for record in records] == titles


def test_statistics_switches_and_ipv6() -> None:
    tcp = js.both(["-st"], STATS)
    titles = [line[:-1] for line in js.text(["-st"], STATS) if line.endswith(":")
              and not line.startswith(" ")]
    assert [record["section"] for record in tcp] == titles
    assert "Tcp" in titles and "Udp" not in titles
    ipv6 = js.both(["-s", "-6"], STATS)
    snmp6 = {}
    for line in (DATA / "stats" / "host" / "net" / "snmp6").read_text().splitlines():
        name, value = line.split()
        snmp6[name] = int(value)
    from_six = {key: value for record in ipv6 if record["file"] == "/proc/net/snmp6"
                for key, value in record["counters"].items()}
    assert from_six == snmp6
    assert {record["family"] for record in ipv6 if record["file"] == "/proc/net/snmp6"} == {
        "inet6"}
    assert [record["section"] for record in ipv6 if record["file"] == "/proc/net/snmp"] == [
        "Tcp"]


def test_statistics_of_other_families_have_no_json_form() -> None:
    done = js.run(["-s", "-A", "unix", "--ndjson"], STATS)
    assert (done.status, done.stdout) == (1, b"")
    assert done.stderr == (b"nlstat: --ndjson: no statistics for address family unix "
                           b"(only inet or inet6)\n")


# -- masquerade (tests/data/conntrack/nat.nf_conntrack) -----------------------------------------


def test_masquerade_records_equal_the_text_rows(tmp_path: Path) -> None:
    root = write_proc_tree(tmp_path / "proc", {
        "nf_conntrack": (DATA / "conntrack" / "nat.nf_conntrack").read_bytes()})
    extra = {"NLSTAT_BACKEND": "proc", "NLSTAT_PROC_ROOT": root}
    records = js.both(["-Mn"], extra)
    rows = [line.split() for line in js.text(["-Mn"], extra)[2:]]
    assert len(records) == len(rows) > 0
    for record, row in zip(records, rows):
        assert [record["protocol"], record["source"], record["destination"]] == [
            row[0], row[2], row[3]]
        ports = [str(record[key]) if record[key] else "*" for key in
                 ("source_port", "destination_port", "masquerade_port")]
        assert [row[4], row[6], row[7]] == [ports[0], ports[1], f"({ports[2]})"]


# -- sockets on a crafted /proc tree ------------------------------------------------------------

TCP_HEAD = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
            "timeout inode\n")
TCP6_HEAD = ("  sl  local_address                         remote_address                        "
             "st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n")
UNIX_HEAD = "Num       RefCount Protocol Flags    Type St Inode Path\n"


def _socket_tree(tmp_path: Path) -> str:
    return write_proc_tree(tmp_path / "proc", {
        "tcp": TCP_HEAD
        + "   0: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0"
          "        0 1001 1 0000000000000000 100 0 0 10 0\n"
        + "   1: 010012C6:C350 020012C6:01BB 01 00000010:00000004 02:000003E8 00000000  1000"
          "        0 1002 1 0000000000000000 20 4 30 10 -1\n",
        "tcp6": TCP6_HEAD
        + "   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A"
          " 00000000:00000000 00:00000000 00000000     0        0 1003 1 0000000000000000 100"
          " 0 0 10 0\n"
        + "   1: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:D431"
          " 06 00000000:00000000 03:00000BB8 00000000     0        0 0 3 0000000000000000\n",
        "udp": "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   "
               "uid  timeout inode ref pointer drops\n"
        + "    0: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0"
          "        0 1004 2 0000000000000000 0\n",
        "unix": UNIX_HEAD
        + "0000000000000000: 00000002 00000000 00010000 0001 01 2001 /run/plain.sock\n"
        + "0000000000000000: 00000003 00000000 00000000 0001 03 2002 @abstract\n"
        + "0000000000000000: 00000002 00000000 00000000 0002 01 2003 /tmp/caf\xe9\udce9.sock\n"
        + "0000000000000000: 00000003 00000000 00000000 0001 03 2004\n",
    })


def test_sockets_equal_the_text_rows(tmp_path: Path) -> None:
    extra = {"NLSTAT_BACKEND": "proc", "NLSTAT_PROC_ROOT": _socket_tree(tmp_path)}
    records = js.both(["-anW"], extra)
    lines = js.text(["-anW"], extra)
    inet = [record for record in records if record["type"] == "inet"]
    rows = js.inet_rows(lines)
    assert len(inet) == len(rows) == 5
    for record, row in zip(inet, rows):
        assert js.label(record) == row.proto
        assert js.endpoint(row.local) == (js.shown_address(record["local_address"]),
                                          js.shown_port(record["local_port"]))
        assert js.endpoint(row.remote) == (js.shown_address(record["remote_address"]),
                                           js.shown_port(record["remote_port"]))
        if record["proto"] == "tcp":
            assert record["state"] == row.state
        assert record["cookie"] is None and record["ifindex"] is None  # /proc knows neither
    established = inet[1]
    assert (established["recv_q"], established["send_q"], established["uid"],
            established["inode"]) == (4, 16, 1000, 1002)
    assert inet[3]["local_address"] == "::ffff:127.0.0.1"  # full, where the text unmaps
    unix = [record for record in records if record["type"] == "unix"]
    unix_text = js.unix_rows(lines)
    assert len(unix) == len(unix_text) == 4
    for record, row in zip(unix, unix_text):
        assert str(record["inode"]) == row.inode
        assert str(record["refcnt"]) == row.refcnt
        assert (record["state"] or "") == row.state
        assert record["socket_type"] == row.kind
        assert record["peer_inode"] is None and record["cookie"] is None
    assert unix[0]["flags"] == ["ACC"] and unix[0]["state"] == "LISTENING"
    assert (unix[0]["path"], unix[0]["abstract"]) == ("/run/plain.sock", False)
    assert (unix[1]["path"], unix[1]["abstract"]) == ("@abstract", True)
    assert "path_b64" not in unix[0] and "path_b64" not in unix[1]
    # Not UTF-8: the text has the bytes; the JSON string U+FFFD and the exact bytes in base64.
    odd = unix[2]
    assert odd["path"] == "/tmp/caf\xe9\ufffd.sock"
    assert base64.b64decode(odd["path_b64"]) == b"/tmp/caf\xc3\xa9\xe9.sock"
    assert unix_text[2].path == "/tmp/caf\xe9\udce9.sock"
    assert unix[3]["path"] is None


def test_socket_options_as_data(tmp_path: Path) -> None:
    extra = {"NLSTAT_BACKEND": "proc", "NLSTAT_PROC_ROOT": _socket_tree(tmp_path)}
    records = js.both(["-antoe", "--numeric-users"], extra)
    rows = js.inet_rows(js.text(["-antoe", "--numeric-users"], extra))
    assert len(records) == len(rows) == 4
    for record, row in zip(records, rows):
        user, inode, timer = row.rest[0], row.rest[1], row.rest[2]
        assert (record["user"], str(record["inode"])) == (user, inode)
        assert record["timer"] == timer
        word = " ".join(row.rest[2:])
        seconds = word[word.index("(") + 1:].split("/")[0]
        assert "%.2f" % ((record["timer_ms"] // 10) / 100 if record["timer"] != "off"
                         else 0) == seconds
    assert records[1]["timer_ms"] == 10000 and records[1]["retransmits"] == 0
    # Names beside the numbers when they are asked for (the tree's ports 22, 80, 53 are named).
    named = js.both(["-at"], {**extra, "NLSTAT_PROC_ROOT": extra["NLSTAT_PROC_ROOT"]})
    assert named[0]["local_service"] == "ssh" and named[0]["local_port"] == 22
    assert named[0]["remote_service"] is None


def test_unlistable_socket_families_have_no_json_form(tmp_path: Path) -> None:
    extra = {"NLSTAT_BACKEND": "proc", "NLSTAT_PROC_ROOT": _socket_tree(tmp_path)}
    for args in (["-2"], ["--bluetooth"], ["-A", "ipx"], ["--ax25"], ["-S"], ["-tS"]):
        done = js.run([*args, "--json"], extra)
        assert (done.status, done.stdout, done.stderr.count(b"\n")) == (1, b"", 1), args
    # -4 switches sctp on implicitly: that is a listing, not a request for SCTP.
    assert js.run(["-4", "--json"], extra).status == 0


# -- options, forms, failures -------------------------------------------------------------------


def test_json_and_ndjson_together_is_an_error() -> None:
    for args in (["--json", "--ndjson"], ["--ndjson", "-ant", "--json"]):
        done = js.run(args)
        assert done == js.Run(1, b"", b"nlstat: --json and --ndjson cannot be used together\n")


def test_help_and_version_stay_text() -> None:
    # -h and -V act where they stand, as in netstat's getopt walk: their text, status 0.
    for args in (["--json", "-V"], ["-V", "--ndjson"]):
        done = js.run(args)
        assert done.status == 0 and done.stdout.startswith(b"nlstat "), done
    done = js.run(["--json", "-h"])
    assert done.status == 0 and b"--json" in done.stdout and b"--ndjson" in done.stdout
    assert js.run(["--json=1"]).status == 3


def test_continuous_prints_one_document_per_pass() -> None:
    from nlstat.modes import routes

    passes: List[float] = []

    class Stop(Exception):
        pass

    def sleep(seconds: float) -> None:
        passes.append(seconds)
        if len(passes) == 3:
            raise Stop

    for form in ("json", "ndjson"):
        passes.clear()
        out = io.BytesIO()
        env = Environment(stdout=out, stderr=io.StringIO(), proc_root=ROUTES["NLSTAT_PROC_ROOT"],
                          backend="proc", sleep=sleep)
        query = Query(mode=MODE_ROUTE, numeric_hosts=True, continuous=True, output=form)
        with pytest.raises(Stop):
            routes.run(query, env)
        lines = out.getvalue().splitlines()
        if form == "json":
            assert len(lines) == 3
            for line in lines:
                doc = json.loads(line)
                assert js.errors("routes", doc) == [] and len(doc["records"]) > 2
        else:
            heads = [json.loads(line)["type"] for line in lines].count("header")
            assert heads == 3 and lines[-1].startswith(b'{"type":"end"')


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_output_that_cannot_be_written_is_an_error_as_for_text() -> None:
    outcomes = []
    for args in (["-rn"], ["-rn", "--json"], ["-rn", "--ndjson"]):
        with open("/dev/full", "wb") as full:
            done = subprocess.run(js.nlstat_argv(args), env=js.environ(ROUTES), stdout=full,
                                  stderr=subprocess.PIPE, timeout=60)
        outcomes.append((done.returncode, done.stderr))
    assert outcomes[0][0] != 0
    assert outcomes[1] == outcomes[0] == outcomes[2]


def test_text_paths_do_not_import_json() -> None:
    code = (
        "import sys, io\n"
        "from nlstat.app import main\n"
        "from nlstat.env import Environment\n"
        "for argv in (['-ant'], ['-rn'], ['-i'], ['-s'], ['-anx'], ['-g']):\n"
        "    main(argv, Environment(stdout=io.BytesIO(), stderr=io.StringIO()))\n"
        "loaded = [m for m in sys.modules if m == 'json' or 'json_' in m or 'structured' in m]\n"
        "print(loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=js.environ(), capture_output=True,
                          timeout=60)
    assert done.stdout == b"[]\n", done


# -- the pieces ---------------------------------------------------------------------------------


def test_strings_are_json_and_utf8() -> None:
    from nlstat.format.json_records import text

    for value in ("plain", 'quo"te', "back\\slash", "tab\there", "nl\n", "nul\0", "caf\xe9",
                  "\u2028", "del\x7f", "", "snow\u2603"):
        assert json.loads(text(value)) == value
    assert json.loads(text("bad\udcffbyte")) == "bad\ufffdbyte"  # an undecodable byte
    assert text(None) == "null"
    text("bad\udcffbyte").encode("utf-8")  # no lone surrogate reaches the output


def test_unix_name_rule() -> None:
    from nlstat.format.json_records import path_fields

    def fields(path: str, name: object = None) -> Dict[str, object]:
        parsed: Dict[str, object] = json.loads("{" + path_fields(path, name)[1:] + "}")
        return parsed

    assert fields("") == {"path": None, "abstract": False}
    assert fields("/run/a.sock") == {"path": "/run/a.sock", "abstract": False}
    assert fields("@name") == {"path": "@name", "abstract": True}
    odd = fields("/tmp/\udcff.sock")
    assert odd["path"] == "/tmp/\ufffd.sock"
    assert base64.b64decode(str(odd["path_b64"])) == b"/tmp/\xff.sock"
    odd_abstract = fields("@x\udcfe")
    assert base64.b64decode(str(odd_abstract["path_b64"])) == b"\0x\xfe"
    with_nul = fields("@a@b", b"\0a\0b")
    assert (with_nul["path"], base64.b64decode(str(with_nul["path_b64"]))) == ("@a@b",
                                                                              b"\0a\0b")


def test_owner_split() -> None:
    from nlstat.format.json_records import split_owner

    assert split_owner("812/sshd: root@pts/0") == (812, "sshd: root@pts/0")
    assert split_owner("-") == (None, None)
    assert split_owner(None) == (None, None)


def test_sink_frames_lines_as_they_come() -> None:
    from nlstat.format.json_document import JsonSink

    for form in ("json", "ndjson"):
        out = io.BytesIO()
        sink = JsonSink(out, form)
        sink.begin({"mode": "x"})
        sink.write(b'{"a":1}\n{"a":2}\n')
        sink.write(memoryview(b'{"a":3}\n'))
        sink.write(b"")
        sink.note("tcp", "netlink")
        sink.end()
        data = out.getvalue()
        if form == "json":
            assert data.count(b"\n") == 1
            assert json.loads(data) == {"mode": "x", "records": [{"a": 1}, {"a": 2}, {"a": 3}],
                                        "sources": {"tcp": "netlink"}}
        else:
            lines = [json.loads(line) for line in data.splitlines()]
            assert lines == [{"type": "header", "mode": "x"}, {"a": 1}, {"a": 2}, {"a": 3},
                             {"type": "end", "count": 3, "sources": {"tcp": "netlink"}}]


def test_unix_table_source_rule() -> None:
    from nlstat.backends.sockets import JSON_UNIX_JOIN_LIMIT, unix_from_diag

    def few() -> int:
        return JSON_UNIX_JOIN_LIMIT

    def many() -> int:
        return JSON_UNIX_JOIN_LIMIT + 1

    def env(backend: str, proc_root: str = "/proc") -> Environment:
        return Environment(backend=backend, proc_root=proc_root)

    assert unix_from_diag("text", env("netlink"), many)
    assert not unix_from_diag("text", env("auto"), few)
    assert unix_from_diag("json", env("auto"), few)
    assert unix_from_diag("ndjson", env("auto"), few)
    assert not unix_from_diag("json", env("auto"), many)  # the join would hold too much
    assert not unix_from_diag("json", env("auto", "/tmp/captured"), few)
    assert not unix_from_diag("json", env("proc"), few)
