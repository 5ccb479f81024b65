"""The embedded durable queue: append-only segment files in a local folder.

    {folder}/segments/{time_ns}-{pid}-{random}.seg   frames of items (see framing.py)
    {folder}/cursors.json                            the reader's acknowledged position
    {folder}/reader.lock                             held by the one reader

Writing. Every writing process (each server worker) appends to segment files of its own,
so writers never lock one another. The `put` calls of one event-loop iteration are handed
together to a background thread per process, which writes what it was handed since its
last round, calls `fsync` once for all of it, then resolves the puts' futures on their
event loops: concurrent requests share one fsync (group commit) and the event loop never
waits on the disk. A segment is created under a hidden name, locked (`flock`, exclusive)
and given its header, then renamed into place and the folder fsync'd: a visible segment
is always locked by its writer while the writer lives.
The writer moves to a new segment once the current one passes `segment_bytes`, or when a
write fails (so a torn write is always at the end of a finished segment).

Reading. One reader per folder (`reader.lock`). It decodes every segment from its
cursor, hands out whole, valid frames only, and learns that a segment is finished when
it can take the segment's lock (its writer closed it or died: the kernel releases the
lock of a killed process). In a finished segment a frame that runs past the end is a torn
tail and is dropped with a warning; a frame with a wrong CRC anywhere is skipped with an
error. A segment's cursor is the first range still handed out (or the read point); the
ranges acknowledged beyond it are recorded with it, so acks may come in any order. The
cursors are written atomically on each `ack`. A finished segment whose items are all
acknowledged is deleted. After a restart the reader starts from the cursors and skips
the recorded ranges: acknowledged items never come back, the others all do.

The folder must be on a local filesystem (flock and fsync semantics).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
from pydantic import BaseModel, ConfigDict, Field

from opencdp.collect.queue import framing
from opencdp.collect.queue.base import (
    Batch,
    ItemTooLargeError,
    QueueBusyError,
    QueueClosedError,
    QueueUnavailableError,
    parse_options,
)
from opencdp.logs import get_logger

log = get_logger(__name__)

SEGMENTS = "segments"
CURSORS = "cursors.json"
READER_LOCK = "reader.lock"
_SUFFIX = ".seg"
_TMP_PREFIX = ".tmp-"
_READ_CHUNK = 1 << 20
_TAIL_WINDOW = 1 << 16
# A hidden segment older than this whose lock is free was left by a writer that died
# while creating it (it never held an acknowledged item).
_STALE_TMP_SECONDS = 60.0

Fsync = Callable[[int], None]


class DiskQueueOptions(BaseModel):
    """Options of the embedded queue (collect.queue_options)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # A writer starts a new segment once its current one is larger than this.
    segment_bytes: int = Field(default=64 << 20, ge=1 << 12)
    # Larger items are refused (`ItemTooLargeError`).
    max_item_bytes: int = Field(default=4 << 20, ge=1, le=framing.MAX_INDEX)
    # Extra seconds the commit thread waits to gather more writes before each fsync.
    # 0: none; requests that arrive during an fsync already share the next one.
    commit_delay: float = Field(default=0.0, ge=0, le=1)
    # How often an idle reader looks for new items.
    poll_interval: float = Field(default=0.01, gt=0, le=5)


def open_disk_queue(url: str | None, root: Path, options: Mapping[str, Any]) -> DiskQueue:
    if url:
        parts = urlsplit(url)
        folder = Path(unquote(parts.netloc + parts.path))
    else:
        folder = root / "state" / "queue"
    return DiskQueue(folder, parse_options(DiskQueueOptions, options, "disk"))


