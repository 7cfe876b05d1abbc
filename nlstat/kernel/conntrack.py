"""ctnetlink constants (uapi/linux/netfilter/nfnetlink{,_conntrack}.h, nf_conntrack_common.h).

Only the members nlstat uses; the values are the kernel's.
"""

from nlstat.kernel.layout import Layout

# nfnetlink.h: the message type is (subsystem << 8) | message; every message starts with
# struct nfgenmsg { __u8 nfgen_family; __u8 version; __be16 res_id; }.
NFNL_SUBSYS_CTNETLINK = 1
NFNETLINK_V0 = 0
NFGENMSG = Layout("nfgenmsg", [("nfgen_family", "B"), ("version", "B"), ("res_id", "H")], "!")

# enum cntl_msg_types
IPCTNL_MSG_CT_NEW = 0
IPCTNL_MSG_CT_GET = 1

# enum ctattr_type (top level of a conntrack message)
CTA_TUPLE_ORIG = 1
CTA_TUPLE_REPLY = 2
CTA_STATUS = 3
CTA_TIMEOUT = 7
CTA_MARK = 8
CTA_ID = 12
CTA_SEQ_ADJ_ORIG = 15
CTA_ZONE = 18

# enum ctattr_tuple
CTA_TUPLE_IP = 1
CTA_TUPLE_PROTO = 2

# enum ctattr_ip
CTA_IP_V4_SRC = 1
CTA_IP_V4_DST = 2
CTA_IP_V6_SRC = 3
CTA_IP_V6_DST = 4

# enum ctattr_l4proto
CTA_PROTO_NUM = 1
CTA_PROTO_SRC_PORT = 2
CTA_PROTO_DST_PORT = 3
CTA_PROTO_ICMP_ID = 4
CTA_PROTO_ICMP_TYPE = 5
CTA_PROTO_ICMP_CODE = 6
CTA_PROTO_ICMPV6_ID = 7
CTA_PROTO_ICMPV6_TYPE = 8
CTA_PROTO_ICMPV6_CODE = 9

# enum ctattr_seqadj
CTA_SEQADJ_CORRECTION_POS = 1
CTA_SEQADJ_OFFSET_BEFORE = 2
CTA_SEQADJ_OFFSET_AFTER = 3

# enum ip_conntrack_status (nf_conntrack_common.h), bit values
IPS_SEEN_REPLY = 1 << 1
IPS_ASSURED = 1 << 2
IPS_CONFIRMED = 1 << 3
IPS_SRC_NAT = 1 << 4
IPS_DST_NAT = 1 << 5
IPS_NAT_MASK = IPS_SRC_NAT | IPS_DST_NAT
