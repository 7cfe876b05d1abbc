"""netstat's `-s` counter tables as data: (counter name, kind, sentence), in netstat's own order.

Taken from net-tools 2.10 statistics.c (its tables, in their order) and checked against
the binary. The ORDER matters: netstat finds names with bsearch() over these tables, several of
which are not sorted, so some names can never be found (they then print as "Name: value", like
any unknown counter). `format.stats` simulates that bsearch to decide which rows are findable.
Sentences keep netstat's spelling, trailing blanks included; "%u" stands for the value.
"""

from __future__ import annotations

from typing import Tuple

# Kinds of counter (statistics.c). The numbers of the printing ones equal its `enum State`, so
# the "state" of the printer can be compared with a kind, as netstat does.
NUMBER = 0  # always printed, at 4 blanks
OPTIONAL = 1  # printed only when not 0, at 4 blanks
INPUT_HISTOGRAM = 3  # "ICMP input histogram:" title once, then lines at 8 blanks when > 0
OUTPUT_HISTOGRAM = 4  # "ICMP output histogram:" likewise
STATIC = 5  # never printed, and leaves the state alone (netstat's I_STATIC, print_static is 0)

Row = Tuple[str, int, str]
Table = Tuple[Row, ...]

# Not sorted under strcmp ("Forwarding" > "ForwDatagrams", yet it comes first), so "Forwarding"
# is never found and prints as a raw "    Forwarding: 2" (a bug kept: docs/compat.md).
IP: Table = (
    ("DefaultTTL", STATIC, "Default TTL is %u"),
    ("Forwarding", STATIC, "Forwarding is %s"),
    ("ForwDatagrams", NUMBER, "%u forwarded"),
    ("FragCreates", OPTIONAL, "%u fragments created"),
    ("FragFails", OPTIONAL, "%u outgoing packets failed fragmentation"),
    ("FragOKs", OPTIONAL, "%u outgoing packets fragmented ok"),
    ("InAddrErrors", OPTIONAL, "%u with invalid addresses"),
    ("InDelivers", NUMBER, "%u incoming packets delivered"),
    ("InDiscards", NUMBER, "%u incoming packets discarded"),
    ("InHdrErrors", OPTIONAL, "%u with invalid headers"),
    ("InReceives", NUMBER, "%u total packets received"),
    ("InUnknownProtos", OPTIONAL, "%u with unknown protocol"),
    ("OutDiscards", OPTIONAL, "%u outgoing packets dropped"),
    ("OutNoRoutes", OPTIONAL, "%u dropped because of missing route"),
    ("OutRequests", NUMBER, "%u requests sent out"),
    ("ReasmFails", OPTIONAL, "%u packet reassemblies failed"),
    ("ReasmOKs", OPTIONAL, "%u packets reassembled ok"),
    ("ReasmReqds", OPTIONAL, "%u reassemblies required"),
    ("ReasmTimeout", OPTIONAL, "%u fragments dropped after timeout"),
)

ICMP: Table = (
    ("InAddrMaskReps", INPUT_HISTOGRAM, "address mask replies: %u"),
    ("InAddrMasks", INPUT_HISTOGRAM, "address mask request: %u"),
    ("InDestUnreachs", INPUT_HISTOGRAM, "destination unreachable: %u"),
    ("InEchoReps", INPUT_HISTOGRAM, "echo replies: %u"),
    ("InEchos", INPUT_HISTOGRAM, "echo requests: %u"),
    ("InErrors", NUMBER, "%u input ICMP message failed"),
    ("InMsgs", NUMBER, "%u ICMP messages received"),
    ("InParmProbs", INPUT_HISTOGRAM, "wrong parameters: %u"),
    ("InRedirects", INPUT_HISTOGRAM, "redirects: %u"),
    ("InSrcQuenchs", INPUT_HISTOGRAM, "source quenches: %u"),
    ("InTimeExcds", INPUT_HISTOGRAM, "timeout in transit: %u"),
    ("InTimestampReps", INPUT_HISTOGRAM, "timestamp reply: %u"),
    ("InTimestamps", INPUT_HISTOGRAM, "timestamp request: %u"),
    ("OutAddrMaskReps", OUTPUT_HISTOGRAM, "address mask replies: %u"),
    ("OutAddrMasks", OUTPUT_HISTOGRAM, "address mask requests: %u"),
    ("OutDestUnreachs", OUTPUT_HISTOGRAM, "destination unreachable: %u"),
    ("OutEchoReps", OUTPUT_HISTOGRAM, "echo replies: %u"),
    ("OutEchos", OUTPUT_HISTOGRAM, "echo requests: %u"),
    ("OutErrors", NUMBER, "%u ICMP messages failed"),
    ("OutMsgs", NUMBER, "%u ICMP messages sent"),
    ("OutParmProbs", OUTPUT_HISTOGRAM, "wrong parameters: %u"),
    ("OutRedirects", OUTPUT_HISTOGRAM, "redirect: %u"),
    ("OutSrcQuenchs", OUTPUT_HISTOGRAM, "source quench: %u"),
    ("OutTimeExcds", OUTPUT_HISTOGRAM, "time exceeded: %u"),
    ("OutTimestampReps", OUTPUT_HISTOGRAM, "timestamp replies: %u"),
    ("OutTimestamps", OUTPUT_HISTOGRAM, "timestamp requests: %u"),
)

