"""tcp counted by state without the kernel formatting a message for each ESTABLISHED socket.

A dump of 100k connections spends ~0.65 us a socket formatting its message and ~0.15 us
walking to it (docs/performance.md). But the kernel keeps two counters that, with a dump of
every *other* state (the walk, and few messages), give the ESTABLISHED count:

- /proc/net/sockstat "TCP: inuse N", /proc/net/sockstat6 "TCP6: inuse N": the full tcp sockets
  of this namespace in the listening and established hash tables, per family of the socket
  (sock_prot_inuse_add() in __inet_hash() and inet_ehash_nolisten(), undone at unhash).
  TIME_WAIT sockets and SYN_RECV request sockets are not full sockets and are not counted.
- /proc/net/snmp "Tcp: CurrEstab": the sockets in ESTABLISHED or CLOSE_WAIT, both families
  (tcp_set_state()).

So ESTABLISHED(family) = inuse(family) - the full sockets of that family in the dump, where a
full socket is a message carrying INET_DIAG_SHUTDOWN: inet_diag_msg_attrs_fill() puts it in
every full socket's message; a timewait socket's (inet_twsk_diag_fill(), whose state may read
FIN_WAIT2) and a request socket's (inet_req_diag_fill()) have none.

The counts are kept only when both counters read the same before and after the dump (nothing
was hashed, unhashed, or left ESTABLISHED/CLOSE_WAIT meanwhile), the dump ended cleanly and
was not interrupted, and the two counters agree: ESTABLISHED(v4) + ESTABLISHED(v6) +
CLOSE_WAIT == CurrEstab. Anything else (a busy host, a kernel that counts otherwise) gives
None, and the caller dumps every socket as before.
"""

from __future__ import annotations

import _socket
from collections import Counter
from typing import Iterator, Optional, Tuple

from nlstat import procio
from nlstat.backends.netlink.nlsocket import NetlinkSocket, iter_attrs
from nlstat.backends.netlink.sockdiag import STATES_ALL, tcp_both_request
from nlstat.errors import BackendUnavailable
from nlstat.kernel.netlink import NETLINK_SOCK_DIAG, NLM_F_DUMP_INTR, NLMSG_DONE, NLMSGHDR
from nlstat.kernel.sockdiag import (
    INET_DIAG_MSG,
    INET_DIAG_SHUTDOWN,
    TCP_CLOSE_WAIT,
    TCP_ESTABLISHED,
    TCP_TIME_WAIT,
    TCPDIAG_GETSOCK,
)

# (TCP inuse, TCP6 inuse, CurrEstab)
Counters = Tuple[int, int, int]
# (family, state) -> sockets
StateCounts = Counter[Tuple[int, int]]

_MESSAGE_START = NLMSGHDR.size
_ATTRIBUTES_START = NLMSGHDR.size + INET_DIAG_MSG.size


def tcp_state_counts(proc_net: str, states: int) -> Tuple[Optional[StateCounts], str]:
    """tcp sockets of this namespace by (family, state), for the states in the mask `states`
    (ESTABLISHED among them), both families; or None and why it could not be trusted.
    `proc_net`: the namespace's /proc/net directory (its counters)."""
    before = read_counters(proc_net)
    if before is None:
        return None, f"no tcp counters in {proc_net}"
    try:
        # A socket of its own: an answer left unread must not reach another request.
        with NetlinkSocket(NETLINK_SOCK_DIAG) as netlink:
            walked = _others(netlink.dump(TCPDIAG_GETSOCK,
                                          tcp_both_request(STATES_ALL & ~(1 << TCP_ESTABLISHED))))
    except BackendUnavailable as err:
        return None, f"sock_diag: {err}"
    after = read_counters(proc_net)
    if walked is None:
        return None, "the dump of the other states was interrupted or cut short"
    if after != before:
        return None, f"tcp sockets changed during the dump (counters {before} then {after})"
    counts, full = walked
    inuse = {_socket.AF_INET: before[0], _socket.AF_INET6: before[1]}
    established = {family: inuse[family] - full[family] for family in inuse}
    close_wait = counts[(_socket.AF_INET, TCP_CLOSE_WAIT)] + counts[(_socket.AF_INET6,
                                                                       TCP_CLOSE_WAIT)]
    if (min(established.values()) < 0
            or sum(established.values()) + close_wait != before[2]):
        return None, (f"counters disagree (inuse {before[0]}+{before[1]}, full sockets "
                      f"{dict(full)}, CLOSE_WAIT {close_wait}, CurrEstab {before[2]})")
    result: StateCounts = Counter()
    for (family, state), count in counts.items():
        if states & (1 << state):
            result[(family, state)] = count
    for family, count in established.items():
        if count:
            result[(family, TCP_ESTABLISHED)] = count
    return result, "ESTABLISHED = inuse - other full sockets (agrees with CurrEstab)"


