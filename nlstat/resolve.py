"""Numbers to names, with netstat's rules (net-tools lib/inet.c, lib/inet6.c, netstat.c).

Hosts go through the system resolver (NSS: /etc/hosts, then DNS) exactly as netstat asks it;
networks come from /etc/networks, services from /etc/services and /etc/protocols, read the way
netstat's getservent() walk reads them (the *last* duplicate wins). Every lookup is cached for
the run, so a 100k-row listing asks the resolver once per distinct address.
"""

from __future__ import annotations

import _socket
from typing import Dict, List, Optional, Tuple

# The files are read as NSS "files" would; tests point these at fixtures.
SERVICES_PATH = "/etc/services"
PROTOCOLS_PATH = "/etc/protocols"
NETWORKS_PATH = "/etc/networks"
NAME_CACHE_LIMIT = 1 << 16


def read_services(
    services_path: str = SERVICES_PATH, protocols_path: str = PROTOCOLS_PATH
) -> Dict[str, Dict[int, str]]:
    """Port -> official service name for "tcp", "udp" and "raw", as netstat builds them.

    netstat (INET_getsock/prepend) prepends every getservent() entry to a per-protocol list and
    searches from the head, so the last duplicate in /etc/services wins; then every
    /etc/protocols entry is prepended to the raw list, so protocol names beat raw services.
    Replaying that as dict assignment in file order gives the same winner.
    """
    tables: Dict[str, Dict[int, str]] = {"tcp": {}, "udp": {}, "raw": {}}
    try:
        with open(services_path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.split("#", 1)[0].split()
                if len(fields) < 2 or "/" not in fields[1]:
                    continue
                port_text, _, proto = fields[1].partition("/")
                table = tables.get(proto)
                if table is not None and port_text.isdigit():
                    table[int(port_text)] = fields[0]
    except OSError:
        pass
    try:
        with open(protocols_path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.split("#", 1)[0].split()
                if len(fields) >= 2 and fields[1].isdigit():
                    tables["raw"][int(fields[1])] = fields[0]
    except OSError:
        pass
    return tables


def parse_network_number(text: str) -> Optional[int]:
    """/etc/networks number -> host-order int; glibc pads short forms: "10.10" -> 10.10.0.0."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(p.isdigit() for p in parts):
        return None
    value = 0
    for part in parts:
        value = (value << 8) | (int(part) & 0xFF)
    return value << (8 * (4 - len(parts)))


def read_networks(path: str = NETWORKS_PATH) -> Dict[int, str]:
    """Network number -> name from /etc/networks; the first matching line wins (getnetbyaddr)."""
    names: Dict[int, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.split("#", 1)[0].split()
                if len(fields) >= 2:
                    number = parse_network_number(fields[1])
                    if number is not None and number not in names:
                        names[number] = fields[0]
    except OSError:
        pass
    return names


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
        self._networks: Optional[Dict[int, str]] = None
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
                if self._networks is None:
                    self._networks = read_networks()
                name = self._networks.get(value) or address
            self._remember(key, name)
        return name

    def socket_host4(self, address: str) -> str:
        """IPv4 host text in socket and group tables.

        netstat passes the "netmask" 255.255.255.0 as a host-order constant but tests it against
        the address in network order, so on little-endian CPUs the host bits it sees are the
        *first* octet: 0.x.y.z looks like a network and goes to /etc/networks (INET_rresolve()).
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
            self._services = read_services()
        return self._services

    def port(self, port: int, table: str) -> str:
        """Port text (lib/inet.c get_sname): "*" for 0, decimal under --numeric-ports or unnamed."""
        if port == 0:
            return "*"
        if self.numeric_ports or not table:
            return str(port)
        return self.services()[table].get(port) or str(port)

    def user(self, uid: int) -> str:
        """User column text (netstat.c finish_this_one()): the passwd name, else the decimal uid."""
        name = self._users.get(uid)
        if name is None:
            name = str(uid)
            if not self.numeric_users:
                import pwd  # only -e needs it

                try:
                    name = pwd.getpwuid(uid).pw_name
                except (KeyError, OverflowError):
                    name = str(uid)  # no passwd entry: netstat prints the number
            self._users[uid] = name
        return name


__all__: List[str] = [
    "Names",
    "read_services",
    "read_networks",
    "unmap_v4",
]
