"""sock_diag constants and structs (include/uapi/linux/{sock_diag,inet_diag,unix_diag}.h,
net/tcp_states.h, struct tcp_info of include/uapi/linux/tcp.h)."""

from nlstat.kernel.layout import Layout

SOCK_DIAG_BY_FAMILY = 20
# The inet_diag request before SOCK_DIAG_BY_FAMILY (struct inet_diag_req): still answered, for
# both families in one walk (net/ipv4/inet_diag.c inet_diag_dump_compat: AF_UNSPEC).
TCPDIAG_GETSOCK = 18

# inet_diag_req_v2.idiag_ext bits are 1 << (INET_DIAG_x - 1).
INET_DIAG_NONE = 0
INET_DIAG_MEMINFO = 1
INET_DIAG_INFO = 2
INET_DIAG_VEGASINFO = 3
INET_DIAG_CONG = 4
INET_DIAG_TOS = 5
INET_DIAG_TCLASS = 6
INET_DIAG_SKMEMINFO = 7
INET_DIAG_SHUTDOWN = 8
INET_DIAG_DCTCPINFO = 9
INET_DIAG_PROTOCOL = 10
INET_DIAG_SKV6ONLY = 11
INET_DIAG_PAD = 14  # before a u64 where the arch wants it aligned (nla_put_u64_64bit)
INET_DIAG_MARK = 15
INET_DIAG_CLASS_ID = 17
INET_DIAG_CGROUP_ID = 21
INET_DIAG_SOCKOPT = 22

# inet_diag request attributes (enum in include/uapi/linux/inet_diag.h).
INET_DIAG_REQ_NONE = 0
INET_DIAG_REQ_BYTECODE = 1

# struct inet_diag_bc_op { unsigned char code; unsigned char yes; unsigned short no; }: the
# filter program's operations (net/ipv4/inet_diag.c inet_diag_bc_run()).
INET_DIAG_BC_NOP = 0
INET_DIAG_BC_JMP = 1
INET_DIAG_BC_S_GE = 2
INET_DIAG_BC_S_LE = 3
INET_DIAG_BC_D_GE = 4
INET_DIAG_BC_D_LE = 5
INET_DIAG_BC_AUTO = 6
INET_DIAG_BC_S_COND = 7
INET_DIAG_BC_D_COND = 8
INET_DIAG_BC_DEV_COND = 9
INET_DIAG_BC_MARK_COND = 10
INET_DIAG_BC_S_EQ = 11
INET_DIAG_BC_D_EQ = 12
INET_DIAG_BC_CGROUP_COND = 13  # operand: u64 cgroup v2 id (Linux 5.7)

# unix_diag_req.udiag_show bits.
UDIAG_SHOW_NAME = 0x01
UDIAG_SHOW_VFS = 0x02
UDIAG_SHOW_PEER = 0x04
UDIAG_SHOW_ICONS = 0x08
UDIAG_SHOW_RQLEN = 0x10
UDIAG_SHOW_MEMINFO = 0x20
UDIAG_SHOW_UID = 0x40

# unix_diag_msg attributes.
UNIX_DIAG_NAME = 0
UNIX_DIAG_VFS = 1
UNIX_DIAG_PEER = 2
UNIX_DIAG_ICONS = 3
UNIX_DIAG_RQLEN = 4
UNIX_DIAG_MEMINFO = 5
UNIX_DIAG_SHUTDOWN = 6
UNIX_DIAG_UID = 7

# include/net/tcp_states.h
TCP_ESTABLISHED = 1
TCP_SYN_SENT = 2
TCP_SYN_RECV = 3
TCP_FIN_WAIT1 = 4
TCP_FIN_WAIT2 = 5
TCP_TIME_WAIT = 6
TCP_CLOSE = 7
TCP_CLOSE_WAIT = 8
TCP_LAST_ACK = 9
TCP_LISTEN = 10
TCP_CLOSING = 11
TCP_NEW_SYN_RECV = 12
TCP_BOUND_INACTIVE = 13
TCPF_ALL = 0xFFFFFFFF

