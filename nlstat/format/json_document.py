"""The frame around JSON records: the header, the one-line document of --json, the NDJSON stream.

--ndjson: a header line ({"type":"header",...}), one line per record, then an end line
({"type":"end","count":N,"sources":{...}}). --json: the same header fields, "records" (an array
of the same objects), then "sources", as one document on one line; under -c each pass prints
its own document (one line each). Records stream in both forms: `JsonSink.write` takes lines
of records as they are made and turns them into array items on the fly, so nothing is
collected, whatever the socket count.
"""

from __future__ import annotations

import os
import time
from typing import BinaryIO, Callable, Dict, List, Optional, Sequence, Union

from nlstat import __version__
from nlstat.format.json_records import clean
from nlstat.query import OUTPUT_NDJSON

# Changes when a field changes meaning or goes away (new fields do not change it).
SCHEMA_VERSION = 1

COMPACT = (",", ":")

# Where each mode's schema is, inside the package (nlstat/schema/<name>.schema.json).
SCHEMA_URI = "https://nlstat.invalid/schema/{}.schema.json"


def rfc3339_now(clock: Optional[float] = None) -> str:
    """UTC time with milliseconds: "2026-11-30T06:55:01.042Z" (datetime costs an import)."""
    now = time.time() if clock is None else clock
    seconds = int(now)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + ".%03dZ" % (
        int((now - seconds) * 1000))


def network_namespace(proc_root: str) -> Dict[str, object]:
    """{"inode": ..., "name": ...} of the namespace this process lists.

    The inode is that of /proc/self/ns/net; the name is the entry of /run/netns (where
    `ip netns add` mounts namespaces) bound to the same namespace, if any. Under a captured
    NLSTAT_PROC_ROOT there is no namespace file: both are null.
    """
    inode: Optional[int] = None
    name: Optional[str] = None
    try:
        own = os.stat(os.path.join(proc_root, "self", "ns", "net"))
        inode = own.st_ino
    except OSError:
        return {"inode": None, "name": None}
    try:
        entries = sorted(os.listdir("/run/netns"))
    except OSError:
        entries = []
    for entry in entries:
        try:
            found = os.stat(os.path.join("/run/netns", entry))
        except OSError:
            continue
        if found.st_ino == own.st_ino and found.st_dev == own.st_dev:
            name = clean(entry)
            break
    return {"inode": inode, "name": name}


def header(mode: str, schema: str, backend: str, proc_root: str) -> Dict[str, object]:
    import _socket

    from nlstat import procio

    if procio.tape is not None:
        # --save and --load: the recorded run's time, host and namespace (its metadata).
        meta = procio.tape.meta
        when = rfc3339_now(procio.tape.time)
        host = clean(str(meta.get("host", "")))
        netns = meta.get("netns") or {"inode": None, "name": None}
    else:
        when = rfc3339_now()
        host = clean(_socket.gethostname())
        netns = network_namespace(proc_root)
    return {
        "schema": SCHEMA_URI.format(schema),
        "schema_version": SCHEMA_VERSION,
        "mode": mode,
        "time": when,
        "host": host,
        "netns": netns,
        "backend": backend,
        "version": __version__,
    }


class JsonSink:
    """A stdout for the record writers: lines of records in, --json or --ndjson bytes out.

    Every write must hold whole lines (each renderer returns whole lines). Not shareable with a
    helper process: its state (how many records were written) lives in this process, so the
    JSON paths use pipeline.ordered_map, whose results come back here, never handed_off.
    """

    def __init__(
        self, stream: BinaryIO, form: str, marks: Callable[[], Sequence[str]] = tuple
    ) -> None:
        self.stream = stream
        self.ndjson = form == OUTPUT_NDJSON
        self.count = 0
        self.sources: Dict[str, str] = {}
        # The tables whose dump the kernel kept flagging NLM_F_DUMP_INTR (every mark of the
        # run so far, in order; the modes give where they are kept): a document carries
        # those marked since it began as "inconsistent".
        self.marks = marks
        self._marks_before = 0
        # `,"netns":{...}` closing every record under --netns/--all-netns (set_netns()).
        self._record_end = b""

    def begin(self, fields: Dict[str, object]) -> None:
        import json

        self.count = 0
        self.sources = {}
        self._marks_before = len(self.marks())
        if self.ndjson:
            line = json.dumps({"type": "header", **fields}, separators=COMPACT)
            self.stream.write(line.encode() + b"\n")
        else:
            opening = json.dumps(fields, separators=COMPACT)[:-1] + ',"records":['
            self.stream.write(opening.encode())

    def set_netns(self, netns: Dict[str, object]) -> None:
        """Give every record a "netns" field (the header's shape): under --all-netns the
        records of all namespaces may be merged by a reader, so each says where it is from."""
        import json

        self._record_end = b',"netns":' + json.dumps(netns, separators=COMPACT).encode() + b"}\n"

    def write(self, data: Union[bytes, bytearray, memoryview]) -> int:
        if not data:
            return 0
        lines = data if isinstance(data, bytes) else bytes(data)
        if self._record_end:
            # A record line ends in "}\n" and holds no other newline (JSON escapes them in
            # strings): one C-level replace closes every record with the field.
            lines = lines.replace(b"}\n", self._record_end)
        items = lines.count(b"\n")
        if self.ndjson:
            self.count += items
            self.stream.write(lines)
            return len(lines)
        body = lines[:-1].replace(b"\n", b",")
        if self.count:
            body = b"," + body
        self.count += items
        self.stream.write(body)
        return len(data)

    def flush(self) -> None:
        self.stream.flush()

    def end(self) -> None:
        import json

        sources = json.dumps(self.sources, sort_keys=True, separators=COMPACT)
        marked = self.inconsistent()
        tail = b""
        if marked:
            tail = b',"inconsistent":' + json.dumps(marked, separators=COMPACT).encode()
        if self.ndjson:
            self.stream.write(b'{"type":"end","count":%d,"sources":%s%s}\n'
                              % (self.count, sources.encode(), tail))
        else:
            self.stream.write(b'],"sources":' + sources.encode() + tail + b"}\n")

    def inconsistent(self) -> List[str]:
        """The tables marked since begin(), each once, in the order they were marked."""
        marked: List[str] = []
        for what in self.marks()[self._marks_before:]:
            if what not in marked:
                marked.append(what)
        return marked

    def note(self, table: str, source: str) -> None:
        """Which backend a table came from ("netlink" or "proc"), for the end line."""
        self.sources[table] = source
