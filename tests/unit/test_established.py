"""backends/established.py on crafted bytes: the counters' parsers, and the dump of the other
states read by (family, state) with its full sockets told from timewait and request sockets
by INET_DIAG_SHUTDOWN. The live subtraction is tests/system/test_count_counters.py."""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from nlstat.backends import established
from nlstat.kernel.netlink import NLM_F_DUMP_INTR, NLM_F_MULTI, NLMSG_DONE, NLMSG_ERROR
from nlstat.kernel.sockdiag import (
    INET_DIAG_CGROUP_ID,
    INET_DIAG_MARK,
    INET_DIAG_MSG,
    INET_DIAG_SHUTDOWN,
    TCPDIAG_GETSOCK,
)


def attribute(kind: int, payload: bytes) -> bytes:
    data = struct.pack("=HH", 4 + len(payload), kind) + payload
    return data + bytes(-len(data) % 4)


def message(family: int, state: int, attributes: bytes = b"", flags: int = NLM_F_MULTI,
            msg_type: int = TCPDIAG_GETSOCK) -> bytes:
    body = bytes([family, state]) + bytes(INET_DIAG_MSG.size - 2) + attributes
    return struct.pack("=IHHII", 16 + len(body), msg_type, flags, 1, 0) + body


FULL = attribute(INET_DIAG_SHUTDOWN, b"\0") + attribute(INET_DIAG_CGROUP_ID, bytes(8))
DONE = struct.pack("=IHHII", 20, NLMSG_DONE, NLM_F_MULTI, 1, 0) + bytes(4)


def others(chunks: List[bytes]) -> Optional[Tuple[Dict[Tuple[int, int], int], Dict[int, int]]]:
    return established._others(iter(chunks))


def test_full_sockets_are_the_messages_with_a_shutdown_attribute() -> None:
    chunks = [
        message(socket.AF_INET, 10, FULL)  # LISTEN
        + message(socket.AF_INET, 5, FULL)  # FIN_WAIT2, a full socket
        + message(socket.AF_INET, 5),  # FIN_WAIT2 of a timewait socket: no attribute
        message(socket.AF_INET, 3, attribute(INET_DIAG_MARK, bytes(4)))  # a request socket
        + message(socket.AF_INET6, 6)  # TIME_WAIT
        + message(socket.AF_INET6, 8, attribute(INET_DIAG_MARK, bytes(4)) + FULL)
        + DONE,
    ]
    result = others(chunks)
    assert result is not None
    counts, full = result
    assert counts == {(2, 10): 1, (2, 5): 2, (2, 3): 1, (10, 6): 1, (10, 8): 1}
    assert full == {socket.AF_INET: 2, socket.AF_INET6: 1}


def test_an_answer_that_cannot_be_trusted_gives_nothing() -> None:
    one = message(socket.AF_INET, 10, FULL)
    assert others([one]) is None  # no NLMSG_DONE
    assert others([one + message(socket.AF_INET, 10, FULL, NLM_F_MULTI | NLM_F_DUMP_INTR)
                   + DONE]) is None
    error = struct.pack("=IHHIIi", 36, NLMSG_ERROR, 0, 1, 0, -22) + bytes(16)
    assert others([error]) is None
    assert others([one[:-4] + DONE]) is None  # a message whose length runs past the chunk
    assert others([message(socket.AF_INET, 1, FULL, msg_type=20) + DONE]) is None
    assert others([DONE]) == ({}, {})


SOCKSTAT = b"sockets: used 290\nTCP: inuse 12 orphan 0 tw 3 alloc 20 mem 2\nUDP: inuse 4 mem 1\n"
SOCKSTAT6 = b"TCP6: inuse 5\nUDP6: inuse 2\nUDPLITE6: inuse 0\n"
SNMP = (b"Ip: Forwarding DefaultTTL\nIp: 1 64\n"
        b"Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails "
        b"EstabResets CurrEstab InSegs\nTcp: 1 200 120000 -1 10 10 0 0 14 100\n"
        b"Udp: InDatagrams\nUdp: 3\n")


def test_the_counters_are_read_from_their_lines() -> None:
    assert established._inuse(SOCKSTAT, b"TCP:") == 12
    assert established._inuse(SOCKSTAT6, b"TCP6:") == 5
    assert established._inuse(SOCKSTAT, b"TCP6:") is None
    assert established._inuse(b"TCP: inuse x\n", b"TCP:") is None
    assert established._curr_estab(SNMP) == 14
    assert established._curr_estab(b"Tcp: A B\nTcp: 1 2\n") is None
    assert established._curr_estab(b"Tcp: CurrEstab\n") is None
    assert established._curr_estab(b"Tcp: CurrEstab\nTcp: -\n") is None


def test_read_counters_wants_sockstat_and_snmp(tmp_path: Path) -> None:
    directory = str(tmp_path)
    assert established.read_counters(directory) is None
    for name, text in (("sockstat", SOCKSTAT), ("snmp", SNMP)):
        with open(os.path.join(directory, name), "wb") as handle:
            handle.write(text)
    assert established.read_counters(directory) == (12, 0, 14)  # no IPv6: none in use
    with open(os.path.join(directory, "sockstat6"), "wb") as handle:
        handle.write(SOCKSTAT6)
    assert established.read_counters(directory) == (12, 5, 14)
