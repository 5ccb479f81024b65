"""The queue's segment framing: pure encode/decode, torn tails and damaged frames."""

from __future__ import annotations

import pytest

from opencdp.collect.queue import framing
from opencdp.collect.queue.framing import HEADER_SIZE, Stop, decode, encode, last_frame, resync

ITEMS = [b'{"n":1}', b"", b"\xff\x00binary", b"x" * 5000]
MAX = 1 << 20


def test_round_trip_keeps_items_and_numbers_them() -> None:
    buf = encode(ITEMS, 7)
    frames, stop_at, stop = decode(buf, 100, MAX)
    assert [f.payload for f in frames] == ITEMS
    assert [f.index for f in frames] == [7, 8, 9, 10]
    assert (stop_at, stop) == (len(buf), Stop.END)
    assert frames[0].start == 0
    assert frames[-1].end == len(buf)
    assert len(buf) == sum(framing.frame_size(i) for i in ITEMS)


def test_max_frames_stops_at_a_frame_boundary() -> None:
    buf = encode(ITEMS, 0)
    frames, stop_at, stop = decode(buf, 2, MAX)
    assert [f.payload for f in frames] == ITEMS[:2]
    assert stop is Stop.END
    rest, _, _ = decode(buf[stop_at:], 10, MAX)
    assert [f.payload for f in rest] == ITEMS[2:]


def test_every_truncation_yields_only_whole_items() -> None:
    buf = encode(ITEMS, 0)
    ends = [f.end for f in decode(buf, 100, MAX)[0]]
    for cut in range(len(buf)):
        frames, stop_at, stop = decode(buf[:cut], 100, MAX)
        whole = sum(1 for end in ends if end <= cut)
        assert [f.payload for f in frames] == ITEMS[:whole]
        assert stop_at == (ends[whole - 1] if whole else 0)
        assert stop is (Stop.END if stop_at == cut else Stop.INCOMPLETE)


@pytest.mark.parametrize("where", ["payload", "length", "index", "crc", "magic"])
def test_a_damaged_frame_is_never_returned(where: str) -> None:
    items = [b"first", b"second", b"third"]
    buf = bytearray(encode(items, 0))
    second = framing.frame_size(items[0])
    offset = {"magic": 1, "length": 4, "index": 8, "crc": 12, "payload": HEADER_SIZE}[where]
    buf[second + offset] ^= 0x01
    frames, stop_at, stop = decode(bytes(buf), 100, MAX)
    assert [f.payload for f in frames] == items[:1]
    assert stop_at == second
    # A length made larger reads as a frame still being written; anything else is corrupt.
    assert stop in (Stop.CORRUPT, Stop.INCOMPLETE)
    skip = resync(bytes(buf), second, MAX)
    assert skip == second + framing.frame_size(items[1])
    after, _, _ = decode(bytes(buf)[skip:], 100, MAX)
    assert [f.payload for f in after] == items[2:]


def test_impossible_length_is_corrupt() -> None:
    buf = encode([b"y" * 100], 0)
    assert decode(buf, 1, max_length=99)[2] is Stop.CORRUPT


def test_resync_finds_nothing_in_garbage() -> None:
    assert resync(b"\x00" * 64 + framing.MAGIC + b"\x01" * 20, 0, MAX) is None


def test_short_garbage_is_corrupt_but_a_header_prefix_is_incomplete() -> None:
    assert decode(b"\x00\x00", 1, MAX)[2] is Stop.CORRUPT
    assert decode(framing.MAGIC[:3], 1, MAX)[2] is Stop.INCOMPLETE
    assert decode(framing.MAGIC + b"\x05", 1, MAX)[2] is Stop.INCOMPLETE


def test_last_frame_ignores_a_torn_tail() -> None:
    buf = encode([b"a", b"bb", b"ccc"], 40)
    last = last_frame(buf, MAX)
    assert last is not None
    assert (last.index, last.payload, last.end) == (42, b"ccc", len(buf))
    torn = buf + encode([b"dddd"], 43)[:-2]
    last = last_frame(torn, MAX)
    assert last is not None
    assert last.index == 42
    assert last_frame(b"no frames here", MAX) is None
