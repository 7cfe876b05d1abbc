"""procfs backends: /proc text parsed into the same records the netlink backends yield."""
