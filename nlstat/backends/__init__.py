"""Where records come from: the kernel over netlink, or /proc text as the fallback."""