class DiskQueue:
    """The embedded `EventQueue` (see the module's docstring)."""

    def __init__(
        self,
        folder: Path,
        options: DiskQueueOptions | None = None,
        *,
        fsync: Fsync = os.fsync,
    ) -> None:
        self.folder = Path(folder)
        self.options = options or DiskQueueOptions()
        self._fsync = fsync
        (self.folder / SEGMENTS).mkdir(parents=True, exist_ok=True)
        self._writer: _Writer | None = None
        self._writer_pid = 0
        self._reader: _Reader | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._tails: dict[str, tuple[int, int]] = {}  # segment -> (size, items in it)

    @property
    def lease_seconds(self) -> float | None:
        return None

    @property
    def fsyncs(self) -> int:
        """Data fsyncs done by this process's writer (for benchmarks and tests)."""
        return self._writer.fsyncs if self._writer else 0

    async def put(self, items: Sequence[bytes]) -> None:
        if not items:
            return
        limit = self.options.max_item_bytes
        for item in items:
            if len(item) > limit:
                raise ItemTooLargeError(
                    f"a queue item of {len(item):,} bytes is larger than the limit of {limit:,}",
                    hint="raise collect.queue_options.max_item_bytes, or lower the "
                    "request size limit of the collection service",
                )
        await self._writer_here().submit(items, asyncio.get_running_loop())

    def _writer_here(self) -> _Writer:
        with self._lock:
            if self._closed:
                raise QueueClosedError(f"the queue in {self.folder} is closed")
            # After a fork the parent's thread and segment are not ours: start afresh.
            if self._writer is None or self._writer_pid != os.getpid():
                self._writer = _Writer(self.folder / SEGMENTS, self.options, self._fsync)
                self._writer_pid = os.getpid()
            return self._writer

    def read(self, max_items: int, timeout: float) -> Batch:
        reader = self._reader_here()
        deadline = time.monotonic() + timeout
        while True:
            try:
                batch = reader.collect(max(1, max_items))
            except OSError as e:
                raise QueueUnavailableError(
                    f"could not read the queue in {self.folder}: {e}"
                ) from e
            remaining = deadline - time.monotonic()
            if batch.items or remaining <= 0:
                return batch
            time.sleep(min(self.options.poll_interval, remaining))

    def ack(self, *batches: Batch) -> None:
        spans: list[_Span] = []
        for batch in batches:
            if not isinstance(batch.receipt, tuple):
                raise TypeError("this batch was not read from this queue")
            spans.extend(batch.receipt)
        if spans:
            try:
                self._reader_here().ack(spans)  # one cursor write for all of them
            except OSError as e:
                raise QueueUnavailableError(
                    f"could not record acknowledgements in {self.folder}: {e}",
                    hint="acknowledging the same batches again is safe",
                ) from e

    def _reader_here(self) -> _Reader:
        with self._lock:
            if self._closed:
                raise QueueClosedError(f"the queue in {self.folder} is closed")
            if self._reader is None:
                self._reader = _Reader(self.folder, self.options)
            return self._reader

    def depth(self) -> int:
        """Items stored and not acknowledged, from the segments' last frames and the
        cursors: a stat per segment, and a read of the tail of those that grew."""
        folder = self.folder / SEGMENTS
        cursors = self._reader.cursors() if self._reader else _load_cursors(self.folder)
        total = 0
        tails: dict[str, tuple[int, int]] = {}
        for entry in os.scandir(folder):
            name = entry.name
            if not name.endswith(_SUFFIX) or name.startswith(_TMP_PREFIX):
                continue
            cursor = cursors.get(name, _START)
            try:
                size = entry.stat().st_size
                cached = self._tails.get(name)
                if cached and cached[0] == size:
                    count = cached[1]
                else:
                    count = _items_in(entry.path, size, cursor, self.options)
            except FileNotFoundError:
                continue  # deleted by the reader meanwhile
            tails[name] = (size, count)
            total += cursor.unacked(count)
        self._tails = tails
        return total

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            writer, reader = self._writer, self._reader
        if writer is not None and self._writer_pid == os.getpid():
            writer.close()
        if reader is not None:
            reader.close()


def _items_in(path: str, size: int, cursor: _Cursor, options: DiskQueueOptions) -> int:
    """How many items a segment holds: the index of its last whole frame, plus one."""
    remaining = size - cursor.offset
    if remaining <= 0:
        return cursor.index
    window = min(remaining, _TAIL_WINDOW)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        while True:
            tail = os.pread(fd, window, size - window)
            last = framing.last_frame(tail, options.max_item_bytes)
            if last is not None:
                return last.index + 1
            if window >= remaining:
                return cursor.index
            window = min(remaining, window * 8)
    finally:
        os.close(fd)


# --- writing -------------------------------------------------------------------------------


