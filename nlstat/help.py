"""nlstat's usage, help and version texts, in net-tools netstat's layout (netstat.c `usage()`).

Imported only when one of them is printed, so an ordinary listing never pays for building them.
"""

from __future__ import annotations

from typing import Iterable, Tuple

from nlstat import __version__

# netstat's print_aflist(1) (lib/af.c): the routable families it was built with, three per line,
# each entry followed by one blank. netstat writes it to stderr even for --help, after the usage
# text; scripts that parse `netstat -h 2>&1` see it, so it is copied byte for byte.
FAMILY_LIST = (
    "    inet (DARPA Internet) inet6 (IPv6) ax25 (AMPR AX.25) \n"
    "    netrom (AMPR NET/ROM) rose (AMPR ROSE) ipx (Novell IPX) \n"
    "    ddp (Appletalk DDP) x25 (CCITT X.25) \n"
)

# The netstat release whose behaviour nlstat reproduces (spec: Debian net-tools 2.10-0.1+deb12u2).
NETSTAT_RELEASE = "net-tools 2.10"

_HEAD = (
    "usage: nlstat [-vWeenNcCF] [<Af>] -r         nlstat {-V|--version|-h|--help}\n"
    "       nlstat [-vWnNcaeol] [<Socket> ...]\n"
    "       nlstat { [-vWeenNac] -i | [-cnNe] -M | -s [-6tuw] }\n"
    "\n"
    "        -r, --route              display routing table\n"
    "        -i, --interfaces         display interface table\n"
    "        -g, --groups             display multicast group memberships\n"
    "        -s, --statistics         display networking statistics (like SNMP)\n"
    "        -M, --masquerade         display masqueraded connections\n"
    "\n"
    "        -v, --verbose            be verbose\n"
    "        -W, --wide               don't truncate IP addresses\n"
    "        -n, --numeric            don't resolve names\n"
    "        --numeric-hosts          don't resolve host names\n"
    "        --numeric-ports          don't resolve port names\n"
    "        --numeric-users          don't resolve user names\n"
    "        -N, --symbolic           resolve hardware names\n"
    "        -e, --extend             display other/more information\n"
    "        -p, --programs           display PID/Program name for sockets\n"
    "        -o, --timers             display timers\n"
    "        -c, --continuous         continuous listing\n"
    "\n"
    "        -l, --listening          display listening server sockets\n"
    "        -a, --all                display all sockets (default: connected)\n"
    "        -F, --fib                display Forwarding Information Base (default)\n"
    "        -C, --cache              display routing cache instead of FIB\n"
    "        -Z, --context            display SELinux security context for sockets\n"
)

_TAIL = (
    "\n"
    "  <Socket>={-t|--tcp} {-u|--udp} {-U|--udplite} {-S|--sctp} {-w|--raw}\n"
    "           {-x|--unix} --ax25 --ipx --netrom\n"
    "  <AF>=Use '-6|-4' or '-A <af>' or '--<af>'; default: inet\n"
    "  List of possible address families (which support routing):\n"
)

# netstat's option column: 8 blanks, then the option padded to 25 (`-r, --route` + blanks).
_OPTION_WIDTH = 25


def usage_text(own_options: Iterable[Tuple[str, str]]) -> str:
    """The help body: netstat's text with nlstat's own options added in the same style.

    `own_options` is (option as shown, description) for each nlstat-only option, in the order
    of cli.OWN_OPTIONS. A long option that overflows the column keeps two blanks before its
    description, as GNU tools do.
    """
    lines = [_HEAD, "\n"]
    for shown, description in own_options:
        pad = max(_OPTION_WIDTH - len(shown), 2)
        lines.append(f"        {shown}{' ' * pad}{description}\n")
    lines.append(_TAIL)
    return "".join(lines)


def version_text(backend: str) -> str:
    """`nlstat -V`: nlstat's own release, the netstat it copies, and the data sources."""
    return (
        f"nlstat {__version__} (netstat-compatible: {NETSTAT_RELEASE})\n"
        f"backends: netlink, proc (selected: {backend})\n"
    )
