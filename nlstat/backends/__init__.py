"""Where records come from: the kernel over netlink, or /proc text. One rule for every table.

The rule lives here, in the package's front door, which every mode imports anyway (a module
of its own would cost every small mode another 0.1 ms of start-up).

The rule (NLSTAT_BACKEND, or --backend, which overrides it):

proc     Every table from /proc (under NLSTAT_PROC_ROOT); netlink is never asked.
netlink  Every table's rows from netlink. A refused request is an error: one line on stderr
         and status 1 (rows already written stay written; -M's line is netstat's own -M
         failure, which says the same), never a silent /proc listing.
         What netlink does not carry is joined in from /proc when it can be read (unix RefCnt,
         the -g Users column, the /proc/net/if_inet6 order of -ie's IPv6 lines); what it cannot
         give on this kernel is read from /proc with a one-line note on stderr.
auto     netlink for a table when it gives every column asked for (`NETLINK_GIVES_ALL`: the
         columns netstat prints), /proc otherwise; --json asks for unix sockets' peer and
         cookie, which only unix_diag has (backends/sockets.py unix_from_diag). A refused
         request falls back to /proc, said under -v or NLSTAT_DEBUG. With NLSTAT_PROC_ROOT
         set to anything but /proc, auto
         replays that captured /proc: every table from there, netlink is never asked
         (`Environment.replay`; the tests feed captured files this way).

Tables netlink cannot give come from /proc under every backend: the -s counters, which no
netlink interface carries (`proc_only`: the backend setting changes nothing, output and stderr
included), and a socket protocol whose sock_diag handler this kernel lacks (ENOENT:
CONFIG_INET_RAW_DIAG=n is common; `no_netlink_source`: said on stderr under forced netlink,
under auto only with NLSTAT_DEBUG, so that -v's stderr stays netstat's).
"""

from __future__ import annotations

import errno
from typing import Dict, Optional

from nlstat.env import Environment
from nlstat.errors import BackendUnavailable, NlstatError
from nlstat.query import BACKEND_NETLINK, BACKEND_PROC

INET = "inet"  # tcp, udp, udplite, raw over IPv4 and IPv6: sock_diag
UNIX = "unix"  # unix_diag
ROUTES4 = "routes4"  # -r, IPv4 FIB: RTM_GETROUTE
ROUTES6 = "routes6"  # -r -6: RTM_GETROUTE
ROUTE_CACHE4 = "route_cache4"  # -rC
LINKS = "links"  # -i: RTM_GETLINK and RTM_GETADDR
INET6_ADDRESSES = "inet6_addresses"  # -ie's IPv6 lines: RTM_GETADDR
GROUPS = "groups"  # -g: RTM_GETMULTICAST
CONNTRACK = "conntrack"  # -M: ctnetlink
SNMP = "snmp"  # -s

# Does netlink give every column netstat prints for the table? None: no netlink source at all.
NETLINK_GIVES_ALL: Dict[str, Optional[bool]] = {
    INET: True,
    UNIX: False,  # RefCnt (sk_refcnt) is only in /proc/net/unix; so is the socket-level state
    ROUTES4: True,
    ROUTES6: False,  # no fib6_ref (the Ref column) in the dump
    ROUTE_CACHE4: False,  # the cache left Linux in 3.6; netlink has nothing, /proc a title line
    LINKS: True,
    INET6_ADDRESSES: False,  # their order (the kernel's address hash) is only in if_inet6
    GROUPS: False,  # the Users column is only in /proc/net/igmp and igmp6
    CONNTRACK: True,
    SNMP: None,  # the SNMP MIB counters are only in /proc/net/snmp, snmp6, netstat
}


def uses_netlink(table: str, env: Environment) -> bool:
    """Whether this run asks netlink for this table's rows (the rule above)."""
    complete = NETLINK_GIVES_ALL[table]
    if complete is None or env.backend == BACKEND_PROC:
        return False
    if env.backend == BACKEND_NETLINK:
        return True
    return complete and not env.replay


def refused(
    what: str, err: BackendUnavailable, env: Environment, verbose: bool, instead: str
) -> None:
    """netlink refused `what`: raise under forced netlink, else say that `instead` is read.

    `what` names the request ("rtnetlink refused the IPv4 routes dump"), `instead` the /proc
    file read in its place. Returns only when /proc is to be read.
    """
    if env.backend == BACKEND_NETLINK:
        raise NlstatError(f"{what} ({err}); no /proc fallback with the backend netlink")
    if verbose or env.debug:
        env.warn(f"nlstat: {what} ({err}); reading {instead}")


def no_netlink_source(what: str, env: Environment, instead: str) -> None:
    """This kernel has no netlink handler for `what` (sock_diag's ENOENT): `instead` is read
    under every backend, and a forced netlink backend is told so on stderr."""
    if env.backend == BACKEND_NETLINK or env.debug:
        env.warn(f"nlstat: {what}; reading {instead}")


def proc_only(what: str, env: Environment) -> None:
    """A table no netlink interface carries (the -s counters): /proc under every backend,
    the backend's setting changes nothing (said under NLSTAT_DEBUG only)."""
    env.trace(f"{what} come from /proc only (no netlink source); the backend changes nothing")


def handler_missing(err: BackendUnavailable) -> bool:
    """sock_diag's answer when this kernel has no diag handler for the protocol (ENOENT)."""
    return err.errno == errno.ENOENT


def stops_asking(err: BackendUnavailable) -> bool:
    """A refusal that will repeat for every later request of the run (not root, no family)."""
    return err.errno in (errno.EPROTONOSUPPORT, errno.EPERM, errno.EACCES, errno.EAFNOSUPPORT)
