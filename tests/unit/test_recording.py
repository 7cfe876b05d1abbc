"""The --save/--load container (nlstat/recording.py, docs/save-format.md): what is written is
read back entry for entry; every cut, flipped byte, foreign or newer file is one RecordingError
naming the file, never another exception."""

from __future__ import annotations

import random
import struct
import zlib
from pathlib import Path
from typing import Callable

import pytest

from nlstat import recording


def _recorder(path: Path) -> recording.Recorder:
    recorder = recording.Recorder(str(path), "/proc", ["-tn"], "auto", overwrite=False)
    recorder.add(recording.FILE, b"/proc/net/tcp", [b"  sl  local_address\n"], 0, 0)
    recorder.add(recording.FILE, b"/proc/net/missing", [b""], 2, 0)
    recorder.add(recording.DUMP, recording._request_key(4, bytes(16) + b"ask"),
                 [b"chunk one", b"chunk two"])
    recorder.add(recording.DUMP, recording._request_key(4, bytes(16) + b"ask"), [b"again"], 105)
    recorder.add(recording.LISTING, b"/proc", [b"1", b"42", b"self"])
    recorder.add(recording.DESCRIPTORS, b"/proc/42/fd", [b"socket:[7]"])
    recorder.add(recording.IFNAME, b"3", [b"veth0"])
    recorder.add(recording.IOCTL, struct.pack("<I", 0x8913) + b"in", [b"out"])
    recorder.add(recording.ANSWER, b"SIOCGIFCONF", [b"lo", b"eth0"])
    recorder.add(recording.NETLINK_OPEN, b"12", [], 93)
    return recorder


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "run.nlstat"
    _recorder(path).write()
    return path


def test_read_back_entry_for_entry(saved: Path) -> None:
    player = recording.Player(str(saved), "/proc")
    assert player.meta["argv"] == ["-tn"] and player.meta["backend"] == "auto"
    assert player.file("/proc/net/tcp") == (b"  sl  local_address\n", 0, 0)
    assert player.file("/proc/net/missing") == (b"", 2, 0)
    key = recording._request_key(4, bytes(8) + bytes(range(1, 9)) + b"ask")  # seq, pid: any
    assert player.dump_answer(key) == ([b"chunk one", b"chunk two"], 0)
    assert player.dump_answer(key) == ([b"again"], 105)
    assert player.dump_answer(key) == ([b"again"], 105)  # the last answers again
    assert player.listdir("/proc") == ["1", "42", "self"]
    assert player.descriptors("/proc/42/fd") == (0, ["socket:[7]"])
    assert player.interface_name(3) == "veth0"
    request = bytearray(b"in")
    player.ioctl(-1, 0x8913, request)
    assert request == b"out"
    assert player.answer("SIOCGIFCONF", lambda: []) == ["lo", "eth0"]
    with pytest.raises(OSError) as refused:
        player.netlink_socket(16, 3, 12)
    assert refused.value.errno == 93


def test_a_different_proc_root_reads_the_same(saved: Path) -> None:
    player = recording.Player(str(saved), "/captured/proc/")
    assert player.file("/captured/proc/net/tcp")[0] == b"  sl  local_address\n"


def test_questions_the_file_cannot_answer(saved: Path) -> None:
    player = recording.Player(str(saved), "/proc")
    for ask in (lambda: player.file("/proc/net/udp"), lambda: player.listdir("/proc/1/fd"),
                lambda: player.interface_name(9),
                lambda: player.dump_answer(recording._request_key(0, bytes(16)))):
        with pytest.raises(recording.NotRecorded) as missing:
            ask()
        assert str(saved) in str(missing.value) and "nlstat -tn" in str(missing.value)


def test_an_existing_file_is_kept(saved: Path) -> None:
    before = saved.read_bytes()
    with pytest.raises(recording.RecordingError, match="file exists"):
        recording.Recorder(str(saved), "/proc", [], "auto", overwrite=False)
    assert saved.read_bytes() == before
    replacing = recording.Recorder(str(saved), "/proc", ["-r"], "auto", overwrite=True)
    replacing.write()
    assert recording.read_file(str(saved))[0]["argv"] == ["-r"]
    assert sorted(p.name for p in saved.parent.iterdir()) == [saved.name]  # no temporary left


