"""/proc/net/{tcp,tcp6,udp,udp6,udplite,udplite6,raw,raw6,unix} -> the same records as sock_diag.

Read the way netstat reads them (netstat.c tcp_do_one, udp_do_one, raw_do_one, unix_do_one):
the title line skipped, fields split on blanks, hex where the kernel prints hex; a line that
does not parse is reported (netstat's warning plus file and line number) and skipped.
"""

from __future__ import annotations

import socket
import struct
from typing import Callable, Dict, Iterator, List, Optional

from nlstat.model.sockets import InetSocket, UnixSocket

Warn = Callable[[str], None]

# The 32 hex digits of an IPv6 address are four 32-bit words, each printed in host
# (little-endian) order: swap each word's bytes back to network order.
_FOUR_WORDS_LE = struct.Struct("<4I")
_FOUR_WORDS_BE = struct.Struct(">4I")


def ipv6_hex_to_text(hexaddr: str) -> str:
    """ "0000000000000000FFFF00000100007F" -> "::ffff:127.0.0.1"."""
    raw = _FOUR_WORDS_BE.pack(*_FOUR_WORDS_LE.unpack(bytes.fromhex(hexaddr)))
    return socket.inet_ntop(socket.AF_INET6, raw)


def ipv4_hex_to_text(hexaddr: str) -> str:
    """ "0100007F" -> "127.0.0.1" (a little-endian dump of the network-order address)."""
    return socket.inet_ntoa(bytes.fromhex(hexaddr)[::-1])


def read_lines(path: str) -> List[str]:
    """All lines of a /proc file but the title; raises OSError as open() does."""
    with open(path, "rb") as handle:
        data = handle.read()
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines[1:]


def _bogus(warn: Warn, what: str, path: str, number: int) -> None:
    # netstat's own words, then where: a malformed line is never a traceback.
    warn(f"warning, got bogus {what} line. ({path} line {number})")


def parse_inet(
    lines: List[str], protocol: str, family: int, path: str = "", warn: Optional[Warn] = None
) -> Iterator[InetSocket]:
    """Rows of /proc/net/{tcp,udp,udplite,raw}[6] -> InetSocket, in file order.

    "   0: 0100007F:1770 00000000:0000 0A 00000000:00000003 00:00000000 00000000  0 0 12345 ..."
    is tcp 127.0.0.1:6000 LISTEN, Recv-Q 3 (rx_queue), Send-Q 0 (tx_queue comes first).
    """
    decode = ipv4_hex_to_text if family == socket.AF_INET else ipv6_hex_to_text
    texts: Dict[str, str] = {}
    what = "tcp" if protocol == "tcp" else ("raw" if protocol == "raw" else "udp")
    for number, line in enumerate(lines, 2):
        fields = line.split()
        try:
            if len(fields) < 10:
                raise ValueError("too few fields")
            local_hex, _, local_port = fields[1].partition(":")
            remote_hex, _, remote_port = fields[2].partition(":")
            tx_queue, _, rx_queue = fields[4].partition(":")
            timer, _, when = fields[5].partition(":")
            local = texts.get(local_hex)
            if local is None:
                local = texts[local_hex] = decode(local_hex)
            remote = texts.get(remote_hex)
            if remote is None:
                remote = texts[remote_hex] = decode(remote_hex)
            record = InetSocket(
                protocol,
                family,
                int(fields[3], 16),
                local,
                int(local_port, 16),
                remote,
                int(remote_port, 16),
                int(rx_queue, 16),
                int(tx_queue, 16),
                int(fields[7]),
                int(fields[9]),
                int(timer, 16),
                int(when, 16) * 10,  # clock ticks (USER_HZ 100) -> ms, as sock_diag gives
                int(fields[6], 16),
                int(fields[8]),
            )
        except (ValueError, IndexError, OSError):
            if warn is not None:
                _bogus(warn, what, path, number)
            continue
        yield record


def parse_unix(
    lines: List[str], path: str = "", warn: Optional[Warn] = None
) -> Iterator[UnixSocket]:
    """Rows of /proc/net/unix -> UnixSocket, in file order.

    "0000000000000000: 00000002 00000000 00010000 0001 01 870859 /tmp/srv.sock": RefCount,
    Protocol, Flags, Type and St are hex, Inode decimal. The path is read like scanf's %s, so it
    stops at the first blank, exactly as netstat shows it.
    """
    for number, line in enumerate(lines, 2):
        fields = line.split()
        try:
            if len(fields) < 7:
                raise ValueError("too few fields")
            record = UnixSocket(
                int(fields[4], 16),
                int(fields[5], 16),
                int(fields[3], 16),
                int(fields[6]),
                fields[7] if len(fields) > 7 else "",
                int(fields[1], 16),
                int(fields[2], 16),
            )
        except (ValueError, IndexError):
            if warn is not None:
                _bogus(warn, "unix", path, number)
            continue
        yield record


def read_inet(
    path: str, protocol: str, family: int, warn: Optional[Warn] = None
) -> Iterator[InetSocket]:
    """Open and parse one inet file; OSError from open() propagates (netstat's notices)."""
    return parse_inet(read_lines(path), protocol, family, path, warn)


def read_unix(path: str, warn: Optional[Warn] = None) -> Iterator[UnixSocket]:
    return parse_unix(read_lines(path), path, warn)
