"""`netstat -r`: the family list walked as net-tools lib/getroute.c route_info() walks it
each family's tables from netlink or /proc, then formatted and written.

Backends per table (nlstat.backends): under auto the IPv4 FIB comes from rtnetlink (every
column /proc/net/route prints is in the dump), IPv6 from /proc/net/ipv6_route, because the dump
has no fib6_ref (the Ref column) and the null entries have to be made up, and the IPv4 cache
from /proc/net/rt_cache (forced netlink: its modern, always empty, layout). AX.25, NET/ROM,
X.25 and ROSE tables are copied from their /proc files the way netstat copies them; IPX and
DDP give netstat's "not configured" messages.
"""

from __future__ import annotations

import errno
import gc
import os
from typing import List, Optional

from nlstat import backends
from nlstat.env import Environment
from nlstat.errors import BackendUnavailable, ExitStatus, NlstatError
from nlstat.format.routes import (
    Ipv4Rows,
    Ipv6Rows,
    ipv4_cache_lines,
    ipv4_header,
    ipv6_header,
    route_layout,
)
from nlstat.model.routes import Route6, RouteCache
from nlstat.query import OUTPUT_TEXT, Query
from nlstat.resolve import Names

# Families netstat knows but has no route printer for (the aftype name is printed).
NO_ROUTING = ("unix", "ec", "ash")
# The /proc files of the other families' printers (x25: the first that exists). Missing,
# they give their printers' messages and status 1; present (the ax25, netrom, rose and x25
# modules are still in Linux), their tables.
LEGACY_FILES = {
    "ipx": ("net/ipx/route", "net/ipx_route"),
    "ax25": ("net/ax25_route",),
    "netrom": ("net/nr_nodes", "net/nr_neigh"),
    "x25": ("net/x25/route", "net/x25_routes"),
    "rose": ("net/rose_nodes",),
    "ddp": ("net/atalk_route",),
}
# Text pieces per write(): large enough that write() costs nothing, small enough to stream.
BATCH_LINES = 4096


