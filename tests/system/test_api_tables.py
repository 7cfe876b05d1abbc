"""The API's other tables are the CLI's rows: routes, interfaces, groups and statistics read
by `nlstat.*()` in one process and by `nlstat -rn`, `-ian`, `-gn`, `-s` in another, on this
host's tables, under both backends (masquerade needs conntrack and root: its API call either
yields entries or raises BackendUnavailable, never anything else)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any, List

import pytest

from tests.cli_support import REPO, run_nlstat

SCRIPT = r"""
import json, sys
import nlstat
backend = sys.argv[1]
out = {
    "routes": [r.destination for r in nlstat.routes(4, backend=backend)],
    "routes6": [f"{r.destination}/{r.data.prefix_len}" for r in nlstat.routes(6, backend=backend)],
    "interfaces": [i.name for i in nlstat.interfaces(backend=backend)],
    "groups": [[g.device, g.address] for g in nlstat.groups(backend=backend)],
    "tcp_counters": [dict(s.counters) for f in nlstat.statistics() for s in f.sections
                     if s.name == "Tcp"],
}
try:
    out["masquerade"] = len(list(nlstat.masquerade(backend=backend)))
except nlstat.BackendUnavailable:
    out["masquerade"] = "unavailable"
print(json.dumps(out))
"""


def api(backend: str) -> Any:
    done = subprocess.run([sys.executable, "-c", SCRIPT, backend], capture_output=True,
                          cwd=str(REPO), env={"PYTHONPATH": str(REPO), "LC_ALL": "C"},
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def column(argv: List[str], backend: str, skip: int, index: int = 0) -> List[str]:
    outcome = run_nlstat(argv, extra_env={"NLSTAT_BACKEND": backend})
    assert outcome.status == 0, outcome.stderr
    return [line.split()[index] for line in outcome.stdout.decode().splitlines()[skip:]]


@pytest.mark.parametrize("backend", ["netlink", "proc"])
def test_api_tables_are_the_cli_rows(backend: str) -> None:
    for _attempt in range(3):
        found = api(backend)
        cli = {
            "routes": column(["-rn"], backend, 2),
            "routes6": column(["-rn6"], backend, 2),
            "interfaces": column(["-ian"], backend, 2),
            "groups": [line.split()[::2] for line in
                       run_nlstat(["-gn"], extra_env={"NLSTAT_BACKEND": backend})
                       .stdout.decode().splitlines()[3:]],
        }
        if all(found[key] == value for key, value in cli.items()):
            break
    for key, value in cli.items():
        assert found[key] == value, key
    assert found["routes"] and found["interfaces"]
    assert found["tcp_counters"] and "ActiveOpens" in found["tcp_counters"][0]
    assert found["masquerade"] == "unavailable" or isinstance(found["masquerade"], int)
