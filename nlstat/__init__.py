"""nlstat: netstat rebuilt on netlink, byte-identical output, fast on busy hosts."""

__version__ = "0.1.0"