@pytest.mark.parametrize("unnamed", [True, False], ids=["O_TMPFILE", "named temporary"])
def test_the_file_appears_only_when_written(tmp_path: Path, unnamed: bool,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Until write(), the directory holds nothing (an O_TMPFILE file) or only the named
    temporary (a file system without O_TMPFILE); after it, only the file; discard() after a
    failed run leaves nothing either way."""
    import os

    if not unnamed:
        monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    path = tmp_path / "run.nlstat"
    recorder = _recorder(path)
    assert (recorder.unnamed is not None) == unnamed
    pending = sorted(p.name for p in tmp_path.iterdir())
    assert pending == ([] if unnamed else [f".run.nlstat.{os.getpid()}.tmp"])
    recorder.write()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.nlstat"]
    assert recording.read_file(str(path))[0]["argv"] == ["-tn"]
    failed = _recorder(tmp_path / "failed.nlstat")
    failed.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.nlstat"]


def _refused(path: Path, words: str) -> None:
    with pytest.raises(recording.RecordingError) as refused:
        recording.Player(str(path), "/proc")
    message = str(refused.value)
    assert message.startswith(f"{path}: ") and words in message and "\n" not in message


def test_every_cut_is_refused(saved: Path, tmp_path: Path) -> None:
    data = saved.read_bytes()
    cut = tmp_path / "cut.nlstat"
    for size in range(len(data)):
        cut.write_bytes(data[:size])
        with pytest.raises(recording.RecordingError) as refused:
            recording.Player(str(cut), "/proc")
        assert "truncated" in str(refused.value) or "damaged" in str(refused.value), size


def test_flipped_bytes_never_escape_as_another_error(saved: Path, tmp_path: Path) -> None:
    data = saved.read_bytes()
    damaged = tmp_path / "damaged.nlstat"
    chance = random.Random(11)
    for _ in range(400):
        changed = bytearray(data)
        for _flip in range(chance.randint(1, 3)):
            changed[chance.randrange(len(changed))] ^= 1 << chance.randrange(8)
        damaged.write_bytes(bytes(changed))
        try:
            recording.Player(str(damaged), "/proc")
        except recording.RecordingError:
            pass


def _with_body(tmp_path: Path, body: bytes, version: int = recording.VERSION) -> Path:
    meta = b'{"time":1.0}'
    path = tmp_path / "crafted.nlstat"
    path.write_bytes(recording.HEADER.pack(recording.MAGIC, version, 0, len(meta)) + meta
                     + zlib.compress(body))
    return path


@pytest.mark.parametrize("body", [
    recording.ENTRY.pack(recording.FILE, 0, 0, 5, 1) + b"/proc" + struct.pack("<I", 99) + b"x",
    recording.ENTRY.pack(recording.FILE, 0, 0, 50, 0) + b"/proc",
    recording.ENTRY.pack(recording.FILE, 0, 0, 0, 0)[:7],
    recording.ENTRY.pack(77, 0, 0, 0, 0),
])
def test_entries_past_the_end_or_unknown_are_damage(tmp_path: Path, body: bytes) -> None:
    _refused(_with_body(tmp_path, body), "damaged recording")


def test_an_empty_body_answers_nothing(tmp_path: Path) -> None:
    player = recording.Player(str(_with_body(tmp_path, b"")), "/proc")
    with pytest.raises(recording.NotRecorded):
        player.file("/proc/net/tcp")


@pytest.mark.parametrize("make, words", [
    (lambda path: path.write_bytes(b""), "truncated recording"),
    (lambda path: path.write_bytes(b"NLSTAT"), "truncated recording"),
    (lambda path: path.write_bytes(b"#!/bin/sh\necho hello\n" * 3), "not an nlstat recording"),
    (lambda path: path.write_bytes(zlib.compress(b"x" * 100)), "not an nlstat recording"),
])
def test_foreign_files(tmp_path: Path, make: Callable[[Path], object], words: str) -> None:
    path = tmp_path / "other"
    make(path)
    _refused(path, words)


def test_a_newer_version_is_named(tmp_path: Path) -> None:
    _refused(_with_body(tmp_path, b"", version=recording.VERSION + 1),
             f"format version {recording.VERSION + 1} is newer than this nlstat reads")


def test_data_after_the_stream_is_damage(saved: Path) -> None:
    saved.write_bytes(saved.read_bytes() + b"tail")
    _refused(saved, "damaged recording")


def test_metadata_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "meta.nlstat"
    path.write_bytes(recording.HEADER.pack(recording.MAGIC, 1, 0, 3) + b"{x}" + zlib.compress(b""))
    _refused(path, "damaged recording")


def test_argv_kept_without_save_itself() -> None:
    assert recording.argv_of_run(["-tn", "--save", "f", "--overwrite", "--json"]) == [
        "-tn", "--json"]
    assert recording.argv_of_run(["--save=f", "-r"]) == ["-r"]


def test_chunks_are_inflated_as_they_are_received(tmp_path: Path) -> None:
    path = tmp_path / "chunks.nlstat"
    recorder = recording.Recorder(str(path), "/proc", ["-tn"], "auto", overwrite=False)
    request = bytes(16) + b"ask"
    recorder.add(recording.DUMP, recording._request_key(4, request),
                 [zlib.compress(b"first"), zlib.compress(b"second")])
    recorder.add(recording.DUMP, recording._request_key(4, bytes(16) + b"bad"), [b"not zlib"])
    recorder.write()
    sock = recording.Player(str(path), "/proc").netlink_socket(16, 3, 4)
    sock.sendto(request, (0, 0))
    assert [sock.recv(32768), sock.recv(32768)] == [b"first", b"second"]
    with pytest.raises(OSError) as silent:
        sock.recv(32768)  # past the answer: what the kernel's silence gives (EAGAIN)
    assert silent.value.errno == 11
    sock.sendto(bytes(16) + b"bad", (0, 0))
    with pytest.raises(recording.RecordingError, match="damaged recording"):
        sock.recv(32768)
