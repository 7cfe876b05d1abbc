"""`nlstat --serve [ADDR:]PORT`: the metrics at http://ADDR:PORT/metrics.

One kernel dump answers every scrape that arrived while it ran (single flight: scrapes wait
on one lock, and one that finds a snapshot finished after it arrived takes it), and with
`--serve-max-age S` every scrape of the next S seconds too. The stdlib's threading HTTP
server (prometheus_client's own server is the same one, without the limits below) with:

* one request per connection, read within REQUEST_SECONDS in total (a client trickling
  bytes is cut off at that deadline, not at a per-read timeout) and at most REQUEST_BYTES of
  request line and headers (431 past it);
* GET and HEAD of /metrics only (404 for any other path, 405 for other methods);
* at most MAX_CONNECTIONS connections served at once; the rest wait in the listen backlog;
* no timer: between scrapes the process sleeps in accept() (serve_forever without a poll
  interval) and takes no CPU.
"""

from __future__ import annotations

import _socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Callable, Optional, Tuple

from nlstat.env import Environment
from nlstat.errors import ExitStatus, NlstatError
from nlstat.format.prometheus import CONTENT_TYPE
from nlstat.query import Query

if TYPE_CHECKING:
    from nlstat.metrics import Exposition, Snapshot, SnapshotSource

REQUEST_SECONDS = 5.0
# Sending the answer: a scrape of 10,000 series is about 1 MiB.
RESPONSE_SECONDS = 30.0
REQUEST_BYTES = 16384
MAX_CONNECTIONS = 16


class RequestTooLarge(Exception):
    pass


class DeadlineReader:
    """The handler's rfile: lines from the socket, all of them within one deadline and a size
    budget (http.server's own limits are per line and per read)."""

    def __init__(self, connection: _socket.socket, deadline: float, budget: int) -> None:
        self.connection = connection
        self.deadline = deadline
        self.budget = budget
        self.buffer = b""

    def readline(self, limit: int = -1) -> bytes:
        while b"\n" not in self.buffer:
            if len(self.buffer) >= self.budget:
                raise RequestTooLarge
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("request not received in time")
            self.connection.settimeout(remaining)
            data = self.connection.recv(4096)
            if not data:
                break
            self.buffer += data
        end = self.buffer.find(b"\n") + 1 or len(self.buffer)
        if 0 <= limit < end:
            end = limit
        line, self.buffer = self.buffer[:end], self.buffer[end:]
        self.budget -= len(line)
        if self.budget < 0:
            raise RequestTooLarge
        return line

    def read(self, size: int = -1) -> bytes:
        return b""  # GET and HEAD carry no body; nothing else is served

    def close(self) -> None:
        pass


class Snapshots:
    """The last snapshot, shared by concurrent scrapes and kept for `max_age` seconds."""

    def __init__(
        self,
        sampler: SnapshotSource,
        exposition: Exposition,
        max_age: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.sampler = sampler
        self.exposition = exposition
        self.max_age = max_age
        self.lock = threading.Lock()
        self.body: Optional[bytes] = None
        self.finished = float("-inf")

    def latest(self) -> bytes:
        arrived = self.clock()
        with self.lock:
            if self.body is not None and (
                self.finished >= arrived or self.clock() - self.finished <= self.max_age
            ):
                return self.body
            self.body = None  # the old answer goes before the new dump is counted
            snapshot: Snapshot = self.sampler.take()
            self.body = self.exposition.render(snapshot)
            self.finished = snapshot.finished
            return self.body


class Handler(BaseHTTPRequestHandler):
    server: MetricsServer
    protocol_version = "HTTP/1.0"

    def version_string(self) -> str:
        return "nlstat"

    def setup(self) -> None:
        self.connection = self.request
        self.connection.settimeout(REQUEST_SECONDS)
        self.rfile = DeadlineReader(  # type: ignore[assignment]
            self.connection, time.monotonic() + REQUEST_SECONDS, REQUEST_BYTES
        )
        self.wfile = self.connection.makefile("wb", 0)

    def finish(self) -> None:
        try:
            self.wfile.close()
        except OSError:
            pass

    def handle(self) -> None:
        self.close_connection = True
        try:
            self.handle_one_request()
        except RequestTooLarge:
            self.requestline = ""
            self.request_version = "HTTP/1.0"
            self.command = ""
            try:
                self.send_error(431, "Request too large")
            except OSError:
                pass
        except OSError:
            pass  # timed out or reset: the connection is dropped

    def do_GET(self) -> None:
        self._metrics(True)

    def do_HEAD(self) -> None:
        self._metrics(False)

    def _metrics(self, with_body: bool) -> None:
        path = self.path.partition("?")[0]
        if path != "/metrics":
            self.send_error(404, "Only /metrics is served here")
            return
        try:
            body = self.server.snapshots.latest()
        except Exception as err:  # noqa: BLE001 - a failed dump is a 500, not a dead server
            self.server.env.warn(f"nlstat: scrape failed: {type(err).__name__}: {err}")
            self.send_error(500, "The kernel dump failed")
            return
        self.connection.settimeout(RESPONSE_SECONDS)
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every few seconds is not news


class MetricsServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(
        self, address: Tuple[str, int], snapshots: Snapshots, env: Environment
    ) -> None:
        self.address_family = _socket.AF_INET6 if ":" in address[0] else _socket.AF_INET
        self.snapshots = snapshots
        self.env = env
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def serve(
    query: Query, env: Environment, sampler: SnapshotSource, exposition: Exposition
) -> int:
    address = (query.serve_address, query.serve_port)
    shown = f"[{address[0]}]" if ":" in address[0] else address[0]
    try:
        snapshots = Snapshots(sampler, exposition, query.serve_cache_seconds)
        server = MetricsServer(address, snapshots, env)
    except OSError as err:
        raise NlstatError(f"cannot listen on {shown}:{address[1]}: {err.strerror}") from err
    env.warn(f"nlstat: serving http://{shown}:{server.server_address[1]}/metrics")
    env.stderr.flush()
    with server:
        # No poll interval: the loop sleeps in select() until a connection comes.
        server.serve_forever(poll_interval=None)  # type: ignore[arg-type]
    return ExitStatus.OK
