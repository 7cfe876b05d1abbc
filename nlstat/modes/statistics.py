"""`netstat -s`: the kernel's SNMP counters as netstat's sentences, read from /proc (spec §7).

There is no netlink source for these counters (see backends/procfs/snmp.py), so every backend
reads /proc here and the output is the same under each (nlstat.backends). `-c` is ignored,
as netstat ignores it for -s: one report, status 0 even when files are missing (spec §9, §1.5).
"""

from __future__ import annotations

import os
from typing import Optional

from nlstat import backends
from nlstat.backends.procfs import snmp
from nlstat.env import Environment
from nlstat.errors import ExitStatus
from nlstat.format.stats import IPV4, IPV6, StatisticsPrinter, Switches, no_support_message
from nlstat.model.stats import StatsFile
from nlstat.query import OUTPUT_TEXT, Query


def run(query: Query, env: Environment) -> int:
    if query.output != OUTPUT_TEXT:
        from nlstat.modes.structured import run_statistics

        return run_statistics(query, env)
    # netstat joins the -A/-4/-6/-x items with commas (duplicates kept) and accepts exactly one
    # family: "-4 -6" and even "-4 -4" are refused, on stdout (spec §7.1, §11 item 5).
    families = ",".join(query.families) or "inet"
    if families not in ("inet", "inet6"):
        env.stdout.write(no_support_message(families))
        return ExitStatus.ERROR
    backends.proc_only("the -s counters", env)
    printer = StatisticsPrinter(Switches(query.raw, query.tcp, query.udp, query.sctp))
    if families == "inet":
        _ipv4(printer, env)
    else:
        _ipv6(printer, env)
    return ExitStatus.OK


def _ipv4(printer: StatisticsPrinter, env: Environment) -> None:
    """netstat parsesnmp(): snmp, then netstat, then sctp/snmp, one printer state throughout."""
    snmp_file = snmp.read_pairs_file(env.proc("net", "snmp"), "/proc/net/snmp")
    if snmp_file.open_errno:
        env.warn(f"cannot open /proc/net/snmp: {os.strerror(snmp_file.open_errno)}")
        return
    _print(printer, snmp_file, IPV4, env)
    netstat_file = snmp.read_pairs_file(env.proc("net", "netstat"), "/proc/net/netstat")
    if not netstat_file.open_errno:  # netstat skips a missing /proc/net/netstat silently
        _print(printer, netstat_file, IPV4, env)
    sctp_file = snmp.read_sctp_file(env.proc("net", "sctp", "snmp"), "/proc/net/sctp/snmp")
    if not sctp_file.open_errno:  # no sctp module: no file, no message
        _print(printer, sctp_file, IPV4, env)


def _ipv6(printer: StatisticsPrinter, env: Environment) -> None:
    """netstat parsesnmp6(): snmp6, then the "Tcp" sections of snmp."""
    snmp6_file = snmp.read_snmp6_file(env.proc("net", "snmp6"), "/proc/net/snmp6")
    if snmp6_file.open_errno:
        env.warn(f"cannot open /proc/net/snmp6: {os.strerror(snmp6_file.open_errno)}")
        return
    _print(printer, snmp6_file, IPV6, env)
    snmp_file = snmp.read_pairs_file(env.proc("net", "snmp"), "/proc/net/snmp")
    if snmp_file.open_errno:
        env.warn(f"cannot open /proc/net/snmp: {os.strerror(snmp_file.open_errno)}")
        return
    # netstat ignores the parse result here: a malformed pair just ends the Tcp part, silently.
    _print(printer, snmp_file._replace(malformed=False), IPV4, env, prefix="Tcp")


def _print(
    printer: StatisticsPrinter,
    stats_file: StatsFile,
    family: str,
    env: Environment,
    prefix: Optional[str] = None,
) -> None:
    """Print one file's sections, then its messages, in the order netstat prints them."""
    printer.add_sections(stats_file.sections, family, prefix)
    env.stdout.write(printer.text())
    if stats_file.malformed:
        env.stdout.flush()
        env.warn(f"Problem while parsing {stats_file.path}")
    if stats_file.read_errno:
        env.stdout.flush()
        env.warn(f"{stats_file.path}: {os.strerror(stats_file.read_errno)}")