# include/uapi/linux/net.h socket_state, as /proc/net/unix prints it.
SS_FREE = 0
SS_UNCONNECTED = 1
SS_CONNECTING = 2
SS_CONNECTED = 3
SS_DISCONNECTING = 4

# include/linux/net.h: __SO_ACCEPTCON, the /proc/net/unix flag of listening sockets.
SO_ACCEPTCON = 1 << 16

IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_UDPLITE = 136
IPPROTO_RAW = 255


# -- structs (see layout.py) ------------------------------------------------------------------

# struct inet_diag_sockid { __be16 idiag_sport, idiag_dport; __be32 idiag_src[4], idiag_dst[4];
#   __u32 idiag_if; __u32 idiag_cookie[2]; }
# Ports are big-endian, read natively here and swapped by the decoder's table; the cookie's two
# host-order words are read as one native u64 (cookie[0] is the low word).
INET_DIAG_SOCKID = Layout("inet_diag_sockid", [
    ("idiag_sport", "H"), ("idiag_dport", "H"), ("idiag_src", "16s"), ("idiag_dst", "16s"),
    ("idiag_if", "I"), ("idiag_cookie", "Q"),
])

# struct inet_diag_msg { __u8 idiag_family, idiag_state, idiag_timer, idiag_retrans;
#   struct inet_diag_sockid id; __u32 idiag_expires, idiag_rqueue, idiag_wqueue, idiag_uid,
#   idiag_inode; }
INET_DIAG_MSG = Layout("inet_diag_msg", [
    ("idiag_family", "B"), ("idiag_state", "B"), ("idiag_timer", "B"), ("idiag_retrans", "B"),
    *INET_DIAG_SOCKID.members,
    ("idiag_expires", "I"), ("idiag_rqueue", "I"), ("idiag_wqueue", "I"), ("idiag_uid", "I"),
    ("idiag_inode", "I"),
])

# struct inet_diag_req_v2 { __u8 sdiag_family, sdiag_protocol, idiag_ext, pad;
#   __u32 idiag_states; struct inet_diag_sockid id; }
# `pad` is sdiag_raw_protocol for raw_diag. The sockid is left zero: every socket matches.
INET_DIAG_REQ_V2 = Layout("inet_diag_req_v2", [
    ("sdiag_family", "B"), ("sdiag_protocol", "B"), ("idiag_ext", "B"), ("pad", "B"),
    ("idiag_states", "I"), ("id", "%dx" % INET_DIAG_SOCKID.size),
])

# struct inet_diag_req { __u8 idiag_family, idiag_src_len, idiag_dst_len, idiag_ext;
#   struct inet_diag_sockid id; __u32 idiag_states, idiag_dbs; }: TCPDIAG_GETSOCK's request.
INET_DIAG_REQ = Layout("inet_diag_req", [
    ("idiag_family", "B"), ("idiag_src_len", "B"), ("idiag_dst_len", "B"), ("idiag_ext", "B"),
    ("id", "%dx" % INET_DIAG_SOCKID.size), ("idiag_states", "I"), ("idiag_dbs", "I"),
])

# struct unix_diag_req { __u8 sdiag_family, sdiag_protocol; __u16 pad; __u32 udiag_states,
#   udiag_ino, udiag_show; __u32 udiag_cookie[2]; }
UNIX_DIAG_REQ = Layout("unix_diag_req", [
    ("sdiag_family", "B"), ("sdiag_protocol", "B"), ("pad", "H"), ("udiag_states", "I"),
    ("udiag_ino", "I"), ("udiag_show", "I"), ("udiag_cookie", "Q"),
])