def _resolve(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():  # the request was cancelled meanwhile
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


@dataclass(eq=False)
class _Handover:
    """What one event loop's puts of one loop iteration give the commit thread."""

    loop: asyncio.AbstractEventLoop
    items: list[bytes] = field(default_factory=list)
    futures: list[asyncio.Future[None]] = field(default_factory=list)


class _Writer:
    """This process's segment and its commit thread (group commit)."""

    def __init__(self, folder: Path, options: DiskQueueOptions, fsync: Fsync) -> None:
        self._folder = folder
        self._options = options
        self._fsync = fsync
        self._cond = threading.Condition()
        self._handed: list[_Handover] = []  # waiting for the commit thread
        # Per event loop, the puts of its current iteration (only that loop touches it).
        self._gathering: dict[asyncio.AbstractEventLoop, _Handover] = {}
        self._closing = False
        self._fd: int | None = None
        self._size = 0
        self._index = 0
        self.fsyncs = 0
        self._thread = threading.Thread(
            target=self._run, name=f"opencdp-queue-commit-{os.getpid()}", daemon=True
        )
        self._thread.start()

    def submit(
        self, items: Sequence[bytes], loop: asyncio.AbstractEventLoop
    ) -> asyncio.Future[None]:
        # The puts of one loop iteration reach the commit thread together, at its end: one
        # lock and one wake-up of the thread for all of them rather than one per request.
        handover = self._gathering.get(loop)
        if handover is None:
            if self._closing:
                raise QueueClosedError("the queue is closed")
            handover = self._gathering[loop] = _Handover(loop)
            loop.call_soon(self._hand_over, loop)
        handover.items.extend(items)
        future: asyncio.Future[None] = loop.create_future()
        handover.futures.append(future)
        return future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        handover = self._gathering.pop(loop)
        with self._cond:
            if self._closing:
                _resolve(handover.futures, QueueClosedError("the queue is closed"))
                return
            self._handed.append(handover)
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()
        self._release()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._handed and not self._closing:
                    self._cond.wait()
                if not self._handed:
                    return  # closing, and nothing left to write
            if self._options.commit_delay:
                time.sleep(self._options.commit_delay)
            with self._cond:
                handed, self._handed = self._handed, []
            error: BaseException | None = None
            try:
                self._append([item for handover in handed for item in handover.items])
            except Exception as e:  # logged, and handed to the waiting requests
                log.exception("queue write failed", folder=str(self._folder))
                error = QueueUnavailableError(
                    f"could not store events in the queue under {self._folder}: {e}",
                    hint="check the disk (free space, permissions); the request can be retried",
                )
                # What was written may be torn: never append to this segment again.
                self._release()
            by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
            for handover in handed:
                by_loop.setdefault(handover.loop, []).extend(handover.futures)
            for loop, futures in by_loop.items():
                with contextlib.suppress(RuntimeError):  # that loop is closed
                    loop.call_soon_threadsafe(_resolve, futures, error)

    def _append(self, items: list[bytes]) -> None:
        size = sum(framing.HEADER_SIZE + len(item) for item in items)
        if (
            self._fd is None
            or (
                self._size > len(framing.SEGMENT_HEADER)
                and self._size + size > self._options.segment_bytes
            )
            or self._index + len(items) > framing.MAX_INDEX
        ):
            self._roll()
        assert self._fd is not None
        data = framing.encode(items, self._index)
        _write_all(self._fd, data)
        self._fsync(self._fd)
        self.fsyncs += 1
        self._size += len(data)
        self._index += len(items)

    def _roll(self) -> None:
        self._release()
        name = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}{_SUFFIX}"
        hidden = self._folder / f"{_TMP_PREFIX}{name}"
        fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            # Locked before it is visible: the reader takes a free lock for "finished".
            fcntl.flock(fd, fcntl.LOCK_EX)
            _write_all(fd, framing.SEGMENT_HEADER)
            self._fsync(fd)
            hidden.rename(self._folder / name)
            _fsync_dir(self._folder, self._fsync)
        except BaseException:
            os.close(fd)
            hidden.unlink(missing_ok=True)
            raise
        self._fd, self._size, self._index = fd, len(framing.SEGMENT_HEADER), 0

    def _release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock: the segment is finished
            self._fd = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(folder: Path, fsync: Fsync = os.fsync) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fsync(fd)
    finally:
        os.close(fd)


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Range:
    """Frames [start, end) of a segment, with the indexes of the first and the next."""

    start: int
    start_index: int
    end: int
    end_index: int


@dataclass(frozen=True, slots=True)
class _Span:
    """A range handed out in one batch (the receipt of a disk-queue batch)."""

    segment: str
    range: _Range


