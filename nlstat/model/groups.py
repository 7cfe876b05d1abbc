"""Multicast membership records for `netstat -g`, from the procfs and netlink groups backends."""


from typing import NamedTuple


class GroupMembership(NamedTuple):
    """One multicast group joined on one device (a row of /proc/net/igmp or /proc/net/igmp6).

    `address` is inet_ntop text ("224.0.0.1", "ff02::1"). `users` is the kernel's count of
    joins (the "Users" column netstat prints as RefCnt); only /proc has it, so a netlink record
    that has no /proc counterpart counts 1 (see join_with_proc). `index` is 0 when unknown.
    """

    family: int  # socket.AF_INET or socket.AF_INET6
    device: str
    address: str
    users: int
    ifindex: int = 0
