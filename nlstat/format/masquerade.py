"""netstat -M text: NAT'd conntrack entries in the classic "IP masquerading entries" layout.

The layout is net-tools lib/masq_info.c print_masq(), which printed /proc/net/ip_masquerade of
Linux 2.2. Each conntrack field takes the place of the masq field that meant the same thing:

    prot      protocol name ("%-4s"): tcp, udp, icmp, gre, esp (masq's six), else a known name
              or "ip"
    expire    time left, CTA_TIMEOUT seconds as masq's mm:ss.cc ("%3ld:%02ld.%02ld ")
    initseq   -ee: CTA_SEQ_ADJ_ORIG correction position ("%10lu ")
    delta     -ee: its offset after the position, prevd: its offset before ("%5hd %5hd ")
    source    the original tuple's source, the host behind the NAT ("%-20s ", never cut)
    destination  the original tuple's destination ("%-20s ")
    ports     "sport -> dport (masqport)": the original tuple's ports; masqport is the port the
              NAT put in: for source NAT / masquerade the reply tuple's destination port, for a
              destination-NAT-only entry the reply tuple's source port (where it really goes).
              ICMP: the echo id, (type << 8) | code, and the reply's id.

Hosts go through netstat's INET_rresolve with the 255.255.255.0 "netmask" (names unless -n);
ports through the tcp/udp service lists (other protocols: decimal), 0 as "*".
"""

from __future__ import annotations

from typing import Iterable, List

from nlstat.kernel.conntrack import IPS_DST_NAT, IPS_SRC_NAT
from nlstat.model.conntrack import ICMP_PROTOCOLS, ConntrackEntry
from nlstat.resolve import Names

TITLE = "IP masquerading entries"
HEADER = "prot   expire source               destination          ports"
HEADER_EXTENDED = (
    "prot   expire    initseq delta prevd source               destination          ports"
)

# masq_info.c knew IP, TCP, UDP, ICMP, GRE and ESP; conntrack tracks a few more by name.
PROTOCOL_NAMES = {
    1: "icmp",
    6: "tcp",
    17: "udp",
    33: "dccp",
    47: "gre",
    50: "esp",
    58: "icmp",  # ICMPv6 (only if IPv6 entries are ever shown)
    132: "sctp",
    136: "udplite",
}
# Only these have netstat service lists (lib/inet.c get_sname()); others print numbers.
_SERVICE_TABLES = {"tcp": "tcp", "udp": "udp"}


def masq_port(entry: ConntrackEntry) -> int:
    """The port (or ICMP id) the NAT substituted, masq's "mport"."""
    if entry.protocol in ICMP_PROTOCOLS:
        return entry.reply_sport
    source_nat = entry.status & IPS_SRC_NAT or entry.reply_dst != entry.orig_src
    if source_nat or not (entry.status & IPS_DST_NAT or entry.reply_src != entry.orig_dst):
        return entry.reply_dport
    return entry.reply_sport


def _short(value: int) -> int:
    """C's "%hd": the value as a signed 16-bit number."""
    return ((value + 0x8000) & 0xFFFF) - 0x8000


def render_row(entry: ConntrackEntry, names: Names, extend: int) -> str:
    """One print_masq() line (without its newline); `extend` is netstat's E (number of -e + 1)."""
    proto = PROTOCOL_NAMES.get(entry.protocol, "ip")
    centiseconds = entry.timeout * 100
    minutes = centiseconds // 6000
    seconds = (centiseconds // 100) % 60
    parts = [f"{proto:<4}{minutes:3d}:{seconds:02d}.{centiseconds % 100:02d} "]
    if extend > 1:
        # Conntrack always knows both offsets, so this is masq_info's "has_pdelta" layout.
        parts.append(
            f"{entry.seq_correction_pos & 0xFFFFFFFF:10d} {_short(entry.seq_offset_after):5d} "
            f"{_short(entry.seq_offset_before):5d} "
        )
    parts.append(f"{names.socket_host4(entry.orig_src):<20} ")
    parts.append(f"{names.socket_host4(entry.orig_dst):<20} ")
    table = _SERVICE_TABLES.get(proto, "")
    parts.append(
        f"{names.port(entry.orig_sport, table)} -> {names.port(entry.orig_dport, table)}"
        f" ({names.port(masq_port(entry), table)})"
    )
    return "".join(parts)


def render(entries: Iterable[ConntrackEntry], names: Names, extend: int) -> bytes:
    """The whole -M output for these (already NAT-filtered) entries; empty when there are none."""
    rows: List[str] = [render_row(entry, names, extend) for entry in entries]
    if not rows:
        return b""
    header = HEADER if extend == 1 else HEADER_EXTENDED
    return ("\n".join([TITLE, header, *rows]) + "\n").encode("utf-8", "replace")
