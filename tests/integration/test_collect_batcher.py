"""The batcher against the real disk queue and a local object store: batches close by count
and by age, land in the raw-zone layout, duplicates are written once, crashes lose nothing."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from opencdp.collect.batcher import Batcher, BatcherConfig
from opencdp.collect.metrics import BATCHER_METRICS_FILE, CollectMetrics
from opencdp.collect.queue import Batch
from opencdp.collect.queue.disk import DiskQueue
from opencdp.errors import ConfigError, StorageUnavailableError
from opencdp.storage import ObjectStore, open_object_store
from opencdp.storage.ndjson import read_lines

pytestmark = pytest.mark.integration

START = datetime(2025, 1, 15, 1, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class SimulatedCrashError(Exception):
    """Stands for the process dying at that point."""


def event(
    event_id: str | None,
    stream: str = "pages",
    tenant: str = "acme",
    provider: str = "web",
    **record: Any,
) -> bytes:
    meta = {
        "tenant": tenant,
        "provider": provider,
        "stream": stream,
        "kind": "track",
        "id": event_id,
        "received_at": "2025-01-15T01:00:00.000Z",
        "extracted_at": None,
        "batch_id": None,
        "schema_version": None,
        "event_type": None,
    }
    return orjson.dumps({"_meta": meta, "record": record or {"id": event_id}})


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "cdp-data"


@pytest.fixture
def store(root: Path) -> ObjectStore:
    return open_object_store(str(root))


@pytest.fixture
def queue(root: Path) -> Iterator[DiskQueue]:
    q = DiskQueue(root / "state" / "queue")
    yield q
    q.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def put(queue: DiskQueue, items: Sequence[bytes]) -> None:
    asyncio.run(queue.put(items))


def raw_files(store: ObjectStore) -> dict[str, list[dict[str, Any]]]:
    return {i.key: list(read_lines(store.read(i.key))) for i in store.list("raw")}


def written_ids(store: ObjectStore) -> Counter[str]:
    return Counter(line["_meta"]["id"] for lines in raw_files(store).values() for line in lines)


def make(queue: DiskQueue, store: ObjectStore, clock: Clock, **config: Any) -> Batcher:
    return Batcher(queue, store, BatcherConfig(**{"read_items": 4, **config}), clock=clock)


def test_batches_close_at_max_events(queue: DiskQueue, store: ObjectStore, clock: Clock) -> None:
    put(queue, [event(f"e{i}") for i in range(7)])
    batcher = make(queue, store, clock, max_events=3)
    assert batcher.run_once() == 7
    files = raw_files(store)
    assert [len(lines) for lines in files.values()] == [3, 3]
    assert batcher.metrics.batches_flushed == 2
    assert batcher.metrics.events_written == 6
    assert batcher.buffered_events == 1
    # Reads of 4 are acknowledged whole: the second one holds the open batch's item.
    assert queue.depth() == 3
    batcher.flush()
    assert queue.depth() == 0
    assert sum(written_ids(store).values()) == 7


def test_batches_close_at_max_age(queue: DiskQueue, store: ObjectStore, clock: Clock) -> None:
    batcher = make(queue, store, clock, max_age=300)
    put(queue, [event("a"), event("b")])
    batcher.run_once()
    clock.advance(299)
    put(queue, [event("c")])
    batcher.run_once()
    assert raw_files(store) == {}
    clock.advance(1)
    batcher.run_once()
    (key,) = raw_files(store)
    assert key == "raw/acme/web/year=2025/month=01/day=15/pages_20250115T010500.ndjson.gz"
    assert [line["_meta"]["id"] for line in raw_files(store)[key]] == ["a", "b", "c"]
    assert queue.depth() == 0


def test_groups_follow_tenant_provider_and_stream(
    queue: DiskQueue, store: ObjectStore, clock: Clock
) -> None:
    put(
        queue,
        [
            event("1", "pages"),
            event("2", "orders/create", provider="shopify"),
            event("3", "pages", tenant="globex"),
            event("4", "pages"),
        ],
    )
    batcher = make(queue, store, clock)
    batcher.run_once()
    batcher.flush()
    day = "year=2025/month=01/day=15"
    assert {key: [x["_meta"]["id"] for x in lines] for key, lines in raw_files(store).items()} == {
        f"raw/acme/shopify/{day}/orders_create_20250115T010000.ndjson.gz": ["2"],
        f"raw/acme/web/{day}/pages_20250115T010000.ndjson.gz": ["1", "4"],
        f"raw/globex/web/{day}/pages_20250115T010000.ndjson.gz": ["3"],
    }


def test_lines_are_stored_exactly_as_queued(
    queue: DiskQueue, store: ObjectStore, clock: Clock
) -> None:
    items = [event("x", name="caf\u00e9", nested={"a": [1, 2.5, None]}), event("y") + b"\n"]
    put(queue, items)
    batcher = make(queue, store, clock)
    batcher.run_once()
    batcher.flush()
    (key,) = raw_files(store)
    import gzip

    assert gzip.decompress(store.read(key)) == items[0] + b"\n" + items[1]


def test_same_second_batches_get_distinct_names(
    queue: DiskQueue, store: ObjectStore, clock: Clock
) -> None:
    put(queue, [event(f"e{i}") for i in range(5)])
    make(queue, store, clock, max_events=2).run_once()
    prefix = "raw/acme/web/year=2025/month=01/day=15/pages_20250115T010000"
    assert sorted(raw_files(store)) == [f"{prefix}.ndjson.gz", f"{prefix}_2.ndjson.gz"]


def test_duplicates_are_written_once(queue: DiskQueue, store: ObjectStore, clock: Clock) -> None:
    batcher = make(queue, store, clock)
    put(queue, [event("a"), event("b"), event("a"), event(None), event(None)])
    batcher.run_once()
    put(queue, [event("b")])  # a duplicate of an item not written yet
    batcher.run_once()
    assert batcher.metrics.duplicates_dropped == 2
    # Duplicates are acknowledged only with the first copy, once it is written.
    assert queue.depth() == 6
    batcher.flush()
    assert queue.depth() == 0
    put(queue, [event("a")])  # a duplicate of a written item
    batcher.run_once()
    assert queue.depth() == 0
    assert batcher.metrics.duplicates_dropped == 3
    assert written_ids(store) == Counter({"a": 1, "b": 1, None: 2})  # no id: no dedup


def test_recent_ids_survive_a_restart(
    root: Path, queue: DiskQueue, store: ObjectStore, clock: Clock
) -> None:
    first = make(queue, store, clock)
    put(queue, [event("a"), event("b")])
    first.run_once()
    first.flush()
    fresh_store = open_object_store(str(root))
    second = make(queue, fresh_store, clock)
    put(queue, [event("a"), event("c")])
    second.run_once()
    second.flush()
    assert second.metrics.duplicates_dropped == 1
    assert written_ids(store) == Counter({"a": 1, "b": 1, "c": 1})


def test_crash_after_the_file_and_before_the_ack_writes_nothing_twice(
    root: Path, store: ObjectStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = root / "state" / "queue"
    queue = DiskQueue(folder)
    put(queue, [event(f"e{i}") for i in range(10)])

    def crash(*batches: Batch) -> None:
        raise SimulatedCrashError

    monkeypatch.setattr(queue, "ack", crash)
    with pytest.raises(SimulatedCrashError):
        make(queue, store, clock, max_events=4).run_once()
    queue.close()
    assert sum(written_ids(store).values()) == 4  # one file, never acknowledged

    queue = DiskQueue(folder)  # the restarted batcher gets every item again
    batcher = make(queue, open_object_store(str(root)), clock, max_events=4)
    batcher.run_once()
    batcher.flush()
    assert batcher.metrics.duplicates_dropped == 4
    assert written_ids(store) == Counter({f"e{i}": 1 for i in range(10)})
    assert queue.depth() == 0
    queue.close()


def test_crash_between_the_record_and_the_file_loses_nothing(
    root: Path, store: ObjectStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = root / "state" / "queue"
    queue = DiskQueue(folder)
    put(queue, [event(f"e{i}") for i in range(3)])
    real_write = store.write

    def crash_on_raw(key: str, data: bytes, *, overwrite: bool = False) -> None:
        if key.startswith("raw/"):
            raise SimulatedCrashError
        real_write(key, data, overwrite=overwrite)

    monkeypatch.setattr(store, "write", crash_on_raw)
    batcher = make(queue, store, clock)
    batcher.run_once()
    with pytest.raises(SimulatedCrashError):
        batcher.flush()
    queue.close()
    assert store.list("state/collect/batcher")  # the record of a file never written
    assert raw_files(store) == {}

    queue = DiskQueue(folder)
    fresh_store = open_object_store(str(root))
    batcher = make(queue, fresh_store, clock)
    batcher.run_once()
    batcher.flush()
    assert batcher.metrics.duplicates_dropped == 0
    assert written_ids(fresh_store) == Counter({"e0": 1, "e1": 1, "e2": 1})
    records = [orjson.loads(store.read(i.key)) for i in store.list("state/collect/batcher")]
    assert [r["ids"] for r in records] == [["e0", "e1", "e2"]]  # the stale one was removed
    queue.close()


def test_a_failed_write_is_retried_without_duplicates(
    queue: DiskQueue, store: ObjectStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = store.write
    failures = [0]

    def write_then_fail_once(key: str, data: bytes, *, overwrite: bool = False) -> None:
        real_write(key, data, overwrite=overwrite)
        if key.startswith("raw/") and not failures[0]:
            failures[0] += 1  # written, but reported as failed (a lost response)
            raise StorageUnavailableError("timeout")

    monkeypatch.setattr(store, "write", write_then_fail_once)
    put(queue, [event("a"), event("b")])
    batcher = make(queue, store, clock)
    batcher.run_once()
    with pytest.raises(StorageUnavailableError):
        batcher.flush()
    assert queue.depth() == 2
    batcher.run_once()
    assert batcher.metrics.write_failures == 1
    assert len(raw_files(store)) == 1
    assert written_ids(store) == Counter({"a": 1, "b": 1})
    assert queue.depth() == 0


def test_dedup_records_stay_within_the_window(
    queue: DiskQueue, store: ObjectStore, clock: Clock
) -> None:
    batcher = make(queue, store, clock, max_events=2, dedup_window=5)
    for n in range(10):
        put(queue, [event(f"{n}-a"), event(f"{n}-b")])
        batcher.run_once()
        clock.advance(1)
    records = store.list("state/collect/batcher/acme/web/pages")
    assert len(records) == 3  # the newest 2 hold 4 ids: one more covers the window of 5
    assert len(raw_files(store)) == 10


def test_invalid_items_go_to_the_dead_letter_queue(
    queue: DiskQueue, store: ObjectStore, clock: Clock
) -> None:
    bad_tenant = orjson.dumps({"_meta": {"tenant": "Bad Tenant", "provider": "web"}})
    no_stream = orjson.dumps({"_meta": {"tenant": "acme", "provider": "web", "id": "n"}})
    put(queue, [event("ok"), b"not json", bad_tenant, no_stream])
    batcher = make(queue, store, clock)
    batcher.run_once()
    batcher.flush()
    assert batcher.metrics.invalid_items == 3
    assert queue.depth() == 0
    dlq = {i.key.rsplit("/", 1)[0]: list(read_lines(store.read(i.key))) for i in store.list("dlq")}
    assert sorted(dlq) == ["dlq/_queue/invalid_envelope", "dlq/acme/web/invalid_envelope"]
    (acme_line,) = dlq["dlq/acme/web/invalid_envelope"]
    assert acme_line["error"]["type"] == "invalid_envelope"
    assert "stream" in acme_line["error"]["reason"]
    assert orjson.loads(acme_line["record"]) == orjson.loads(no_stream)
    assert {line["record"] for line in dlq["dlq/_queue/invalid_envelope"]} == {
        "not json",
        bad_tenant.decode(),
    }
    assert written_ids(store) == Counter({"ok": 1})


def test_a_lease_shorter_than_max_age_is_refused(store: ObjectStore, queue: DiskQueue) -> None:
    class ShortLease:
        lease_seconds = 30.0

    with pytest.raises(ConfigError, match="visibility_timeout"):
        Batcher(ShortLease(), store, BatcherConfig(max_age=300))  # type: ignore[arg-type]


def test_run_forever_flushes_when_stopped(queue: DiskQueue, store: ObjectStore) -> None:
    batcher = Batcher(queue, store, BatcherConfig(read_timeout=0.05))
    stop = threading.Event()
    thread = threading.Thread(target=batcher.run_forever, args=(stop,))
    thread.start()
    put(queue, [event("a"), event("b", "orders")])
    while batcher.metrics.items_read < 2:
        stop.wait(0.01)
    stop.set()
    thread.join(30)
    assert not thread.is_alive()
    assert written_ids(store) == Counter({"a": 1, "b": 1})
    assert batcher.metrics.batches_flushed == 2
    assert batcher.metrics.last_flush_at is not None
    assert queue.depth() == 0


def test_counters_are_published_for_the_service_metrics(
    queue: DiskQueue, store: ObjectStore, clock: Clock, root: Path
) -> None:
    published = root / BATCHER_METRICS_FILE
    batcher = Batcher(
        queue, store, BatcherConfig(max_events=2, read_items=4), clock=clock, metrics_file=published
    )
    put(queue, [event("a"), event("b"), event("a")])
    batcher.run_once()
    text = CollectMetrics(batcher_file=published).render().decode()
    values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert values["opencdp_collect_batcher_batches_flushed_total"] == 1
    assert values["opencdp_collect_batcher_items_read_total"] == 3
    assert values["opencdp_collect_batcher_duplicates_dropped_total"] == 1
    assert values["opencdp_collect_batcher_last_flush_timestamp_seconds"] == START.timestamp()
