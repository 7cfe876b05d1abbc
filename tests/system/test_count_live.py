"""`--count --by` on a varied namespace, against two oracles.

1. netstat: the rows `netstat` prints for the same selection flags, counted here per key
   (its Proto, State, address, port, User and PID/Program columns), for several key sets.
2. The full dump: every socket of the namespace decoded by the test itself (a plain
   sock_diag request per protocol and family and /proc/net/unix, read here), counted in
   Python, for the keys netstat has no column for (dev) and mixed with the others.

The population moves (TIME_WAIT sockets expire): a mismatch is believed only when netstat
(or the dump) gives the same answer again right after.
"""

from __future__ import annotations

import json
import socket
import struct
from collections import Counter
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import pytest

from tests import netns, population, sockets_support
from tests.system import sockets_cases as cases

pytestmark = pytest.mark.netns

ATTEMPTS = 4
TCP_STATES = ("", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
              "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING")

Key = Tuple[object, ...]


class World(NamedTuple):
    ns: netns.Namespace
    pop: sockets_support.Running


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    netns.skip_unless_root()
    with netns.Namespace(
        prefix="nlst-count",
        hosts=population.HOSTS,
        networks=population.NETWORKS,
        addresses=population.ADDRESSES,
        neighbours=population.NEIGHBOURS,
        sysctls=population.SYSCTLS,
    ) as ns, sockets_support.Running(ns, timeout=600.0) as pop:
        held = ns.call_inside(bound_to_devices)
        try:
            yield World(ns, pop)
        finally:
            for sock in held:
                sock.close()


def bound_to_devices() -> List[socket.socket]:
    """Sockets bound to an interface (SO_BINDTODEVICE), which the population has none of."""
    held = []
    for kind, device, address in ((socket.SOCK_DGRAM, b"veth0", "198.18.0.1"),
                                  (socket.SOCK_STREAM, b"veth1", "198.19.0.1")):
        sock = socket.socket(socket.AF_INET, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device)
        sock.bind((address, 0))
        if kind == socket.SOCK_STREAM:
            sock.listen(4)
        held.append(sock)
    return held


def nlstat_counts(world: World, args: Sequence[str], keys: Sequence[str],
                  backend: str = "auto") -> Counter[Key]:
    result = world.ns.run(cases.nlstat_command([*args, "--count", "--by", ",".join(keys),
                                                "--json"]),
                          env=cases.nlstat_env(backend), timeout=60, cwd="/")
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stderr == b""
    records = json.loads(result.stdout.decode())
    counts: Counter[Key] = Counter()
    for record in records:
        assert list(record) == [*keys, "count"]
        counts[tuple(record[key] for key in keys)] += record["count"]
    assert all(count > 0 for count in counts.values())
    return counts


# --- oracle 1: netstat's rows ------------------------------------------------------------------


def port_of(endpoint: str) -> Optional[int]:
    port = endpoint.rpartition(":")[2]
    return None if port == "*" else int(port)


def host_of(endpoint: str) -> str:
    return endpoint.rpartition(":")[0]


def netstat_rows(world: World, args: Sequence[str]) -> List[Dict[str, object]]:
    """netstat's rows, as dicts of the --by keys (netstat run with -W -e -n and -p)."""
    # -p walks every process's descriptors: slow on a host busy with other socket loads.
    return listing_rows(world, [cases.NETSTAT, *args, "-W", "-e", "-n", "-p"],
                        cases.base_env())


def listing_rows(world: World, command: Sequence[str],
                 env: Dict[str, str]) -> List[Dict[str, object]]:
    """A netstat-format listing's rows (run with -W -e -n -p), as dicts of the --by keys."""
    result = world.ns.run(list(command), env=env, timeout=300, cwd="/")
    rows: List[Dict[str, object]] = []
    for line in result.stdout.decode("utf-8", "surrogateescape").splitlines():
        if line.startswith("unix "):
            # "%-5s %-6ld %-11s %-10s %-13s " (netstat.c unix_do_one): fixed columns.
            rows.append({"proto": "unix", "state": line[36:49].strip(), "lport": None,
                         "rport": None, "raddr": None, "user": None, "dev": None})
            continue
        fields = line.split()
        if not fields or fields[0] not in ("tcp", "tcp6", "udp", "udp6", "udpl", "udpl6",
                                           "raw", "raw6"):
            continue
        proto = fields[0]
        has_state = proto.startswith(("tcp", "raw")) or fields[5] == "ESTABLISHED"
        state = fields[5] if has_state else ""
        rest = fields[6:] if has_state else fields[5:]
        user, _inode, *program = rest
        owner = " ".join(program).encode("utf-8", "surrogateescape").decode(
            "utf-8", "backslashreplace")
        rows.append({
            "proto": proto, "state": state,
            "lport": port_of(fields[3]), "rport": port_of(fields[4]),
            "laddr": host_of(fields[3]), "raddr": host_of(fields[4]),
            "user": user,
            "program": None if owner == "-" else owner.partition("/")[2],
        })
    return rows


