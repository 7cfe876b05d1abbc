"""inet_diag bytecode: the port, address and device conditions of a Filters, for the kernel.

The kernel runs the program once per socket (net/ipv4/inet_diag.c inet_diag_bc_run()): each
operation is `struct inet_diag_bc_op { u8 code; u8 yes; u16 no; }` followed by its operand;
a true condition moves `yes` bytes on, a false one `no` bytes. The socket is sent when the
walk ends exactly at the program's end. Conditions here are all required, so every
operation goes on to the next when true and jumps 4 bytes past the end when false (the
furthest inet_diag_bc_audit() accepts), which rejects the socket.

Operands: a port comparison carries the port in the `no` field of a second bc_op (host
order); S_COND/D_COND carry `struct inet_diag_hostcond { u8 family; u8 prefix_len; int port;
__be32 addr[]; }` (port -1: any); DEV_COND a u32 interface index; CGROUP_COND (Linux 5.7) a
u64 cgroup v2 id, which a TIME_WAIT or SYN_RECV socket never matches (its id reads as 0).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple

from nlstat.kernel.netlink import NLATTR
from nlstat.kernel.sockdiag import (
    INET_DIAG_BC_CGROUP_COND,
    INET_DIAG_BC_D_COND,
    INET_DIAG_BC_D_GE,
    INET_DIAG_BC_D_LE,
    INET_DIAG_BC_DEV_COND,
    INET_DIAG_BC_JMP,
    INET_DIAG_BC_OP,
    INET_DIAG_BC_S_COND,
    INET_DIAG_BC_S_GE,
    INET_DIAG_BC_S_LE,
    INET_DIAG_HOSTCOND,
    INET_DIAG_REQ_BYTECODE,
)

if TYPE_CHECKING:
    # Types only: the count's port halves need no filter (nlstat.filters: 0.6 ms to import).
    from nlstat.filters import Filters, PortRange, Prefix

U32 = struct.Struct("=I")
U64 = struct.Struct("=Q")  # the cgroup id: get_unaligned((const u64 *)(op + 1)), host order
# The kernel checks port comparisons as they are; (code, operand) pairs below.
Operation = Tuple[int, bytes]


def _port_operand(port: int) -> bytes:
    return INET_DIAG_BC_OP.pack(0, 0, port)


def _host_operand(prefix: Prefix) -> bytes:
    return INET_DIAG_HOSTCOND.pack(prefix.family, prefix.length, -1) + prefix.address


def _port_range(ops: List[Operation], ports: Optional[PortRange], at_least: int,
                at_most: int) -> None:
    """The comparisons a port range needs (none for a bound that every port meets)."""
    if ports is None:
        return
    low, high = ports
    if low > 0:
        ops.append((at_least, _port_operand(low)))
    if high < 65535:
        ops.append((at_most, _port_operand(high)))


def operations(filters: Filters) -> List[Operation]:
    """The conditions the kernel can test, in a fixed order: ports, addresses, device."""
    ops: List[Operation] = []
    _port_range(ops, filters.sport, INET_DIAG_BC_S_GE, INET_DIAG_BC_S_LE)
    _port_range(ops, filters.dport, INET_DIAG_BC_D_GE, INET_DIAG_BC_D_LE)
    if filters.src is not None:
        ops.append((INET_DIAG_BC_S_COND, _host_operand(filters.src)))
    if filters.dst is not None:
        ops.append((INET_DIAG_BC_D_COND, _host_operand(filters.dst)))
    if filters.dev is not None:
        ops.append((INET_DIAG_BC_DEV_COND, U32.pack(filters.dev)))
    if filters.cgroup is not None and "cgroup" in filters.kernel_parts(""):
        ops.append((INET_DIAG_BC_CGROUP_COND, U64.pack(filters.cgroup)))
    return ops


def compile_program(ops: List[Operation]) -> bytes:
    """All of `ops` must hold: each goes on when true, leaves the program when false."""
    total = sum(INET_DIAG_BC_OP.size + len(operand) for _code, operand in ops)
    program = bytearray()
    for code, operand in ops:
        size = INET_DIAG_BC_OP.size + len(operand)
        remaining = total - len(program)
        program += INET_DIAG_BC_OP.pack(code, size, remaining + 4) + operand
    return bytes(program)


def bytecode(filters: Filters) -> bytes:
    """The filter program for `filters` (b"" when the kernel has nothing to test)."""
    return compile_program(operations(filters))


def tcp_request_parts(filters: Filters) -> Tuple[Tuple[int, int], bytes]:
    """A tcp request's exact (local, remote) ports for its socket id (0: any) and the program
    for the rest: a --sport or --dport of one port other than 0 goes into the id, which the
    kernel compares before running any program (inet_diag_dump_icsk(); a remote port also
    skips the listening table, where every remote port is 0). --dport 443 at 100k sockets:
    a dump of 0.015 s instead of 0.018 s. udp and raw keep the program: raw_diag does not
    read the id's ports."""
    ports = (_exact(filters.sport), _exact(filters.dport))
    rest = filters._replace(sport=None if ports[0] else filters.sport,
                            dport=None if ports[1] else filters.dport)
    return ports, bytecode(rest)


