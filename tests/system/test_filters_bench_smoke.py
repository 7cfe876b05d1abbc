"""The filter and API benchmarks at a tiny scale: loadgen's --https connections exist, and
benchmarks/compare.py --against-ant times `--dport 443` and the API loop beside `-ant`.
Mechanics only, never timings."""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import Iterator

import pytest

from tests.system.test_bench_smoke import COMPARE, Load, c_env, needs_root, process_gone

pytestmark = pytest.mark.netns


@pytest.fixture(scope="module")
def load(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Load]:
    needs_root()
    gen = Load(str(tmp_path_factory.mktemp("fbench")), ["--tcp", "200", "--https", "20"])
    try:
        gen.wait_ready()
        yield gen
        gen.stop(signal.SIGTERM)
        assert all(process_gone(pid) for pid in gen.info["workers"])
    finally:
        gen.force_cleanup()


def test_loadgen_https_connections(load: Load) -> None:
    assert load.info["counts"]["https_sockets"] == 20
    assert load.info["counts"]["tcp_sockets"] == 200
    rows = load.inside("netstat", "-ant").stdout.splitlines()[2:]
    to_443 = [row for row in rows if row.split()[4] == "127.0.0.1:443"]
    assert len(to_443) == 10
    filtered = load.inside(sys.executable, "-m", "nlstat", "-ant", "--dport", "443")
    assert filtered.returncode == 0, filtered.stderr
    assert filtered.stdout.splitlines()[2:] == to_443


def test_compare_against_ant(load: Load) -> None:
    done = subprocess.run(
        [sys.executable, COMPARE, "--netns", load.netns, "--runs", "1", "--modes=-ant",
         "--no-baseline", "--against-ant"],
        capture_output=True, text=True, timeout=180, env=c_env())
    assert done.returncode == 0, done.stderr
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[1:-1]]
            for line in done.stdout.splitlines()
            if line.startswith("| nlstat -ant --dport") or line.startswith("| API:")}
    assert set(rows) == {"nlstat -ant --dport 443", "API: for _ in nlstat.sockets('tcp')"}
    assert rows["nlstat -ant --dport 443"][1] == "12"  # 2 title lines + 10 sockets
    assert rows["API: for _ in nlstat.sockets('tcp')"][1] == "0"  # the loop prints nothing
    for cells in rows.values():
        float(cells[4])  # a ratio was computed
