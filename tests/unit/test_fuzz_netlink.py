"""Fuzzing every netlink decoder with damaged copies of captured answers (issue 12, item 3).

Each captured answer in tests/data/** is cut, extended, given random lengths (nlmsg_len,
nla_len) and random bytes, split into chunks, and fed to its decoder. The decoder must end
in records or an NlstatError (BackendUnavailable, MalformedInput): never another exception
type, never a hang (a watchdog turns a hang into a failure instead of a stalled run).

Budget: NLSTAT_FUZZ_EXAMPLES examples per decoder (default 120, about 1 s each);
benchmarks/fuzz.py runs the same properties with a large budget.
"""

from __future__ import annotations

import os
import signal
import struct
from pathlib import Path
from typing import Any, Callable, Iterable, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlstat.backends.netlink.conntrack import decode_entries
from nlstat.backends.netlink.groups import decode_memberships
from nlstat.backends.netlink.links import (
    decode_ipv4_addresses,
    decode_ipv6_addresses,
    decode_links,
)
from nlstat.backends.netlink.routes import decode_ipv4
from nlstat.backends.netlink.routes6 import decode_ipv6
from nlstat.backends.netlink.sockdiag import decode_inet, decode_unix
from nlstat.errors import NlstatError
from tests.fuzz_tally import count

DATA = Path(__file__).resolve().parent.parent / "data"
EXAMPLES = int(os.environ.get("NLSTAT_FUZZ_EXAMPLES", "120"))
# A decoder that loops on a damaged message never returns: the watchdog makes that a failure.
WATCHDOG_SECONDS = 5


def _ifname(index: int) -> str:
    return f"if{index}"


Decoder = Callable[[List[bytes]], Iterable[Any]]

DECODERS: List[Tuple[str, str, Decoder]] = [
    ("tcp4", "sockdiag/tcp4.bin", lambda c: decode_inet(c, "tcp", want_info=True)),
    ("tcp6", "sockdiag/tcp6.bin", lambda c: decode_inet(c, "tcp")),
    ("udp4", "sockdiag/udp4.bin", lambda c: decode_inet(c, "udp")),
    ("udp6", "sockdiag/udp6.bin", lambda c: decode_inet(c, "udp", want_info=True)),
    ("raw4", "sockdiag/raw4.bin", lambda c: decode_inet(c, "raw")),
    ("raw6", "sockdiag/raw6.bin", lambda c: decode_inet(c, "raw")),
    ("unix", "sockdiag/unix.bin", decode_unix),
    ("routes4", "routes/ipv4.bin", lambda c: decode_ipv4(c, _ifname)),
    ("routes6", "routes/ipv6.bin", lambda c: decode_ipv6(c, _ifname)),
    ("links", "links/links.nl", decode_links),
    ("addr4", "links/addr4.nl", decode_ipv4_addresses),
    ("addr6", "links/addr6.nl", lambda c: decode_ipv6_addresses(c, {1: "lo"})),
    ("groups4", "groups/mcast4.nl", decode_memberships),
    ("groups6", "groups/mcast6.nl", decode_memberships),
    ("conntrack", "conntrack/nat.dump", decode_entries),
]


def _messages(data: bytes) -> List[int]:
    """Offsets of the messages of a valid answer (where nlmsg_len fields sit)."""
    offsets = []
    offset = 0
    while offset + 16 <= len(data):
        offsets.append(offset)
        (length,) = struct.unpack_from("=I", data, offset)
        if length < 16:
            break
        offset += (length + 3) & ~3
    return offsets


# One mutation: (kind, position, value, extra bytes).
MUTATION = st.tuples(
    st.sampled_from(["cut", "byte", "u16", "u32", "nlmsg_len", "extend", "insert", "split"]),
    st.integers(0, 1 << 20),
    st.one_of(
        st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF), st.sampled_from([0, 1, 3, 4, 16, 20])
    ),
    st.binary(max_size=64),
)


