"""Numbers as netstat's C reads them from the kernel: `%d` into an int, strtoull() into a
counter. Backends and formatters use these so that a value reads the same from netlink, from
/proc and through netstat.
"""

from __future__ import annotations

# unsigned long long and long on 64-bit Linux.
ULLONG_MAX = (1 << 64) - 1
LONG_MAX = (1 << 63) - 1
LONG_MIN = -(1 << 63)

C_SPACE = b" \t\n\r\x0b\x0c"  # C isspace() in the C locale (strtoull skips these)
_DIGITS = b"0123456789"


def to_s32(value: int) -> int:
    """An unsigned kernel value as netstat's `%d` scanf of the kernel's text gives it: the low
    32 bits, signed (0xffffffff -> -1)."""
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value & 0x80000000 else value


def c_int(value: int) -> int:
    """A decimal number as glibc's atoi() and scanf `%d` store it: strtol() clamps it to long,
    then the int keeps the low 32 bits (4294967295 -> -1, 99999999999999999999 -> -1)."""
    return to_s32(min(max(value, LONG_MIN), LONG_MAX))


def strtoull(text: bytes, pos: int) -> tuple[int, int]:
    """C strtoull(text + pos, &end, 10) -> (value, end).

    Skips C whitespace, takes an optional sign and the digits; no digits -> (0, pos), the end
    pointer not moving. Overflow gives ULLONG_MAX, whatever the sign; a negative number wraps
    modulo 2**64. Example: strtoull(b" -1 7", 0) -> (18446744073709551615, 3).
    """
    end = len(text)
    i = pos
    while i < end and text[i] in C_SPACE:
        i += 1
    negative = False
    if i < end and text[i] in b"+-":
        negative = text[i] == 0x2D
        i += 1
    first = i
    while i < end and text[i] in _DIGITS:
        i += 1
    if i == first:
        return 0, pos
    value = int(text[first:i])
    if value > ULLONG_MAX:
        return ULLONG_MAX, i
    if negative:
        value = -value & ULLONG_MAX
    return value, i


def read_counters(text: bytes, count: int) -> list[int]:
    """The first `count` unsigned numbers of `text`, as netstat reads a line of counters.

    netstat reads them with one strtoull() per value (statistics.c) or one sscanf("%llu %llu
    ...") (/proc/net/dev), each conversion starting where the previous one stopped. A token that
    is not a number stops the scan there for good, so every later value reads as 0; missing
    values read as 0 too. Example: read_counters(b"5 7x 9", 3) -> [5, 7, 0].
    """
    tokens = text.split()
    # Fast path, the kernel's case: plain decimal tokens, each strtoull() call takes one.
    if all(token.isdigit() for token in tokens):
        values = [int(token) for token in tokens[:count]]
        if any(value > ULLONG_MAX for value in values):
            values = [min(value, ULLONG_MAX) for value in values]
        values.extend([0] * (count - len(values)))
        return values
    result: list[int] = []
    pos = 0
    for _ in range(count):
        while pos < len(text) and text[pos] in b" \t\n":
            pos += 1
        value, pos = strtoull(text, pos)
        result.append(value)
    return result