# MaxConn, RtoMax and RtoMin have empty templates: found, never printed.
TCP: Table = (
    ("ActiveOpens", NUMBER, "%u active connection openings"),
    ("AttemptFails", NUMBER, "%u failed connection attempts"),
    ("CurrEstab", NUMBER, "%u connections established"),
    ("EstabResets", NUMBER, "%u connection resets received"),
    ("InErrs", NUMBER, "%u bad segments received"),
    ("InSegs", NUMBER, "%u segments received"),
    ("MaxConn", NUMBER, ""),
    ("OutRsts", NUMBER, "%u resets sent"),
    ("OutSegs", NUMBER, "%u segments sent out"),
    ("PassiveOpens", NUMBER, "%u passive connection openings"),
    ("RetransSegs", NUMBER, "%u segments retransmitted"),
    ("RtoAlgorithm", STATIC, "RTO algorithm is %s"),
    ("RtoMax", NUMBER, ""),
    ("RtoMin", NUMBER, ""),
)

UDP: Table = (
    ("InDatagrams", NUMBER, "%u packets received"),
    ("InErrors", NUMBER, "%u packet receive errors"),
    ("NoPorts", NUMBER, "%u packets to unknown port received"),
    ("OutDatagrams", NUMBER, "%u packets sent"),
    ("RcvbufErrors", NUMBER, "%u receive buffer errors"),
    ("SndbufErrors", NUMBER, "%u send buffer errors"),
)

