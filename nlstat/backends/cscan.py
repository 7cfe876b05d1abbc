"""Numbers as netstat's C reads them from the kernel: `%d` into an int, strtoull() into a
counter. Backends use these so that a value from netlink reads as the same value from /proc.
"""

from __future__ import annotations


def to_s32(value: int) -> int:
    """An unsigned kernel value as netstat's `%d` scanf of the kernel's text gives it: the low
    32 bits, signed (0xffffffff -> -1)."""
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value & 0x80000000 else value
