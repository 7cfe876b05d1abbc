"""Kernel structs declared once, as data: each field's name next to its `struct` format.

A `Layout` is a C struct written as the list of its members in C order, each a (name, format)
pair, and compiled to one `struct.Struct`. The names are the kernel's; a member whose format
is padding only ("x", "12x") gives no value. From that one declaration come the format string,
the size, every member's offset and the names of the values `unpack_from` gives, in order, so
the loop that unpacks a message can be checked against the struct it reads (tests/unit/
test_layouts.py) instead of repeating its field order in a comment.

Derived layouts serve the hot decoders without a second declaration:

* `view(member=format, ...)`: the same struct with some members read another way at the same
  size ("16s" -> "4s12x": an IPv4 address out of a 16-byte union, with no slicing after);
* `reading(name, ...)`: only the named members give values, the others become padding (fewer
  ints built per message);
* `head(member)`: the leading members up to that one.

`then()` joins layouts end to end, as the kernel lays out a header and its payload (no
alignment is added: layouts take standard sizes only, "=" or a fixed byte order, so no
implicit padding either).
Adjacent padding is merged, so the compiled format is the one a hand-written string would be.
"""

from __future__ import annotations

import struct
from typing import Dict, Sequence, Tuple

Member = Tuple[str, str]

_CODES = "xcbB?hHiIlLqQnNefdspP"


_TOKENS: Dict[str, Sequence[Tuple[int, str]]] = {}
_VALUES: Dict[Tuple[str, str], Tuple[int, int]] = {}


def _tokens(fmt: str) -> Sequence[Tuple[int, str]]:
    """"4s12xI" -> [(4, "s"), (12, "x"), (1, "I")]."""
    known = _TOKENS.get(fmt)
    if known is not None:
        return known
    tokens = []
    digits = ""
    for char in fmt:
        if char.isdigit():
            digits += char
        elif char in _CODES:
            tokens.append((int(digits or "1"), char))
            digits = ""
        else:
            raise ValueError(f"bad struct format {fmt!r}")
    if digits:
        raise ValueError(f"bad struct format {fmt!r}")
    _TOKENS[fmt] = tokens
    return tokens


def _merged(formats: Sequence[str]) -> str:
    """The members' formats as one string, runs of padding merged ("2x4x4x" -> "10x")."""
    parts = []
    pad = 0
    for fmt in formats:
        for count, code in _tokens(fmt):
            if code == "x":
                pad += count
                continue
            if pad:
                parts.append("%dx" % pad if pad > 1 else "x")
                pad = 0
            parts.append(("%d%s" % (count, code)) if count != 1 else code)
    if pad:
        parts.append("%dx" % pad if pad > 1 else "x")
    return "".join(parts)


def _values(byte_order: str, fmt: str) -> Tuple[int, int]:
    """(size, number of values) of one member's format (remembered: layouts are built at
    import, and a few formats make up every member)."""
    known = _VALUES.get((byte_order, fmt))
    if known is None:
        size = struct.calcsize(byte_order + fmt)
        count = sum(1 if code in "sp" else n for n, code in _tokens(fmt) if code != "x")
        known = _VALUES[(byte_order, fmt)] = (size, count)
    return known


class Layout:
    """One kernel struct: `Layout("nlmsghdr", [("nlmsg_len", "I"), ("nlmsg_type", "H"), ...])`.

    `.struct` is the compiled struct, `.size` its size, `.fields` the names of the values
    `.unpack_from` gives, in order, `.offset(name)` a member's offset. A member must give at
    most one value ("4s" is one value; "4I" is refused: name each of the four), and names are
    unique: a wrong declaration fails at import.
    """

    __slots__ = ("name", "byte_order", "members", "fields", "struct", "size", "_offsets",
                 "pack", "pack_into", "unpack_from", "unpack")

    def __init__(self, name: str, members: Sequence[Member], byte_order: str = "=") -> None:
        if byte_order not in ("=", "<", ">", "!"):
            raise ValueError(f"{name}: byte order {byte_order!r} is not a standard-size one")
        self.name = name
        self.byte_order = byte_order
        self.members: Tuple[Member, ...] = tuple(members)
        offsets: Dict[str, int] = {}
        fields = []
        offset = 0
        for member, fmt in self.members:
            if member in offsets:
                raise ValueError(f"{name}: member {member!r} declared twice")
            size, count = _values(byte_order, fmt)
            if count > 1:
                raise ValueError(f"{name}.{member}: {fmt!r} gives {count} values, not one")
            offsets[member] = offset
            offset += size
            if count:
                fields.append(member)
        self.fields: Tuple[str, ...] = tuple(fields)
        self._offsets = offsets
        self.struct = struct.Struct(byte_order + _merged([fmt for _, fmt in self.members]))
        self.size: int = self.struct.size
        if self.size != offset:
            raise ValueError(f"{name}: members add up to {offset} bytes, the struct to {self.size}")
        self.pack = self.struct.pack
        self.pack_into = self.struct.pack_into
        self.unpack_from = self.struct.unpack_from
        self.unpack = self.struct.unpack

    @property
    def format(self) -> str:
        return self.struct.format

    def offset(self, member: str) -> int:
        """A member's offset from the start of the struct (KeyError for an unknown name)."""
        return self._offsets[member]

    def then(self, following: Layout, name: str = "") -> Layout:
        """This struct followed by another, as a message carries a header then its payload."""
        if following.byte_order != self.byte_order:
            raise ValueError(f"{self.name} + {following.name}: byte orders differ")
        return Layout(name or f"{self.name}+{following.name}",
                      self.members + following.members, self.byte_order)

    def view(self, **formats: str) -> Layout:
        """The same struct with some members read another way, at the same size."""
        unknown = set(formats) - set(self._offsets)
        if unknown:
            raise KeyError(f"{self.name} has no member {sorted(unknown)}")
        members = []
        for member, fmt in self.members:
            new = formats.get(member, fmt)
            if _values(self.byte_order, new)[0] != _values(self.byte_order, fmt)[0]:
                raise ValueError(f"{self.name}.{member}: {new!r} is not the size of {fmt!r}")
            members.append((member, new))
        return Layout(self.name, members, self.byte_order)

    def reading(self, *names: str) -> Layout:
        """The same struct where only `names` give values; the other members become padding."""
        unknown = set(names) - set(self.fields)
        if unknown:
            raise KeyError(f"{self.name} has no value member {sorted(unknown)}")
        members = [
            (member, fmt if member in names else "%dx" % _values(self.byte_order, fmt)[0])
            for member, fmt in self.members
        ]
        return Layout(self.name, members, self.byte_order)

    def head(self, last: str) -> Layout:
        """The leading members up to and including `last` (a read that must not ask for
        more bytes than a short message has)."""
        cut = [member for member, _ in self.members].index(last) + 1
        return Layout(self.name, self.members[:cut], self.byte_order)

    def __repr__(self) -> str:
        return f"Layout({self.name!r}, {self.format!r}, fields={self.fields!r})"