def normalise(value: object) -> object:
    """nlstat keeps a port 0 as 0 and netstat prints "*"; both mean no port. nlstat keeps an
    IPv4-mapped IPv6 address as the kernel has it (::ffff:a.b.c.d); netstat prints a.b.c.d."""
    if isinstance(value, str) and value.startswith("::ffff:") and "." in value:
        return value[7:]
    if isinstance(value, str):
        return " ".join(value.split(" ")).replace("\t", " ")  # netstat's rows split on blanks
    return None if value in (0, None) else value


def netstat_counts(world: World, args: Sequence[str], keys: Sequence[str]) -> Counter[Key]:
    return Counter(tuple(normalise(row[key]) for key in keys)
                   for row in netstat_rows(world, args))


def normalised(counts: Counter[Key]) -> Counter[Key]:
    result: Counter[Key] = Counter()
    for key, count in counts.items():
        result[tuple(normalise(value) for value in key)] += count
    return result


NETSTAT_CASES = [
    ([], ("proto", "state")),
    (["-a"], ("proto", "state")),
    (["-l"], ("state", "proto")),
    (["-at"], ("lport",)),
    (["-au"], ("proto", "raddr", "rport")),
    (["-atn"], ("user", "state")),
    (["-aw"], ("proto", "state", "lport")),
    (["-a", "-4"], ("proto", "laddr")),
    (["-a", "-6", "-t"], ("state", "laddr", "lport")),
    (["-x"], ("state",)),
    (["-atuw"], ("program", "proto")),
    (["-tu"], ("proto", "state", "user")),
]


# Each case under auto; a few under the /proc backend too (the same tally, other records).
BACKEND_CASES = [(args, keys, "auto") for args, keys in NETSTAT_CASES] + [
    (args, keys, "proc") for args, keys in NETSTAT_CASES if args in ([], ["-au"], ["-atn"])]


@pytest.mark.parametrize(("args", "keys", "backend"), BACKEND_CASES,
                         ids=[" ".join(a) + " by " + ",".join(k) + " " + b
                              for a, k, b in BACKEND_CASES])
def test_counts_equal_netstat_rows(world: World, args: List[str], keys: Tuple[str, ...],
                                   backend: str) -> None:
    numeric = ["-n"] if "user" in keys else []
    for _attempt in range(ATTEMPTS):
        world.pop.ensure_alive()
        world.pop.quiet_for(4.0)
        want = netstat_counts(world, args, keys)
        got = normalised(nlstat_counts(world, [*args, *numeric], keys, backend))
        if got == want:
            assert sum(got.values()) > 0
            return
        if netstat_counts(world, args, keys) == want:
            raise AssertionError("counts differ from netstat's rows:\n"
                                 f"netstat {sorted(want.items(), key=str)}\n"
                                 f"nlstat  {sorted(got.items(), key=str)}")
    raise AssertionError("netstat's own rows kept changing")


# --- oracle 2: the full dump, decoded here -----------------------------------------------------

SOCK_DIAG_BY_FAMILY = 20
NLMSG_DONE = 3
REQUEST = struct.Struct("=IHHII" "BBBBI" "48x")
MESSAGE = struct.Struct("=IHHII" "BBBB" "HH16s16sI8x" "IIIII")
PROTOCOLS = {"tcp": 6, "udp": 17, "raw": 255}


