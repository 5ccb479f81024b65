"""The embedded disk queue in one process: recovery, cursors, group commit, segments."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
import pytest
from structlog.testing import capture_logs

from opencdp.collect.queue import (
    ItemTooLargeError,
    QueueBusyError,
    QueueClosedError,
    QueueUnavailableError,
    framing,
    open_queue,
)
from opencdp.collect.queue.disk import CURSORS, SEGMENTS, DiskQueue, DiskQueueOptions
from opencdp.errors import ConfigError


def items(n: int, prefix: str = "item") -> list[bytes]:
    return [f'{{"{prefix}":{i}}}'.encode() for i in range(n)]


def put(queue: DiskQueue, batch: Sequence[bytes]) -> None:
    asyncio.run(queue.put(batch))


def segments(folder: Path) -> list[Path]:
    return sorted((folder / SEGMENTS).glob("*.seg"))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "queue"


@pytest.fixture
def queue(folder: Path) -> Iterator[DiskQueue]:
    q = DiskQueue(folder)
    yield q
    q.close()


def test_put_read_ack_round_trip(queue: DiskQueue) -> None:
    put(queue, items(5))
    batch = queue.read(3, 0)
    assert list(batch.items) == items(5)[:3]
    assert list(queue.read(10, 0).items) == items(5)[3:]
    assert len(queue.read(10, 0)) == 0  # handed out already, not yet acknowledged
    assert queue.depth() == 5
    queue.ack(batch)
    assert queue.depth() == 2


def test_read_waits_for_items_up_to_the_timeout(queue: DiskQueue) -> None:
    assert len(queue.read(10, 0.05)) == 0

    def later() -> None:
        writer = DiskQueue(queue.folder)
        put(writer, [b"late"])
        writer.close()

    thread = threading.Timer(0.05, later)
    thread.start()
    batch = queue.read(10, 30)
    thread.join()
    assert list(batch.items) == [b"late"]


def test_acknowledged_items_never_come_back_and_the_others_all_do(folder: Path) -> None:
    writer = DiskQueue(folder)
    put(writer, items(10))
    reader = DiskQueue(folder)
    first, second, third = reader.read(3, 0), reader.read(3, 0), reader.read(4, 0)
    reader.ack(second)  # out of order: the first batch is still out
    reader.close()  # as after a crash: nothing more acknowledged

    reader = DiskQueue(folder)
    again = reader.read(100, 0)
    assert list(again.items) == list(first.items) + list(third.items)
    reader.ack(again)
    reader.close()
    assert len(DiskQueue(folder).read(100, 0)) == 0
    writer.close()


def test_cursor_file_records_the_resume_point_and_acked_ranges(folder: Path) -> None:
    q = DiskQueue(folder)
    put(q, items(6))
    a, b = q.read(2, 0), q.read(2, 0)
    q.ack(b)
    doc = orjson.loads((folder / CURSORS).read_bytes())
    (cursor,) = doc["segments"].values()
    assert cursor["next"] == [len(framing.SEGMENT_HEADER), 0]  # a is still out
    assert [r[1::2] for r in cursor["acked"]] == [[2, 4]]  # items 2 and 3
    q.ack(a)
    (cursor,) = orjson.loads((folder / CURSORS).read_bytes())["segments"].values()
    assert cursor["next"][1] == 4
    assert cursor["acked"] == []
    q.close()


def test_truncated_segment_returns_only_whole_items(folder: Path) -> None:
    q = DiskQueue(folder)
    put(q, items(5))
    q.close()  # the segment is finished
    (segment,) = segments(folder)
    os.truncate(segment, segment.stat().st_size - 3)  # a torn last record

    q = DiskQueue(folder)
    with capture_logs() as logs:
        batch = q.read(100, 0)
    assert list(batch.items) == items(5)[:4]
    assert any("torn" in e["event"] and e["log_level"] == "warning" for e in logs)
    q.ack(batch)
    assert segments(folder) == []  # all that was readable is acknowledged: deleted
    q.close()


def test_a_damaged_item_is_skipped_with_an_error_and_never_returned(folder: Path) -> None:
    q = DiskQueue(folder)
    put(q, items(5))
    q.close()
    (segment,) = segments(folder)
    data = bytearray(segment.read_bytes())
    third = len(framing.SEGMENT_HEADER) + 2 * framing.frame_size(items(5)[0])
    data[third + framing.HEADER_SIZE + 2] ^= 0xFF  # a payload byte of item 2
    segment.write_bytes(bytes(data))

    q = DiskQueue(folder)
    with capture_logs() as logs:
        got = q.read(100, 0)
        got_more = q.read(100, 0)
    expected = items(5)
    assert list(got.items) + list(got_more.items) == expected[:2] + expected[3:]
    errors = [e for e in logs if e["log_level"] == "error"]
    assert len(errors) == 1
    assert "damaged" in errors[0]["event"]
    q.ack(got, got_more)
    assert segments(folder) == []
    q.close()


def test_a_frame_still_being_written_is_waited_for(folder: Path) -> None:
    writer = DiskQueue(folder)
    put(writer, items(2))  # the writer lives on: its segment is not finished
    (segment,) = segments(folder)
    late = framing.encode([b"late item"], 2)
    reader = DiskQueue(folder)
    with segment.open("ab") as f:
        f.write(late[:10])
    assert list(reader.read(10, 0).items) == items(2)
    assert len(reader.read(10, 0)) == 0
    with segment.open("ab") as f:
        f.write(late[10:])
    assert list(reader.read(10, 0).items) == [b"late item"]
    reader.close()
    writer.close()


def test_concurrent_puts_share_fsyncs(folder: Path) -> None:
    calls: list[int] = []

    def counting_fsync(fd: int) -> None:
        calls.append(fd)
        os.fsync(fd)

    q = DiskQueue(folder, fsync=counting_fsync)
    puts = 2000

    async def load() -> None:
        await asyncio.gather(*(q.put([f"event {i}".encode()]) for i in range(puts)))

    asyncio.run(load())
    assert q.depth() == puts
    # Creating the segment takes 2 (file and folder); the data takes one per group.
    assert len(calls) <= puts / 20, f"{len(calls)} fsyncs for {puts} puts"
    assert q.fsyncs == len(calls) - 2
    q.close()


def test_put_waits_for_its_fsync_without_blocking_the_loop(folder: Path) -> None:
    release = threading.Event()
    synced: list[int] = []

    def slow_fsync(fd: int) -> None:
        release.wait(10)
        synced.append(fd)

    q = DiskQueue(folder, fsync=slow_fsync)

    async def scenario() -> None:
        pending = asyncio.create_task(q.put([b"x"]))
        ticks = 0
        for _ in range(5):
            await asyncio.sleep(0.001)  # the loop keeps running meanwhile
            ticks += 1
        assert ticks == 5
        assert not pending.done()  # not durable yet: not answered
        release.set()
        await pending
        assert synced

    asyncio.run(scenario())
    q.close()


def test_a_cancelled_put_does_not_disturb_the_others(folder: Path) -> None:
    release = threading.Event()

    def held_fsync(fd: int) -> None:
        release.wait(10)

    q = DiskQueue(folder, fsync=held_fsync)

    async def scenario() -> None:
        cancelled = asyncio.create_task(q.put([b"a"]))
        await asyncio.sleep(0.01)
        cancelled.cancel()
        kept = asyncio.create_task(q.put([b"b"]))
        await asyncio.sleep(0.01)
        release.set()
        await kept

    asyncio.run(scenario())
    assert sorted(q.read(10, 0).items) == [b"a", b"b"]  # written; the caller gave up
    q.close()


def test_a_failed_write_is_reported_and_the_next_goes_to_a_new_segment(folder: Path) -> None:
    fail = [True]

    def flaky_fsync(fd: int) -> None:
        if fail[0] and os.fstat(fd).st_size > len(framing.SEGMENT_HEADER):
            fail[0] = False
            raise OSError(5, "Input/output error")
        os.fsync(fd)

    q = DiskQueue(folder, fsync=flaky_fsync)
    with pytest.raises(QueueUnavailableError, match="could not store events"):
        put(q, [b"lost?"])
    put(q, [b"kept"])
    assert len(segments(folder)) == 2
    # The failed item may still be delivered (at-least-once: the client will retry it).
    assert b"kept" in q.read(10, 0).items
    q.close()


def test_segments_roll_over_by_size_and_are_deleted_once_acked(folder: Path) -> None:
    q = DiskQueue(folder, DiskQueueOptions(segment_bytes=4096))
    for n in range(10):
        put(q, [b"x" * 1000, b"y" * 1000, f"{n}".encode()])
    assert len(segments(folder)) >= 5
    reader = DiskQueue(folder)
    batch = reader.read(1000, 0)
    assert len(batch) == 30
    reader.ack(batch)
    assert len(segments(folder)) == 1  # the writer's current segment stays
    q.close()  # now finished
    assert len(reader.read(10, 0)) == 0  # the reader's housekeeping deletes it
    assert segments(folder) == []
    assert orjson.loads((folder / CURSORS).read_bytes())["segments"] == {}
    reader.close()


def test_items_keep_their_order_per_writer(queue: DiskQueue) -> None:
    for n in range(20):
        put(queue, items(3, f"p{n}"))
    got = list(queue.read(1000, 0).items)
    assert got == [i for n in range(20) for i in items(3, f"p{n}")]


def test_too_large_items_are_refused_whole(folder: Path) -> None:
    q = DiskQueue(folder, DiskQueueOptions(max_item_bytes=100))
    with pytest.raises(ItemTooLargeError, match="larger than the limit"):
        put(q, [b"small", b"z" * 101])
    assert len(q.read(10, 0)) == 0
    q.close()


def test_one_reader_at_a_time(folder: Path) -> None:
    first = DiskQueue(folder)
    first.read(1, 0)
    second = DiskQueue(folder)
    with pytest.raises(QueueBusyError, match="another process is reading"):
        second.read(1, 0)
    first.close()
    assert len(second.read(1, 0)) == 0
    second.close()


def test_depth_seen_from_a_writer_process(folder: Path) -> None:
    writer = DiskQueue(folder)
    put(writer, items(7))
    reader = DiskQueue(folder)
    reader.ack(reader.read(3, 0))
    assert writer.depth() == 4
    assert reader.depth() == 4
    put(writer, items(2))
    assert writer.depth() == 6
    reader.close()
    writer.close()


def test_closed_queue_refuses_work(folder: Path) -> None:
    q = DiskQueue(folder)
    q.close()
    with pytest.raises(QueueClosedError):
        put(q, [b"x"])
    with pytest.raises(QueueClosedError):
        q.read(1, 0)


def test_open_queue_picks_the_backend_by_url(tmp_path: Path) -> None:
    q = open_queue(None, tmp_path, {"segment_bytes": 8192})
    assert isinstance(q, DiskQueue)
    assert q.folder == tmp_path / "state" / "queue"
    assert q.options.segment_bytes == 8192
    assert q.lease_seconds is None
    other = open_queue(f"file://{tmp_path}/elsewhere", tmp_path)
    assert isinstance(other, DiskQueue)
    assert other.folder == tmp_path / "elsewhere"
    with pytest.raises(ConfigError, match="unsupported queue URL"):
        open_queue("kafka://broker/topic", tmp_path)
    with pytest.raises(ConfigError, match="invalid disk queue options: segment_size"):
        open_queue(None, tmp_path, {"segment_size": 1})