def mutate(data: bytes, mutations: List[Tuple[str, int, int, bytes]]) -> List[bytes]:
    """Apply the mutations in turn; return the answer as chunks."""
    buf = bytearray(data)
    cuts: List[int] = []
    for kind, position, value, extra in mutations:
        size = len(buf)
        where = position % (size + 1)
        aligned = where & ~3
        if kind == "cut":
            del buf[where:]
        elif kind == "byte" and where < size:
            buf[where] = value & 0xFF
        elif kind == "u16" and aligned + 2 <= size:
            # Most often an nla_len: attributes start on 4-byte boundaries.
            struct.pack_into("=H", buf, aligned, value & 0xFFFF)
        elif kind == "u32" and aligned + 4 <= size:
            struct.pack_into("=I", buf, aligned, value & 0xFFFFFFFF)
        elif kind == "nlmsg_len":
            offsets = _messages(bytes(buf))
            if offsets:
                struct.pack_into("=I", buf, offsets[position % len(offsets)], value & 0xFFFFFFFF)
        elif kind == "extend":
            buf += extra
        elif kind == "insert":
            buf[where:where] = extra
        elif kind == "split":
            cuts.append(where)
    chunks = []
    start = 0
    for cut in sorted(set(c for c in cuts if 0 < c < len(buf))):
        chunks.append(bytes(buf[start:cut]))
        start = cut
    chunks.append(bytes(buf[start:]))
    return chunks


class Hang(Exception):
    """A decoder still running after WATCHDOG_SECONDS on one input."""


def _expired(_signum: int, _frame: object) -> None:
    raise Hang(f"decoder still running after {WATCHDOG_SECONDS} s on one input: a hang")


def run_decoder(decoder: Decoder, chunks: List[bytes]) -> None:
    """Records or an NlstatError; anything else propagates and fails the test.

    The watchdog is armed per input, so that hypothesis's shrinking of a hanging input meets
    the same alarm again instead of stalling the run."""
    count()
    previous = signal.signal(signal.SIGALRM, _expired)
    signal.alarm(WATCHDOG_SECONDS)
    try:
        for _record in decoder(chunks):
            pass
    except NlstatError as err:
        assert str(err), "an nlstat error must say what went wrong"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("name,path,decoder", DECODERS, ids=[d[0] for d in DECODERS])
def test_captured_answer_decodes(name: str, path: str, decoder: Decoder) -> None:
    """The seeds themselves are valid: they decode to at least one record."""
    if name.startswith("raw"):  # captured on a kernel without raw_diag: a refusal
        with pytest.raises(NlstatError, match="sock_diag raw"):
            list(decoder([(DATA / path).read_bytes()]))
        return
    records = list(decoder([(DATA / path).read_bytes()]))
    assert records, name


@pytest.mark.parametrize("name,path,decoder", DECODERS, ids=[d[0] for d in DECODERS])
def test_damaged_answer_ends_in_records_or_an_nlstat_error(
    name: str, path: str, decoder: Decoder
) -> None:
    data = (DATA / path).read_bytes()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 200,
              suppress_health_check=list(HealthCheck), database=None)
    @given(st.lists(MUTATION, min_size=1, max_size=6))
    def check(mutations: List[Tuple[str, int, int, bytes]]) -> None:
        run_decoder(decoder, mutate(data, mutations))

    check()


@pytest.mark.parametrize("name,path,decoder", DECODERS, ids=[d[0] for d in DECODERS])
def test_every_cut_of_an_answer(name: str, path: str, decoder: Decoder) -> None:
    """A truncated answer, cut at every byte of its first 600 (every header field and the
    first attributes), ends in records or an nlstat error."""
    data = (DATA / path).read_bytes()
    for cut in range(min(len(data), 600)):
        run_decoder(decoder, [data[:cut]])


@pytest.mark.parametrize("name,path,decoder", DECODERS, ids=[d[0] for d in DECODERS])
def test_random_bytes(name: str, path: str, decoder: Decoder) -> None:
    @settings(max_examples=max(EXAMPLES // 4, 10), deadline=None, derandomize=EXAMPLES <= 200,
              suppress_health_check=list(HealthCheck), database=None)
    @given(st.binary(max_size=300))
    def check(data: bytes) -> None:
        run_decoder(decoder, [data])

    check()
