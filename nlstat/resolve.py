"""Numbers to names, with netstat's rules (net-tools lib/inet.c, lib/inet6.c, netstat.c).

Every name comes from the system's resolver, asked the way netstat asks it: hosts with
gethostbyaddr()/getnameinfo(), users with getpwuid(), services and protocols with one
getservent()/getprotoent() walk, networks with getnetbyaddr() (the last three in nlstat.nss,
through ctypes, imported only when such a name is printed). So NSS decides, as it does for
netstat: /etc files, services.db, NIS, LDAP, and the /etc/netns/<name>/ copies that
`ip netns exec` binds over them. Every lookup is cached for the run, so a 100k-row listing
asks the resolver once per distinct address.
"""

from __future__ import annotations

import _socket
from typing import Dict, List, Optional, Tuple

NAME_CACHE_LIMIT = 1 << 16


def load_services() -> Dict[str, Dict[int, str]]:
    """Port -> service name for "tcp", "udp" and "raw" (protocol numbers), as netstat has them."""
    from nlstat import nss

    return nss.services()


def lookup_network(number: int) -> Optional[str]:
    """getnetbyaddr()'s n_name for a host-order IPv4 network number, or None."""
    from nlstat import nss

    return nss.network_name(number)


def lookup_host(address: str) -> Optional[str]:
    """gethostbyaddr()'s h_name, or None (netstat falls back to the numeric text)."""
    try:
        return _socket.gethostbyaddr(address)[0]
    except (OSError, UnicodeError, ValueError):
        return None


def lookup_host6(address: str) -> str:
    """getnameinfo() with flags 0: a name, or the numeric text when nothing is found."""
    try:
        return _socket.getnameinfo((address, 0, 0, 0), 0)[0]
    except (OSError, UnicodeError, ValueError):
        return address


def unmap_v4(text: str) -> str:
    """netstat keeps only the IPv4 part of a v4-mapped text: "::ffff:127.0.0.1" -> "127.0.0.1"."""
    dot = text.find(".")
    if dot < 0:
        return text
    return text[text.rfind(":", 0, dot) + 1 :]


class Names:
    """Per-run, cached name lookups for one set of numeric switches."""

    def __init__(
        self,
        numeric_hosts: bool = False,
        numeric_ports: bool = False,
        numeric_users: bool = False,
    ) -> None:
        self.numeric_hosts = numeric_hosts
        self.numeric_ports = numeric_ports
        self.numeric_users = numeric_users
        self._hosts: Dict[Tuple[str, bool], str] = {}
        self._hosts6: Dict[str, str] = {}
        self._services: Optional[Dict[str, Dict[int, str]]] = None
        self._users: Dict[int, str] = {}

    def _remember(self, key: Tuple[str, bool], name: str) -> None:
        # netstat keeps every name; a bound keeps memory flat with a million distinct peers.
        if len(self._hosts) > NAME_CACHE_LIMIT:
            self._hosts.clear()
        self._hosts[key] = name

    # -- IPv4 (lib/inet.c INET_rresolve) ------------------------------------------------------

    def inet_name(
        self,
        address: str,
        netmask: int,
        numeric: bool,
        default_word: bool = False,
        force_host: bool = False,
    ) -> str:
        """IPv4 address text -> netstat's text (lib/inet.c INET_rresolve); netmask in host order."""
        if numeric:
            return address
        value = int.from_bytes(_socket.inet_aton(address), "big")
        if value == 0:
            if netmask == 0:
                return "default" if default_word else "*"
            return address
        is_host = force_host or (value & ~netmask & 0xFFFFFFFF) != 0
        key = (address, is_host)
        name = self._hosts.get(key)
        if name is None:
            if is_host:
                name = lookup_host(address) or address
            else:
                name = lookup_network(value) or address
            self._remember(key, name)
        return name

    def socket_host4(self, address: str) -> str:
        """IPv4 host text in socket and group tables.

        netstat passes the "netmask" 255.255.255.0 as a host-order constant but tests it against
        the address in network order, so on little-endian CPUs the host bits it sees are the
        *first* octet: 0.x.y.z looks like a network and goes to getnetbyaddr() (INET_rresolve()).
        """
        if self.numeric_hosts or address == "0.0.0.0":
            return address
        if address.startswith("0."):
            return self.inet_name(address, 0xFFFFFFFF, False)
        key = (address, True)
        name = self._hosts.get(key)
        if name is None:
            name = lookup_host(address) or address
            self._remember(key, name)
        return name

    # -- IPv6 (lib/inet6.c INET6_rresolve) ----------------------------------------------------

    def inet6_name(self, address: str, numeric: bool) -> str:
        """IPv6 address text -> netstat's text: "[::]" for the wildcard, names via getnameinfo."""
        if numeric:
            text = address
        elif address == "::":
            return "[::]"
        else:
            text = self._hosts6.get(address)  # type: ignore[assignment]
            if text is None:
                text = lookup_host6(address)
                if len(self._hosts6) > NAME_CACHE_LIMIT:
                    self._hosts6.clear()
                self._hosts6[address] = text
        if text.startswith("::ffff:"):
            text = unmap_v4(text)
        return text

    def socket_host6(self, address: str) -> str:
        return self.inet6_name(address, self.numeric_hosts)

    # -- services, users ----------------------------------------------------------------------

    def services(self) -> Dict[str, Dict[int, str]]:
        if self._services is None:
            self._services = load_services()
        return self._services

    def port(self, port: int, table: str) -> str:
        """Port text (lib/inet.c get_sname): "*" for 0, decimal under --numeric-ports or unnamed."""
        if port == 0:
            return "*"
        if self.numeric_ports or not table:
            return str(port)
        return self.services()[table].get(port) or str(port)

    def user(self, uid: int) -> str:
        """User column text (netstat.c finish_this_one()): the passwd name, else the decimal uid
        as netstat's `int uid` prints it with `%d` (3000000000 is -1294967296)."""
        name = self._users.get(uid)
        if name is None:
            from .cscan import to_s32

            name = str(to_s32(uid))
            if not self.numeric_users:
                import pwd  # only -e needs it

                try:
                    name = pwd.getpwuid(uid).pw_name
                except (KeyError, OverflowError):
                    pass  # no passwd entry: netstat prints the number
            self._users[uid] = name
        return name


__all__: List[str] = [
    "Names",
    "load_services",
    "lookup_network",
    "unmap_v4",
]