class RouteRun:
    """One `netstat -r` run: settings fixed by the query, name caches kept across -c passes
    (netstat's INET_nn cache lives as long as the process)."""

    def __init__(self, query: Query, env: Environment) -> None:
        self.query = query
        self.env = env
        self.ext = route_layout(query.extend)
        self.fib = query.fib or not query.cache
        self.cache = query.cache
        numeric = query.numeric_hosts or query.symbolic
        self.names: Optional[Names] = None if numeric else Names()
        self.netlink_refused = not backends.uses_netlink(backends.ROUTES4, env)

    # -- output ---------------------------------------------------------------------------

    def write(self, lines: List[str]) -> None:
        write = self.env.stdout.write
        for start in range(0, len(lines), BATCH_LINES):
            write("".join(lines[start : start + BATCH_LINES]).encode("utf-8", "surrogateescape"))

    def perror(self, path: str, err: OSError) -> None:
        self.env.warn(f"{path}: {err.strerror or os.strerror(err.errno or 0)}")

    # -- the walk -------------------------------------------------------------------------

    def once(self) -> int:
        """route_info(): each family in order; the first failing family ends the walk."""
        for family in self.query.families or ("inet",):
            if family == "inet":
                status = self.ipv4()
            elif family == "inet6":
                status = self.ipv6()
            elif family in NO_ROUTING:
                self.env.warn(f"No routing for address family `{family}'.")
                return ExitStatus.USAGE
            elif family in LEGACY_FILES:
                status = self.legacy(family)
            else:
                self.env.warn(f"Address family `{family}' not supported.")
                return ExitStatus.USAGE
            if status:
                return status
        return ExitStatus.OK

    # -- IPv4 -----------------------------------------------------------------------------

    def ipv4(self) -> int:
        """INET_rprint(): the FIB, then (-C) the cache; a failing FIB skips the cache."""
        if self.fib:
            status = self.ipv4_fib()
            if status:
                return status
        if self.cache:
            return self.ipv4_cache()
        return ExitStatus.OK

    def ipv4_fib(self) -> int:
        text: Optional[List[bytes]] = None
        if not self.netlink_refused:
            text = self._netlink_ipv4()
        if text is None:
            return self._proc_ipv4()
        self.write([ipv4_header(self.ext)])
        for piece in text:
            self.env.stdout.write(piece)
        return ExitStatus.OK

    def _netlink_ipv4(self) -> Optional[List[bytes]]:
        """The rows' text, decoded and formatted chunk by chunk as the dump arrives (on two
        cores once it is long), held until the dump has ended: a refusal halfway through (a
        nexthop object) falls back to /proc without a row printed twice, and a dump flagged
        NLM_F_DUMP_INTR is decoded again from a new dump (nlsocket.consistent())."""
        from nlstat.backends.netlink import routes as netlink_routes
        from nlstat.backends.netlink.nlsocket import consistent
        from nlstat.pipeline import ordered_map

        names = netlink_routes.InterfaceNames()

        def read(last: bool) -> List[bytes]:
            decoder = netlink_routes.Ipv4Decoder(names)
            rows = Ipv4Rows(self.ext, self.names)

            def work(chunk: bytes) -> bytes:
                decoder.feed(chunk)
                rendered = "".join(rows.render_all(decoder.take()))
                return rendered.encode("utf-8", "surrogateescape")

            return list(ordered_map(netlink_routes.ipv4_chunks(last), work))

        try:
            text = consistent(read)
        except BackendUnavailable as err:
            self.refused("IPv4 routes", err, self.env.proc("net", "route"))
            return None
        self.env.trace("IPv4 routes from rtnetlink")
        return text

    def refused(self, what: str, err: BackendUnavailable, instead: str) -> None:
        """netlink said no: an error when it was forced, else /proc, said under -v."""
        backends.refused(f"rtnetlink refused the {what} dump", err, self.env, self.query.verbose,
                       instead)
        if backends.stops_asking(err):
            self.netlink_refused = True

    def _proc_ipv4(self) -> int:
        from nlstat.backends.procfs.routes import read_ipv4

        path = self.env.proc("net", "route")
        self.env.trace(f"IPv4 routes from {path}")
        try:
            table = read_ipv4(path)
        except OSError as err:
            self.perror(path, err)
            self.write(["INET (IPv4) not configured in this system.\n"])
            return ExitStatus.ERROR
        # netstat prints the title and header before it looks at the file's title line.
        lines = [ipv4_header(self.ext)]
        if table.error is not None:
            self.write(lines)
            if table.error:
                self.env.warn(table.error)
            return ExitStatus.ERROR
        lines.extend(Ipv4Rows(self.ext, self.names).render_all(table.routes))
        self.write(lines)
        return ExitStatus.OK

    def ipv4_cache(self) -> int:
        if backends.uses_netlink(backends.ROUTE_CACHE4, self.env):
            # The cache left in Linux 3.6; the file has kept only its 2.2-layout title line.
            cache = RouteCache(layout=2, entries=[])
        else:
            from nlstat.backends.procfs.routes import read_ipv4_cache

            path = self.env.proc("net", "rt_cache")
            try:
                cache = read_ipv4_cache(path)
            except OSError as err:
                self.perror(path, err)
                self.write(["INET (IPv4) not configured in this system.\n"])
                return ExitStatus.ERROR
            if cache.layout == -1:
                # proc_guess_fmt() could not read the title: netstat prints its title, then
                # perror() and exit(-1).
                self.write(["Kernel IP routing cache\n"])
                self.env.warn(f"{path}: {os.strerror(errno.ENOENT)}")
                return ExitStatus.READ_ERROR
        self.write(ipv4_cache_lines(cache, self.ext, self.names))
        return ExitStatus.OK

    # -- IPv6 -----------------------------------------------------------------------------

    def ipv6(self) -> int:
        """INET6_rprint(): the FIB, then (-C) the RTF_CACHE lines (/proc/net/ndisc is gone)."""
        if self.fib:
            status = self.ipv6_table(cache=False)
            if status:
                return status
        if self.cache:
            return self.ipv6_table(cache=True)
        return ExitStatus.OK

    def ipv6_table(self, cache: bool) -> int:
        routes: Optional[List[Route6]] = None
        path = self.env.proc("net", "ipv6_route")
        if backends.uses_netlink(backends.ROUTES6, self.env):
            # The decoder skips cloned (RTM_F_CLONED) routes and never sets RTF_CACHE, so the
            # cache view is empty: as in ipv4_cache(), nothing is dumped for it.
            routes = [] if cache else self._netlink_ipv6(path)
        if routes is None:
            from nlstat.backends.procfs.routes import read_ipv6

            self.env.trace(f"IPv6 routes from {path}")
            try:
                routes = read_ipv6(path, cache)
            except OSError as err:
                self.perror(path, err)
                self.write(["INET6 (IPv6) not configured in this system.\n"])
                return ExitStatus.ERROR
        self.write([ipv6_header(cache)] + Ipv6Rows(self.names).render_all(routes))
        return ExitStatus.OK

    def _netlink_ipv6(self, instead: str) -> Optional[List[Route6]]:
        from nlstat.backends.netlink.routes6 import read_ipv6

        try:
            routes = read_ipv6()
        except BackendUnavailable as err:
            self.refused("IPv6 routes", err, instead)
            return None
        self.env.trace("IPv6 routes from rtnetlink (no Ref column there: printed as 1)")
        return routes

    # -- families whose /proc files are gone ----------------------------------------------

    def legacy(self, family: str) -> int:
        """IPX/AX25/NETROM/X25/ROSE/DDP_rprint (lib/*_gr.c): their tables when the kernel
        has the protocol's /proc files, else those printers' messages."""
        from nlstat.backends.procfs.routes import read_fgets
        from nlstat.format import routes as legacy_format

        paths = [self.env.proc(*name.split("/")) for name in LEGACY_FILES[family]]
        present = [os.path.exists(path) for path in paths]
        enoent = os.strerror(errno.ENOENT)
        try:
            if family == "ax25" and present[0]:
                self.write(legacy_format.ax25_lines(read_fgets(paths[0])))
                return ExitStatus.OK
            if family == "netrom" and all(present):
                nodes, neighbours = read_fgets(paths[0]), read_fgets(paths[1])
                self.write(legacy_format.netrom_lines(nodes, neighbours))
                return ExitStatus.OK
            if family == "x25" and any(present):
                self.write(legacy_format.x25_lines(read_fgets(paths[present.index(True)])))
                return ExitStatus.OK
            if family == "rose" and present[0]:
                # Without rose_neigh netstat crashes in fclose(NULL); no neighbours here.
                neighbours_path = self.env.proc("net", "rose_neigh")
                has_neighbours = os.path.exists(neighbours_path)
                neighbours = read_fgets(neighbours_path) if has_neighbours else []
                self.write(legacy_format.rose_lines(read_fgets(paths[0]), neighbours))
                return ExitStatus.OK
        except OSError as err:
            self.perror(err.filename or paths[0], err)
            return ExitStatus.ERROR
        if family == "ipx" and not any(present):
            self.env.warn(enoent)
            self.write([
                "IPX routing not in file /proc/net/ipx/route or /proc/net/ipx_route found.\n"
            ])
            return ExitStatus.ERROR
        if family == "ax25":
            self.env.warn(f"{paths[0]}: {enoent}")
            self.write(["AX.25 not configured in this system.\n"])
            return ExitStatus.ERROR
        if family == "netrom":
            if not present[0]:
                self.env.warn(f"{paths[0]}: {enoent}")
            if not present[1]:
                # perror() for nr_nodes leaves errno at EINVAL when both are missing.
                code = errno.EINVAL if not present[0] else errno.ENOENT
                self.env.warn(f"{paths[1]}: {os.strerror(code)}")
            self.write(["NET/ROM not configured in this system.\n"])
            return ExitStatus.ERROR
        if family == "x25":
            self.write(["X.25 not configured in this system.\n"])
            return ExitStatus.ERROR
        if family == "rose":
            self.env.warn(f"{paths[0]}: {enoent}")
            self.env.warn("ROSE not configured in this system.")
            return ExitStatus.ERROR
        if family == "ddp" and not present[0]:
            self.env.warn(f"Error opening {paths[0]}: {enoent}")
            self.env.warn("DDP (AppleTalk) not configured on this system.")
            return ExitStatus.ERROR
        # IPX left Linux in 4.18 and /proc/net/atalk_route in 2.6: not implemented.
        raise NlstatError(f"routing tables of address family `{family}' are not supported")


def run(query: Query, env: Environment) -> int:
    """netstat -r [-c]: every pass prints every family's titles, headers and rows."""
    if query.output != OUTPUT_TEXT:
        from nlstat.modes.structured import run_routes

        return run_routes(query, env)
    route_run = RouteRun(query, env)
    while True:
        # A pass allocates a few objects per route and no reference cycles; the cyclic
        # collector would walk them all again and again (much of a big table's time). It runs
        # again between -c passes.
        gc.disable()
        try:
            status = route_run.once()
        finally:
            gc.enable()
        if status or not query.continuous:
            return status
        env.stdout.flush()
        env.sleep(1)
