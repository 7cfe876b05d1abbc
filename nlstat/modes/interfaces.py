"""`netstat -i`: the interface table, short (`-i`) or long (`-ie`), once or under `-c` (spec §5).

The list and counters come from one RTM_GETLINK and one RTM_GETADDR dump, or from
/proc/net/dev and an ioctl per name as netstat does; the IPv6 lines of the long format come in
/proc/net/if_inet6 order, which only that file has (it is the kernel's address hash order):
auto reads it, a forced netlink backend sorts its dump by it. nlstat.backends decides.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from nlstat import backends
from nlstat.backends.procfs.links import InterfaceFetchError, ProcInterfaces, read_if_inet6
from nlstat.env import Environment
from nlstat.errors import BackendUnavailable, ExitStatus
from nlstat.format.interfaces import SHORT_HEADER, TITLE, render
from nlstat.kernel.link import IFF_UP
from nlstat.model.links import Inet6Address
from nlstat.query import OUTPUT_TEXT, Query

if TYPE_CHECKING:
    from nlstat.backends.netlink.links import NetlinkInterfaces


def _open_source(
    query: Query, env: Environment
) -> NetlinkInterfaces | ProcInterfaces:
    """The interface list from rtnetlink or /proc/net/dev (nlstat.backends)."""
    path = env.proc("net", "dev")
    if backends.uses_netlink(backends.LINKS, env):
        from nlstat.backends.netlink.links import NetlinkInterfaces

        try:
            return NetlinkInterfaces()
        except BackendUnavailable as err:
            backends.refused("rtnetlink refused the link dump", err, env, query.verbose, path)
    return ProcInterfaces(path, env.warn)


def _inet6_addresses(env: Environment, names: dict[int, str]) -> list[Inet6Address]:
    """The IPv6 lines' source, in /proc/net/if_inet6 order."""
    path = env.proc("net", "if_inet6")
    try:
        from_file: list[Inet6Address] | None = read_if_inet6(path)
    except OSError:
        from_file = None
    if not backends.uses_netlink(backends.INET6_ADDRESSES, env):
        return from_file or []
    from nlstat.backends.netlink.links import ipv6_addresses

    try:
        addresses = ipv6_addresses(names)
    except BackendUnavailable as err:
        backends.refused("rtnetlink refused the IPv6 address dump", err, env, False, path)
        return from_file or []
    if from_file is None:
        return addresses
    rank = {(entry.ifindex, entry.address): position for position, entry in enumerate(from_file)}
    last = len(rank)
    return sorted(addresses, key=lambda entry: rank.get((entry.ifindex, entry.address), last))


def list_once(query: Query, env: Environment, first: bool) -> int:
    """One listing; the title only on the first (netstat keeps its socket open under -c)."""
    long_format = query.extend >= 1
    parts: list[str] = []
    if first:
        parts.append(TITLE)
    if not long_format:
        parts.append(SHORT_HEADER)
    try:
        source = _open_source(query, env)
    except OSError as err:
        _write(env, parts)
        env.warn(f"missing interface information: {os.strerror(err.errno or 0)}")
        return ExitStatus.ERROR
    try:
        inet6 = _inet6_addresses(env, source.names()) if long_format else []
        try:
            for interface in source:
                if interface.flags & IFF_UP or query.all:
                    parts.append(render(interface, long_format, inet6))
        except InterfaceFetchError as err:
            _write(env, parts)
            reason = "Device not found" if err.errno == errno.ENODEV else os.strerror(err.errno)
            env.warn(f"{err.name}: error fetching interface information: {reason}")
            env.warn(f"missing interface information: {os.strerror(err.errno)}")
            return ExitStatus.ERROR
    finally:
        source.close()
    _write(env, parts)
    return ExitStatus.OK


def _write(env: Environment, parts: list[str]) -> None:
    if parts:
        env.stdout.write("".join(parts).encode("utf-8", "surrogateescape"))


def run(query: Query, env: Environment) -> int:
    if query.output != OUTPUT_TEXT:
        from nlstat.modes.structured import run_interfaces

        return run_interfaces(query, env)
    first = True
    while True:
        status = list_once(query, env, first)
        if status or not query.continuous:
            return status
        first = False
        env.stdout.flush()
        env.sleep(1)
