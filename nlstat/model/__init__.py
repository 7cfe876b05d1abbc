"""Immutable records: the contract between backends (which produce them) and formatters.

One module per table; each record keeps the kernel's raw values (numbers, addresses as text,
kernel state numbers), never formatted columns, and keeps what netlink gives beyond what
netstat prints (socket cookie, interface) for the JSON, watch and replay features.

The record modules (and query.py) do not use `from __future__ import annotations`: NamedTuple
turns each string annotation into a ForwardRef by compiling it, which made defining the
records cost about twice as much at every start.
"""
