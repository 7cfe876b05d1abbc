#!/usr/bin/env python3
"""A/B of the hot decoders and the socket row builder: this tree against another checkout,
in one process, interleaved (A, B, B, A, ...), so a loaded machine slows both alike.

    python3 benchmarks/ab_hot.py /path/to/other/checkout [--rounds 15] [--sockets 100000]

The other checkout's modules (backends/netlink/sockdiag.py, backends/procfs/sockets.py,
backends/netlink/routes.py, format/sockets.py) are loaded from its files under other names;
they import the rest of nlstat from this tree. Inputs are benchmarks/test_micro.py's. Prints
each stage's minimum per side, in ms, and B/A.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import sys
import time
from types import ModuleType
from typing import Any, Callable, Dict, List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))


def load(checkout: str, relative: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, os.path.join(checkout, relative))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stages(checkout: str, tag: str, data: Dict[str, Any]) -> Dict[str, Callable[[], Any]]:
    sockdiag = load(checkout, "nlstat/backends/netlink/sockdiag.py", f"{tag}_sockdiag")
    procfs = load(checkout, "nlstat/backends/procfs/sockets.py", f"{tag}_procfs")
    routes = load(checkout, "nlstat/backends/netlink/routes.py", f"{tag}_routes")
    rows = load(checkout, "nlstat/format/sockets.py", f"{tag}_format")
    from nlstat.model.sockets import TCP
    from nlstat.resolve import Names

    query = data["query"]
    # Each side renders the records its own decoder builds (the record's fields may differ
    # between the trees).
    batches = [sockdiag.InetDecoder(TCP).chunk(chunk) for chunk in data["tcp4"]]

    def decode_inet() -> int:
        decoder = sockdiag.InetDecoder(TCP)
        return sum(len(decoder.chunk(chunk)) for chunk in data["tcp4"])

    def decode_unix() -> int:
        return sum(1 for _ in sockdiag.decode_unix(data["unix"]))

    def parse_proc() -> int:
        count = 0
        for chunk in data["proc_chunks"]:
            first_line, lines = procfs.split_chunk(chunk)
            count += len(procfs.parse_inet(lines, TCP, socket.AF_INET, "", None, first_line))
        return count

    def decode_routes() -> int:
        decoder = routes.Ipv4Decoder(lambda index: "bench0")
        count = 0
        for chunk in data["routes"]:
            decoder.feed(chunk)
            count += len(decoder.take())
        return count

    def format_numeric() -> int:
        render = rows.InetRows(query, Names(True, True, True)).renderer(TCP, socket.AF_INET)
        return sum(len(render(batch)) for batch in batches)

    def format_extended() -> int:
        render = rows.InetRows(data["query_eo"], Names(True, True, True)).renderer(
            TCP, socket.AF_INET)
        return sum(len(render(batch)) for batch in batches)

    return {"inet_diag decode (tcp4)": decode_inet, "unix_diag decode (1/4)": decode_unix,
            "/proc/net/tcp parse": parse_proc, "-rn route decode": decode_routes,
            "-ant rows": format_numeric, "-anteo rows": format_extended}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--sockets", type=int, default=100_000)
    parser.add_argument("--only", default="", help="stages whose name contains this text")
    args = parser.parse_args()
    os.environ["NLST_MICRO_SOCKETS"] = str(args.sockets)
    import test_micro as micro

    count = args.sockets
    tcp4 = micro.chunked(micro.inet_messages(count, socket.AF_INET))
    data = {
        "tcp4": tcp4,
        "unix": micro.chunked(micro.unix_messages(count // 4)),
        "proc_chunks": micro.proc_tcp_chunks(count),
        "routes": micro.chunked(micro.route_message(index) for index in range(count)),
        "query": micro.query_for(["-ant"]),
        "query_eo": micro.query_for(["-anteo"]),
    }
    sides: List[Tuple[str, Dict[str, Callable[[], Any]]]] = [
        ("A", stages(os.path.abspath(args.other), "a", data)),
        ("B", stages(ROOT, "b", data)),
    ]
    best: Dict[Tuple[str, str], float] = {}
    for round_number in range(args.rounds):
        order = sides if round_number % 2 == 0 else sides[::-1]  # neither side always first
        for name in sides[0][1]:
            if args.only not in name:
                continue
            results = []
            for side, functions in order:
                # CPU time of this process: waiting for a core on a shared machine is not
                # counted (cache sharing still is; hence minimums over interleaved rounds).
                start = time.process_time()
                results.append(functions[name]())
                elapsed = time.process_time() - start
                key = (side, name)
                best[key] = min(best.get(key, elapsed), elapsed)
            assert results[0] == results[1], (name, results)
    print(f"{count} sockets/routes, {args.rounds} interleaved rounds, minimum CPU ms")
    print("| stage | A (%s) | B (this tree) | B/A |" % args.other)
    print("|---|---:|---:|---:|")
    for name in sides[0][1]:
        if args.only not in name:
            continue
        a, b = best[("A", name)] * 1e3, best[("B", name)] * 1e3
        print(f"| {name} | {a:.1f} | {b:.1f} | {b / a:.3f} |")


if __name__ == "__main__":
    main()
