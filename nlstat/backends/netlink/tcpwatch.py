"""--watch's tcp dumps after the first: each socket's state and byte counters, and a record
only for the sockets that changed.

A tick at 100k sockets would otherwise build 100k records to find the 1% that changed. Here
each message is read with one struct (its length, type, family, state and cookie) and its
tcp_info counters with another (InetDecoder's AttributeRun); a message whose socket is new,
changed state or moved data is decoded into a record by InetDecoder, one message at a time.
The others keep the record of the tick where they last changed: a closed socket's row is
printed as it was then (its queues and timers as of that tick).
"""

from __future__ import annotations

import struct
from typing import Any, Dict, Hashable, List, Optional, Tuple

from nlstat.backends.netlink.sockdiag import (
    INET_MSG_SIZE,
    AttributeRun,
    ByteCounters,
    InetDecoder,
)
from nlstat.kernel.netlink import NLMSGHDR
from nlstat.kernel.sockdiag import INET_DIAG_MSG
from nlstat.model.sockets import TCP, InetSocket

# What the loop reads of each message: the rest of inet_diag_msg is read only for a change.
HEAD = NLMSGHDR.then(INET_DIAG_MSG).reading(
    "nlmsg_len", "nlmsg_type", "idiag_family", "idiag_state", "idiag_cookie")


class TcpTick:
    """One tick's tcp sockets by cookie, read against the previous tick's.

    `records` and `states` are filled in the kernel's order (both families, as they come);
    the decoder's byte counters land in the mapping it was given.
    """

    def __init__(
        self,
        decoder: InetDecoder,
        old_records: Dict[Hashable, Any],
        old_states: Dict[Hashable, Any],
        old_counters: ByteCounters,
    ) -> None:
        self.decoder = decoder
        self.old_records = old_records
        self.old_states = old_states
        self.old_counters = old_counters
        self.records: Dict[Hashable, Any] = {}
        self.states: Dict[Hashable, Any] = {}
        # Decodes one message of either family into a record (the dump's own decoder may
        # keep IPv6 aside, and it keeps the counters already read).
        self.single = InetDecoder(TCP, True, None, decoder.msg_type)
        self.decoded = 0  # records built (for tests and -v)
        self._run: Optional[AttributeRun] = None
        self._struct: Optional[struct.Struct] = None

    def add(self, records: List[InetSocket]) -> None:
        """Records decoded already (the dump's first chunk, or past a control message)."""
        for record in records:
            self.records[record.cookie] = record
            self.states[record.cookie] = record.state
        self.decoded += len(records)

    def chunk(self, buf: bytes) -> None:
        decoder = self.decoder
        counters = decoder.byte_counters
        assert counters is not None
        record_msg = decoder.msg_type
        old_records = self.old_records
        old_states = self.old_states
        old_counters = self.old_counters
        records = self.records
        states = self.states
        single = self.single
        end = len(buf)
        offset = 0
        while offset + INET_MSG_SIZE <= end:
            # The message and its tcp_info counters with one struct, when its attributes are
            # laid out as the last walk found them (AttributeRun); else read by the decoder.
            run = decoder._info_run
            if run is not None and offset + INET_MSG_SIZE + run.size <= end:
                combined = self._combined(run)
                values = combined.unpack_from(buf, offset)
                length, msg_type, _family, state, cookie = values[:5]
                if (msg_type == record_msg and length >= combined.size
                        and offset + length <= end
                        and values[5:5 + run.headers] == run.expected):
                    now = counters[cookie] = values[-2] << 64 | values[-1]
                    states[cookie] = state
                    record = old_records.get(cookie)
                    if (record is None or old_states.get(cookie) != state
                            or old_counters.get(cookie) != now):
                        record = single.chunk(buf[offset:offset + length])[0]
                        self.decoded += 1
                    records[cookie] = record
                    offset += (length + 3) & ~3
                    continue
            length, msg_type, _family, state, cookie = HEAD.unpack_from(buf, offset)
            if msg_type != record_msg or length < INET_MSG_SIZE or offset + length > end:
                # A control message (NLMSG_DONE, an error) or a message cut short: the
                # decoder's own handling, from here to the end of the chunk.
                break
            decoder._info_and_bytes(buf, offset, length, cookie)
            states[cookie] = state
            record = old_records.get(cookie)
            if (record is None or old_states.get(cookie) != state
                    or counters.get(cookie) != old_counters.get(cookie)):
                record = single.chunk(buf[offset:offset + length])[0]
                self.decoded += 1
            records[cookie] = record
            offset += (length + 3) & ~3
        if offset < end:
            self.add(decoder.chunk(buf[offset:]) + decoder.others)
            decoder.others.clear()

    def _combined(self, run: AttributeRun) -> Any:
        """HEAD then the AttributeRun, as one struct (made once per run)."""
        if self._run is not run:
            self._run = run
            self._struct = struct.Struct(HEAD.format + run.format.lstrip("="))
        return self._struct


def read_tcp_tick(
    first: List[InetSocket],
    decoder: InetDecoder,
    chunks: Any,
    old_records: Dict[Hashable, Any],
    old_states: Dict[Hashable, Any],
    old_counters: Optional[ByteCounters],
) -> Tuple[Dict[Hashable, Any], Dict[Hashable, Any], int]:
    """(records, states by cookie, records decoded) of a tcp dump whose first chunk was
    decoded into `first` (and the decoder's `others`)."""
    from nlstat.backends.netlink.nlsocket import dump_ended

    tick = TcpTick(decoder, old_records, old_states, old_counters or {})
    tick.add(first + decoder.others)
    decoder.others.clear()
    if not decoder.done:
        for chunk in chunks:
            tick.chunk(chunk)
            if decoder.done or dump_ended(chunk):
                break
    return tick.records, tick.states, tick.decoded