# Not sorted under strcmp (upper case sorts before lower case), so TCPDirectCopyFromPrequeue,
# the TCPDSACK* names, TCPLoss, TCPPrequeueDropped, TCPRenoRecoveryFail(ed), TCPSack*,
# TCPTimeouts and TWKilled are never found and print as "Name: value".
TCP_EXT: Table = (
    ("DelayedACKLocked", OPTIONAL, "%u delayed acks further delayed because of locked socket"),
    ("DelayedACKLost", OPTIONAL, "Quick ack mode was activated %u times"),
    ("DelayedACKs", OPTIONAL, "%u delayed acks sent"),
    ("EmbryonicRsts", OPTIONAL, "%u resets received for embryonic SYN_RECV sockets"),
    ("ListenDrops", OPTIONAL, "%u SYNs to LISTEN sockets dropped"),
    ("ListenOverflows", OPTIONAL, "%u times the listen queue of a socket overflowed"),
    ("LockDroppedIcmps", OPTIONAL, "%u ICMP packets dropped because socket was locked"),
    (
        "OfoPruned",
        OPTIONAL,
        "%u packets dropped from out-of-order queue because of socket buffer overrun",
    ),
    ("OutOfWindowIcmps", OPTIONAL, "%u ICMP packets dropped because they were out-of-window"),
    ("PAWSActive", OPTIONAL, "%u active connections rejected because of time stamp"),
    ("PAWSEstab", OPTIONAL, "%u packets rejected in established connections because of timestamp"),
    ("PAWSPassive", OPTIONAL, "%u passive connections rejected because of time stamp"),
    (
        "PruneCalled",
        OPTIONAL,
        "%u packets pruned from receive queue because of socket buffer overrun",
    ),
    ("RcvPruned", OPTIONAL, "%u packets pruned from receive queue"),
    ("SockMallocOOM", OPTIONAL, "Ran %u times out of system memory during packet sending"),
    ("SyncookiesFailed", OPTIONAL, "%u invalid SYN cookies received"),
    ("SyncookiesRecv", OPTIONAL, "%u SYN cookies received"),
    ("SyncookiesSent", OPTIONAL, "%u SYN cookies sent"),
    ("TCPAbortFailed", OPTIONAL, "%u times unable to send RST due to no memory"),
    ("TCPAbortOnClose", OPTIONAL, "%u connections reset due to early user close"),
    ("TCPAbortOnData", OPTIONAL, "%u connections reset due to unexpected data"),
    ("TCPAbortOnLinger", OPTIONAL, "%u connections aborted after user close in linger timeout"),
    ("TCPAbortOnMemory", OPTIONAL, "%u connections aborted due to memory pressure"),
    ("TCPAbortOnSyn", OPTIONAL, "%u connections reset due to unexpected SYN"),
    ("TCPAbortOnTimeout", OPTIONAL, "%u connections aborted due to timeout"),
    ("TCPDirectCopyFromBacklog", OPTIONAL, "%u bytes directly in process context from backlog"),
    (
        "TCPDirectCopyFromPrequeue",
        OPTIONAL,
        "%u bytes directly received in process context from prequeue",
    ),
    ("TCPDSACKOfoRecv", OPTIONAL, "%u DSACKs for out of order packets received"),
    ("TCPDSACKOfoSent", OPTIONAL, "%u DSACKs sent for out of order packets"),
    ("TCPDSACKOldSent", OPTIONAL, "%u DSACKs sent for old packets"),
    ("TCPDSACKRecv", OPTIONAL, "%u DSACKs received"),
    ("TCPDSackUndo", OPTIONAL, "%u congestion window recovered without slow start using DSACK"),
    ("TCPDSACKUndo", OPTIONAL, "%u congestion windows recovered without slow start by DSACK"),
    ("TCPFACKReorder", OPTIONAL, "Detected reordering %u times using FACK"),
    ("TCPFastRetrans", OPTIONAL, "%u fast retransmits"),
    ("TCPForwardRetrans", OPTIONAL, "%u forward retransmits"),
    ("TCPFullUndo", OPTIONAL, "%u congestion windows fully recovered without slow start"),
    ("TCPHPAcks", OPTIONAL, "%u predicted acknowledgments"),
    ("TCPHPHits", NUMBER, "%u packet headers predicted"),
    ("TCPHPHitsToUser", OPTIONAL, "%u packet headers predicted and directly queued to user"),
    ("TCPLossFailures", OPTIONAL, "%u timeouts in loss state"),
    ("TCPLoss", OPTIONAL, "%u TCP data loss events"),
    (
        "TCPLossUndo",
        OPTIONAL,
        "%u congestion windows recovered without slow start after partial ack",
    ),
    ("TCPLostRetransmits", OPTIONAL, "%u retransmits lost"),
    ("TCPMemoryPressures", OPTIONAL, "TCP ran low on memory %u times"),
    ("TCPPartialUndo", OPTIONAL, "%u congestion windows partially recovered using Hoe heuristic"),
    ("TCPPrequeued", OPTIONAL, "%u packets directly queued to recvmsg prequeue"),
    ("TCPPrequeueDropped", OPTIONAL, "%u packets dropped from prequeue"),
    ("TCPPureAcks", OPTIONAL, "%u acknowledgments not containing data payload received"),
    ("TCPRcvCollapsed", OPTIONAL, "%u packets collapsed in receive queue due to low socket buffer"),
    ("TCPRenoFailures", OPTIONAL, "%u timeouts after reno fast retransmit"),
    ("TCPRenoRecoveryFailed", OPTIONAL, "%u reno fast retransmits failed"),
    ("TCPRenoRecoveryFail", OPTIONAL, "%u classic Reno fast retransmits failed"),
    ("TCPRenoRecovery", OPTIONAL, "%u times recovered from packet loss due to fast retransmit"),
    ("TCPRenoReorder", OPTIONAL, "Detected reordering %u times using reno fast retransmit"),
    ("TCPSackFailures", OPTIONAL, "%u timeouts after SACK recovery"),
    ("TCPSackRecoveryFail", OPTIONAL, "%u SACK retransmits failed"),
    (
        "TCPSackRecovery",
        OPTIONAL,
        "%u times recovered from packet loss by selective acknowledgements",
    ),
    ("TCPSACKReneging", OPTIONAL, "%u bad SACK blocks received"),
    ("TCPSACKReorder", OPTIONAL, "Detected reordering %u times using SACK"),
    ("TCPSchedulerFailed", OPTIONAL, "%u times receiver scheduled too late for direct processing"),
    ("TCPSlowStartRetrans", OPTIONAL, "%u retransmits in slow start"),
    ("TCPTimeouts", OPTIONAL, "%u other TCP timeouts"),
    ("TCPTSReorder", OPTIONAL, "Detected reordering %u times using time stamp"),
    ("TWKilled", OPTIONAL, "%u TCP sockets finished time wait in slow timer"),
    ("TW", OPTIONAL, "%u TCP sockets finished time wait in fast timer"),
    ("TWRecycled", OPTIONAL, "%u time wait sockets recycled by time stamp"),
)

