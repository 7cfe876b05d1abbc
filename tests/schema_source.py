"""The source of the JSON Schemas shipped in nlstat/schema/ (one per mode).

`python3 tests/schema_source.py` rewrites them; tests/unit/test_json_schema.py checks that the
shipped files are exactly what this makes, so the schemas and this source never drift apart.
Each file validates a --json document; `$defs.line` validates one --ndjson line.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List

from nlstat.format.json_document import SCHEMA_URI, SCHEMA_VERSION

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

Schema = Dict[str, Any]

U64 = {"type": "integer", "minimum": 0, "maximum": (1 << 64) - 1}
U32 = {"type": "integer", "minimum": 0, "maximum": (1 << 32) - 1}
I32 = {"type": "integer", "minimum": -(1 << 31), "maximum": (1 << 31) - 1}
PORT = {"type": "integer", "minimum": 0, "maximum": 65535}
STRING = {"type": "string"}
NAME_OR_NULL = {"type": ["string", "null"]}
INT_OR_NULL = {"type": ["integer", "null"], "minimum": 0}
FAMILY = {"enum": ["inet", "inet6"]}
STATES = ["ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
          "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "UNKNOWN"]
MODES = ["sockets", "groups", "routes", "interfaces", "statistics", "masquerade"]


def record(kind: str, required: Dict[str, Any], optional: Dict[str, Any]) -> Schema:
    # Every record: "netns" (the header's shape) under --netns and --all-netns.
    properties = {"type": {"const": kind}, **required, **optional, "netns": NETNS}
    return {
        "type": "object",
        "properties": properties,
        "required": ["type", *required],
        "additionalProperties": False,
    }


NETNS = {
    "type": "object",
    "properties": {"inode": INT_OR_NULL, "name": NAME_OR_NULL},
    "required": ["inode", "name"],
    "additionalProperties": False,
}

HEADER_FIELDS: Dict[str, Any] = {
    "schema": {"type": "string", "format": "uri"},
    "schema_version": {"const": SCHEMA_VERSION},
    "mode": {"enum": MODES},
    "time": {"type": "string", "format": "date-time",
             "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"},
    "host": STRING,
    "netns": NETNS,
    "backend": {"enum": ["auto", "netlink", "proc"]},
    "version": STRING,
}
SOURCES = {"type": "object", "additionalProperties": {"enum": ["netlink", "proc"]}}
# The netlink dumps the kernel kept flagging NLM_F_DUMP_INTR (nlsocket.mark_inconsistent());
# absent when every dump was consistent.
INCONSISTENT = {"type": "array", "items": {"type": "string"}, "minItems": 1,
                "uniqueItems": True}

INET = record("inet", {
    "proto": {"enum": ["tcp", "udp", "udplite", "raw"]},
    "family": FAMILY,
    "state": {"enum": STATES},
    "local_address": STRING,
    "local_port": PORT,
    "remote_address": STRING,
    "remote_port": PORT,
    "recv_q": U32,
    "send_q": U32,
    "uid": U32,
    "inode": U64,
    "cookie": {"type": ["integer", "null"], "minimum": 1},
    "ifindex": INT_OR_NULL,
}, {
    "local_host": NAME_OR_NULL,
    "remote_host": NAME_OR_NULL,
    "local_service": NAME_OR_NULL,
    "remote_service": NAME_OR_NULL,
    "user": STRING,
    # -e: the cgroup v2 path (nlstat/cgroups.py), null when unknown (/proc, TIME_WAIT, gone)
    "cgroup": NAME_OR_NULL,
    "pid": INT_OR_NULL,
    "program": NAME_OR_NULL,
    "timer": {"type": "string",
              "pattern": "^(off|on|on1|on2|keepalive|timewait|probe|unkn-[0-9]+)$"},
    "timer_ms": {"type": "integer", "minimum": 0},
    "retransmits": {"type": "integer", "minimum": 0},
    "probes": {"type": "integer", "minimum": 0},
})

UNIX = record("unix", {
    "proto": {"const": "unix"},
    "refcnt": INT_OR_NULL,
    "flags": {"type": "array", "items": {"enum": ["ACC", "W", "N"]}, "uniqueItems": True},
    "socket_type": {"enum": ["STREAM", "DGRAM", "RAW", "RDM", "SEQPACKET", "UNKNOWN"]},
    "state": {"enum": ["LISTENING", "FREE", "CONNECTING", "CONNECTED", "DISCONNECTING",
                       "UNKNOWN", None]},
    "socket_state": {"type": "integer", "minimum": 0},
    "kernel_protocol": {"type": "integer", "minimum": 0},
    "inode": U64,
    "path": NAME_OR_NULL,
    "abstract": {"type": "boolean"},
    "peer_inode": INT_OR_NULL,
    "cookie": {"type": ["integer", "null"], "minimum": 1},
}, {
    "path_b64": {"type": "string", "contentEncoding": "base64",
                 "pattern": "^[A-Za-z0-9+/]+={0,2}$"},
    "pid": INT_OR_NULL,
    "program": NAME_OR_NULL,
    "cgroup": {"type": "null"},  # -e: unix_diag reports no cgroup
})

GROUP = record("group", {
    "family": FAMILY,
    "interface": STRING,
    "ifindex": {"type": ["integer", "null"], "minimum": 1},
    "address": STRING,
    "users": {"type": "integer", "minimum": 0},
}, {"group": NAME_OR_NULL})

ROUTE4 = record("route", {
    "family": {"const": "inet"},
    "destination": STRING,
    "prefix_len": {"type": "integer", "minimum": 0, "maximum": 32},
    "genmask": STRING,
    "gateway": STRING,
    "flags": STRING,
    "flags_value": {"type": "integer"},
    "metric": I32,
    "refcnt": I32,
    "use": I32,
    "mss": I32,
    "window": I32,
    "irtt": I32,
    "interface": NAME_OR_NULL,
    "table": U32,
}, {"destination_name": NAME_OR_NULL, "gateway_name": NAME_OR_NULL})

ROUTE6 = record("route", {
    "family": {"const": "inet6"},
    "cache": {"type": "boolean"},
    "destination": STRING,
    "prefix_len": {"type": "integer", "minimum": 0, "maximum": 128},
    "next_hop": STRING,
    "flags": STRING,
    "flags_value": {"type": "integer"},
    "metric": I32,
    "refcnt": {"type": ["integer", "null"]},
    "use": I32,
    "interface": STRING,
    "source": STRING,
    "source_len": {"type": "integer", "minimum": 0, "maximum": 128},
    "table": {"type": ["integer", "null"], "minimum": 0},
}, {})

ROUTE_CACHE = record("route_cache", {
    "family": {"const": "inet"},
    "source": STRING,
    "destination": STRING,
    "gateway": STRING,
    "flags": STRING,
    "flags_value": {"type": "integer"},
    "metric": {"type": "integer"},
    "refcnt": {"type": "integer"},
    "use": {"type": "integer"},
    "interface": STRING,
    "mss": {"type": "integer"},
    "window": {"type": "integer"},
    "irtt": {"type": "integer"},
    "tos": {"type": "integer"},
}, {})

LINK_COUNTERS = ["rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "rx_fifo_errors",
                 "rx_frame_errors", "rx_compressed", "rx_multicast", "tx_bytes", "tx_packets",
                 "tx_errors", "tx_dropped", "tx_fifo_errors", "collisions", "tx_carrier_errors",
                 "tx_compressed"]
MAP_FIELDS = ["mem_start", "mem_end", "base_addr", "irq", "dma", "port"]


def fixed_object(names: List[str], value: Schema) -> Schema:
    return {"type": "object", "properties": {name: value for name in names},
            "required": names, "additionalProperties": False}


INTERFACE = record("interface", {
    "name": STRING,
    "ifindex": {"type": ["integer", "null"], "minimum": 1},
    "mtu": {"type": "integer"},
    "flags": {"type": "array", "items": STRING},
    "flags_value": {"type": "integer", "minimum": 0, "maximum": 65535},
    "stats": {"oneOf": [fixed_object(LINK_COUNTERS, U64), {"type": "null"}]},
}, {
    "hardware_type": {"type": "integer"},
    "hardware_address": {"type": "string", "pattern": "^([0-9a-f]{2}(:[0-9a-f]{2})*)?$"},
    "tx_queue_len": {"type": ["integer", "null"]},
    "inet": {"oneOf": [{
        "type": "object",
        "properties": {"address": STRING, "netmask": NAME_OR_NULL, "broadcast": NAME_OR_NULL,
                       "destination": NAME_OR_NULL},
        "required": ["address", "netmask", "broadcast", "destination"],
        "additionalProperties": False,
    }, {"type": "null"}]},
    "inet6": {"type": "array", "items": {
        "type": "object",
        "properties": {"address": STRING,
                       "prefix_len": {"type": "integer", "minimum": 0, "maximum": 128},
                       "scope": {"type": "integer", "minimum": 0}},
        "required": ["address", "prefix_len", "scope"],
        "additionalProperties": False,
    }},
    "map": fixed_object(MAP_FIELDS, {"type": "integer"}),
})

STATISTICS = record("statistics", {
    "family": FAMILY,
    "file": STRING,
    "section": STRING,
    "counters": {"type": "object", "additionalProperties": U64},
}, {})

MASQUERADE = record("masquerade", {
    "protocol": STRING,
    "protocol_number": {"type": "integer", "minimum": 0, "maximum": 255},
    "source": STRING,
    "destination": STRING,
    "source_port": PORT,
    "destination_port": PORT,
    "masquerade_port": PORT,
    "reply_source": STRING,
    "reply_destination": STRING,
    "reply_source_port": PORT,
    "reply_destination_port": PORT,
    "status": {"type": "integer", "minimum": 0},
    "expire_ms": {"type": "integer", "minimum": 0},
    "mark": U32,
    "zone": {"type": "integer", "minimum": 0},
    "id": INT_OR_NULL,
    "initseq": {"type": "integer"},
    "delta": {"type": "integer"},
    "prevd": {"type": "integer"},
}, {"source_host": NAME_OR_NULL, "destination_host": NAME_OR_NULL})

RECORDS: Dict[str, List[Schema]] = {
    "sockets": [INET, UNIX, GROUP],
    "groups": [GROUP],
    "routes": [ROUTE4, ROUTE6, ROUTE_CACHE],
    "interfaces": [INTERFACE],
    "statistics": [STATISTICS],
    "masquerade": [MASQUERADE],
}
TITLES = {
    "sockets": "nlstat sockets (nlstat [-tuwUx...] --json)",
    "groups": "nlstat multicast groups (nlstat -g --json)",
    "routes": "nlstat routes (nlstat -r [-6] [-C] --json)",
    "interfaces": "nlstat interfaces (nlstat -i [-e] --json)",
    "statistics": "nlstat statistics (nlstat -s [-6] --json)",
    "masquerade": "nlstat masquerade (nlstat -M --json)",
}


def schema(mode: str) -> Schema:
    header = {
        "type": "object",
        "properties": {"mode": {"const": mode}},
        "required": list(HEADER_FIELDS),
    }
    records = {"oneOf": [{"$ref": f"#/$defs/{name}"} for name in _names(mode)]}
    defs: Schema = {name: definition for name, definition in zip(_names(mode), RECORDS[mode])}
    defs["header_fields"] = header
    defs["record"] = records
    defs["document"] = {
        "allOf": [{"$ref": "#/$defs/header_fields"}],
        "properties": {**HEADER_FIELDS, "records": {"type": "array",
                                                    "items": {"$ref": "#/$defs/record"}},
                       "sources": SOURCES, "inconsistent": INCONSISTENT},
        "required": [*HEADER_FIELDS, "records", "sources"],
        "additionalProperties": False,
    }
    defs["header_line"] = {
        "allOf": [{"$ref": "#/$defs/header_fields"}],
        "properties": {**HEADER_FIELDS, "type": {"const": "header"}},
        "required": ["type", *HEADER_FIELDS],
        "additionalProperties": False,
    }
    defs["end_line"] = {
        "type": "object",
        "properties": {"type": {"const": "end"}, "count": {"type": "integer", "minimum": 0},
                       "sources": SOURCES, "inconsistent": INCONSISTENT},
        "required": ["type", "count", "sources"],
        "additionalProperties": False,
    }
    defs["line"] = {"oneOf": [{"$ref": "#/$defs/header_line"}, {"$ref": "#/$defs/record"},
                              {"$ref": "#/$defs/end_line"}]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_URI.format(mode),
        "title": TITLES[mode],
        "description": (f"Schema version {SCHEMA_VERSION}. The root validates one --json "
                        "document; $defs/line validates one --ndjson line. Fields: "
                        "docs/schema.md."),
        "$ref": "#/$defs/document",
        "$defs": defs,
    }


# --watch --ndjson (docs/watch.md): a stream of lines, no document form.
WATCH_EVENTS = ["listed", "opened", "closed", "state", "traffic"]
RATE = {"type": ["number", "null"], "minimum": 0}


def watch_schema() -> Schema:
    count = {"type": "integer", "minimum": 0}
    tick = {"type": "integer", "minimum": 1}
    defs: Schema = {"inet": INET, "unix": UNIX}
    defs["header_line"] = {
        "type": "object",
        "properties": {**HEADER_FIELDS, "type": {"const": "header"}, "mode": {"const": "watch"}},
        "required": ["type", *HEADER_FIELDS],
        "additionalProperties": False,
    }
    defs["tick_line"] = {
        "type": "object",
        "properties": {
            "type": {"const": "tick"},
            "tick": tick,
            "time": HEADER_FIELDS["time"],
            "seconds": {"type": ["number", "null"], "minimum": 0},
            "sockets": count,
            "opened": count,
            "closed": count,
            "state": count,
            "traffic": count,
        },
        "required": ["type", "tick", "time", "seconds", "sockets", "opened", "closed",
                     "state", "traffic"],
        "additionalProperties": False,
    }
    defs["event_line"] = {
        "type": "object",
        "properties": {
            "type": {"const": "event"},
            "tick": tick,
            "event": {"enum": WATCH_EVENTS},
            "socket": {"oneOf": [{"$ref": "#/$defs/inet"}, {"$ref": "#/$defs/unix"}]},
            "old_state": STRING,
            "bytes_acked": {"type": "integer"},
            "bytes_received": {"type": "integer"},
            "acked_rate": RATE,
            "received_rate": RATE,
        },
        "required": ["type", "tick", "event", "socket"],
        "dependentRequired": {
            "bytes_acked": ["bytes_received", "acked_rate", "received_rate"],
        },
        "allOf": [{
            "if": {"properties": {"event": {"const": "state"}}},
            "then": {"required": ["old_state"]},
            "else": {"not": {"required": ["old_state"]}},
        }],
        "additionalProperties": False,
    }
    defs["end_line"] = {
        "type": "object",
        "properties": {"type": {"const": "end"}, "ticks": tick},
        "required": ["type", "ticks"],
        "additionalProperties": False,
    }
    defs["line"] = {"oneOf": [{"$ref": "#/$defs/header_line"}, {"$ref": "#/$defs/tick_line"},
                              {"$ref": "#/$defs/event_line"}, {"$ref": "#/$defs/end_line"}]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_URI.format("watch"),
        "title": "nlstat socket changes (nlstat --watch [SECONDS] --ndjson)",
        "description": (f"Schema version {SCHEMA_VERSION}. The root validates one line of the "
                        "stream. Fields: docs/schema.md and docs/watch.md."),
        "$ref": "#/$defs/line",
        "$defs": defs,
    }


# Every schema file: one per mode, and --watch's.
SCHEMAS = [*MODES, "watch"]


def _names(mode: str) -> List[str]:
    return [str(definition["properties"]["type"]["const"])
            + ("" if definition is not ROUTE6 else "6")
            + ("4" if definition is ROUTE4 else "")
            for definition in RECORDS[mode]]


def text(mode: str) -> str:
    found = watch_schema() if mode == "watch" else schema(mode)
    return json.dumps(found, indent=2, sort_keys=False) + "\n"


def path(mode: str) -> str:
    return os.path.join(ROOT, "nlstat", "schema", f"{mode}.schema.json")


if __name__ == "__main__":
    for name in SCHEMAS:
        with open(path(name), "w", encoding="utf-8") as handle:
            handle.write(text(name))
