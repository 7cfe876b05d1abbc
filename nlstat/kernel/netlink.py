"""Netlink core constants and structs (include/uapi/linux/netlink.h)."""

from nlstat.kernel.layout import Layout

NETLINK_ROUTE = 0
NETLINK_SOCK_DIAG = 4
NETLINK_NETFILTER = 12

NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4

NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_ACK = 0x04
NLM_F_DUMP_INTR = 0x10
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH

NLA_F_NESTED = 1 << 15
NLA_F_NET_BYTEORDER = 1 << 14
NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xFFFF

SOL_NETLINK = 270
NETLINK_EXT_ACK = 11
NETLINK_GET_STRICT_CHK = 12

# The structs every netlink message is made of (include/uapi/linux/netlink.h); see layout.py.

# struct nlmsghdr { __u32 nlmsg_len; __u16 nlmsg_type; __u16 nlmsg_flags; __u32 nlmsg_seq;
#                   __u32 nlmsg_pid; };
NLMSGHDR = Layout("nlmsghdr", [
    ("nlmsg_len", "I"), ("nlmsg_type", "H"), ("nlmsg_flags", "H"), ("nlmsg_seq", "I"),
    ("nlmsg_pid", "I"),
])
# struct nlmsgerr { int error; struct nlmsghdr msg; ... }: only the errno is read.
NLMSGERR = Layout("nlmsgerr", [("error", "i")])
# struct nlattr { __u16 nla_len; __u16 nla_type; }
NLATTR = Layout("nlattr", [("nla_len", "H"), ("nla_type", "H")])
