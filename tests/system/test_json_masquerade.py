"""`-M --json` / `--ndjson` on a live NAT (tests/masquerade_support.py): valid against the
schema, the two forms agreeing, and exactly the flows this test made through the NAT."""

from __future__ import annotations

import json
from typing import Any, Iterator, List, Tuple

import pytest

from tests import json_support as js
from tests.masquerade_support import Traffic, nat_network, run_nlstat_in
from tests.netns import skip_unless_root

pytestmark = pytest.mark.netns


@pytest.fixture(scope="module")
def nat() -> Iterator[Tuple[Any, Traffic]]:
    skip_unless_root()
    with nat_network() as network:
        traffic = Traffic(network)
        try:
            traffic.tcp()
            traffic.udp()
            yield network, traffic
        finally:
            traffic.close()


def _records(nat: Tuple[Any, Traffic], args: List[str], backend: str) -> List[js.Doc]:
    network, _ = nat
    done = run_nlstat_in(network.nat, [*args, "--json"], backend)
    assert (done.returncode, done.stderr) == (0, b""), done
    doc = json.loads(done.stdout)
    assert js.errors("masquerade", doc) == []
    lines = run_nlstat_in(network.nat, [*args, "--ndjson"], backend).stdout.splitlines()
    parsed = [json.loads(line) for line in lines]
    for line in parsed:
        assert js.errors("masquerade", line, line=True) == []
    def steady(records: List[js.Doc]) -> List[js.Doc]:
        return [{k: v for k, v in record.items() if k != "expire_ms"} for record in records]

    assert steady(parsed[1:-1]) == steady(doc["records"])  # the timeouts tick between runs
    assert doc["sources"] == {"conntrack": "proc" if backend == "proc" else "netlink"}
    records: List[js.Doc] = doc["records"]
    return records


@pytest.mark.parametrize("backend", ["auto", "proc"])
def test_records_are_our_flows(nat: Tuple[Any, Traffic], backend: str) -> None:
    _, traffic = nat
    records = _records(nat, ["-Mn"], backend)
    got = {(record["protocol"], record["source"], record["destination"],
            record["source_port"], record["destination_port"], record["masquerade_port"])
           for record in records}
    assert got == {(flow.protocol, flow.source, flow.destination, flow.source_port,
                    flow.destination_port, flow.translated_port) for flow in traffic.flows}
    for record in records:
        assert record["expire_ms"] > 0 and record["expire_ms"] % 1000 == 0
