"""Service, protocol and network names through the C library (nlstat/nss.py), as netstat asks.

The crafted databases are bind-mounted over /etc/services, /etc/protocols and /etc/networks in a
private mount namespace (what `ip netns exec` does with /etc/netns/<name>/), so glibc's NSS
reads them: duplicates, protocol names over raw services, short network numbers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

from nlstat import nss

REPO = Path(__file__).resolve().parents[2]

SERVICES = """\
# name port/proto aliases
ssh     22/tcp
first   4000/tcp  alias-a
second  4000/tcp  alias-b        # the last duplicate wins, as netstat's prepend makes it
dns     53/udp    domain
oddraw  1/raw                    # a raw "service": /etc/protocols' icmp beats it
rawonly 200/raw
ignored 70/ddp
"""
PROTOCOLS = """\
ip      0   IP
icmp    1   ICMP
ospf    89  OSPFIGP
"""
NETWORKS = """\
loopback    127.0.0.0
short       198.18.10
tennet      198.18.0.0
again       198.18.0.0
"""

PROBE = """\
import json
from nlstat import nss
tables = nss.services()
print(json.dumps({
    "services": {proto: {str(port): name for port, name in table.items()}
                 for proto, table in tables.items()},
    "networks": [nss.network_name(n) for n in (0x7F000000, 0xC6120A00, 0xC6120000, 0x0A000000)],
}))
"""


def _files_only() -> bool:
    """nsswitch's services source is plain files here (a db file would be asked first)."""
    try:
        lines = Path("/etc/nsswitch.conf").read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if fields and fields[0] == "services:":
            sources = [field for field in fields[1:] if not field.startswith("[")]
            return sources[-1:] == ["files"] and not os.path.exists("/var/lib/misc/services.db")
    return False


def _files_rule(services: str, protocols: str) -> Dict[str, Dict[int, str]]:
    """netstat's table built from the two texts by its own rule (the reference)."""
    tables: Dict[str, Dict[int, str]] = {"tcp": {}, "udp": {}, "raw": {}}
    for line in services.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and "/" in fields[1]:
            port, _, proto = fields[1].partition("/")
            if proto in tables and port.isdigit():
                tables[proto][int(port)] = fields[0]
    for line in protocols.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and fields[1].isdigit():
            tables["raw"][int(fields[1])] = fields[0]
    return tables


@pytest.mark.skipif(not _files_only(), reason="services do not come from /etc/services here")
def test_the_host_databases_read_as_netstat_reads_them() -> None:
    expected = _files_rule(Path("/etc/services").read_text(errors="replace"),
                           Path("/etc/protocols").read_text(errors="replace"))
    assert nss.services() == expected


def _nsswitch(networks: str) -> str:
    """This host's nsswitch.conf with files-only services and protocols and this networks line."""
    try:
        lines = Path("/etc/nsswitch.conf").read_text().splitlines()
    except OSError:
        lines = []
    kept = [line for line in lines
            if line.split(":", 1)[0].strip() not in ("services", "protocols", "networks")]
    return "\n".join(kept + ["services: files", "protocols: files", f"networks: {networks}", ""])


@pytest.mark.netns
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")
@pytest.mark.parametrize("networks", ["files", "files [NOTFOUND=return]"],
                         ids=["one-walk", "getnetbyaddr-each"])
def test_crafted_databases_through_nss(tmp_path: Path, networks: str) -> None:
    """Both ways to networks names (one getnetent() walk when files is the only source,
    getnetbyaddr() per address otherwise) give glibc's answers."""
    for name, text in (("services", SERVICES), ("protocols", PROTOCOLS), ("networks", NETWORKS),
                       ("nsswitch.conf", _nsswitch(networks))):
        (tmp_path / name).write_text(text)
    mounts = " && ".join(f"mount --bind {tmp_path / name} /etc/{name}"
                         for name in ("services", "protocols", "networks", "nsswitch.conf"))
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         f'{mounts} && exec "$0" -c "$1"', sys.executable, PROBE],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PYTHONPATH": str(REPO), "LC_ALL": "C", "PATH": os.environ.get("PATH", "")},
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["services"] == {
        "tcp": {"22": "ssh", "4000": "second"},
        "udp": {"53": "dns"},
        "raw": {"1": "icmp", "200": "rawonly", "0": "ip", "89": "ospf"},
    }
    assert answer["networks"] == ["loopback", "short", "tennet", None]