# struct unix_diag_msg { __u8 udiag_family, udiag_type, udiag_state, pad; __u32 udiag_ino;
#   __u32 udiag_cookie[2]; }
UNIX_DIAG_MSG = Layout("unix_diag_msg", [
    ("udiag_family", "B"), ("udiag_type", "B"), ("udiag_state", "B"), ("pad", "x"),
    ("udiag_ino", "I"), ("udiag_cookie", "Q"),
])

# struct inet_diag_bc_op { unsigned char code, yes; unsigned short no; }: one bytecode step;
# `yes`/`no` are the byte distances to jump to when the condition holds or fails.
INET_DIAG_BC_OP = Layout("inet_diag_bc_op", [("code", "B"), ("yes", "B"), ("no", "H")])

# struct inet_diag_hostcond { __u8 family, prefix_len; int port; __be32 addr[]; }: the int is
# 4-aligned, after two bytes of padding; the address follows, of the family's length.
INET_DIAG_HOSTCOND = Layout("inet_diag_hostcond", [
    ("family", "B"), ("prefix_len", "B"), ("pad", "2x"), ("port", "i"),
])

# struct tcp_info (include/uapi/linux/tcp.h), in the kernel's member order. The kernel copies
# min(its size, the buffer) and older kernels have a shorter struct: a reader takes the
# members it needs from a `head()` of this layout, after checking the attribute's length.
# Bytes 6 and 7 hold bit fields (snd/rcv_wscale 4:4; delivery_rate_app_limited:1,
# fastopen_client_fail:2), read here as whole bytes.
TCP_INFO = Layout("tcp_info", [
    ("tcpi_state", "B"), ("tcpi_ca_state", "B"), ("tcpi_retransmits", "B"), ("tcpi_probes", "B"),
    ("tcpi_backoff", "B"), ("tcpi_options", "B"), ("tcpi_wscale", "B"), ("tcpi_app_limited", "B"),
    ("tcpi_rto", "I"), ("tcpi_ato", "I"), ("tcpi_snd_mss", "I"), ("tcpi_rcv_mss", "I"),
    ("tcpi_unacked", "I"), ("tcpi_sacked", "I"), ("tcpi_lost", "I"), ("tcpi_retrans", "I"),
    ("tcpi_fackets", "I"),
    ("tcpi_last_data_sent", "I"), ("tcpi_last_ack_sent", "I"), ("tcpi_last_data_recv", "I"),
    ("tcpi_last_ack_recv", "I"),
    ("tcpi_pmtu", "I"), ("tcpi_rcv_ssthresh", "I"), ("tcpi_rtt", "I"), ("tcpi_rttvar", "I"),
    ("tcpi_snd_ssthresh", "I"), ("tcpi_snd_cwnd", "I"), ("tcpi_advmss", "I"),
    ("tcpi_reordering", "I"),
    ("tcpi_rcv_rtt", "I"), ("tcpi_rcv_space", "I"),
    ("tcpi_total_retrans", "I"),
    # Linux 4.0 and later from here (the u64s fall on 8-byte boundaries: no padding).
    ("tcpi_pacing_rate", "Q"), ("tcpi_max_pacing_rate", "Q"),
    ("tcpi_bytes_acked", "Q"), ("tcpi_bytes_received", "Q"),
    ("tcpi_segs_out", "I"), ("tcpi_segs_in", "I"),
    ("tcpi_notsent_bytes", "I"), ("tcpi_min_rtt", "I"),
    ("tcpi_data_segs_in", "I"), ("tcpi_data_segs_out", "I"),
    ("tcpi_delivery_rate", "Q"),
    ("tcpi_busy_time", "Q"), ("tcpi_rwnd_limited", "Q"), ("tcpi_sndbuf_limited", "Q"),
    ("tcpi_delivered", "I"), ("tcpi_delivered_ce", "I"),
    ("tcpi_bytes_sent", "Q"), ("tcpi_bytes_retrans", "Q"),
    ("tcpi_dsack_dups", "I"), ("tcpi_reord_seen", "I"),
    ("tcpi_rcv_ooopack", "I"),
    ("tcpi_snd_wnd", "I"),
])
