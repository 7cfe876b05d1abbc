"""`netstat -g`: the multicast group table, step 7 of the socket listing (spec §3.1, §6).

`write_groups` writes the header and the rows, IPv4 (/proc/net/igmp) before IPv6
(/proc/net/igmp6), and returns netstat's status for the step. The user counts netstat prints
exist only in /proc, so auto reads /proc; a forced netlink backend takes the memberships from
RTM_GETMULTICAST and joins the counts (and /proc's device order) in (nlstat.backends).
"""

from __future__ import annotations

import _socket
import contextlib
from typing import Callable, List, Optional

from nlstat import backends
from nlstat.backends.procfs.groups import GroupReader, read_lines
from nlstat.env import Environment
from nlstat.errors import BackendUnavailable, ExitStatus
from nlstat.format.groups import HEADER, group_row
from nlstat.model.groups import GroupMembership
from nlstat.query import Query
from nlstat.resolve import Names


def _proc_rows(reader: GroupReader, path: str) -> list[GroupMembership]:
    return list(reader.read(read_lines(path)))


def _netlink_rows(
    query: Query, env: Environment, family: int, proc_rows: list[GroupMembership] | None,
    path: str,
) -> list[GroupMembership] | None:
    """Memberships from RTM_GETMULTICAST joined with /proc, or None when the kernel refuses
    (and netlink was not forced: then the refusal is an error)."""
    from nlstat.backends.netlink.groups import decode_memberships, dump_memberships, join_with_proc

    try:
        memberships = decode_memberships(dump_memberships(family))
    except BackendUnavailable as err:
        what = f"rtnetlink refused the {'IPv6' if family == _socket.AF_INET6 else 'IPv4'}"
        backends.refused(f"{what} multicast dump", err, env, query.verbose, path)
        return None
    return join_with_proc(memberships, proc_rows)


# (rows, "netlink" or "proc", "igmp" or "igmp6") -> their text; the JSON lines under --json.
RowsText = Callable[[List[GroupMembership], str, str], str]


def write_groups(query: Query, env: Environment, rows_text: Optional[RowsText] = None) -> int:
    """Write the group table; return 0, 1 (igmp missing and asked for) or 255 (unreadable)."""
    names = Names(query.numeric_hosts, query.numeric_ports, query.numeric_users)
    out = env.stdout
    if rows_text is None:
        out.write(HEADER.encode())
    source = "proc"
    reader = GroupReader(env.warn)
    netlink = backends.uses_netlink(backends.GROUPS, env)
    status = ExitStatus.OK

    if query.wants_inet_v4:
        path = env.proc("net", "igmp")
        rows: list[GroupMembership] | None = None
        missing = False
        try:
            rows = _proc_rows(reader, path)
        except (FileNotFoundError, PermissionError):
            missing = True
        except OSError as err:
            # netstat: perror(path) and return -1 before the IPv6 part.
            out.flush()
            env.warn(f"{path}: {err.strerror}")
            return ExitStatus.READ_ERROR
        if netlink:
            joined = _netlink_rows(query, env, _socket.AF_INET, rows, path)
            if joined is not None:
                rows, missing, source = joined, False, "netlink"
        if missing:
            if not query.implicit_protocols and (query.selections or query.verbose):
                out.flush()
                env.warn("netstat: no support for `AF INET (igmp)' on this system.")
            if not query.implicit_protocols and query.selections:
                status = ExitStatus.ERROR
        if rows_text is not None:
            if rows is not None:
                out.write(rows_text(rows, source, "igmp").encode("utf-8", "surrogateescape"))
        elif rows:
            out.write("".join(group_row(row, names) for row in rows).encode(
                "utf-8", "surrogateescape"))

    if query.wants_inet_v6:
        path = env.proc("net", "igmp6")
        rows = None
        source = "proc"
        # netstat skips a missing or unreadable IPv6 file silently.
        with contextlib.suppress(OSError):
            rows = _proc_rows(reader, path)
        if netlink:
            joined = _netlink_rows(query, env, _socket.AF_INET6, rows, path)
            if joined is not None:
                rows, source = joined, "netlink"
        if rows_text is not None:
            if rows is not None:
                out.write(rows_text(rows, source, "igmp6").encode("utf-8", "surrogateescape"))
        elif rows:
            out.write("".join(group_row(row, names) for row in rows).encode(
                "utf-8", "surrogateescape"))
    return status
