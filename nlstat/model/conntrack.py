"""Conntrack records (`-M`), produced by backends/netlink/conntrack.py and procfs/conntrack.py."""


from typing import NamedTuple

from nlstat.kernel.conntrack import IPS_NAT_MASK


class ConntrackEntry(NamedTuple):
    """One connection-tracking entry: its original and reply tuples, status and time left.

    Addresses are `inet_ntop` text. Ports are the kernel tuple's host-order "u.all" values: TCP,
    UDP, SCTP, DCCP, UDP-Lite ports; for ICMP the source is the echo id and the destination is
    (type << 8) | code. An entry was NAT'd when the reply tuple is not the original one turned
    round (see `is_nat`). `status` holds the IPS_* bits (from /proc only ASSURED and
    SEEN_REPLY are known). Sequence adjustment (`seq_*`, original direction) is only on netlink.
    """

    family: int  # socket.AF_INET or socket.AF_INET6
    protocol: int  # IP protocol number (6 tcp, 17 udp, 1 icmp, ...)
    orig_src: str
    orig_dst: str
    orig_sport: int
    orig_dport: int
    reply_src: str
    reply_dst: str
    reply_sport: int
    reply_dport: int
    status: int = 0
    timeout: int = 0  # seconds until the entry expires
    mark: int = 0
    zone: int = 0
    id: int = 0  # CTA_ID (0 from /proc)
    seq_correction_pos: int = 0  # CTA_SEQADJ_CORRECTION_POS
    seq_offset_before: int = 0  # CTA_SEQADJ_OFFSET_BEFORE (signed)
    seq_offset_after: int = 0  # CTA_SEQADJ_OFFSET_AFTER (signed)


# IPPROTO_ICMP and IPPROTO_ICMPV6: their tuples hold the echo id and (type << 8) | code.
ICMP_PROTOCOLS = (1, 58)


def is_nat(entry: ConntrackEntry) -> bool:
    """Was this connection translated (SNAT, masquerade, DNAT, or a remapped port)?

    The status bits say so on netlink; /proc has no such bits, and a translation also shows as a
    reply tuple that is not the original one reversed (ICMP: same echo id, types differ anyway).
    """
    if entry.status & IPS_NAT_MASK:
        return True
    if entry.reply_src != entry.orig_dst or entry.reply_dst != entry.orig_src:
        return True
    if entry.protocol in ICMP_PROTOCOLS:
        return entry.reply_sport != entry.orig_sport
    return entry.reply_sport != entry.orig_dport or entry.reply_dport != entry.orig_sport
