"""Hold thousands of quiet sockets inside a network namespace (for the pipeline's live tests).

    ip netns exec NS python3 tests/bulk_population.py --tcp4 N --tcp6 N --udp4 N --udp6 N \
        --unix N [--port4 P --port6 P]

Counts are sockets (rows of `netstat -an`): `--tcp4 4000` makes 2000 loopback connections with
both ends here. The connections come from benchmarks/loadgen.py's worker code (source addresses
spread over 127.1.0.0/16, a few with unread bytes or half-closed: stable states, no timers).
Prints `ready N` once everything exists, then holds until its stdin closes (or its parent dies:
PR_SET_PDEATHSIG). Nothing moves meanwhile, so netstat and nlstat can be compared byte for byte.
One process holds at most 20,000 descriptors: the test starts several of these.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import socket
import sys
from typing import List

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))
import loadgen

PR_SET_PDEATHSIG = 1


def udp(held: List[socket.socket], family: int, count: int) -> None:
    """Unbound-port datagram sockets on loopback, every other one connected (ESTABLISHED)."""
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    for index in range(count):
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind((host, 0))
        if index % 2:
            sock.connect((host, 9))
        held.append(sock)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("tcp4", "tcp6", "udp4", "udp6", "unix"):
        parser.add_argument(f"--{name}", type=int, default=0)
    parser.add_argument("--port4", type=int, default=9000)
    parser.add_argument("--port6", type=int, default=9001)
    args = parser.parse_args()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    loadgen.raise_nofile()
    held: List[socket.socket] = []
    if args.tcp4:
        loadgen.make_connections(held, socket.AF_INET, args.tcp4 // 2, args.port4, 0)
    if args.tcp6:
        loadgen.make_connections(held, socket.AF_INET6, args.tcp6 // 2, args.port6, 0)
    udp(held, socket.AF_INET, args.udp4)
    udp(held, socket.AF_INET6, args.udp6)
    loadgen.make_unix(held, args.unix)
    sys.stdout.write(f"ready {len(held)}\n")
    sys.stdout.flush()
    while sys.stdin.buffer.read(4096):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
