"""The on-disk framing of queue segments: pure functions over bytes, no I/O.

A segment file is a 16-byte header followed by frames, one per item:

    offset  size  field
    0       4     magic  b"\\xffOQ1" (never found in UTF-8 text, so a resync seldom
                  meets a false candidate, and each candidate is checked by its CRC)
    4       4     payload length, unsigned little-endian
    8       4     index of the item in its segment (0, 1, 2, ...), unsigned little-endian
    12      4     CRC-32 of bytes 4..12 followed by the payload
    16      n     the payload (the item's bytes)

The CRC covers the length, so a damaged length is caught like a damaged payload. A frame
that runs past the bytes available is *incomplete*: in a segment still being written that
means "not yet", in a finished one it is a torn tail. A frame whose magic or CRC is wrong
is *corrupt*; the reader skips to the next offset where a whole valid frame starts.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

SEGMENT_HEADER = b"opencdp-queue/1\n"
MAGIC = b"\xffOQ1"
FRAME_HEADER = struct.Struct("<4sIII")  # magic, length, index, crc
HEADER_SIZE = FRAME_HEADER.size
_LENGTH_INDEX = struct.Struct("<II")
MAX_INDEX = 0xFFFF_FFFF


def encode(items: Sequence[bytes], first_index: int) -> bytes:
    """The frames of `items`, numbered from `first_index`, as one buffer."""
    parts: list[bytes] = []
    pack_li, pack = _LENGTH_INDEX.pack, FRAME_HEADER.pack
    crc32 = zlib.crc32
    for offset, item in enumerate(items):
        index = first_index + offset
        length_index = pack_li(len(item), index)
        parts.append(pack(MAGIC, len(item), index, crc32(item, crc32(length_index))))
        parts.append(item)
    return b"".join(parts)


def frame_size(item: bytes) -> int:
    return HEADER_SIZE + len(item)


class Stop(Enum):
    """Why decoding stopped before the end of the buffer."""

    END = "end"  # every byte was decoded
    INCOMPLETE = "incomplete"  # a frame (or its header) continues past the buffer
    CORRUPT = "corrupt"  # bad magic or CRC, or an impossible length


@dataclass(slots=True)  # not frozen: one per item read, and a frozen one is slow to build
class Frame:
    start: int  # offset of the frame in the buffer
    end: int  # offset just after it
    index: int
    payload: bytes


def decode(
    buf: bytes | memoryview, max_frames: int, max_length: int
) -> tuple[list[Frame], int, Stop]:
    """Whole, valid frames from the start of `buf` (at most `max_frames` of them).

    Returns the frames, the offset where decoding stopped and why; with `max_frames`
    reached the stop is END and the offset is that of the next frame.
    """
    view = memoryview(buf)
    size = len(view)
    frames: list[Frame] = []
    pos = 0
    unpack = FRAME_HEADER.unpack_from
    crc32 = zlib.crc32
    while len(frames) < max_frames:
        if pos == size:
            return frames, pos, Stop.END
        if size - pos < HEADER_SIZE:
            # A prefix of the magic may be a frame still being written; anything else
            # cannot become valid.
            head = bytes(view[pos : pos + 4])
            return frames, pos, Stop.INCOMPLETE if MAGIC.startswith(head) else Stop.CORRUPT
        magic, length, index, crc = unpack(view, pos)
        if magic != MAGIC or length > max_length:
            return frames, pos, Stop.CORRUPT
        end = pos + HEADER_SIZE + length
        if end > size:
            return frames, pos, Stop.INCOMPLETE
        payload = view[pos + HEADER_SIZE : end]
        if crc32(payload, crc32(view[pos + 4 : pos + 12])) != crc:
            return frames, pos, Stop.CORRUPT
        frames.append(Frame(pos, end, index, bytes(payload)))
        pos = end
    return frames, pos, Stop.END


def resync(buf: bytes | memoryview, start: int, max_length: int) -> int | None:
    """The offset after `start` where the next whole, valid frame begins, if any."""
    data = bytes(buf)
    pos = data.find(MAGIC, start + 1)
    while pos != -1:
        frames, _, _ = decode(memoryview(data)[pos:], 1, max_length)
        if frames:
            return pos
        pos = data.find(MAGIC, pos + 1)
    return None


def last_frame(buf: bytes | memoryview, max_length: int) -> Frame | None:
    """The last whole, valid frame of `buf` (the tail of a segment), searching backwards.

    A false match inside a payload would have to carry a valid CRC and end within the
    buffer, so the result is the real last frame unless the tail is damaged."""
    data = bytes(buf)
    pos = data.rfind(MAGIC)
    while pos != -1:
        frames, _, _ = decode(memoryview(data)[pos:], 1, max_length)
        if frames:
            frame = frames[0]
            return Frame(pos, pos + frame.end, frame.index, frame.payload)
        pos = data.rfind(MAGIC, 0, pos)
    return None