def _exact(ports: Optional[PortRange]) -> int:
    if ports is None or ports[0] != ports[1]:
        return 0
    return ports[0]


def bytecode_attribute(program: bytes) -> bytes:
    """The INET_DIAG_REQ_BYTECODE attribute that follows the request struct (b"" for none)."""
    if not program:
        return b""
    return NLATTR.pack(NLATTR.size + len(program), INET_DIAG_REQ_BYTECODE) + program


# Port halves (port_halves()): a port's side is its bit 12, so that ports alternate between
# the sides every 4,096 (the ephemeral range 32768-60999 falls 56/44, 49152-65535 50/50).
HALF_BLOCK = 4096
_PORTS = 65536
# Where a decision lands: the program's end (the socket is sent) or 4 bytes past it (not).
ACCEPT = "accept"
REJECT = "reject"


def port_halves() -> Tuple[bytes, bytes]:
    """Two programs that split every socket between them: the first sends the sockets whose
    local and remote ports are on the same side (bit 12 equal), the second the others.

    For dumping one table as two concurrent dumps (modes/count.py): a server's sockets share
    their local port and differ in the remote one, a client's the other way round, so the
    exclusive or of the two ports' sides splits both about evenly; listeners (remote port 0)
    go by their own port.

    inet_diag_bc_audit() follows only the "yes" offsets, and every "no" offset must land on
    an operation of that chain (valid_cc()): so "yes" always goes on to the next operation,
    each test is written as the comparison whose *false* outcome takes the branch, and a
    leaf is a JMP (its "no" is taken always). A socket meets 10 operations.
    """
    return _halves_program(same_side=True), _halves_program(same_side=False)


def _halves_program(same_side: bool) -> bytes:
    # (code, port or None, label its "no" goes to) and labels, then laid out in one pass.
    items: List[Tuple[str, int, int, str]] = []  # ("op"|"label", code, port, target)
    counter = [0]

    def label() -> str:
        counter[0] += 1
        return f"l{counter[0]}"

    def tree(code: int, low: int, high: int, leaf: Callable[[int], str]) -> None:
        if high - low == HALF_BLOCK:
            items.append(("op", INET_DIAG_BC_JMP, -1, leaf((low // HALF_BLOCK) & 1)))
            return
        middle = (low + high) // 2
        upper = label()
        items.append(("op", code, middle - 1, upper))  # port <= middle - 1 goes on
        tree(code, low, middle, leaf)
        items.append(("label", 0, 0, upper))
        tree(code, middle, high, leaf)

    local_sides = [label(), label()]
    tree(INET_DIAG_BC_S_LE, 0, _PORTS, lambda side: local_sides[side])
    for local_side in (0, 1):
        items.append(("label", 0, 0, local_sides[local_side]))

        def decide(remote_side: int, local_side: int = local_side) -> str:
            return ACCEPT if (remote_side == local_side) == same_side else REJECT

        tree(INET_DIAG_BC_D_LE, 0, _PORTS, decide)

    offsets: Dict[str, int] = {}
    size = 0
    for kind, code, _port, target in items:
        if kind == "label":
            offsets[target] = size
        else:
            size += INET_DIAG_BC_OP.size * (1 if code == INET_DIAG_BC_JMP else 2)
    offsets[ACCEPT] = size
    offsets[REJECT] = size + 4
    program = bytearray()
    for kind, code, port, target in items:
        if kind == "label":
            continue
        here = len(program)
        if code == INET_DIAG_BC_JMP:
            program += INET_DIAG_BC_OP.pack(code, 4, offsets[target] - here)
        else:
            program += INET_DIAG_BC_OP.pack(code, 8, offsets[target] - here)
            program += _port_operand(port)
    assert len(program) == size
    return bytes(program)
