"""Statistics records (`netstat -s`), produced by backends/procfs/snmp.py from the kernel's MIBs."""


from typing import NamedTuple, Tuple

# Largest counter value: netstat reads every value with strtoull(), so values are unsigned 64-bit
# and a negative number in a file wraps ("-1" -> 18446744073709551615).
COUNTER_MAX = (1 << 64) - 1


class StatsSection(NamedTuple):
    """One section of a statistics file ("Ip", "TcpExt", "Icmp6", ...) with its counters.

    `counters` holds (kernel counter name, value) in file order, values in 0..COUNTER_MAX. Names
    are the file's bytes decoded as latin-1, so any byte survives the round trip to the output.
    """

    name: str
    counters: Tuple[Tuple[str, int], ...]


class StatsFile(NamedTuple):
    """What netstat got out of one statistics file: its sections, and how reading it ended.

    `path` is the name netstat uses in its messages ("/proc/net/snmp"), whatever the /proc root.
    `open_errno` != 0: the file could not be opened, nothing was read. `read_errno` != 0: it was
    opened but reading failed (netstat then prints "path: strerror"). `malformed`: a title or
    value line without ":" stopped the parse, after the sections already read.
    """

    path: str
    sections: Tuple[StatsSection, ...] = ()
    open_errno: int = 0
    read_errno: int = 0
    malformed: bool = False
