"""The batcher: drains the event queue into NDJSON.gz files of the raw zone.

Items are grouped by the tenant, provider and stream of their envelope's `_meta`. A
group's batch closes at `max_events` items or `max_age` seconds after its first item, and
becomes one file `raw/{tenant}/{provider}/year=/month=/day=/{stream}_{YYYYMMDDTHHMMSS}
.ndjson.gz` (`layout.raw_timed_key`, the close time in UTC), written atomically and
create-only. The lines are stored exactly as they were queued.

File names. When a stream already has a file for that second (two batches closed within
one second: only above `max_events` events per second per stream), the name gets a
counter before the suffix, `{stream}_{YYYYMMDDTHHMMSS}_2.ndjson.gz`, `_3`, ...: it still
begins with the stream and the close time, sorts after the first, and nothing is ever
overwritten. Bumping the time instead would drift ahead of the clock under sustained
load.

Exactly once in the raw zone. Queue items are acknowledged only once every file holding
them is durably written, so a crash loses nothing: the queue hands the unacknowledged
items out again. Duplicates (the same `_meta.id` within a group) are written once:
- a bounded window of the last `dedup_window` ids per group, in memory, drops the
  duplicates that arrive while the batcher runs;
- before each raw file, the batcher records the file's key and ids in `state/collect/
  batcher/{tenant}/{provider}/{stream}/` (a write-ahead record). A restarted batcher
  rebuilds each group's window from these records, keeping only those whose raw file
  exists (a record whose file was never written is discarded: its items were never
  acknowledged and come again). So an item that reached the raw zone but whose queue
  acknowledgement was lost in a crash is recognised when it is delivered again, and
  dropped. Records beyond the window are deleted as new ones are written.
Deterministic file names were the other option; they fail because a batch's contents
depend on timing (its age) and so differ after a restart.

Limits: items without an id cannot be recognised (the collection service always sets
one); a duplicate arriving after `dedup_window` newer ids of its group is written again;
one batcher per queue (two would each keep their own window).

Invalid items (not an envelope, or a tenant or provider that is not a valid name) are
written to the DLQ (`dlq/{tenant}/{provider}/invalid_envelope/`, or `dlq/_queue/
invalid_envelope/` when the tenant or provider is unusable) and acknowledged.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from opencdp.collect.metrics import BATCHER_METRICS_FILE, publish_batcher_metrics
from opencdp.collect.queue.base import Batch, EventQueue, QueueBusyError
from opencdp.errors import AlreadyExistsError, ConfigError, InvalidNameError, TransientError
from opencdp.logs import get_logger
from opencdp.names import check_name
from opencdp.storage import layout
from opencdp.storage.ndjson import GzipLines
from opencdp.storage.objectstore import ObjectStore, store_for
from opencdp.storage.rawzone import Clock, iso_utc, utc_now

if TYPE_CHECKING:
    from opencdp.settings import Settings

log = get_logger(__name__)

StreamKey = tuple[str, str, str]  # tenant, provider, stream

INVALID_ENVELOPE = "invalid_envelope"
# The DLQ folder for items whose tenant or provider is unusable: no tenant name starts
# with "_", so it never mixes with a tenant's own DLQ.
_ORPHAN_DLQ = f"{layout.DLQ}/_queue/{INVALID_ENVELOPE}"
# How often the counters are published for the service's /metrics, at most.
_PUBLISH_SECONDS = 1.0
# A lease shorter than this margin over max_age could expire before the batch is written.
_LEASE_MARGIN_SECONDS = 60.0


@dataclass(frozen=True)
class BatcherConfig:
    max_events: int = 20_000  # a group's batch closes at this many items
    max_age: float = 300.0  # ... or this many seconds after its first item
    read_items: int = 1_000  # items asked of the queue per read
    read_timeout: float = 1.0  # seconds `run_forever` waits on an empty queue
    drain_seconds: float = 1.0  # `run_once` reads for at most this long
    dedup_window: int = 100_000  # recent ids remembered per group

    def __post_init__(self) -> None:
        if self.max_events < 1 or self.max_age <= 0 or self.read_items < 1:
            raise ConfigError("batcher: max_events, max_age and read_items must be positive")
        if self.dedup_window < 0:
            raise ConfigError("batcher: dedup_window cannot be negative")


@dataclass
class BatcherMetrics:
    """Counters since the batcher started (published for the service's /metrics)."""

    items_read: int = 0
    batches_flushed: int = 0  # raw-zone files written
    events_written: int = 0
    bytes_written: int = 0  # compressed bytes of those files
    duplicates_dropped: int = 0
    invalid_items: int = 0  # sent to the DLQ
    write_failures: int = 0  # failed attempts to write a file (retried)
    last_flush_at: datetime | None = None


class _RecentIds:
    """The last `capacity` ids of a group, oldest first."""

    __slots__ = ("_capacity", "_ids")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, event_id: str) -> bool:
        """Remember `event_id`; False if it was remembered already (a duplicate)."""
        if event_id in self._ids:
            return False
        if self._capacity:
            self._ids[event_id] = None
            if len(self._ids) > self._capacity:
                self._ids.popitem(last=False)
        return True


