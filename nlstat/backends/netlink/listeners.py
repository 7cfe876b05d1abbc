"""tcp listeners' accept queues from inet_diag: what the metrics' listen-queue series need.

For a LISTEN socket the kernel puts the accept queue's length in idiag_rqueue and the
listen() backlog in idiag_wqueue (net/ipv4/tcp_diag.c tcp_diag_get_info); the socket records
follow /proc there (Send-Q 0), so the listeners are read here with the raw values. The
request asks for LISTEN only: the kernel walks its listening hash, never the established one.
"""

from __future__ import annotations

import _socket
from typing import Iterable, List, NamedTuple

from nlstat.backends.netlink.nlsocket import NetlinkSocket, nlmsg_error
from nlstat.backends.netlink.sockdiag import (
    INET_MSG_SIZE,
    INET_MSG_V4,
    INET_MSG_V6,
    tcp_both_request,
)
from nlstat.errors import BackendUnavailable
from nlstat.kernel.netlink import NLMSG_DONE, NLMSG_ERROR, NLMSGHDR
from nlstat.kernel.sockdiag import TCP_LISTEN, TCPDIAG_GETSOCK


class Listener(NamedTuple):
    family: int
    address: str  # inet_ntop text
    port: int
    queue: int  # connections waiting for accept()
    backlog: int  # the most that may wait (listen()'s backlog, capped by somaxconn)


def read_listeners(netlink: NetlinkSocket) -> List[Listener]:
    """Every tcp listener of both families, in the kernel's order."""
    chunks = netlink.dump_all(TCPDIAG_GETSOCK, tcp_both_request(1 << TCP_LISTEN))
    return decode_listeners(chunks)


def decode_listeners(chunks: Iterable[bytes]) -> List[Listener]:
    found: List[Listener] = []
    for buf in chunks:
        offset = 0
        end = len(buf)
        while offset + NLMSGHDR.size <= end:
            length, msg_type, _flags, _seq, _pid = NLMSGHDR.unpack_from(buf, offset)
            if length < NLMSGHDR.size:
                return found
            if msg_type == NLMSG_DONE:
                return found
            if msg_type == NLMSG_ERROR:
                code = nlmsg_error(buf, offset)
                if code:
                    raise BackendUnavailable(f"sock_diag tcp listeners: error {code}", code)
            elif msg_type == TCPDIAG_GETSOCK and length >= INET_MSG_SIZE:
                family = buf[offset + 16]
                layout = INET_MSG_V4 if family == _socket.AF_INET else INET_MSG_V6
                (_l, _t, _f, _s, _p, family, state, _timer, _retrans, sport, _dport, src, _dst,
                 _if, _cookie, _expires, rqueue, wqueue, _uid, _inode) = layout.unpack_from(
                    buf, offset)
                if state == TCP_LISTEN:
                    found.append(Listener(family, _socket.inet_ntop(family, src),
                                          _socket.ntohs(sport), rqueue, wqueue))
            offset += (length + 3) & ~3
    return found
