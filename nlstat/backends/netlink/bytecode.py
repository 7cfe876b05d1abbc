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
from typing import List, Tuple

from nlstat.filters import Filters, Prefix
from nlstat.kernel.netlink import NLATTR
from nlstat.kernel.sockdiag import (
    INET_DIAG_BC_CGROUP_COND,
    INET_DIAG_BC_D_COND,
    INET_DIAG_BC_D_GE,
    INET_DIAG_BC_D_LE,
    INET_DIAG_BC_DEV_COND,
    INET_DIAG_BC_OP,
    INET_DIAG_BC_S_COND,
    INET_DIAG_BC_S_GE,
    INET_DIAG_BC_S_LE,
    INET_DIAG_HOSTCOND,
    INET_DIAG_REQ_BYTECODE,
)

U32 = struct.Struct("=I")
U64 = struct.Struct("=Q")  # the cgroup id: get_unaligned((const u64 *)(op + 1)), host order
# The kernel checks port comparisons as they are; (code, operand) pairs below.
Operation = Tuple[int, bytes]


def _port_operand(port: int) -> bytes:
    return INET_DIAG_BC_OP.pack(0, 0, port)


def _host_operand(prefix: Prefix) -> bytes:
    return INET_DIAG_HOSTCOND.pack(prefix.family, prefix.length, -1) + prefix.address


def operations(filters: Filters) -> List[Operation]:
    """The conditions the kernel can test, in a fixed order: ports, addresses, device."""
    ops: List[Operation] = []
    if filters.sport is not None:
        low, high = filters.sport
        if low > 0:
            ops.append((INET_DIAG_BC_S_GE, _port_operand(low)))
        if high < 65535:
            ops.append((INET_DIAG_BC_S_LE, _port_operand(high)))
    if filters.dport is not None:
        low, high = filters.dport
        if low > 0:
            ops.append((INET_DIAG_BC_D_GE, _port_operand(low)))
        if high < 65535:
            ops.append((INET_DIAG_BC_D_LE, _port_operand(high)))
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


def bytecode_attribute(program: bytes) -> bytes:
    """The INET_DIAG_REQ_BYTECODE attribute that follows the request struct (b"" for none)."""
    if not program:
        return b""
    return NLATTR.pack(NLATTR.size + len(program), INET_DIAG_REQ_BYTECODE) + program