@dataclass
class _Group:
    """The open batch of one group, and the reads its items came from."""

    key: StreamKey
    opened_at: datetime
    lines: GzipLines = field(default_factory=GzipLines)
    ids: list[str] = field(default_factory=list)
    events: int = 0
    sources: dict[int, int] = field(default_factory=dict)  # read number -> items


@dataclass
class _Sealed:
    """A closed batch waiting to be written (again, after a failure)."""

    key: StreamKey | None  # None: a DLQ file
    data: bytes
    ids: list[str]
    events: int
    sources: dict[int, int]
    object_key: str | None = None  # the raw or DLQ key once chosen
    record_key: str | None = None  # its write-ahead record


@dataclass
class _Read:
    batch: Batch  # its receipt only: the items are dropped once taken
    outstanding: int


@dataclass
class _GroupState:
    window: _RecentIds
    records: deque[tuple[str, int]]  # write-ahead records, oldest first: (key, ids)
    # id -> the sources of the batch holding it, until that batch is written
    unwritten: dict[str, dict[int, int]] = field(default_factory=dict)


class Batcher:
    """Drains `queue` into the raw zone of `store` (see the module's docstring)."""

    def __init__(
        self,
        queue: EventQueue,
        store: ObjectStore,
        config: BatcherConfig | None = None,
        *,
        clock: Clock = utc_now,
        metrics_file: Path | None = None,
    ) -> None:
        self.queue = queue
        self.store = store
        self.config = config or BatcherConfig()
        self.clock = clock
        self.metrics = BatcherMetrics()
        # Where the counters are published for the service's /metrics (None: nowhere).
        self.metrics_file = metrics_file
        self._published: BatcherMetrics | None = None
        self._published_at = -_PUBLISH_SECONDS
        lease = queue.lease_seconds
        if lease is not None and lease < self.config.max_age + _LEASE_MARGIN_SECONDS:
            raise ConfigError(
                f"the queue hands read items out again after {lease:g} s, before a batch "
                f"of up to {self.config.max_age:g} s can be written",
                hint=f"set the queue's visibility_timeout to at least "
                f"{self.config.max_age + _LEASE_MARGIN_SECONDS:g} s, or lower "
                "collect.batch_max_seconds",
            )
        self._groups: dict[StreamKey, _Group] = {}
        self._states: dict[StreamKey, _GroupState] = {}
        self._sealed: list[_Sealed] = []
        self._reads: dict[int, _Read] = {}
        self._numbers = count()
        self._acks: list[Batch] = []

    @classmethod
    def from_settings(cls, settings: Settings, queue: EventQueue) -> Batcher:
        collect = settings.collect
        config = BatcherConfig(
            max_events=collect.batch_max_events, max_age=collect.batch_max_seconds
        )
        return cls(
            queue,
            store_for(settings),
            config,
            metrics_file=settings.root / BATCHER_METRICS_FILE,
        )

    @property
    def buffered_events(self) -> int:
        """Items read and not yet written."""
        # Copies first: the service's /metrics may ask from another thread.
        groups, sealed = list(self._groups.values()), list(self._sealed)
        return sum(g.events for g in groups) + sum(s.events for s in sealed)

    # --- the loop --------------------------------------------------------------------------

    def run_once(self, timeout: float = 0.0) -> int:
        """Read what the queue holds (waiting up to `timeout` for the first item), write
        the batches that are full or old enough, acknowledge what is written. Returns the
        number of items read; stops reading after `drain_seconds` so that old batches are
        written on time under a constant load."""
        self._write_sealed()  # what failed last time
        taken = 0
        wait = timeout
        until = time.monotonic() + timeout + self.config.drain_seconds
        while time.monotonic() < until:
            batch = self.queue.read(self.config.read_items, wait)
            wait = 0.0
            if not batch.items:
                break
            self._take(batch)
            taken += len(batch.items)
            self._write_sealed()
        self._seal_due()
        self._write_sealed()
        self._publish_metrics()
        return taken

    def run_forever(self, stop: threading.Event) -> None:
        """`run_once` until `stop` is set, then write every open batch."""
        backoff = 1.0
        while not stop.is_set():
            try:
                self.run_once(self.config.read_timeout)
            except QueueBusyError:
                # Another process's batcher reads this queue: stand by to take over.
                log.debug("batcher: standing by, another batcher reads the queue")
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
            except TransientError as e:
                log.warning("batcher: will retry", error=str(e), retry_in_s=backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
            else:
                backoff = 1.0
        try:
            self.flush()
        except TransientError as e:
            # Nothing is lost: the unwritten items were not acknowledged.
            log.warning("batcher: stopped with unwritten batches", error=str(e))

    def flush(self) -> None:
        """Close and write every open batch now."""
        for key in list(self._groups):
            self._seal(key)
        self._write_sealed()
        self._publish_metrics(now=True)

    def _publish_metrics(self, *, now: bool = False) -> None:
        """Write the counters to `metrics_file` if they changed, at most once a second
        unless `now` (a round can be 10 ms: a file replaced each time costs more than the
        round's work)."""
        if self.metrics_file is None or self.metrics == self._published:
            return
        at = time.monotonic()
        if not now and at - self._published_at < _PUBLISH_SECONDS:
            return
        values: dict[str, Any] = asdict(self.metrics)
        last = self.metrics.last_flush_at
        values["last_flush_at"] = last.timestamp() if last else None
        try:
            publish_batcher_metrics(self.metrics_file, values)
        except OSError as e:  # a view of the counters: not worth stopping the batcher for
            log.warning(
                "batcher: could not publish metrics", path=str(self.metrics_file), error=str(e)
            )
            return
        self._published, self._published_at = replace(self.metrics), at

    # --- taking items ----------------------------------------------------------------------

    def _take(self, batch: Batch) -> None:
        parsed_items = [(item, _parse(item)) for item in batch.items]
        # The I/O that may fail (restoring a group's recent ids) comes before any change.
        for _, parsed in parsed_items:
            if isinstance(parsed, _Envelope):
                self._state(parsed.key)
        number = next(self._numbers)
        self._reads[number] = _Read(replace(batch, items=()), len(batch.items))
        self.metrics.items_read += len(batch.items)
        invalid: list[tuple[bytes, _Invalid]] = []
        settled = 0  # duplicates of items already in the raw zone
        for item, parsed in parsed_items:
            if isinstance(parsed, _Invalid):
                invalid.append((item, parsed))
                continue
            key, event_id = parsed.key, parsed.event_id
            state = self._state(key)
            if event_id is not None and not state.window.add(event_id):
                self.metrics.duplicates_dropped += 1
                waiting = state.unwritten.get(event_id)
                if waiting is None:
                    settled += 1
                else:
                    # The first copy is not written yet: this one is acknowledged with it.
                    waiting[number] = waiting.get(number, 0) + 1
                continue
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = _Group(key, self.clock())
            group.lines.add(parsed.line)
            group.events += 1
            group.sources[number] = group.sources.get(number, 0) + 1
            if event_id is not None:
                group.ids.append(event_id)
                state.unwritten[event_id] = group.sources
            if group.events >= self.config.max_events:
                self._seal(key)
        if invalid:
            self._seal_invalid(invalid, number)
        if settled:
            self._settle({number: settled})

    def _state(self, key: StreamKey) -> _GroupState:
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = self._load_state(key)
        return state

    def _seal(self, key: StreamKey) -> None:
        group = self._groups.pop(key)
        self._sealed.append(
            _Sealed(key, group.lines.finish(), group.ids, group.events, group.sources)
        )

    def _seal_due(self) -> None:
        now = self.clock()
        for key, group in list(self._groups.items()):
            if (now - group.opened_at).total_seconds() >= self.config.max_age:
                self._seal(key)

    def _seal_invalid(self, invalid: list[tuple[bytes, _Invalid]], number: int) -> None:
        self.metrics.invalid_items += len(invalid)
        now = self.clock()
        by_place: dict[tuple[str, str] | None, GzipLines] = {}
        for item, problem in invalid:
            lines = by_place.setdefault(_dlq_place(problem.meta), GzipLines())
            error = {
                "type": INVALID_ENVELOPE,
                "reason": problem.reason,
                "at": iso_utc(now),
                "retry_count": 0,
            }
            record = item.decode("utf-8", errors="replace")
            lines.add_json({"_meta": problem.meta, "record": record, "error": error})
            log.error("batcher: invalid queue item sent to the DLQ", reason=problem.reason)
        for place, lines in by_place.items():
            data = lines.finish()
            events = lines.lines
            key = _dlq_key(place, now)
            self._sealed.append(_Sealed(None, data, [], events, {number: events}, key))

    # --- writing ---------------------------------------------------------------------------

    def _write_sealed(self) -> None:
        while self._sealed:
            sealed = self._sealed[0]
            try:
                self._write(sealed)
            except TransientError:
                self.metrics.write_failures += 1
                raise
            self._sealed.pop(0)
            self._settle(sealed.sources)
        if self._acks:
            acks, self._acks = self._acks, []
            try:
                self.queue.ack(*acks)
            except TransientError:
                # Written, not yet acknowledged: try again; if the process dies first,
                # the items come again and are dropped as duplicates.
                self._acks = acks + self._acks
                raise

    def _write(self, sealed: _Sealed) -> None:
        if sealed.key is None:  # a DLQ file: a fresh unique key
            assert sealed.object_key is not None
            self._put(sealed.object_key, sealed.data)
            return
        tenant, provider, stream = sealed.key
        at = self.clock()
        if sealed.object_key is None:
            sealed.object_key = self._free_key(sealed.key, at)
            sealed.record_key = (
                f"{_records_prefix(sealed.key)}/{at:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.json"
            )
        assert sealed.record_key is not None
        for _ in range(1000):
            self._record(sealed)
            if self._put(sealed.object_key, sealed.data):
                break
            sealed.object_key = self._free_key(sealed.key, at)
        else:
            raise AlreadyExistsError(f"no free raw-zone file name for {stream} at {at:%FT%T}")
        state = self._state(sealed.key)
        for event_id in sealed.ids:
            state.unwritten.pop(event_id, None)
        state.records.append((sealed.record_key, len(sealed.ids)))
        self._prune_records(state)
        self.metrics.batches_flushed += 1
        self.metrics.events_written += sealed.events
        self.metrics.bytes_written += len(sealed.data)
        self.metrics.last_flush_at = at
        log.info(
            "batcher: wrote a raw batch",
            tenant=tenant,
            provider=provider,
            stream=stream,
            events=sealed.events,
            key=sealed.object_key,
        )

    def _put(self, key: str, data: bytes) -> bool:
        """Write `key` create-only; False if another object holds the name. True also
        when the object is there with our bytes (an earlier attempt that succeeded
        though it reported a failure)."""
        try:
            self.store.write(key, data)
        except AlreadyExistsError:
            return self.store.read(key) == data
        return True

    def _record(self, sealed: _Sealed) -> None:
        """The write-ahead record of a raw file: its key and the ids it holds."""
        assert sealed.record_key is not None
        assert sealed.key is not None
        doc = {"raw_key": sealed.object_key, "stream": sealed.key[2], "ids": sealed.ids}
        self.store.write(sealed.record_key, orjson.dumps(doc), overwrite=True)

    def _free_key(self, key: StreamKey, at: datetime) -> str:
        base = layout.raw_timed_key(*key, at)
        stem = base[: -len(layout.SUFFIX)]
        for n in _counter():
            candidate = base if n == 1 else f"{stem}_{n}{layout.SUFFIX}"
            if not self.store.exists(candidate):
                return candidate
        raise AssertionError("unreachable")  # pragma: no cover

    def _settle(self, done: dict[int, int]) -> None:
        """`done` items of these reads are written (or need no write)."""
        for number, items in done.items():
            read = self._reads[number]
            read.outstanding -= items
            if read.outstanding == 0:
                del self._reads[number]
                self._acks.append(read.batch)

    # --- the dedup records -----------------------------------------------------------------

    def _load_state(self, key: StreamKey) -> _GroupState:
        """The group's window, from the records of the raw files it wrote last."""
        state = _GroupState(_RecentIds(self.config.dedup_window), deque())
        records = [info.key for info in self.store.list(_records_prefix(key))]
        kept: list[tuple[str, list[str]]] = []
        total = 0
        for record_key in reversed(records):  # newest first
            if total >= self.config.dedup_window:
                self.store.delete(record_key)
                continue
            doc = orjson.loads(self.store.read(record_key))
            if doc["stream"] != key[2]:
                continue  # another stream with the same file-safe name
            if not self.store.exists(doc["raw_key"]):
                # Recorded, then the process died before the file was written: its
                # items were not acknowledged and will come again.
                self.store.delete(record_key)
                continue
            kept.append((record_key, doc["ids"]))
            total += len(doc["ids"])
        for record_key, ids in reversed(kept):  # oldest first
            for event_id in ids:
                state.window.add(event_id)
            state.records.append((record_key, len(ids)))
        if kept:
            tenant, provider, stream = key
            log.info(
                "batcher: restored recent ids",
                tenant=tenant,
                provider=provider,
                stream=stream,
                ids=total,
                files=len(kept),
            )
        return state

    def _prune_records(self, state: _GroupState) -> None:
        """Delete the oldest records once the newer ones cover the window."""
        total = sum(n for _, n in state.records)
        while state.records and total - state.records[0][1] >= self.config.dedup_window:
            record_key, n = state.records.popleft()
            self.store.delete(record_key)
            total -= n


def _counter() -> Iterator[int]:
    return count(1)


def _records_prefix(key: StreamKey) -> str:
    tenant, provider, stream = key
    return layout.state_key("collect", "batcher", tenant, provider, layout.file_safe(stream))


@dataclass(frozen=True, slots=True)
class _Envelope:
    key: StreamKey
    event_id: str | None
    line: bytes  # the item as one NDJSON line (without its newline)


@dataclass(frozen=True, slots=True)
class _Invalid:
    reason: str
    meta: dict[str, Any] | None


def _parse(item: bytes) -> _Envelope | _Invalid:
    """The group, id and NDJSON line of an envelope, or why it is not one."""
    try:
        doc = orjson.loads(item)
    except orjson.JSONDecodeError as e:
        return _Invalid(f"not valid JSON: {e}", None)
    meta = doc.get("_meta") if isinstance(doc, dict) else None
    if not isinstance(meta, dict):
        return _Invalid("not an envelope: no _meta object", None)
    stream = meta.get("stream")
    if not isinstance(stream, str) or not stream:
        return _Invalid("_meta.stream is missing", meta)
    try:
        key = _group(str(meta.get("tenant")), str(meta.get("provider")), stream)
    except InvalidNameError as e:
        return _Invalid(e.message, meta)
    line = item.rstrip(b"\r\n")
    if b"\n" in line:  # pretty-printed JSON: one line in the file
        line = orjson.dumps(doc)
    raw_id = meta.get("id")
    return _Envelope(key, None if raw_id is None else str(raw_id), line)


@lru_cache(maxsize=4096)  # a few groups carry every item: check their names once
def _group(tenant: str, provider: str, stream: str) -> StreamKey:
    return check_name(tenant), check_name(provider, "provider"), stream


def _dlq_place(meta: dict[str, Any] | None) -> tuple[str, str] | None:
    if meta is None:
        return None
    try:
        return check_name(str(meta.get("tenant"))), check_name(
            str(meta.get("provider")), "provider"
        )
    except InvalidNameError:
        return None


def _dlq_key(place: tuple[str, str] | None, at: datetime) -> str:
    unique = uuid.uuid4().hex[:12]
    if place is None:
        return f"{_ORPHAN_DLQ}/{at:%Y%m%dT%H%M%S}_{unique}{layout.SUFFIX}"
    return layout.dlq_key(*place, INVALID_ENVELOPE, at, unique)


__all__ = ["Batcher", "BatcherConfig", "BatcherMetrics"]
