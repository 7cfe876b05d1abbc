"""rtnetlink route constants (include/uapi/linux/rtnetlink.h, include/uapi/linux/route.h,
include/uapi/linux/ipv6_route.h) and the legacy RTF_* flags that /proc and netstat print."""

from nlstat.kernel.layout import Layout

# struct rtmsg { unsigned char rtm_family, rtm_dst_len, rtm_src_len, rtm_tos;
#   unsigned char rtm_table, rtm_protocol, rtm_scope, rtm_type; unsigned rtm_flags; }
RTMSG = Layout("rtmsg", [
    ("rtm_family", "B"), ("rtm_dst_len", "B"), ("rtm_src_len", "B"), ("rtm_tos", "B"),
    ("rtm_table", "B"), ("rtm_protocol", "B"), ("rtm_scope", "B"), ("rtm_type", "B"),
    ("rtm_flags", "I"),
])
# struct rtnexthop { unsigned short rtnh_len; unsigned char rtnh_flags, rtnh_hops;
#   int rtnh_ifindex; }
RTNEXTHOP = Layout("rtnexthop", [
    ("rtnh_len", "H"), ("rtnh_flags", "B"), ("rtnh_hops", "B"), ("rtnh_ifindex", "i"),
])
# struct rta_cacheinfo { __u32 rta_clntref, rta_lastuse; __s32 rta_expires; __u32 rta_error,
#   rta_used; __u32 rta_id, rta_ts, rta_tsage; }
STRUCT_RTA_CACHEINFO = Layout("rta_cacheinfo", [
    ("rta_clntref", "I"), ("rta_lastuse", "I"), ("rta_expires", "i"), ("rta_error", "I"),
    ("rta_used", "I"), ("rta_id", "I"), ("rta_ts", "I"), ("rta_tsage", "I"),
])

# Message types.
RTM_NEWROUTE = 24
RTM_DELROUTE = 25
RTM_GETROUTE = 26

# struct rtmsg.rtm_flags
RTM_F_NOTIFY = 0x100
RTM_F_CLONED = 0x200
RTM_F_EQUALIZE = 0x400
RTM_F_PREFIX = 0x800
RTM_F_LOOKUP_TABLE = 0x1000
RTM_F_FIB_MATCH = 0x2000
RTM_F_OFFLOAD = 0x4000
RTM_F_TRAP = 0x8000

# enum rtattr_type_t
RTA_UNSPEC = 0
RTA_DST = 1
RTA_SRC = 2
RTA_IIF = 3
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PRIORITY = 6
RTA_PREFSRC = 7
RTA_METRICS = 8
RTA_MULTIPATH = 9
RTA_PROTOINFO = 10
RTA_FLOW = 11
RTA_CACHEINFO = 12
RTA_SESSION = 13
RTA_MP_ALGO = 14
RTA_TABLE = 15
RTA_MARK = 16
RTA_MFC_STATS = 17
RTA_VIA = 18
RTA_NEWDST = 19
RTA_PREF = 20
RTA_ENCAP_TYPE = 21
RTA_ENCAP = 22
RTA_EXPIRES = 23
RTA_PAD = 24
RTA_UID = 25
RTA_TTL_PROPAGATE = 26
RTA_IP_PROTO = 27
RTA_SPORT = 28
RTA_DPORT = 29
RTA_NH_ID = 30

# enum rtm_type (rtm_type)
RTN_UNSPEC = 0
RTN_UNICAST = 1
RTN_LOCAL = 2
RTN_BROADCAST = 3
RTN_ANYCAST = 4
RTN_MULTICAST = 5
RTN_BLACKHOLE = 6
RTN_UNREACHABLE = 7
RTN_PROHIBIT = 8
RTN_THROW = 9
RTN_NAT = 10
RTN_XRESOLVE = 11

# rtm_protocol
RTPROT_UNSPEC = 0
RTPROT_REDIRECT = 1
RTPROT_KERNEL = 2
RTPROT_BOOT = 3
RTPROT_STATIC = 4
RTPROT_RA = 9

# enum rt_scope_t
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_SITE = 200
RT_SCOPE_LINK = 253
RT_SCOPE_HOST = 254
RT_SCOPE_NOWHERE = 255

# enum rt_class_t (rtm_table, RTA_TABLE)
RT_TABLE_UNSPEC = 0
RT_TABLE_COMPAT = 252
RT_TABLE_DEFAULT = 253
RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255

# RTA_METRICS nested attributes (enum RTAX_*)
RTAX_UNSPEC = 0
RTAX_LOCK = 1
RTAX_MTU = 2
RTAX_WINDOW = 3
RTAX_RTT = 4
RTAX_RTTVAR = 5
RTAX_SSTHRESH = 6
RTAX_CWND = 7
RTAX_ADVMSS = 8
RTAX_REORDERING = 9
RTAX_HOPLIMIT = 10
RTAX_INITCWND = 11
RTAX_FEATURES = 12
RTAX_RTO_MIN = 13
RTAX_INITRWND = 14
RTAX_QUICKACK = 15
RTAX_CC_ALGO = 16
RTAX_FASTOPEN_NO_COOKIE = 17

# struct rtnexthop.rtnh_flags
RTNH_F_DEAD = 1
RTNH_F_PERVASIVE = 2
RTNH_F_ONLINK = 4
RTNH_F_OFFLOAD = 8
RTNH_F_LINKDOWN = 16
RTNH_F_UNRESOLVED = 32
RTNH_F_TRAP = 64

# Legacy route flags (include/uapi/linux/route.h, ipv6_route.h), as /proc/net/route and
# /proc/net/ipv6_route print them and net-tools decodes them.
RTF_UP = 0x0001
RTF_GATEWAY = 0x0002
RTF_HOST = 0x0004
RTF_REINSTATE = 0x0008
RTF_DYNAMIC = 0x0010
RTF_MODIFIED = 0x0020
RTF_MTU = 0x0040
RTF_WINDOW = 0x0080
RTF_IRTT = 0x0100
RTF_REJECT = 0x0200
RTF_NOTCACHED = 0x0400
RTF_DEFAULT = 0x00010000
RTF_ALLONLINK = 0x00020000
RTF_ADDRCONF = 0x00040000
RTF_PREFIX_RT = 0x00080000
RTF_ANYCAST = 0x00100000
RTF_NONEXTHOP = 0x00200000
RTF_EXPIRES = 0x00400000
RTF_ROUTEINFO = 0x00800000
RTF_CACHE = 0x01000000
RTF_FLOW = 0x02000000
RTF_POLICY = 0x04000000
RTF_LOCAL = 0x80000000

# IPv4 routing-cache flags (include/uapi/linux/in_route.h), decoded by netstat -C.
RTCF_DEAD = RTNH_F_DEAD
RTCF_ONLINK = RTNH_F_ONLINK
RTCF_NOTIFY = 0x00010000
RTCF_DIRECTDST = 0x00020000
RTCF_REDIRECTED = 0x00040000
RTCF_TPROXY = 0x00080000
RTCF_FAST = 0x00200000
RTCF_MASQ = 0x00400000
RTCF_SNAT = 0x00800000
RTCF_DOREDIRECT = 0x01000000
RTCF_DIRECTSRC = 0x04000000
RTCF_DNAT = 0x08000000
RTCF_BROADCAST = 0x10000000
RTCF_MULTICAST = 0x20000000
RTCF_REJECT = 0x40000000
RTCF_LOCAL = 0x80000000