@dataclass(frozen=True, slots=True)
class _Cursor:
    """Where a segment's reading resumes after a restart, and the ranges after that
    point that were acknowledged already (acks may come in any order)."""

    offset: int
    index: int
    acked: tuple[_Range, ...] = ()

    def unacked(self, items_in_segment: int) -> int:
        done = sum(r.end_index - r.start_index for r in self.acked)
        return max(0, items_in_segment - self.index - done)

    def to_json(self) -> dict[str, Any]:
        return {
            "next": [self.offset, self.index],
            "acked": [[r.start, r.start_index, r.end, r.end_index] for r in self.acked],
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> _Cursor:
        offset, index = doc["next"]
        return cls(int(offset), int(index), tuple(_Range(*map(int, r)) for r in doc["acked"]))


_START = _Cursor(len(framing.SEGMENT_HEADER), 0)


def _merged(ranges: list[_Range]) -> list[_Range]:
    """Sorted, with touching ranges joined."""
    out: list[_Range] = []
    for r in sorted(ranges, key=lambda r: r.start):
        if out and out[-1].end == r.start:
            out[-1] = _Range(out[-1].start, out[-1].start_index, r.end, r.end_index)
        else:
            out.append(r)
    return out


@dataclass(slots=True)
class _Segment:
    name: str
    fd: int
    offset: int  # next byte to decode
    index: int  # index of the frame at `offset`
    committed: _Cursor  # as last written to cursors.json
    pending: dict[int, _Range] = field(default_factory=dict)  # handed out, not acked
    # Acknowledged ranges after the first pending one; those ahead of `offset` (from
    # before a restart) are skipped when reading.
    acked: list[_Range] = field(default_factory=list)
    finished: bool = False  # its writer is gone: it will not grow
    done: bool = False  # finished, and decoded to its end (a torn tail dropped)

    def cursor(self) -> _Cursor:
        if self.pending:
            first = self.pending[min(self.pending)]
            offset, index = first.start, first.start_index
        else:
            offset, index = self.offset, self.index
        self.acked = [r for r in self.acked if r.start >= offset]
        return _Cursor(offset, index, tuple(self.acked))

    def skip_at(self) -> _Range | None:
        """The acknowledged range that starts at or next after `offset`, if any."""
        ahead = [r for r in self.acked if r.start >= self.offset]
        return min(ahead, key=lambda r: r.start) if ahead else None


def _load_cursors(folder: Path) -> dict[str, _Cursor]:
    try:
        doc = orjson.loads((folder / CURSORS).read_bytes())
    except FileNotFoundError:
        return {}
    return {name: _Cursor.from_json(c) for name, c in doc["segments"].items()}


class _Reader:
    def __init__(self, folder: Path, options: DiskQueueOptions) -> None:
        self._folder = folder
        self._segments_dir = folder / SEGMENTS
        self._options = options
        self._lock_fd = os.open(folder / READER_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            os.close(self._lock_fd)
            raise QueueBusyError(
                f"another process is reading the queue in {folder}",
                hint="run one batcher per embedded queue",
            ) from e
        self._saved = _load_cursors(folder)
        self._segments: dict[str, _Segment] = {}
        self._refresh()
        # Cursors of segments deleted just before a crash.
        if set(self._saved) - set(self._segments):
            self._save()

    def cursors(self) -> dict[str, _Cursor]:
        # A copy first: another thread (metrics) may ask while the reader works.
        return {name: seg.committed for name, seg in dict(self._segments).items()}

    def collect(self, max_items: int) -> Batch:
        self._refresh()
        items: list[bytes] = []
        spans: list[_Span] = []
        for name in sorted(self._segments):
            if len(items) >= max_items:
                break
            seg = self._segments[name]
            if seg.done:
                continue
            # More than one range when acknowledged ranges lie between them.
            while len(items) < max_items:
                got = self._read(seg, max_items - len(items), items)
                if got is None:
                    break
                spans.append(_Span(seg.name, got))
        if not items:
            self._collect_garbage()
        return Batch(items, tuple(spans))

    def ack(self, spans: Sequence[_Span]) -> None:
        """Idempotent: a span acknowledged already is skipped (so a failed ack can be
        retried as it was)."""
        touched: set[str] = set()
        for span in spans:
            seg = self._segments.get(span.segment)
            if seg is None or seg.pending.pop(span.range.start, None) is None:
                continue
            seg.acked.append(span.range)
            touched.add(seg.name)
        for name in touched:
            seg = self._segments[name]
            seg.acked = _merged(seg.acked)
        self._save()
        self._collect_garbage()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._save()
        for seg in self._segments.values():
            os.close(seg.fd)
        self._segments.clear()
        os.close(self._lock_fd)

    def _refresh(self) -> None:
        for entry in os.scandir(self._segments_dir):
            name = entry.name
            if name.startswith(_TMP_PREFIX):
                self._remove_stale(Path(entry.path))
            elif name.endswith(_SUFFIX) and name not in self._segments:
                self._open(name)

    def _open(self, name: str) -> None:
        path = self._segments_dir / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        header = os.pread(fd, len(framing.SEGMENT_HEADER), 0)
        if header != framing.SEGMENT_HEADER:
            # A visible segment always got its header before its name: this file is
            # damaged or foreign. Kept aside for inspection, never read.
            os.close(fd)
            log.error("queue segment has no valid header; moved aside", segment=str(path))
            path.rename(path.with_suffix(".corrupt"))
            return
        cursor = self._saved.get(name, _START)
        self._segments[name] = _Segment(
            name, fd, cursor.offset, cursor.index, cursor, acked=list(cursor.acked)
        )

    def _remove_stale(self, path: Path) -> None:
        try:
            if time.time() - path.stat().st_mtime < _STALE_TMP_SECONDS:
                return
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            path.unlink(missing_ok=True)
        except BlockingIOError:
            pass
        finally:
            os.close(fd)

    def _read(self, seg: _Segment, want: int, items: list[bytes]) -> _Range | None:
        """Append up to `want` items of `seg` to `items`; the range they came from."""
        max_length = self._options.max_item_bytes
        while True:
            if not seg.finished:
                seg.finished = _writer_gone(seg.fd)  # before the size: then it is final
            size = os.fstat(seg.fd).st_size
            skip = seg.skip_at()
            if skip is not None and skip.start == seg.offset:
                seg.offset, seg.index = skip.end, skip.end_index  # acked before a restart
                continue
            if seg.offset >= size:
                seg.done = seg.finished
                return None
            # Decode no further than an acked range: its frames are not handed out again.
            limit = (skip.start if skip else size) - seg.offset
            chunk = min(limit, _READ_CHUNK)
            while True:
                buf = os.pread(seg.fd, chunk, seg.offset)
                frames, stop_at, stop = framing.decode(buf, want, max_length)
                if frames or stop is not framing.Stop.INCOMPLETE or len(buf) >= limit:
                    break
                chunk = min(limit, chunk * 8)  # one frame larger than the chunk
            if frames:
                items.extend(frame.payload for frame in frames)
                got = _Range(
                    seg.offset, frames[0].index, seg.offset + stop_at, frames[-1].index + 1
                )
                seg.pending[got.start] = got
                seg.offset, seg.index = got.end, got.end_index
                return got
            if stop is framing.Stop.INCOMPLETE:
                if seg.finished:
                    self._drop_tail(seg, size, "a torn write at the end of a finished segment")
                return None  # a frame still being written
            # Corrupt: skip to the next valid frame, if one is already there.
            rest = os.pread(seg.fd, size - seg.offset, seg.offset)
            found = framing.resync(rest, 0, max_length)
            if found is None:
                if seg.finished:
                    self._drop_tail(seg, size, "corrupt bytes at the end of a finished segment")
                return None
            log.error(
                "queue segment damaged: skipped the unreadable bytes (the items in them are lost)",
                segment=seg.name,
                offset=seg.offset,
                skipped_bytes=found,
            )
            seg.offset += found
            seg.index = framing.FRAME_HEADER.unpack_from(rest, found)[2]

    def _drop_tail(self, seg: _Segment, size: int, what: str) -> None:
        log.warning(
            f"queue segment recovery: dropped {what}",
            segment=seg.name,
            offset=seg.offset,
            dropped_bytes=size - seg.offset,
        )
        seg.offset = size  # never decoded again
        seg.done = True

    def _save(self) -> None:
        for seg in self._segments.values():
            seg.committed = seg.cursor()
        current = {name: seg.committed for name, seg in self._segments.items()}
        if current == self._saved:
            return
        doc = {"format": 1, "segments": {n: c.to_json() for n, c in sorted(current.items())}}
        target = self._folder / CURSORS
        hidden = self._folder / f"{_TMP_PREFIX}{CURSORS}"
        fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            _write_all(fd, orjson.dumps(doc))
            os.fsync(fd)
        finally:
            os.close(fd)
        hidden.replace(target)
        _fsync_dir(self._folder)
        self._saved = current

    def _collect_garbage(self) -> None:
        """Delete the finished segments whose every item is acknowledged."""
        gone = [
            seg
            for seg in self._segments.values()
            if seg.finished and not seg.pending and (seg.done or self._at_end(seg))
        ]
        if not gone:
            return
        for seg in gone:
            (self._segments_dir / seg.name).unlink(missing_ok=True)
            os.close(seg.fd)
            del self._segments[seg.name]
        # The deletions are durable before their cursors are forgotten.
        _fsync_dir(self._segments_dir)
        self._save()

    @staticmethod
    def _at_end(seg: _Segment) -> bool:
        if seg.skip_at() is not None or seg.offset < os.fstat(seg.fd).st_size:
            return False
        seg.done = True
        return True


def _writer_gone(fd: int) -> bool:
    """True once no writer holds the segment's lock: it closed it, or it died."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