def dump(protocol: str, family: int) -> List[Tuple[object, ...]]:
    """(proto label, state text, lport, rport, laddr, raddr, uid, ifindex) of every socket."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4)
    try:
        payload_size = REQUEST.size
        raw = 255 if protocol == "raw" else 0
        sock.send(REQUEST.pack(payload_size, SOCK_DIAG_BY_FAMILY, 0x301, 1, 0,
                               family, PROTOCOLS[protocol], 0, raw, 0x1FFF if protocol == "tcp"
                               else 0xFFFFFFFF))
        found: List[Tuple[object, ...]] = []
        while True:
            data = sock.recv(1 << 16)
            offset = 0
            while offset < len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if kind == NLMSG_DONE:
                    return found
                (_l, _k, _f, _s, _p, fam, state, _t, _r, sport, dport, src, dst, ifindex,
                 _e, _rq, _wq, uid, _ino) = MESSAGE.unpack_from(data, offset)
                size = 4 if fam == socket.AF_INET else 16
                label = protocol + ("6" if fam == socket.AF_INET6 else "")
                if protocol == "tcp":
                    state_text = TCP_STATES[state]
                elif protocol == "raw":
                    state_text = str(state)
                    dport = 0
                else:
                    state_text = {1: "ESTABLISHED", 7: ""}.get(state, "UNKNOWN")
                found.append((label, state_text, socket.ntohs(sport), socket.ntohs(dport),
                              socket.inet_ntop(fam, src[:size]),
                              socket.inet_ntop(fam, dst[:size]), uid, ifindex))
                offset += (length + 3) & ~3
    finally:
        sock.close()


def full_dump(world: World) -> List[Tuple[object, ...]]:
    def read() -> List[Tuple[object, ...]]:
        rows: List[Tuple[object, ...]] = []
        for protocol in ("tcp", "udp"):  # raw_diag is often not built (CONFIG_INET_RAW_DIAG)
            for family in (socket.AF_INET, socket.AF_INET6):
                rows += dump(protocol, family)
        return rows

    return world.ns.call_inside(read)


DUMP_FIELDS = ("proto", "state", "lport", "rport", "laddr", "raddr", "user", "dev")


def dump_counts(world: World, keys: Sequence[str]) -> Counter[Key]:
    names = {index: name for index, name in world.ns.call_inside(socket.if_nameindex)}
    counts: Counter[Key] = Counter()
    for row in full_dump(world):
        values = dict(zip(DUMP_FIELDS, row))
        values["dev"] = names.get(values["dev"], str(values["dev"])) if values["dev"] else None
        values["user"] = str(values["user"])
        counts[tuple(values[key] for key in keys)] += 1
    return counts


DUMP_CASES = [
    ("proto", "state"),
    ("dev",),
    ("dev", "proto", "lport"),
    ("proto", "state", "laddr", "raddr"),
    ("user", "rport"),
]


@pytest.mark.parametrize("keys", DUMP_CASES, ids=[",".join(k) for k in DUMP_CASES])
def test_counts_equal_full_dump(world: World, keys: Tuple[str, ...]) -> None:
    args = ["-a", "-t", "-u", "-n"]
    for _attempt in range(ATTEMPTS):
        world.pop.ensure_alive()
        world.pop.quiet_for(4.0)
        want = dump_counts(world, keys)
        got = nlstat_counts(world, args, keys)
        if got == want:
            if "dev" in keys:
                assert any(key[0] is not None for key in got), "no socket bound to a device"
            return
        if dump_counts(world, keys) == want:
            raise AssertionError("counts differ from the dump:\n"
                                 f"dump   {sorted(want.items(), key=str)}\n"
                                 f"nlstat {sorted(got.items(), key=str)}")
    raise AssertionError("the dump kept changing")


# --- filters apply before counting -------------------------------------------------------------

# Each filter's listing is itself held to the full dump by tests/system/test_filters_live.py;
# here the counts must equal that listing's rows, counted per key.
FILTER_CASES = [
    (["-at", "--state", "listen"], ("proto", "state")),
    (["-a", "--state", "established,time_wait"], ("proto", "state")),
    (["-atu", "--sport", "1-30000"], ("proto", "lport")),
    (["-a", "--dst", "198.18.0.0/15"], ("proto", "raddr")),
    (["-a", "-6", "--src", "2001:db8::/32"], ("state", "laddr")),
    (["-ax", "--state", "listen"], ("proto", "state")),
]


@pytest.mark.parametrize(("args", "keys"), FILTER_CASES,
                         ids=[" ".join(a) + " by " + ",".join(k) for a, k in FILTER_CASES])
def test_filtered_counts_equal_the_filtered_listing(world: World, args: List[str],
                                                    keys: Tuple[str, ...]) -> None:
    env = cases.nlstat_env("auto")
    command = cases.nlstat_command([*args, "-W", "-e", "-n", "-p"])
    for _attempt in range(ATTEMPTS):
        world.pop.ensure_alive()
        world.pop.quiet_for(4.0)
        want = Counter(tuple(normalise(row[key]) for key in keys)
                       for row in listing_rows(world, command, env))
        got = normalised(nlstat_counts(world, [*args, "-n"], keys))
        if got == want:
            assert sum(got.values()) > 0
            return
    raise AssertionError("filtered counts differ from the filtered listing:\n"
                         f"listing {sorted(want.items(), key=str)}\n"
                         f"counts  {sorted(got.items(), key=str)}")
