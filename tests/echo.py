"""ICMP echo exchanges from Python sockets: the traffic that moves interface and `-s` counters.

What `ping -c N -s SIZE ADDRESS` did for the tests, without iputils-ping: raw ICMP/ICMPv6
sockets (root has CAP_NET_RAW, so no ping_group_range change is needed) run inside a test
namespace send N echo requests one after the other and wait for each reply, so the packet
counts on both ends are known and nothing is left in flight when the call returns. Only the
test namespaces' own addresses are ever targets.
"""

from __future__ import annotations

import sys
from typing import Sequence, Tuple

from tests.netns import Namespace

# (address, count, payload size); run inside the namespace by `exchange()`.
ECHO_SCRIPT = r"""
import os, socket, struct, sys, time

def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF

ident = os.getpid() & 0xFFFF
for spec in sys.argv[1:]:
    address, count, size = spec.rsplit(",", 2)
    v6 = ":" in address
    if v6:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        request, reply = 128, 129
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        request, reply = 8, 0
    payload = bytes(range(256)) * (int(size) // 256 + 1)
    payload = payload[:int(size)]
    for seq in range(1, int(count) + 1):
        header = struct.pack("!BBHHH", request, 0, 0, ident, seq)
        if not v6:  # the kernel fills in the ICMPv6 checksum (RFC 3542), not ICMP's
            header = struct.pack("!BBHHH", request, 0, checksum(header + payload), ident, seq)
        sock.sendto(header + payload, (address, 0))
        deadline = time.monotonic() + 5.0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                sys.exit("no echo reply from %s (seq %d)" % (address, seq))
            sock.settimeout(left)
            try:
                data = sock.recv(65535)
            except socket.timeout:
                continue
            if not v6:  # raw IPv4 sockets receive the IP header too
                data = data[(data[0] & 0x0F) * 4:]
            kind, _code, _sum, got_ident, got_seq = struct.unpack_from("!BBHHH", data)
            if (kind, got_ident, got_seq) == (reply, ident, seq):
                break
    sock.close()
"""


def exchange(ns: Namespace, echoes: Sequence[Tuple[str, int, int]]) -> None:
    """Inside `ns`, `count` echo requests of `size` payload bytes to each address, one at a
    time, each answered before the next; raises NamespaceError when a reply does not come."""
    specs = [f"{address},{count},{size}" for address, count, size in echoes]
    ns.check([sys.executable, "-c", ECHO_SCRIPT, *specs], timeout=60)
