#!/usr/bin/env python3
"""Fill a private network namespace with many loopback sockets and routes, hold them, clean up.

    python3 benchmarks/loadgen.py --tcp 100000 [--tcp6 N] [--udp M] [--unix K] [--routes R]
                                  [--netns nlst-bench] [--hold 1800] [--ready-file PATH]

Counting: every number counts SOCKETS, i.e. rows of `netstat -an`. `--tcp 100000` makes 50,000
loopback connections with both ends in the namespace (100,000 ESTABLISHED rows in `netstat -ant`,
plus the listeners, which are not counted). `--unix K` makes K/2 socketpairs.

Why it is built the way it is:
* One process may hold at most RLIMIT_NOFILE descriptors (20,000 hard on the project's machines),
  so the sockets are spread over worker processes, each raising its soft limit to the hard one.
* Each connection's client end binds a source address in 127.1.0.0/16 (50 connections per address)
  with IP_BIND_ADDRESS_NO_PORT, so the port is picked at connect() time per 4-tuple and the
  ephemeral range never runs out, even at a million sockets.
* Connects are non-blocking and issued in batches no larger than the listen backlog, then
  accepted in one sweep: an overflowing accept queue would drop SYNs and cost a 1 s retransmit.
* Client ends get SO_LINGER {1, 0}: when a worker exits its connections end with a RST, so
  teardown leaves no orphans (tcp_max_orphans is global, not per namespace) and no TIME_WAIT.
* A few connections are made to look like a real host: every 97th client has sent 100 bytes the
  server never reads (Recv-Q 100), every 101st has shut down its write side (FIN_WAIT2 and
  CLOSE_WAIT, both stable: a non-orphaned FIN_WAIT2 socket has no timer).
* Workers run in their own session (Ctrl-C reaches only this process, which cleans up) and die
  with it: PR_SET_PDEATHSIG, and they exit when their stdin (a pipe from here) closes.

Traffic never leaves the namespace: everything is loopback; routes point at a veth pair
whose both ends are in the namespace.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import json
import os
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Dict, Iterator, List, Optional

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
PR_SET_PDEATHSIG = 1
CONNECTIONS_PER_SOURCE = 50
BATCH = 1024  # connects in flight per sweep: below the listen backlog
BACKLOG = 4096
WORKER_LISTEN_BASE = 9000  # worker listeners: below the namespace's ephemeral range
HTTPS_PORT = 443  # --https connections' listener, on 127.0.0.1 (the extra [::]:443 is v6-only)
EPHEMERAL_RANGE = "10000 65535"
FD_RESERVE = 200  # descriptors a worker keeps free for Python itself
ROUTE_DEVICE = "bench0"  # its veth peer is bench1
# Extra listeners, as on a small server (worker 0 holds them).
EXTRA_TCP_LISTENERS = [("0.0.0.0", 22), ("0.0.0.0", 80), ("127.0.0.1", 631), ("::", 443)]
EXTRA_UDP_LISTENERS = [("0.0.0.0", 5353), ("127.0.0.1", 323), ("::", 546)]
EXTRA_UNIX_LISTENERS = ["\0nlst-bench/control", "\0nlst-bench/metrics"]


class Stop(Exception):
    """SIGINT or SIGTERM arrived: unwind and clean up."""


def log(line: str) -> None:
    sys.stderr.write(f"loadgen: {line}\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------- worker side


def source_address(index: int) -> str:
    n = (127 << 24) + (1 << 16) + index // CONNECTIONS_PER_SOURCE
    return socket.inet_ntoa(n.to_bytes(4, "big"))


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def make_connections(
    held: List[socket.socket], family: int, count: int, port: int, first_index: int
) -> None:
    """`count` established connections to a new listener on loopback `port`, both ends kept."""
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(BACKLOG)
    listener.setblocking(False)
    held.append(listener)
    linger0 = (1).to_bytes(4, sys.byteorder) + (0).to_bytes(4, sys.byteorder)
    made = 0
    while made < count:
        batch = min(BATCH, count - made)
        clients = []
        for i in range(batch):
            s = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger0)
            if family == socket.AF_INET:
                s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                s.bind((source_address(first_index + made + i), 0))
            err = s.connect_ex((host, port))
            if err not in (0, errno.EINPROGRESS):
                raise OSError(err, f"connect to {host}:{port}: {os.strerror(err)}")
            clients.append(s)
        accepted = 0
        deadline = time.monotonic() + 30
        while accepted < batch:
            try:
                conn, _peer = listener.accept()
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {accepted} of {batch} connections accepted") from None
                _wait_readable(listener)
                continue
            held.append(conn)
            accepted += 1
        for i, s in enumerate(clients):
            k = first_index + made + i
            if k % 97 == 3:
                s.send(b"x" * 100)
            elif k % 101 == 50:
                s.shutdown(socket.SHUT_WR)
        held.extend(clients)
        made += batch


def _wait_readable(sock: socket.socket) -> None:
    import select

    select.select([sock], [], [], 0.5)


def make_udp(held: List[socket.socket], count: int, first_index: int) -> None:
    """UDP sockets: a tenth over IPv6, half of them connected (netstat shows ESTABLISHED)."""
    for j in range(count):
        if j % 10 == 9:
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            s.bind(("::1", 0))
            if j % 2:
                s.connect(("::1", 9))
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((source_address(first_index + j), 0))
            if j % 2:
                s.connect(("127.0.0.1", 9))
        held.append(s)


def make_unix(held: List[socket.socket], count: int) -> None:
    """count/2 socketpairs, alternating stream and datagram."""
    for j in range(count // 2):
        kind = socket.SOCK_STREAM if j % 2 == 0 else socket.SOCK_DGRAM
        held.extend(socket.socketpair(socket.AF_UNIX, kind))


def make_extras(held: List[socket.socket]) -> int:
    made = 0
    for host, port in EXTRA_TCP_LISTENERS:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port))
        s.listen(128)
        held.append(s)
        made += 1
    for host, port in EXTRA_UDP_LISTENERS:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_DGRAM)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port))
        held.append(s)
        made += 1
    for name in EXTRA_UNIX_LISTENERS:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(name)
        s.listen(16)
        held.append(s)
        made += 1
    return made


def worker_main(spec: Dict[str, Any]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise_nofile()
    held: List[socket.socket] = []
    started = time.monotonic()
    try:
        extras = make_extras(held) if spec.get("extras") else 0
        https = spec.get("https", 0)
        if https:
            # --https: these connections go to 127.0.0.1:443 (`--dport 443` selects them)
            make_connections(held, socket.AF_INET, https, HTTPS_PORT, spec["index"])
        if spec["tcp4"] > https:
            make_connections(held, socket.AF_INET, spec["tcp4"] - https, spec["port4"],
                             spec["index"] + https)
        if spec["tcp6"]:
            make_connections(held, socket.AF_INET6, spec["tcp6"], spec["port6"], 0)
        make_udp(held, spec["udp"], spec["index"])
        make_unix(held, spec["unix"])
    except (OSError, TimeoutError) as err:
        sys.stdout.write(f"error {err}\n")
        sys.stdout.flush()
        return 1
    report = {"descriptors": len(held), "extras": extras, "seconds": time.monotonic() - started}
    sys.stdout.write("ready " + json.dumps(report) + "\n")
    sys.stdout.flush()
    # Hold until the parent closes our stdin (or dies, or signals us).
    while sys.stdin.buffer.read(4096):
        pass
    os._exit(0)


# --------------------------------------------------------------------------- parent side


def run(cmd: List[str], stdin: Optional[str] = None) -> None:
    done = subprocess.run(cmd, input=stdin, text=True, capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])}...: {done.stderr.strip() or done.returncode}")


def route_lines(count: int) -> Iterator[str]:
    """`count` routes inside 198.18.0.0/15: /32s first, then /31s, /30s ... (about 262k at most)."""
    base = (198 << 24) + (18 << 16)
    made = 0
    for plen in range(32, 16, -1):
        step = 1 << (32 - plen)
        start = 256 if plen == 32 else 0  # leave 198.18.0.0/24 to the device's own subnet
        for offset in range(start, 1 << 17, step):
            if made >= count:
                return
            dest = socket.inet_ntoa((base + offset).to_bytes(4, "big"))
            extra = " via 198.18.0.2" if made % 3 == 0 else ""
            extra += " metric 10" if made % 5 == 0 else ""
            yield f"route add {dest}/{plen} dev {ROUTE_DEVICE}{extra}"
            made += 1
    raise ValueError(f"at most {made} routes fit in 198.18.0.0/15")


def load_routes(netns: str, count: int) -> None:
    # A veth pair with both ends in here: the kernel may lack the dummy driver (no modules on
    # the project's VMs). IPv6 is off on both ends so that no DAD or router solicitation moves
    # the counters that `netstat -i` prints between two timed runs.
    peer = ROUTE_DEVICE[:-1] + "1"
    run(["ip", "-n", netns, "link", "add", ROUTE_DEVICE, "type", "veth", "peer", "name", peer])
    for dev in (ROUTE_DEVICE, peer):
        run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w",
             f"net.ipv6.conf.{dev}.disable_ipv6=1"])
    run(["ip", "-n", netns, "addr", "add", "198.18.0.1/15", "dev", ROUTE_DEVICE])
    for dev in (ROUTE_DEVICE, peer):
        run(["ip", "-n", netns, "link", "set", dev, "up"])
    if count:
        run(["ip", "-n", netns, "-batch", "-"], "\n".join(route_lines(count)) + "\n")


def plan_workers(args: argparse.Namespace, capacity: int) -> List[Dict[str, Any]]:
    """Spread the sockets over workers so that none holds more than `capacity` descriptors."""
    per_worker = max(2, capacity - FD_RESERVE)
    workers: List[Dict[str, Any]] = []
    index = 0

    def new_worker() -> Dict[str, Any]:
        n = len(workers)
        w = {"tcp4": 0, "tcp6": 0, "udp": 0, "unix": 0, "index": index, "free": per_worker,
             "port4": WORKER_LISTEN_BASE + 2 * n, "port6": WORKER_LISTEN_BASE + 2 * n + 1,
             "extras": n == 0}
        if n == 0:
            w["free"] -= len(EXTRA_TCP_LISTENERS) + len(EXTRA_UDP_LISTENERS) + 8
        workers.append(w)
        return w

    def place(kind: str, units: int, fds_per_unit: int) -> None:
        nonlocal index
        while units > 0:
            w = workers[-1] if workers and workers[-1]["free"] >= fds_per_unit + 2 else new_worker()
            if w[kind] == 0 and kind in ("tcp4", "tcp6"):
                w["free"] -= 1  # the listener
            take = min(units, (w["free"]) // fds_per_unit)
            if take <= 0:
                w["free"] = 0
                continue
            if kind == "tcp4":
                w["index"] = index  # each worker gets one contiguous block of source addresses
                index += take
            w[kind] += take
            w["free"] -= take * fds_per_unit
            units -= take

    place("tcp4", (args.tcp + 1) // 2, 2)
    if workers and args.https:
        workers[0]["https"] = min(args.https // 2, workers[0]["tcp4"])
    place("tcp6", (args.tcp6 + 1) // 2, 2)
    place("udp", args.udp, 1)
    place("unix", args.unix // 2, 2)
    if not workers:
        new_worker()
    for w in workers:
        w["unix"] *= 2
        del w["free"]
    return workers


class LoadGen:
    """The namespace, its workers and the ready file; `close()` undoes all of it, once."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.netns = args.netns
        self.workers: List[subprocess.Popen[bytes]] = []
        self.created_netns = False
        self.ready_file = args.ready_file or f"/tmp/{args.netns}.ready"
        self.closed = False

    def build(self) -> Dict[str, Any]:
        args = self.args
        started = time.monotonic()
        if os.path.exists(f"/run/netns/{self.netns}"):
            raise RuntimeError(f"namespace {self.netns} exists; `ip netns del {self.netns}` first")
        self.check_host()
        os.makedirs(f"/etc/netns/{self.netns}", exist_ok=True)
        with open(f"/etc/netns/{self.netns}/hosts", "w") as f:
            f.write("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        with open(f"/etc/netns/{self.netns}/resolv.conf", "w") as f:
            f.write("nameserver 127.0.0.1\n")  # nothing listens on :53 in here: lookups fail fast
        run(["ip", "netns", "add", self.netns])
        self.created_netns = True
        run(["ip", "-n", self.netns, "link", "set", "lo", "up"])
        run(["ip", "netns", "exec", self.netns, "sysctl", "-q", "-w",
             "net.core.somaxconn=65535", f"net.ipv4.ip_local_port_range={EPHEMERAL_RANGE}"])
        load_routes(self.netns, args.routes)
        routes_done = time.monotonic()
        plan = plan_workers(args, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
        reports = self.start_workers(plan)
        counts = {
            "tcp_sockets": 2 * sum(w["tcp4"] for w in plan),
            "tcp6_sockets": 2 * sum(w["tcp6"] for w in plan),
            "https_sockets": 2 * sum(w.get("https", 0) for w in plan),
            "udp_sockets": sum(w["udp"] for w in plan),
            "unix_sockets": sum(w["unix"] for w in plan),
            "worker_listeners": sum((w["tcp4"] > 0) + (w["tcp6"] > 0) for w in plan),
            "extra_listeners": sum(r["extras"] for r in reports),
            "routes": args.routes,
        }
        info = {
            "netns": self.netns,
            "pid": os.getpid(),
            "workers": [p.pid for p in self.workers],
            "counts": counts,
            "sockstat": self.sockstat(),
            "seconds": round(time.monotonic() - started, 2),
            "route_seconds": round(routes_done - started, 2),
        }
        tmp = self.ready_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(info, f, indent=1)
        os.replace(tmp, self.ready_file)
        return info

    def check_host(self) -> None:
        need = self.args.tcp + self.args.tcp6 + self.args.udp + self.args.unix
        with open("/proc/sys/fs/file-nr") as f:
            in_use = int(f.read().split()[0])
        with open("/proc/sys/fs/file-max") as f:
            file_max = int(f.read())
        if in_use + need + 10000 > file_max:
            wanted = in_use + need + 100000
            log(f"raising fs.file-max {file_max} -> {wanted}")
            with open("/proc/sys/fs/file-max", "w") as f:
                f.write(str(wanted))

    def start_workers(self, plan: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        libc = ctypes.CDLL(None, use_errno=True)

        def die_with_parent() -> None:
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

        for spec in plan:
            cmd = ["ip", "netns", "exec", self.netns, sys.executable, os.path.abspath(__file__),
                   "--worker", json.dumps(spec)]
            self.workers.append(subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
                preexec_fn=die_with_parent))
        selector = selectors.DefaultSelector()
        for p in self.workers:
            assert p.stdout is not None
            selector.register(p.stdout, selectors.EVENT_READ, p)
        total = sum(2 * (w["tcp4"] + w["tcp6"]) + w["udp"] + w["unix"] for w in plan)
        deadline = time.monotonic() + 60 + total / 2000
        reports: List[Dict[str, Any]] = []
        pending = len(self.workers)
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{pending} workers not ready in time")
            for key, _ in selector.select(min(left, 1.0)):
                line = key.fileobj.readline().decode()  # type: ignore[union-attr]
                selector.unregister(key.fileobj)
                pending -= 1
                if not line.startswith("ready "):
                    raise RuntimeError(f"worker {key.data.pid}: {line.strip() or 'died'}")
                reports.append(json.loads(line[6:]))
        return reports

    def sockstat(self) -> Dict[str, str]:
        done = subprocess.run(["ip", "netns", "exec", self.netns, "cat", "/proc/net/sockstat"],
                              capture_output=True, text=True)
        out = {}
        for line in done.stdout.splitlines():
            name, _, rest = line.partition(":")
            out[name] = rest.strip()
        return out

    def hold(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            for p in self.workers:
                if p.poll() is not None:
                    raise RuntimeError(f"worker {p.pid} exited with status {p.returncode}")

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for p in self.workers:
            try:
                if p.stdin:
                    p.stdin.close()
            except OSError:
                pass
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for p in self.workers:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stdout:
                p.stdout.close()
        if self.created_netns:
            subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)
        shutil.rmtree(f"/etc/netns/{self.netns}", ignore_errors=True)
        for path in (self.ready_file, self.ready_file + ".tmp"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def parse_args(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tcp", type=int, default=100000,
                   help="IPv4 TCP sockets (2 per connection, both ends here); default 100000")
    p.add_argument("--tcp6", type=int, default=0, help="IPv6 TCP sockets over ::1")
    p.add_argument("--https", type=int, default=0,
                   help="of the --tcp sockets, this many connect to 127.0.0.1:443 (2 each)")
    p.add_argument("--udp", type=int, default=0, help="UDP sockets (half connected)")
    p.add_argument("--unix", type=int, default=0, help="unix sockets (socketpairs: 2 each)")
    p.add_argument("--routes", type=int, default=0, help="IPv4 routes in 198.18.0.0/15")
    p.add_argument("--netns", default="nlst-bench", help="namespace name (default nlst-bench)")
    p.add_argument("--hold", type=float, default=1800,
                   help="seconds to hold before cleaning up (default 1800)")
    p.add_argument("--ready-file", help="JSON written when ready (default /tmp/NETNS.ready)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if min(args.tcp, args.tcp6, args.https, args.udp, args.unix, args.routes, args.hold) < 0:
        p.error("counts and --hold must not be negative")
    return args


def main(argv: List[str]) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main(json.loads(args.worker))
    if os.geteuid() != 0:
        log("needs root (it creates a network namespace)")
        return 2

    def stop(signum: int, _frame: Any) -> None:
        raise Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    gen = LoadGen(args)
    status = 0
    try:
        info = gen.build()
        c = info["counts"]
        print(f"READY netns={gen.netns} tcp={c['tcp_sockets']} tcp6={c['tcp6_sockets']} "
              f"udp={c['udp_sockets']} unix={c['unix_sockets']} routes={c['routes']} "
              f"workers={len(gen.workers)} seconds={info['seconds']} "
              f"sockstat_tcp='{info['sockstat'].get('TCP', '')}' ready_file={gen.ready_file}",
              flush=True)
        gen.hold(args.hold)
        log(f"hold time of {args.hold:g} s is over")
    except Stop as why:
        log(f"{why}: cleaning up")
    except (RuntimeError, OSError, ValueError) as err:
        log(f"error: {err}")
        status = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        closing = time.monotonic()
        gen.close()
        log(f"cleaned up in {time.monotonic() - closing:.1f} s")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
