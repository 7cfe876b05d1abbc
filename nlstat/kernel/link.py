"""rtnetlink link, address and interface constants.

From include/uapi/linux/{rtnetlink,if_link,if_addr,if,if_arp,sockios}.h and include/net/ipv6.h;
only the members nlstat uses.
"""

from nlstat.kernel.layout import Layout

# struct ifinfomsg { unsigned char ifi_family, __ifi_pad; unsigned short ifi_type;
#   int ifi_index; unsigned ifi_flags, ifi_change; }  (include/uapi/linux/rtnetlink.h)
IFINFOMSG = Layout("ifinfomsg", [
    ("ifi_family", "B"), ("__ifi_pad", "x"), ("ifi_type", "H"), ("ifi_index", "i"),
    ("ifi_flags", "I"), ("ifi_change", "I"),
])
# struct ifaddrmsg { __u8 ifa_family, ifa_prefixlen, ifa_flags, ifa_scope; __u32 ifa_index; }
IFADDRMSG = Layout("ifaddrmsg", [
    ("ifa_family", "B"), ("ifa_prefixlen", "B"), ("ifa_flags", "B"), ("ifa_scope", "B"),
    ("ifa_index", "I"),
])
# struct rtnl_link_ifmap { __u64 mem_start, mem_end, base_addr; __u16 irq; __u8 dma, port; }
# (the C struct's 4 trailing bytes of alignment padding are not read)
RTNL_LINK_IFMAP = Layout("rtnl_link_ifmap", [
    ("mem_start", "Q"), ("mem_end", "Q"), ("base_addr", "Q"), ("irq", "H"), ("dma", "B"),
    ("port", "B"),
])
# struct rtnl_link_stats64 (include/uapi/linux/if_link.h): its leading 23 counters. Older
# kernels send fewer trailing fields, newer ones more, so only these are relied on.
STATS_COUNTERS = (
    "rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_errors", "tx_errors",
    "rx_dropped", "tx_dropped", "multicast", "collisions", "rx_length_errors",
    "rx_over_errors", "rx_crc_errors", "rx_frame_errors", "rx_fifo_errors",
    "rx_missed_errors", "tx_aborted_errors", "tx_carrier_errors", "tx_fifo_errors",
    "tx_heartbeat_errors", "tx_window_errors", "rx_compressed", "tx_compressed",
)
RTNL_LINK_STATS64 = Layout("rtnl_link_stats64", [(name, "Q") for name in STATS_COUNTERS])
# struct rtnl_link_stats: the same counters as __u32 (IFLA_STATS, kernels without STATS64).
RTNL_LINK_STATS = Layout("rtnl_link_stats", [(name, "I") for name in STATS_COUNTERS])

# include/uapi/linux/rtnetlink.h: message types.
RTM_NEWLINK = 16
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_GETADDR = 22
RTM_NEWMULTICAST = 56
RTM_GETMULTICAST = 58

# rtm_scope values as RTM_GETADDR reports them in ifa_scope.
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_SITE = 200
RT_SCOPE_LINK = 253
RT_SCOPE_HOST = 254

# include/uapi/linux/if_link.h: ifinfomsg attributes.
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_STATS = 7
IFLA_TXQLEN = 13
IFLA_MAP = 14
IFLA_STATS64 = 23

# include/uapi/linux/if_addr.h: ifaddrmsg attributes.
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_LABEL = 3
IFA_BROADCAST = 4
IFA_MULTICAST = 7

# include/uapi/linux/if.h: net_device_flags. SIOCGIFFLAGS carries only the low 16 bits.
IFF_UP = 0x1
IFF_BROADCAST = 0x2
IFF_DEBUG = 0x4
IFF_LOOPBACK = 0x8
IFF_POINTOPOINT = 0x10
IFF_NOTRAILERS = 0x20
IFF_RUNNING = 0x40
IFF_NOARP = 0x80
IFF_PROMISC = 0x100
IFF_ALLMULTI = 0x200
IFF_MASTER = 0x400
IFF_SLAVE = 0x800
IFF_MULTICAST = 0x1000
IFF_DYNAMIC = 0x8000

IFNAMSIZ = 16

# include/uapi/linux/if_arp.h: the hardware types net-tools (Debian build) has a name for.
ARPHRD_NETROM = 0
ARPHRD_ETHER = 1
ARPHRD_AX25 = 3
ARPHRD_ARCNET = 7
ARPHRD_DLCI = 15
ARPHRD_EUI64 = 27
ARPHRD_SLIP = 256
ARPHRD_CSLIP = 257
ARPHRD_SLIP6 = 258
ARPHRD_CSLIP6 = 259
ARPHRD_ADAPT = 264
ARPHRD_ROSE = 270
ARPHRD_X25 = 271
ARPHRD_PPP = 512
ARPHRD_HDLC = 513
ARPHRD_LAPB = 516
ARPHRD_TUNNEL = 768
ARPHRD_FRAD = 770
ARPHRD_LOOPBACK = 772
ARPHRD_SIT = 776
ARPHRD_FDDI = 774
ARPHRD_HIPPI = 780
ARPHRD_ASH = 781
ARPHRD_IRDA = 783
ARPHRD_NONE = 0xFFFE

# include/uapi/linux/sockios.h: the interface ioctls netstat issues (lib/interface.c if_fetch).
SIOCGIFCONF = 0x8912
SIOCGIFFLAGS = 0x8913
SIOCGIFADDR = 0x8915
SIOCGIFDSTADDR = 0x8917
SIOCGIFBRDADDR = 0x8919
SIOCGIFNETMASK = 0x891B
SIOCGIFMTU = 0x8921
SIOCGIFHWADDR = 0x8927
SIOCGIFMAP = 0x8970
SIOCGIFTXQLEN = 0x8942

# include/net/ipv6.h: the address-type scope bits /proc/net/if_inet6 prints in its scope column.
IPV6_ADDR_LOOPBACK = 0x0010
IPV6_ADDR_LINKLOCAL = 0x0020
IPV6_ADDR_SITELOCAL = 0x0040
IPV6_ADDR_COMPATv4 = 0x0080
