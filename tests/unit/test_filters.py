"""Socket filters offline: parsing, the bytecode's exact bytes, the Python predicate, the
command line's handling (a bad value: one line, status 1, nothing on stdout), and the API's
lazy loading."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
from typing import List, Tuple

import pytest

from nlstat import cli
from nlstat.backends.netlink.bytecode import bytecode, bytecode_attribute
from nlstat.backends.netlink.sockdiag import inet_request, tcp_both_request
from nlstat.errors import InvalidFilter
from nlstat.filters import (
    Filters,
    PortRange,
    Prefix,
    from_options,
    inet_predicate,
    make,
    parse_ports,
    parse_prefix,
    parse_states,
    unix_predicate,
)
from nlstat.model.sockets import InetSocket, UnixSocket
from tests.cli_support import REPO, parse_in_process, run_nlstat

little_endian = pytest.mark.skipif(sys.byteorder != "little", reason="native byte order")


def v4(address: str, length: int) -> Prefix:
    return Prefix(socket.AF_INET, socket.inet_aton(address), length)


def record(state: int = 1, local: str = "127.0.0.1", lport: int = 40000,
           remote: str = "127.0.0.1", rport: int = 443, family: int = socket.AF_INET,
           uid: int = 0, inode: int = 7, interface: int = 0,
           protocol: str = "tcp") -> InetSocket:
    return InetSocket(protocol, family, state, local, lport, remote, rport, 0, 0, uid, inode,
                      interface=interface)


# -- parsing ---------------------------------------------------------------------------------


def test_states_any_case_and_unix_words() -> None:
    assert parse_states("established") == {1}
    assert parse_states("LISTEN,Time_Wait,syn_sent") == {10, 6, 2}
    assert parse_states("listening,connected") == {10, 1}
    assert parse_states("fin-wait2") == {5}


@pytest.mark.parametrize("text", ["bogus", "listen,", "", "established,nope"])
def test_unknown_state_names_it(text: str) -> None:
    with pytest.raises(InvalidFilter) as raised:
        parse_states(text)
    assert "unknown state" in str(raised.value)


def test_port_ranges() -> None:
    assert parse_ports("443") == PortRange(443, 443)
    assert parse_ports("1024-2047") == PortRange(1024, 2047)
    assert parse_ports("0-65535") == PortRange(0, 65535)
    assert parse_ports(" 22 ") == PortRange(22, 22)


@pytest.mark.parametrize("text", ["70000", "5-3", "1-", "-1", "1-2-3", "a-b", "", "1.5",
                                  "65536-65537", "nosuchservice"])
def test_malformed_port_ranges(text: str) -> None:
    with pytest.raises(InvalidFilter) as raised:
        parse_ports(text, "dport")
    assert f"'{text}'" in str(raised.value) and "--dport" in str(raised.value)


def test_prefixes() -> None:
    assert parse_prefix("198.18.0.0/15") == v4("198.18.0.0", 15)
    assert parse_prefix("127.0.0.1") == v4("127.0.0.1", 32)
    assert parse_prefix("0.0.0.0/0") == v4("0.0.0.0", 0)
    six = parse_prefix("2001:db8::/32")
    assert (six.family, six.length, six.text()) == (socket.AF_INET6, 32, "2001:db8::/32")
    assert parse_prefix("::1").length == 128


@pytest.mark.parametrize("text", ["1.2.3.4/33", "::1/129", "1.2.3", "1.2.3.4/", "x/8",
                                  "1.2.3.4/-1", "::g"])
def test_malformed_prefixes(text: str) -> None:
    with pytest.raises(InvalidFilter) as raised:
        parse_prefix(text, "src")
    assert f"'{text}'" in str(raised.value)


def test_state_mask_asks_for_request_sockets_with_syn_recv() -> None:
    assert Filters(states=frozenset({10})).state_mask() == 1 << 10
    assert Filters(states=frozenset({3})).state_mask() == (1 << 3) | (1 << 12)
    assert Filters().state_mask() == 0xFFFFFFFF


def test_what_the_kernel_does() -> None:
    every = Filters(states=frozenset({1}), dport=PortRange(1, 2), uid=0, pid=1)
    assert every.kernel_parts("tcp") == {"state", "dport"}
    assert every.kernel_parts("raw") == {"dport"}  # raw_diag ignores idiag_states
    assert every.parts() == ("state", "dport", "uid", "pid")
    assert every.excludes_unix and every.needs_owners
    assert not Filters(states=frozenset({1}), program="x").excludes_unix


# -- the bytecode, byte for byte ---------------------------------------------------------------


@little_endian
def test_bytecode_of_a_source_port_range() -> None:
    # S_GE 1024: yes 8, no 16+4; S_LE 2047: yes 8, no 8+4; each with its port in a second op.
    assert bytecode(Filters(sport=PortRange(1024, 2047))) == bytes.fromhex(
        "02081400" "00000004" "03080c00" "0000ff07")


@little_endian
def test_bytecode_of_a_destination_prefix() -> None:
    # D_COND: yes 16, no 20; hostcond family 2, /15, port -1, then 198.18.0.0.
    assert bytecode(Filters(dst=v4("198.18.0.0", 15))) == bytes.fromhex(
        "08101400" "020f0000" "ffffffff" "c6120000")


@little_endian
def test_bytecode_of_a_port_and_a_device() -> None:
    assert bytecode(Filters(dport=PortRange(443, 443), dev=3)) == bytes.fromhex(
        "04081c00" "0000bb01" "05081400" "0000bb01" "09080c00" "03000000")


@little_endian
def test_bytecode_of_an_ipv6_source_and_open_ranges() -> None:
    # 0-1023 needs no lower bound, 1024-65535 no upper one.
    program = bytecode(Filters(sport=PortRange(0, 1023), dport=PortRange(1024, 65535),
                               src=parse_prefix("2001:db8::/32")))
    assert program == bytes.fromhex(
        "03083000" "0000ff03"  # S_LE 1023, no = 44 + 4
        "04082800" "00000004"  # D_GE 1024, no = 36 + 4
        "071c2000" "0a200000" "ffffffff" "20010db8" + "00" * 12)  # S_COND: yes 28, no 28 + 4


def test_no_bytecode_without_conditions_for_it() -> None:
    assert bytecode(Filters(states=frozenset({1}), uid=0)) == b""
    assert bytecode(Filters(sport=PortRange(0, 65535))) == b""
    assert bytecode_attribute(b"") == b""


@little_endian
def test_requests_carry_the_program_as_an_attribute() -> None:
    program = bytecode(Filters(dport=PortRange(443, 443)))
    plain = inet_request("tcp", socket.AF_INET, 1 << 10)
    assert len(plain) == 56
    assert inet_request("tcp", socket.AF_INET, 1 << 10, False, program) == (
        plain + bytes.fromhex("1400" "0100") + program)  # nla_len 20, INET_DIAG_REQ_BYTECODE
    old = tcp_both_request(1 << 10)
    assert len(old) == 60  # struct inet_diag_req: the attribute follows at 60
    assert tcp_both_request(1 << 10, False, program)[60:] == bytes.fromhex("14000100") + program


# -- the Python predicate ----------------------------------------------------------------------


def test_predicate_checks_every_part_given() -> None:
    selection = Filters(states=frozenset({1}), sport=PortRange(40000, 40010),
                        dport=PortRange(443, 443), src=v4("127.0.0.0", 8),
                        dst=v4("127.0.0.1", 32), dev=3, uid=1000, pid=1)
    keep = inet_predicate(selection, selection.parts(), frozenset({7}))
    assert keep is not None
    good = record(uid=1000, interface=3)
    assert keep(good)
    for bad in (good._replace(state=10), good._replace(local_port=39999),
                good._replace(remote_port=444), good._replace(local_address="10.0.0.1"),
                good._replace(remote_address="127.0.0.2"), good._replace(interface=0),
                good._replace(uid=0), good._replace(inode=8)):
        assert not keep(bad), bad


def test_predicate_leaves_out_what_the_kernel_did() -> None:
    selection = Filters(states=frozenset({1}), dport=PortRange(443, 443), uid=5)
    keep = inet_predicate(selection, ["uid"])
    assert keep is not None and keep(record(state=10, rport=80, uid=5))
    assert inet_predicate(selection, ["state", "dport"]) is not None
    assert inet_predicate(Filters(states=frozenset({1})), []) is None


def test_ipv4_prefix_takes_v4_mapped_addresses_as_the_kernel_does() -> None:
    prefix = v4("127.0.0.0", 8)
    assert prefix.matches(socket.AF_INET6, "::ffff:127.0.0.5")
    assert not prefix.matches(socket.AF_INET6, "::1")
    assert not prefix.matches(socket.AF_INET6, "::7f00:1")  # IPv4-compatible is not mapped
    assert v4("0.0.0.0", 0).matches(socket.AF_INET, "10.1.2.3")
    assert not v4("0.0.0.0", 0).matches(socket.AF_INET6, "2001:db8::1")
    six = parse_prefix("2001:db8::/32")
    assert six.matches(socket.AF_INET6, "2001:db8:ffff::1")
    assert not six.matches(socket.AF_INET, "127.0.0.1")
    assert parse_prefix("2001:db8::1/127").matches(socket.AF_INET6, "2001:db8::")


def test_unix_sockets_by_state_and_owner() -> None:
    listener = UnixSocket(1, 1, 1 << 16, 10, "/run/x")
    connected = UnixSocket(1, 3, 0, 11, "")
    unbound = UnixSocket(2, 1, 0, 12, "")
    keep = unix_predicate(Filters(states=frozenset({10})))
    assert keep is not None
    assert [keep(s) for s in (listener, connected, unbound)] == [True, False, False]
    keep = unix_predicate(Filters(states=frozenset({1, 7})))
    assert keep is not None
    assert [keep(s) for s in (listener, connected, unbound)] == [False, True, True]
    keep = unix_predicate(Filters(pid=1), frozenset({11}))
    assert keep is not None and [keep(s) for s in (listener, connected)] == [False, True]
    keep = unix_predicate(Filters(dport=PortRange(1, 2)))
    assert keep is not None and not keep(connected)
    assert unix_predicate(Filters(uid=0)) is not None
    assert unix_predicate(Filters(dev=1)) is not None


def test_api_keywords() -> None:
    made = make(state=["listen", "ESTABLISHED"], sport=22, dport=(1024, 2047),
                src="198.18.0.0/15", uid=0, pid=1, program="sshd")
    assert made == Filters(states=frozenset({10, 1}), sport=PortRange(22, 22),
                           dport=PortRange(1024, 2047), src=v4("198.18.0.0", 15), uid=0,
                           pid=1, program="sshd")
    import ipaddress

    assert make(dst=ipaddress.ip_network("2001:db8::/32")) == Filters(
        dst=parse_prefix("2001:db8::/32"))
    assert make() is None
    for bad in ({"sport": True}, {"dport": [1]}, {"pid": 0}, {"uid": -1}, {"program": ""},
                {"dev": 0}, {"state": 5}):
        with pytest.raises(InvalidFilter):
            make(**bad)  # type: ignore[arg-type]


# -- the command line ------------------------------------------------------------------------


def test_options_become_query_filters() -> None:
    outcome = parse_in_process(["-tn", "--dport", "443", "--src=198.18.0.0/15"])
    assert outcome.query is not None
    assert outcome.query.filters == Filters(dport=PortRange(443, 443),
                                            src=v4("198.18.0.0", 15))
    assert not outcome.query.all  # ports keep netstat's listing: connected only
    assert parse_in_process(["-t"]).query.filters is None  # type: ignore[union-attr]


def test_state_chooses_among_all_sockets_unless_l() -> None:
    query = parse_in_process(["-t", "--state", "listen"]).query
    assert query is not None and query.all and query.listing == "all"
    query = parse_in_process(["-lt", "--state", "listen"]).query
    assert query is not None and not query.all and query.listing == "servers"


def test_repeats_do_not_silently_override_and_options_are_exact() -> None:
    outcome = parse_in_process(["--dport", "1", "--dport", "2"])
    assert (outcome.status, outcome.stdout, outcome.query) == (1, b"", None)
    # --program is netstat's --programs abbreviated, and stays so.
    query = parse_in_process(["--program"]).query
    assert query is not None and query.programs and query.filters is None
    assert parse_in_process(["--dpor", "1"]).status == 3


def test_filters_outside_socket_listings_are_refused() -> None:
    outcome = parse_in_process(["-r", "--dport", "1"])
    assert outcome == (1, b"", b"nlstat: --dport applies to socket listings only\n", None)


def test_from_options_checks_everything() -> None:
    with pytest.raises(InvalidFilter):
        from_options({"pid": "12x"})
    with pytest.raises(InvalidFilter):
        from_options({"program-name": ""})
    assert from_options({}) is None


BAD_INPUT = [
    (["--state", "establishd"], "'establishd'"),
    (["--sport", "80-79"], "'80-79'"),
    (["--dport", "99999"], "'99999'"),
    (["--src", "198.18.0.0/99"], "'198.18.0.0/99'"),
    (["--dst", "not-an-address"], "'not-an-address'"),
    (["--dev", "nlst-no-such-if"], "'nlst-no-such-if'"),
    (["--uid", "nlst-no-such-user"], "'nlst-no-such-user'"),
    (["--program-name", "nlst-no-such-program"], "'nlst-no-such-program'"),
    (["--pid", "0"], "'0'"),
    (["-tan", "--pid", "2147483646"], "2147483646"),
]


@pytest.mark.parametrize(("argv", "named"), BAD_INPUT)
def test_bad_filter_values_are_one_line_and_status_1(argv: List[str], named: str) -> None:
    outcome = run_nlstat(argv)
    assert outcome.status == 1
    assert outcome.stdout == b""
    lines = outcome.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nlstat: ") and named in lines[0], lines


def test_help_lists_the_filters() -> None:
    text = cli._usage_text()
    for option in ("--state=", "--sport=", "--dport=", "--src=", "--dst=", "--dev=", "--uid=",
                   "--pid=", "--program-name="):
        assert option in text


# -- the API: lazy, and its argument errors --------------------------------------------------


def test_the_cli_never_imports_the_api_or_the_filters() -> None:
    script = ("import sys, runpy; sys.argv = ['nlstat'] + sys.argv[1:]\n"
              "try:\n    runpy.run_module('nlstat', run_name='__main__')\n"
              "except SystemExit:\n    pass\n")
    for argv in (["-s"], ["-ant"], ["-i"]):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", script, *argv], capture_output=True,
            cwd=str(REPO), env={"PYTHONPATH": str(REPO), "LC_ALL": "C"}, timeout=60)
        imported = done.stderr.decode()
        assert "nlstat.api" not in imported and "nlstat.filters" not in imported, argv
    done = subprocess.run(
        [sys.executable, "-c", "import nlstat, sys; print(sorted(m for m in sys.modules "
         "if m.startswith('nlstat')))"],
        capture_output=True, cwd=str(REPO), env={"PYTHONPATH": str(REPO)}, timeout=60)
    assert done.stdout.decode().split() == ["['nlstat']"]


def test_api_names_load_on_first_use() -> None:
    done = subprocess.run(
        [sys.executable, "-c",
         "import nlstat, sys; assert 'nlstat.api' not in sys.modules\n"
         "f = nlstat.sockets; assert 'nlstat.api' in sys.modules\n"
         "assert issubclass(nlstat.InvalidFilter, nlstat.NlstatError)\n"
         "assert issubclass(nlstat.InvalidFilter, ValueError)\n"
         "assert 'sockets' in dir(nlstat)\n"
         "try:\n    nlstat.nothing\nexcept AttributeError:\n    print('ok')\n"],
        capture_output=True, cwd=str(REPO), env={"PYTHONPATH": str(REPO)}, timeout=60)
    assert done.stdout == b"ok\n", done.stderr


def test_api_argument_errors_come_at_the_call() -> None:
    import nlstat

    with pytest.raises(nlstat.InvalidArgument):
        nlstat.sockets("tcpp")
    with pytest.raises(nlstat.InvalidArgument):
        nlstat.sockets(family=5)
    with pytest.raises(nlstat.InvalidArgument):
        nlstat.sockets(backend="kernel")
    with pytest.raises(nlstat.InvalidFilter):
        nlstat.sockets(dport="1-0")
    with pytest.raises(nlstat.InvalidArgument):
        nlstat.sockets(family=[4])  # type: ignore[arg-type]
    with pytest.raises(nlstat.InvalidFilter):
        nlstat.sockets(dev="lo", backend="proc")  # /proc has no bound device
    with pytest.raises(nlstat.InvalidArgument):
        nlstat.routes(5)
    with pytest.raises(nlstat.InvalidArgument):
        nlstat.routes(None)  # type: ignore[arg-type]
    with pytest.raises(nlstat.InvalidArgument):
        nlstat.statistics("inet7")


def test_api_reads_a_proc_tree(tmp_path: object) -> None:
    """The API on a crafted /proc (backend="proc"): records with the filters applied."""
    import nlstat
    from tests.netns import write_proc_tree

    header = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
              "   uid  timeout inode\n")
    rows = (
        "   0: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000"
        "     0        0 111 1 0000000000000000 100 0 0 10 0\n"
        "   1: 0100007F:9C40 0100007F:01BB 01 00000000:00000000 00:00000000 00000000"
        "  1000        0 222 1 0000000000000000 20 4 30 10 -1\n"
    )
    root = write_proc_tree(str(tmp_path), {"tcp": header + rows, "tcp6": header})
    found = list(nlstat.sockets("tcp", backend="proc", proc_root=root))
    assert [(s.local_port, s.state, s.inode) for s in found] == [(22, 10, 111),
                                                                  (40000, 1, 222)]
    found = list(nlstat.sockets("tcp", dport=443, uid=1000, backend="proc", proc_root=root))
    assert [s.inode for s in found] == [222]
    assert list(nlstat.sockets("tcp", state="listen", family=4, backend="proc",
                               proc_root=root)) == [found_listener(root)]


def found_listener(root: str) -> InetSocket:
    import nlstat

    return next(s for s in nlstat.sockets("tcp", backend="proc", proc_root=root)
                if s.state == 10)




# -- what SocketSource asks the kernel for ----------------------------------------------------


class Recorder:
    """A SockDiag stand-in that records each request and answers with an empty dump."""

    def __init__(self) -> None:
        self.requests: List[tuple] = []

    def tcp_both_stream(self, states: int, want_info: bool, bytecode: bytes = b"",
                        want_cgroup: bool = False, ports: Tuple[int, int] = (0, 0)) -> tuple:
        self.requests.append(("tcp both", states, bytecode) + ((ports,) if any(ports) else ()))
        return self._empty()

    def inet_stream(self, protocol: str, family: int, states: int, want_info: bool,
                    bytecode: bytes = b"", want_cgroup: bool = False,
                    ports: Tuple[int, int] = (0, 0)) -> tuple:
        self.requests.append((protocol, states, bytecode) + ((ports,) if any(ports) else ()))
        return self._empty()

    def _empty(self) -> tuple:
        from nlstat.backends.netlink.sockdiag import InetDecoder

        decoder = InetDecoder("tcp")
        decoder.done = True
        return [], decoder, iter(())

    def close(self) -> None:
        pass


def requests_for(argv: List[str], monkeypatch: pytest.MonkeyPatch) -> List[tuple]:
    import io

    from nlstat.backends.sockets import SocketSource
    from nlstat.env import Environment

    query = parse_in_process(argv).query
    assert query is not None
    source = SocketSource(query, Environment(stdout=io.BytesIO(), stderr=io.StringIO(),
                                             backend="netlink"))
    recorder = Recorder()
    monkeypatch.setattr(source, "_sockdiag", lambda: recorder)
    source.tcp_both()
    source.inet("udp", socket.AF_INET)
    source.inet("raw", socket.AF_INET)
    return recorder.requests


def test_a_listen_only_query_asks_for_listeners_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # With only the LISTEN bit, inet_diag_dump_icsk() never walks the established hash.
    for argv in (["-t", "--state", "listen"], ["-lt"], ["-lt", "--state", "listen,established"],
                 ["-t", "--state", "LISTENING"]):
        assert requests_for(argv, monkeypatch)[0] == ("tcp both", 1 << 10, b""), argv


def test_filters_reach_every_request(monkeypatch: pytest.MonkeyPatch) -> None:
    # One port: tcp asks for it in the request's socket id and sends no program; udp and
    # raw get the program.
    program = bytecode(Filters(dport=PortRange(443, 443)))
    assert program
    requests = requests_for(["-a", "--state", "established", "--dport", "443"], monkeypatch)
    assert requests == [("tcp both", 1 << 1, b"", (0, 443)), ("udp", 1 << 1, program),
                        ("raw", 1 << 1, program)]
    # Without -a, netstat's "connected" listing leaves LISTEN out of the tcp mask.
    requests = requests_for(["--dport", "443"], monkeypatch)
    assert requests[0] == ("tcp both", ((1 << 13) - 1) & ~(1 << 10), b"", (0, 443))
    assert requests[1] == ("udp", 0xFFFFFFFF, program)
    # A range, or port 0 (the id's "any"), stays in the program; the rest joins the id.
    ranged = bytecode(Filters(dport=PortRange(443, 444)))
    assert requests_for(["-a", "--dport", "443-444"], monkeypatch)[0] == (
        "tcp both", (1 << 13) - 1, ranged)
    zero = bytecode(Filters(sport=PortRange(0, 0)))
    assert requests_for(["-a", "--sport", "0"], monkeypatch)[0] == (
        "tcp both", (1 << 13) - 1, zero)
    rest = bytecode(Filters(src=Prefix(socket.AF_INET, socket.inet_aton("127.0.0.1"), 32)))
    assert requests_for(["-a", "--sport", "22", "--src", "127.0.0.1", "--dport", "5000"],
                        monkeypatch)[0] == ("tcp both", (1 << 13) - 1, rest, (22, 5000))
    tcp_request = tcp_both_request((1 << 13) - 1, False, b"", (22, 5000))
    assert tcp_request[4:8] == struct.pack("!HH", 22, 5000)  # big-endian, first in the id


def test_pyproject_ships_py_typed() -> None:
    text = (REPO / "pyproject.toml").read_text()
    package_data = [line for line in text.splitlines() if line.startswith("nlstat = [")]
    assert len(package_data) == 1 and '"py.typed"' in package_data[0]
    assert (REPO / "nlstat" / "py.typed").exists()


# -- options given more than once ------------------------------------------------------------


def test_repeated_state_options_add_up() -> None:
    query = parse_in_process(
        ["-tan", "--state", "listen", "--state", "established,time_wait"]).query
    assert query is not None and query.filters is not None
    assert query.filters.states == {10, 1, 6}
    same = parse_in_process(["-tan", "--state=listen,established,time_wait"]).query
    assert same is not None and same.filters == query.filters


@pytest.mark.parametrize(("option", "first", "second"), [
    ("--sport", "22", "80"),
    ("--dport", "443", "1000-2000"),
    ("--src", "198.18.0.0/15", "127.0.0.1"),
    ("--dst", "2001:db8::/32", "198.18.0.1"),
    ("--dev", "lo", "nlst-other"),
    ("--uid", "0", "1"),
    ("--pid", "1", "2"),
    ("--program-name", "sshd", "nginx"),
])
def test_other_filters_given_twice_differently_are_refused(
    option: str, first: str, second: str
) -> None:
    # A device name is looked up at once (both must exist) unless a namespace is named.
    where = ["--netns", "nlst-none"] if option == "--dev" else []
    outcome = run_nlstat(["-tan", *where, option, first, option, second])
    assert outcome.status == 1 and outcome.stdout == b""
    lines = outcome.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"nlstat: {option} given twice") and f"'{second}'" in lines[0]


def test_a_filter_repeated_with_the_same_meaning_is_one_filter() -> None:
    query = parse_in_process(["-tan", "--dport", "443", "--dport=https", "--uid", "0",
                              "--uid", "root"]).query
    assert query is not None and query.filters == Filters(dport=PortRange(443, 443), uid=0)


def test_from_options_takes_lists_and_single_texts() -> None:
    assert from_options({"state": ["listen", "close"]}) == Filters(states=frozenset({10, 7}))
    assert from_options({"state": "listen"}) == Filters(states=frozenset({10}))
    with pytest.raises(InvalidFilter):
        from_options({"sport": ["1", "2"]})


def test_dev_is_kept_by_name_for_a_namespace() -> None:
    """Under --netns/--all-netns the interface is looked up inside the namespace listed."""
    query = parse_in_process(["-tan", "--netns", "nlst-none", "--dev", "nlst-no-such-if"]).query
    assert query is not None and query.filters == Filters(dev_name="nlst-no-such-if")
    assert query.filters.parts() == ("dev",) and query.filters.excludes_unix
    from nlstat.filters import NO_DEVICE, resolved_dev

    with pytest.raises(InvalidFilter, match="nlst-no-such-if"):
        resolved_dev(query.filters)
    assert resolved_dev(query.filters, True).dev == NO_DEVICE
    assert resolved_dev(Filters(dev_name="lo")).dev == socket.if_nametoindex("lo")
