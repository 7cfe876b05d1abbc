"""Fault injection: a netlink socket stand-in that answers or fails on cue.

nlstat opens every netlink socket through nlstat.backends.netlink.nlsocket.socket_factory;
install() puts a StandIn factory there. Each protocol (NETLINK_SOCK_DIAG 4, NETLINK_ROUTE 0,
NETLINK_NETFILTER 12) gets a Cue: refuse socket() with an errno, answer every request with an
NLMSG_ERROR carrying an errno, answer with canned chunks (optionally flagged
NLM_F_DUMP_INTR for the first N requests), fail recv() with an errno, or pass through to the
real kernel. Nothing here is imported by nlstat itself.
"""

from __future__ import annotations

import _socket
import struct
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

from nlstat.backends.netlink import nlsocket

NLMSGHDR = struct.Struct("=IHHII")
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_MULTI = 0x2
NLM_F_DUMP_INTR = 0x10


class Cue(NamedTuple):
    """What the stand-in does for one protocol (the first field set wins)."""

    socket_errno: int = 0  # socket() fails with this errno
    request_errno: int = 0  # every request is answered by NLMSG_ERROR with this errno
    recv_errno: int = 0  # recv() fails with this errno
    answer: Optional[Sequence[bytes]] = None  # canned chunks (one per recv) for each request
    interrupted: int = 0  # the first this-many answers are flagged NLM_F_DUMP_INTR
    # Per request (its bytes, header included): an errno to answer with, 0 to pass it on to
    # the kernel (e.g. refuse sock_diag for one protocol only).
    refuse: Optional[Callable[[bytes], int]] = None


def flag_interrupted(chunks: Sequence[bytes]) -> List[bytes]:
    """The chunks with NLM_F_DUMP_INTR set on their first message (as nl_dump_check_consistent
    sets it on the message being filled when the table's sequence number has moved)."""
    first = bytearray(chunks[0])
    length, kind, flags, seq, pid = NLMSGHDR.unpack_from(first)
    NLMSGHDR.pack_into(first, 0, length, kind, flags | NLM_F_DUMP_INTR, seq, pid)
    return [bytes(first), *chunks[1:]]


def error_message(code: int) -> bytes:
    body = struct.pack("=i", -code) + NLMSGHDR.pack(NLMSGHDR.size, 0, 0, 0, 0)
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), NLMSG_ERROR, 0, 0, 0) + body


class StandIn:
    """One fake netlink socket following its protocol's cue; counts the requests it got."""

    requests: Dict[int, int] = {}

    def __init__(self, protocol: int, cue: Cue, real: Optional[_socket.socket]) -> None:
        self.protocol = protocol
        self.cue = cue
        self.real = real
        self.forwarded = False
        self.pending: List[bytes] = []

    def setsockopt(self, *args: object) -> None:
        if self.real is not None:
            self.real.setsockopt(*args)  # type: ignore[call-overload]

    def bind(self, address: object) -> None:
        if self.real is not None:
            self.real.bind(address)

    def close(self) -> None:
        if self.real is not None:
            self.real.close()

    def sendto(self, data: bytes, address: object) -> int:
        count = StandIn.requests.get(self.protocol, 0) + 1
        StandIn.requests[self.protocol] = count
        self.forwarded = False
        code = self.cue.refuse(data) if self.cue.refuse is not None else 0
        if code:
            self.pending = [error_message(code)]
        elif self.cue.refuse is not None and self.real is not None:
            self.forwarded = True
            return self.real.sendto(data, address)  # type: ignore[arg-type]
        elif self.cue.request_errno:
            self.pending = [error_message(self.cue.request_errno)]
        else:
            answer = list(self.cue.answer or ())
            if count <= self.cue.interrupted:
                answer = flag_interrupted(answer)
            self.pending = answer
        return len(data)

    def recv(self, size: int) -> bytes:
        if self.cue.recv_errno:
            raise OSError(self.cue.recv_errno, "injected")
        if self.forwarded and self.real is not None:
            return self.real.recv(size)
        return self.pending.pop(0) if self.pending else b""


def install(cues: Dict[int, Cue]) -> Callable[[int, int, int], object]:
    """Make nlsocket open stand-ins for the protocols in `cues` (others stay real)."""
    real = _socket.socket
    StandIn.requests = {}

    def factory(family: int, kind: int, protocol: int) -> object:
        cue = cues.get(protocol)
        if cue is None:
            return real(family, kind, protocol)
        if cue.socket_errno:
            raise OSError(cue.socket_errno, "injected")
        passes = cue.refuse is not None
        return StandIn(protocol, cue, real(family, kind, protocol) if passes else None)

    nlsocket.socket_factory = factory  # type: ignore[assignment]
    return factory


def sock_diag_protocol(request: bytes) -> int:
    """The IP protocol a sock_diag request asks for (SOCK_DIAG_BY_FAMILY's sdiag_protocol;
    the older TCPDIAG_GETSOCK request is tcp's), 0 for unix and anything else."""
    length, kind, _flags, _seq, _pid = NLMSGHDR.unpack_from(request)
    if kind == 18:  # TCPDIAG_GETSOCK
        return 6
    if kind == 20 and len(request) > NLMSGHDR.size + 1 and request[NLMSGHDR.size] != 1:
        return request[NLMSGHDR.size + 1]  # struct inet_diag_req_v2: family, protocol
    return 0


def cue_of(spec: Dict[str, int]) -> Cue:
    """A Cue from JSON: {"socket_errno": N}, {"request_errno": N}, {"recv_errno": N}, or
    {"protocol": P, "errno": N} (refuse sock_diag requests for IP protocol P only)."""
    if "protocol" in spec:
        protocol, code = spec["protocol"], spec["errno"]
        return Cue(refuse=lambda request: code if sock_diag_protocol(request) == protocol else 0)
    return Cue(**spec)  # type: ignore[arg-type]


if __name__ == "__main__":
    # python -m tests.faults '{"4": {"socket_errno": 93}}' -an: nlstat with the cues installed.
    import json
    import sys

    install({int(protocol): cue_of(spec) for protocol, spec in json.loads(sys.argv[1]).items()})
    sys.argv[1:] = sys.argv[2:]
    from nlstat.__main__ import main

    sys.exit(main())
