"""`netstat -M`: NAT'd connections, rebuilt from conntrack in netstat's masquerade layout (spec §8).

netstat read /proc/net/ip_masquerade, which Linux dropped with 2.4, so its -M always fails now.
nlstat lists the translated entries of the conntrack table instead: from ctnetlink, or from
/proc/net/nf_conntrack (nlstat.backends decides). Only IPv4 entries are listed, as
ip_masquerade held IPv4 only. When the source cannot be read (no conntrack, not root; under a
forced netlink backend a refusal is not followed by /proc) nlstat says what netstat says and
exits 1, so it degrades to netstat's behaviour: that line is -M's one-line error.
"""

from __future__ import annotations

import _socket
from typing import List, Optional

from nlstat import backends
from nlstat.env import Environment
from nlstat.errors import BackendUnavailable, ExitStatus
from nlstat.format.masquerade import render
from nlstat.model.conntrack import ConntrackEntry, is_nat
from nlstat.query import BACKEND_NETLINK, OUTPUT_TEXT, Query
from nlstat.resolve import Names

# lib/masq_info.c: ESYSNOT("netstat", "ip_masquerade") when the file cannot be opened.
NO_SUPPORT = "netstat: no support for `ip_masquerade' on this system."


def run(query: Query, env: Environment) -> int:
    if query.output != OUTPUT_TEXT:
        from nlstat.modes.structured import run_masquerade

        return run_masquerade(query, env)
    names = Names(query.numeric_hosts, query.numeric_ports, query.numeric_users)
    extend = query.extend + 1  # netstat's flag_exp
    # netstat.c: for (;;) { i = ip_masq_info(); if (i || !flag_cnt) break; wait_continous(); }
    while True:
        entries = collect(env, query.verbose)
        if entries is None:
            env.stdout.flush()
            env.warn(NO_SUPPORT)
            return ExitStatus.ERROR
        env.stdout.write(render(entries, names, extend))
        if not query.continuous:
            return ExitStatus.OK
        env.stdout.flush()
        env.sleep(1)


def collect(env: Environment, verbose: bool = False) -> Optional[List[ConntrackEntry]]:
    """The NAT'd IPv4 entries in kernel order, or None when no source can be read."""
    entries: Optional[List[ConntrackEntry]] = None
    if backends.uses_netlink(backends.CONNTRACK, env):
        entries = _from_netlink(env, verbose)
        if entries is None and env.backend == BACKEND_NETLINK:
            return None  # forced netlink, refused: the error is netstat's -M line
    if entries is None:
        entries = _from_proc(env)
    if entries is None:
        return None
    return [entry for entry in entries if entry.family == _socket.AF_INET and is_nat(entry)]


def _from_netlink(env: Environment, verbose: bool) -> Optional[List[ConntrackEntry]]:
    from nlstat.backends.netlink import conntrack

    try:
        entries = list(conntrack.entries(_socket.AF_INET))
    except BackendUnavailable as err:
        if env.backend == BACKEND_NETLINK:
            env.trace(f"-M: ctnetlink refused ({err}); no /proc fallback with the backend netlink")
        else:
            backends.refused("ctnetlink refused the conntrack dump", err, env, verbose,
                           env.proc("net", "nf_conntrack"))
        return None
    env.trace(f"-M: {len(entries)} conntrack entries from ctnetlink")
    return entries


def _from_proc(env: Environment) -> Optional[List[ConntrackEntry]]:
    from nlstat.backends.procfs import conntrack

    path = env.proc("net", "nf_conntrack")
    try:
        entries = list(conntrack.read_entries(path))
    except OSError as err:
        env.trace(f"-M: cannot read {path}: {err.strerror}")
        return None
    env.trace(f"-M: {len(entries)} conntrack entries from {path}")
    return entries