# Two templates end in a blank ("Number of Aborteds ", "messages reassembled "), as in netstat.
SCTP: Table = (
    ("SctpAborteds", NUMBER, "%u Number of Aborteds "),
    ("SctpActiveEstabs", NUMBER, "%u Active Associations"),
    ("SctpChecksumErrors", NUMBER, "%u Number of Packets with invalid Checksum"),
    ("SctpCurrEstab", NUMBER, "%u Current Associations"),
    ("SctpFragUsrMsgs", NUMBER, "%u Number of messages fragmented"),
    ("SctpInCtrlChunks", NUMBER, "%u Number of control chunks received"),
    ("SctpInOrderChunks", NUMBER, "%u Number of ordered chunks received"),
    ("SctpInSCTPPacks", NUMBER, "%u Number of SCTP packets received"),
    ("SctpInUnorderChunks", NUMBER, "%u Number of Unordered chunks received"),
    ("SctpOutCtrlChunks", NUMBER, "%u Number of control chunks sent"),
    ("SctpOutOfBlues", NUMBER, "%u Number of Out of Blue packets"),
    ("SctpOutOrderChunks", NUMBER, "%u Number of ordered chunks sent"),
    ("SctpOutSCTPPacks", NUMBER, "%u Number of SCTP packets sent"),
    ("SctpOutUnorderChunks", NUMBER, "%u Number of Unordered chunks sent"),
    ("SctpPassiveEstabs", NUMBER, "%u Passive Associations"),
    ("SctpReasmUsrMsgs", NUMBER, "%u Number of messages reassembled "),
    ("SctpShutdowns", NUMBER, "%u Number of Graceful Terminations"),
)

IP6: Table = (
    ("Ip6FragCreates", OPTIONAL, "%u fragments created"),
    ("Ip6FragFails", OPTIONAL, "%u outgoing packets failed fragmentation"),
    ("Ip6FragOKs", OPTIONAL, "%u outgoing packets fragmented ok"),
    ("Ip6InAddrErrors", OPTIONAL, "%u with invalid addresses"),
    ("Ip6InDelivers", NUMBER, "%u incoming packets delivered"),
    ("Ip6InDiscards", NUMBER, "%u incoming packets discarded"),
    ("Ip6InHdrErrors", OPTIONAL, "%u with invalid headers"),
    ("Ip6InMcastPkts", OPTIONAL, "%u incoming multicast packets"),
    ("Ip6InNoRoutes", OPTIONAL, "%u incoming packets with no route"),
    ("Ip6InReceives", NUMBER, "%u total packets received"),
    ("Ip6InTooBigErrors", OPTIONAL, "%u with packets too big"),
    ("Ip6InTruncatedPkts", OPTIONAL, "%u with truncated packets"),
    ("Ip6InUnknownProtos", OPTIONAL, "%u with unknown protocol"),
    ("Ip6OutDiscards", OPTIONAL, "%u outgoing packets dropped"),
    ("Ip6OutForwDatagrams", NUMBER, "%u forwarded"),
    ("Ip6OutMcastPkts", OPTIONAL, "%u outgoing multicast packets"),
    ("Ip6OutNoRoutes", OPTIONAL, "%u dropped because of missing route"),
    ("Ip6OutRequests", NUMBER, "%u requests sent out"),
    ("Ip6ReasmFails", OPTIONAL, "%u packet reassemblies failed"),
    ("Ip6ReasmOKs", OPTIONAL, "%u packets reassembled ok"),
    ("Ip6ReasmReqds", OPTIONAL, "%u reassemblies required"),
    ("Ip6ReasmTimeout", OPTIONAL, "%u fragments dropped after timeout"),
)

