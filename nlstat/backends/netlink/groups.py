"""Multicast memberships over rtnetlink (RTM_GETMULTICAST), joined with /proc where netlink lacks.

RTM_GETMULTICAST answers with the group address (IFA_MULTICAST) and cache info per device; the
join count netstat prints as RefCnt exists only in /proc/net/igmp{,6}, and so does netstat's
device order (the kernel's device list, which is not the ifindex order of a dump once devices
have moved between namespaces). IPv4 dumps exist since Linux 6.13; older kernels refuse them.
"""

from __future__ import annotations

import _socket
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from nlstat import procio
from nlstat.backends.netlink.links import address_request
from nlstat.backends.netlink.nlsocket import NetlinkSocket, iter_attrs, messages
from nlstat.kernel.link import IFA_MULTICAST, IFADDRMSG, RTM_GETMULTICAST, RTM_NEWMULTICAST
from nlstat.kernel.netlink import NETLINK_ROUTE, NLMSGHDR
from nlstat.model.groups import GroupMembership


class Membership(NamedTuple):
    """One RTM_NEWMULTICAST message: a group joined on the device with this index."""

    family: int
    ifindex: int
    address: str


def decode_memberships(chunks: Iterable[bytes]) -> list[Membership]:
    """RTM_NEWMULTICAST messages -> Membership, in dump order (each device's mc_list order)."""
    result: list[Membership] = []
    for buf, offset, length, msg_type, _flags in messages(chunks, IFADDRMSG.size):
        # The kernel answers a dump with RTM_GETMULTICAST messages (inet6_fill_ifmcaddr's event);
        # notifications use RTM_NEWMULTICAST.
        if msg_type != RTM_GETMULTICAST and msg_type != RTM_NEWMULTICAST:
            continue
        family, _prefix, _flags8, _scope, index = IFADDRMSG.unpack_from(buf, offset + NLMSGHDR.size)
        if family == _socket.AF_INET:
            size = 4
        elif family == _socket.AF_INET6:
            size = 16
        else:
            continue  # a family the dump was not asked for: not a group netstat could list
        start = offset + NLMSGHDR.size + IFADDRMSG.size
        for attr, begin, finish in iter_attrs(buf, start, offset + length):
            if attr == IFA_MULTICAST and finish - begin >= size:
                address = _socket.inet_ntop(family, buf[begin : begin + size])
                result.append(Membership(family, index, address))
                break
    return result


def dump_memberships(family: int) -> list[bytes]:
    """The raw answer to one RTM_GETMULTICAST dump (BackendUnavailable if the kernel refuses)."""
    with NetlinkSocket(NETLINK_ROUTE) as sock:
        return sock.dump_all(RTM_GETMULTICAST, address_request(family), "multicast groups")


def _index_name(index: int) -> str:
    try:
        return procio.interface_name(index)
    except OSError:
        return str(index)


def join_with_proc(
    memberships: Sequence[Membership], proc_rows: Sequence[GroupMembership] | None
) -> list[GroupMembership]:
    """Netlink memberships, put in /proc's device order and given /proc's user counts.

    Within a device the dump already has the kernel's list order, which /proc shares. A group
    that /proc does not list (joined between the two reads) still counts one user: the kernel
    drops a membership when its last user leaves.
    """
    users: dict[tuple[int, str], int] = {}
    names: dict[int, str] = {}
    device_rank: dict[int, int] = {}
    for row in proc_rows or ():
        users.setdefault((row.ifindex, row.address), row.users)
        names.setdefault(row.ifindex, row.device)
        device_rank.setdefault(row.ifindex, len(device_rank))
    first_seen: dict[int, int] = {}
    for position, membership in enumerate(memberships):
        first_seen.setdefault(membership.ifindex, position)
    unknown = len(device_rank)

    def key(item: tuple[int, Membership]) -> tuple[int, int, int]:
        position, membership = item
        rank = device_rank.get(membership.ifindex, unknown)
        return (rank, first_seen[membership.ifindex], position)

    result: list[GroupMembership] = []
    for _position, membership in sorted(enumerate(memberships), key=key):
        name = names.get(membership.ifindex)
        if name is None:
            name = names[membership.ifindex] = _index_name(membership.ifindex)
        count = users.get((membership.ifindex, membership.address), 1)
        result.append(GroupMembership(family=membership.family, device=name,
                                      address=membership.address, users=count,
                                      ifindex=membership.ifindex))
    return result