def read_counters(proc_net: str) -> Optional[Counters]:
    """(TCP inuse, TCP6 inuse, CurrEstab), or None when a file or field is missing. No
    sockstat6 (a kernel without IPv6) is 0 IPv6 sockets."""
    try:
        inuse = _inuse(procio.read(proc_net + "/sockstat"), b"TCP:")
        snmp = procio.read(proc_net + "/snmp")
    except OSError:
        return None
    try:
        inuse6: Optional[int] = _inuse(procio.read(proc_net + "/sockstat6"), b"TCP6:")
    except OSError:
        inuse6 = 0
    established = _curr_estab(snmp)
    if inuse is None or inuse6 is None or established is None:
        return None
    return inuse, inuse6, established


def _inuse(text: bytes, label: bytes) -> Optional[int]:
    """N of the line "LABEL inuse N ..."."""
    for line in text.splitlines():
        fields = line.split()
        if fields[:2] == [label, b"inuse"] and len(fields) > 2 and fields[2].isdigit():
            return int(fields[2])
    return None


def _curr_estab(snmp: bytes) -> Optional[int]:
    """CurrEstab from the two "Tcp:" lines of /proc/net/snmp (names, then values)."""
    lines = [line.split() for line in snmp.splitlines() if line.startswith(b"Tcp:")]
    if len(lines) != 2 or b"CurrEstab" not in lines[0]:
        return None
    index = lines[0].index(b"CurrEstab")
    if index >= len(lines[1]) or not lines[1][index].isdigit():
        return None
    return int(lines[1][index])


def _others(chunks: Iterator[bytes]) -> Optional[Tuple[StateCounts, Counter[int]]]:
    """The dump's sockets by (family, state), and its full sockets per family; None when it
    was interrupted (NLM_F_DUMP_INTR), refused or cut short before NLMSG_DONE."""
    unpack = NLMSGHDR.unpack_from
    counts: StateCounts = Counter()
    full: Counter[int] = Counter()
    for buf in chunks:
        offset = 0
        end = len(buf)
        while offset + _MESSAGE_START <= end:
            length, msg_type, flags, _seq, _pid = unpack(buf, offset)
            if length < _MESSAGE_START or offset + length > end or flags & NLM_F_DUMP_INTR:
                return None
            if msg_type == NLMSG_DONE:
                return counts, full
            if msg_type != TCPDIAG_GETSOCK or length < _ATTRIBUTES_START:
                return None
            family = buf[offset + _MESSAGE_START]
            state = buf[offset + _MESSAGE_START + 1]
            counts[(family, state)] += 1
            if state != TCP_TIME_WAIT and any(
                kind == INET_DIAG_SHUTDOWN
                for kind, _start, _end in iter_attrs(buf, offset + _ATTRIBUTES_START,
                                                     offset + length)
            ):
                full[family] += 1
            offset += (length + 3) & ~3
    return None

