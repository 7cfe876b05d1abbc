"""The multicast group table exactly as netstat prints it (netstat.c igmp_do_one)."""

from __future__ import annotations

import _socket

from nlstat.model.groups import GroupMembership
from nlstat.resolve import Names

# netstat prints "IPv6/" because it is built with IPv6, whatever families were asked for.
HEADER = (
    "IPv6/IPv4 Group Memberships\n"
    "Interface       RefCnt Group\n"
    "--------------- ------ ---------------------\n"
)
# netstat copies the address text into a 128-byte buffer (safe_strncpy keeps 127 characters).
ADDRESS_LIMIT = 127


def group_row(row: GroupMembership, names: Names) -> str:
    """`%-15s %-6d %s`: device, users, group (a host name unless numeric hosts were asked for)."""
    if row.family == _socket.AF_INET:
        text = names.socket_host4(row.address)
    else:
        text = names.socket_host6(row.address)
    device = row.device
    # printf pads by bytes, not characters.
    padding = 15 - len(device.encode("utf-8", "surrogateescape"))
    if padding > 0:
        device += " " * padding
    return f"{device} {row.users:<6d} {text[:ADDRESS_LIMIT]}\n"
