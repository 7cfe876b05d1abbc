"""The C library's services, protocols and networks databases, asked as netstat asks them.

netstat names ports by walking getservent() and getprotoent() once (lib/inet.c INET_getsock,
prepend) and networks with getnetbyaddr() (INET_rresolve), so what it prints is whatever NSS
answers: /etc/services and friends under "files", services.db under "db", NIS, LDAP, ... as
/etc/nsswitch.conf says (and the /etc/netns/<name>/ copies `ip netns exec` binds over them).
Python's socket module has neither getservent nor getprotoent nor getnetbyaddr, so these go
through ctypes. This module is imported only when a name is to be printed (never under -n):
ctypes costs ~1.3 ms to import.
"""

from __future__ import annotations

import _socket
import ctypes
import os
from typing import Dict, Optional

_CharArray = ctypes.POINTER(ctypes.c_char_p)


class _Servent(ctypes.Structure):
    # struct servent (netdb.h): s_port is in network byte order.
    _fields_ = [
        ("s_name", ctypes.c_char_p),
        ("s_aliases", _CharArray),
        ("s_port", ctypes.c_int),
        ("s_proto", ctypes.c_char_p),
    ]


class _Protoent(ctypes.Structure):
    # struct protoent (netdb.h)
    _fields_ = [
        ("p_name", ctypes.c_char_p),
        ("p_aliases", _CharArray),
        ("p_proto", ctypes.c_int),
    ]


class _Netent(ctypes.Structure):
    # struct netent (netdb.h): n_net in host byte order.
    _fields_ = [
        ("n_name", ctypes.c_char_p),
        ("n_aliases", _CharArray),
        ("n_addrtype", ctypes.c_int),
        ("n_net", ctypes.c_uint32),
    ]


def _libc() -> Optional[ctypes.CDLL]:
    try:
        libc = ctypes.CDLL(None)  # the running process's symbols: the C library Python uses
        libc.getservent.restype = ctypes.POINTER(_Servent)
        libc.getservent.argtypes = []
        libc.getprotoent.restype = ctypes.POINTER(_Protoent)
        libc.getprotoent.argtypes = []
        libc.getnetbyaddr.restype = ctypes.POINTER(_Netent)
        libc.getnetbyaddr.argtypes = [ctypes.c_uint32, ctypes.c_int]
        libc.getnetent.restype = ctypes.POINTER(_Netent)
        libc.getnetent.argtypes = []
        libc.setnetent.argtypes = [ctypes.c_int]
        libc.setservent.argtypes = [ctypes.c_int]
        libc.setprotoent.argtypes = [ctypes.c_int]
    except (OSError, AttributeError):  # a C library without these: every name stays a number
        return None
    return libc


_LIBC = _libc()


def services() -> Dict[str, Dict[int, str]]:
    """Port -> official service name for "tcp", "udp" and "raw", as netstat builds them.

    netstat prepends every getservent() entry to a per-protocol list and searches from the
    head, so the last duplicate wins (getservbyport() would give the first); then every
    getprotoent() entry is prepended to the raw list, so protocol names beat raw services.
    Dict assignment in enumeration order gives the same winner.
    """
    tables: Dict[str, Dict[int, str]] = {"tcp": {}, "udp": {}, "raw": {}}
    libc = _LIBC
    if libc is None:
        return tables
    ntohs = _socket.ntohs
    decode = os.fsdecode
    libc.setservent(0)
    try:
        while True:
            entry = libc.getservent()
            if not entry:
                break
            service = entry.contents
            if service.s_name is None or service.s_proto is None:
                continue
            table = tables.get(decode(service.s_proto))
            if table is not None:
                table[ntohs(service.s_port & 0xFFFF)] = decode(service.s_name)
    finally:
        libc.endservent()
    raw = tables["raw"]
    libc.setprotoent(0)
    try:
        while True:
            entry = libc.getprotoent()
            if not entry:
                break
            protocol = entry.contents
            if protocol.p_name is not None:
                raw[protocol.p_proto] = decode(protocol.p_name)
    finally:
        libc.endprotoent()
    return tables


# The networks database as one table, when NSS reads it from files only (see network_name).
_networks: Optional[Dict[int, str]] = None
_networks_checked = False


def network_name(number: int) -> Optional[str]:
    """getnetbyaddr(number, AF_INET)'s n_name (number in host order), or None.

    When nsswitch.conf gives "files" as the only source of networks, getnetbyaddr() is a
    linear scan of that file for the first AF_INET entry of the number, so one getnetent()
    walk answers every lookup: getnetbyaddr() re-reads the file each time, 21 us a lookup,
    0.2 s for `-r` over 10,000 distinct networks (docs/performance.md). Any other source is
    asked address by address, as netstat asks it.
    """
    global _networks, _networks_checked
    libc = _LIBC
    if libc is None:
        return None
    if not _networks_checked:
        _networks_checked = True
        if _only_files("networks"):
            _networks = _walk_networks(libc)
    if _networks is not None:
        return _networks.get(number & 0xFFFFFFFF)
    entry = libc.getnetbyaddr(number & 0xFFFFFFFF, _socket.AF_INET)
    if not entry or entry.contents.n_name is None:
        return None
    return os.fsdecode(entry.contents.n_name)


def _walk_networks(libc: ctypes.CDLL) -> Dict[int, str]:
    names: Dict[int, str] = {}
    libc.setnetent(0)
    try:
        while True:
            entry = libc.getnetent()
            if not entry:
                break
            network = entry.contents
            if network.n_addrtype == _socket.AF_INET and network.n_name is not None:
                names.setdefault(network.n_net, os.fsdecode(network.n_name))
    finally:
        libc.endnetent()
    return names


def _only_files(database: str, path: str = "/etc/nsswitch.conf") -> bool:
    """Whether nsswitch.conf names "files" as the database's only source (a missing line means
    glibc's default, "dns [!UNAVAIL=return] files", for networks)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.split("#", 1)[0].split()
                if fields and fields[0] == database + ":":
                    return fields[1:] == ["files"]
    except OSError:
        pass
    return False