# The name "Icmp6OutRouterAdvertisements " has a trailing blank in netstat's table, so the
# kernel's counter of that name never matches it.
ICMP6: Table = (
    ("Icmp6InDestUnreachs", INPUT_HISTOGRAM, "destination unreachable: %u"),
    ("Icmp6InEchoReplies", INPUT_HISTOGRAM, "echo replies: %u"),
    ("Icmp6InEchos", INPUT_HISTOGRAM, "echo requests: %u"),
    ("Icmp6InErrors", NUMBER, "%u input ICMP message failed"),
    ("Icmp6InGroupMembQueries", INPUT_HISTOGRAM, "group member queries: %u"),
    ("Icmp6InGroupMembReductions", INPUT_HISTOGRAM, "group member reductions: %u"),
    ("Icmp6InGroupMembResponses", INPUT_HISTOGRAM, "group member responses: %u"),
    ("Icmp6InMsgs", NUMBER, "%u ICMP messages received"),
    ("Icmp6InNeighborAdvertisements", INPUT_HISTOGRAM, "neighbour advertisement: %u"),
    ("Icmp6InNeighborSolicits", INPUT_HISTOGRAM, "neighbour solicits: %u"),
    ("Icmp6InParmProblems", INPUT_HISTOGRAM, "parameter problem: %u"),
    ("Icmp6InPktTooBigs", INPUT_HISTOGRAM, "packets too big: %u"),
    ("Icmp6InRedirects", INPUT_HISTOGRAM, "redirects: %u"),
    ("Icmp6InRouterAdvertisements", INPUT_HISTOGRAM, "router advertisement: %u"),
    ("Icmp6InRouterSolicits", INPUT_HISTOGRAM, "router solicits: %u"),
    ("Icmp6InTimeExcds", INPUT_HISTOGRAM, "received ICMPv6 time exceeded: %u"),
    ("Icmp6OutDestUnreachs", OUTPUT_HISTOGRAM, "destination unreachable: %u"),
    ("Icmp6OutEchoReplies", OUTPUT_HISTOGRAM, "echo replies: %u"),
    ("Icmp6OutEchos", OUTPUT_HISTOGRAM, "echo requests: %u"),
    ("Icmp6OutGroupMembQueries", OUTPUT_HISTOGRAM, "group member queries: %u"),
    ("Icmp6OutGroupMembReductions", OUTPUT_HISTOGRAM, "group member reductions: %u"),
    ("Icmp6OutGroupMembResponses", OUTPUT_HISTOGRAM, "group member responses: %u"),
    ("Icmp6OutMsgs", NUMBER, "%u ICMP messages sent"),
    ("Icmp6OutNeighborAdvertisements", OUTPUT_HISTOGRAM, "neighbor advertisements: %u"),
    ("Icmp6OutNeighborSolicits", OUTPUT_HISTOGRAM, "neighbor solicits: %u"),
    ("Icmp6OutParmProblems", OUTPUT_HISTOGRAM, "parameter problem: %u"),
    ("Icmp6OutPktTooBigs", OUTPUT_HISTOGRAM, "packets too big: %u"),
    ("Icmp6OutRedirects", OUTPUT_HISTOGRAM, "redirects: %u"),
    ("Icmp6OutRouterAdvertisements ", OUTPUT_HISTOGRAM, "router advertisement: %u"),
    ("Icmp6OutRouterSolicits", OUTPUT_HISTOGRAM, "router solicits: %u"),
    ("Icmp6OutTimeExcds", OUTPUT_HISTOGRAM, "sent ICMPv6 time exceeded: %u"),
)

UDP6: Table = (
    ("Udp6InDatagrams", NUMBER, "%u packets received"),
    ("Udp6InErrors", NUMBER, "%u packet receive errors"),
    ("Udp6NoPorts", NUMBER, "%u packets to unknown port received"),
    ("Udp6OutDatagrams", NUMBER, "%u packets sent"),
)

# Section name -> table, per file family (netstat's snmptabs / snmp6tabs). The section's filter
# switch is in format.stats, next to the printer that applies it.
IPV4_TABLES = {"Ip": IP, "Icmp": ICMP, "Tcp": TCP, "Udp": UDP, "Sctp": SCTP, "TcpExt": TCP_EXT}
# "Tcp6" is known (with the IPv4 Tcp table) but no kernel has ever written such a section.
IPV6_TABLES = {"Ip6": IP6, "Icmp6": ICMP6, "Udp6": UDP6, "Tcp6": TCP}
