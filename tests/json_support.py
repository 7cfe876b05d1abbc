"""Helpers for the --json/--ndjson tests: run nlstat, validate against the shipped schemas, and
read netstat-format text back into fields to compare with the JSON records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import pytest

jsonschema = pytest.importorskip("jsonschema")

REPO = Path(__file__).resolve().parent.parent
SCHEMAS = REPO / "nlstat" / "schema"

Doc = Dict[str, Any]


def schema(mode: str) -> Doc:
    with open(SCHEMAS / f"{mode}.schema.json", encoding="utf-8") as handle:
        loaded: Doc = json.load(handle)
    return loaded


def validator(mode: str, line: bool = False) -> Any:
    """The Draft 2020-12 validator of a mode's document (or, `line`, of one NDJSON line)."""
    found = schema(mode)
    if line:
        found = {**found, "$ref": "#/$defs/line"}
    return jsonschema.Draft202012Validator(found, format_checker=jsonschema.FormatChecker())


def errors(mode: str, value: Doc, line: bool = False) -> List[str]:
    return [f"{list(error.absolute_path)}: {error.message}"
            for error in validator(mode, line).iter_errors(value)]


class Run(NamedTuple):
    status: int
    stdout: bytes
    stderr: bytes


def environ(extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    dropped = ("NLSTAT_BACKEND", "NLSTAT_DEBUG", "NLSTAT_PROC_ROOT", "POSIXLY_CORRECT")
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    env["LC_ALL"] = "C"
    env["PYTHONPATH"] = str(REPO)
    env.update(extra or {})
    return env


def nlstat_argv(args: Sequence[str]) -> List[str]:
    return [sys.executable, "-m", "nlstat", *args]


def run(args: Sequence[str], extra: Optional[Mapping[str, str]] = None,
        wrap: Optional[Any] = None) -> Run:
    """nlstat ARGS (inside a namespace when `wrap` is a netns.Namespace)."""
    argv = nlstat_argv(args)
    if wrap is not None:
        done = wrap.run(argv, env=environ(extra))
    else:
        done = subprocess.run(argv, env=environ(extra), capture_output=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    return Run(done.returncode, done.stdout, done.stderr)


def document(args: Sequence[str], extra: Optional[Mapping[str, str]] = None,
             wrap: Optional[Any] = None) -> Doc:
    """`nlstat ARGS --json`, checked: status 0, one line, valid against its mode's schema."""
    done = run([*args, "--json"], extra, wrap)
    assert done.status == 0, done
    assert done.stdout.endswith(b"\n") and done.stdout.count(b"\n") == 1, done.stdout[:300]
    doc: Doc = json.loads(done.stdout)
    assert errors(doc["mode"], doc) == []
    return doc


def ndjson(args: Sequence[str], extra: Optional[Mapping[str, str]] = None,
           wrap: Optional[Any] = None) -> Tuple[Doc, List[Doc], Doc]:
    """`nlstat ARGS --ndjson`, checked line by line: (header, records, end line)."""
    done = run([*args, "--ndjson"], extra, wrap)
    assert done.status == 0, done
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    head, records, end = lines[0], lines[1:-1], lines[-1]
    assert head["type"] == "header" and end["type"] == "end"
    assert end["count"] == len(records)
    for line in lines:
        assert errors(head["mode"], line, line=True) == [], line
    return head, records, end


def both(args: Sequence[str], extra: Optional[Mapping[str, str]] = None,
         wrap: Optional[Any] = None) -> List[Doc]:
    """The records of --json and of --ndjson for the same (quiet) state: they must agree."""
    # The state is quiet, not frozen: a fresh namespace's interfaces still send IPv6 router
    # solicitations and MLD reports for a few seconds, moving -ie's counters between the two
    # runs. Ask again (bounded) until two consecutive snapshots agree.
    for attempt in range(8):
        doc = document(args, extra, wrap)
        head, records, end = ndjson(args, extra, wrap)
        if records == doc["records"] or attempt == 7:
            break
        time.sleep(0.5)
    assert records == doc["records"]
    assert end["sources"] == doc["sources"]
    for key in ("schema", "schema_version", "mode", "host", "netns", "backend", "version"):
        assert head[key] == doc[key]
    records_: List[Doc] = doc["records"]
    return records_


def text(args: Sequence[str], extra: Optional[Mapping[str, str]] = None,
         wrap: Optional[Any] = None) -> List[str]:
    done = run(args, extra, wrap)
    assert done.status == 0, done
    return done.stdout.decode("utf-8", "surrogateescape").splitlines()


# -- netstat text back into fields --------------------------------------------------------------


def endpoint(column: str) -> Tuple[str, str]:
    """"198.18.0.1:80" -> ("198.18.0.1", "80"); "::1:*" -> ("::1", "*")."""
    host, _, port = column.rpartition(":")
    return host, port


def shown_address(address: str) -> str:
    """How netstat -n shows a full address: v4-mapped IPv6 as its IPv4 part."""
    if address.startswith("::ffff:") and "." in address:
        return address[7:]
    return address


def shown_port(port: int) -> str:
    return str(port) if port else "*"


class InetRow(NamedTuple):
    proto: str
    local: str
    remote: str
    state: str
    rest: List[str]


def inet_rows(lines: Sequence[str]) -> List[InetRow]:
    rows = []
    for line in lines:
        fields = line.split()
        if not fields or fields[0] not in ("tcp", "tcp6", "udp", "udp6", "udpl", "udpl6",
                                           "raw", "raw6"):
            continue
        rows.append(InetRow(fields[0], fields[3], fields[4], fields[5] if len(fields) > 5
                            else "", fields[6:]))
    return rows


class UnixRow(NamedTuple):
    refcnt: str
    flags: str
    kind: str
    state: str
    inode: str
    path: str


def unix_rows(lines: Sequence[str]) -> List[UnixRow]:
    """netstat -x rows ("%-5s %-6d %-11s %-10s %-13s %-8lu %s", netstat.c unix_do_one)."""
    rows = []
    for line in lines:
        if not line.startswith("unix "):
            continue
        inode, _, path = line[50:].partition(" ")
        rows.append(UnixRow(line[6:12].strip(), line[13:24].strip(), line[25:35].strip(),
                            line[36:49].strip(), inode, path.lstrip(" ")))
    return rows


LABELS = {("tcp", "inet"): "tcp", ("tcp", "inet6"): "tcp6", ("udp", "inet"): "udp",
          ("udp", "inet6"): "udp6", ("udplite", "inet"): "udpl", ("udplite", "inet6"): "udpl6",
          ("raw", "inet"): "raw", ("raw", "inet6"): "raw6"}


def label(record: Doc) -> str:
    return LABELS[(record["proto"], record["family"])]
