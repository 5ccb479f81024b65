"""The Singer target: Singer messages in, raw-zone batches, DLQ files and state out.

Guarantees:
- every RECORD is validated against its stream's registered schema; valid ones are
  written to the raw zone in NDJSON.gz batches of at most `batch_size` records, in the
  envelope of DESIGN.md §3; every rejected line goes to the DLQ with its error;
- a STATE is persisted only once every record (and rejected line) before it is durably
  written, so a process killed at any moment resumes from a state that loses nothing.

Each consumed line gets a sequence number. A buffer (a stream's open batch, or a DLQ
buffer) remembers the sequence of its first line; a pending STATE that arrived at sequence
n is safe to save once no open buffer starts at or before n.
"""

from __future__ import annotations

import gc
import gzip
import hashlib
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import fsspec
import orjson

from opencdp.ingest.schemas import DriftPolicy, SchemaRegistry
from opencdp.ingest.singer.messages import (
    ActivateVersionMessage,
    BatchMessage,
    Message,
    ProtocolViolation,
    RecordMessage,
    SchemaMessage,
    StateMessage,
    parse_document,
)
from opencdp.ingest.singer.state import StateStore
from opencdp.ingest.validation import InvalidSchemaError, RecordError, RecordValidator
from opencdp.logs import get_logger
from opencdp.storage.ndjson import GzipLines
from opencdp.storage.rawzone import Clock, DeadLetterWriter, RawZoneWriter, iso_utc, utc_now

log = get_logger(__name__)

# Error types (DLQ folders) that are protocol errors: they make the run exit non-zero.
PROTOCOL_ERRORS = frozenset(
    {
        "malformed_json",
        "malformed_message",
        "unknown_message_type",
        "missing_schema",
        "invalid_schema",
        "unsupported_batch",
        "batch_file",
    }
)


@dataclass(slots=True)
class StreamStats:
    records_in: int = 0
    written: int = 0
    rejected: int = 0
    files: int = 0
    raw_bytes: int = 0
    compressed_bytes: int = 0


@dataclass
class IngestSummary:
    tenant: str
    provider: str
    streams: dict[str, StreamStats] = field(default_factory=dict)
    protocol_errors: int = 0
    states_saved: int = 0
    last_state: dict[str, Any] | None = None
    raw_files: list[str] = field(default_factory=list)
    dlq_files: list[str] = field(default_factory=list)
    drift: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.protocol_errors == 0


@dataclass(slots=True)
class _Buffer:
    lines: GzipLines
    first_seq: int
    opened_at: datetime
    # The constant bytes before and after a record's varying envelope fields.
    envelope: tuple[bytes, bytes] = (b"", b"")


@dataclass(slots=True)
class _Stream:
    name: str
    validator: RecordValidator | None = None
    key_properties: tuple[str, ...] = ()
    schema_version: int = 0
    drift_blocked: str | None = None
    batch: _Buffer | None = None
    stats: StreamStats = field(default_factory=StreamStats)


class SingerTarget:
    """Consumes one tap run's messages for one tenant and provider."""

    def __init__(
        self,
        *,
        tenant: str,
        provider: str,
        raw: RawZoneWriter,
        dead_letters: DeadLetterWriter,
        registry: SchemaRegistry,
        state: StateStore,
        batch_size: int = 20_000,
        drift_policy: DriftPolicy = "warn",
        state_interval: float = 60.0,
        clock: Clock = utc_now,
        progress: Callable[[IngestSummary, float], None] | None = None,
    ) -> None:
        self.tenant = tenant
        self.provider = provider
        self.raw = raw
        self.dead_letters = dead_letters
        self.registry = registry
        self.state_store = state
        self.batch_size = batch_size
        self.drift_policy = drift_policy
        self.state_interval = state_interval
        self.clock = clock
        self.progress = progress
        self.summary = IngestSummary(tenant=tenant, provider=provider)
        self._streams: dict[str, _Stream] = {}
        self._dlq: dict[str, _Buffer] = {}
        self._pending_states: list[tuple[int, dict[str, Any], float]] = []
        self._seq = 0
        self._run = f"{clock():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        self._batches = 0
        self._now_iso = ""
        self._now_json = b""
        # One background thread compresses while the main thread parses and validates.
        self._compressor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gzip")

    # --- input -------------------------------------------------------------------------

    def consume(self, lines: Iterable[bytes]) -> IngestSummary:
        """Process every line, then flush everything and save the last state."""
        started = last_report = time.monotonic()
        with _fewer_gc_passes():
            self._consume(lines, started, last_report)
        try:
            self._flush_all()
        finally:
            self._compressor.shutdown()
        return self.summary

    def _consume(self, lines: Iterable[bytes], started: float, last_report: float) -> None:
        loads, on_record = orjson.loads, self._on_record  # bound once: the loop is hot
        for line in lines:
            self._seq += 1
            if self._seq & 255 == 1:
                self._now_iso = iso_utc(self.clock())
                self._now_json = self._received_json()
                now = time.monotonic()
                if self._pending_states and now - self._pending_states[0][2] > self.state_interval:
                    self._flush_all()
                if self.progress and now - last_report > 5:
                    self.progress(self.summary, now - started)
                    last_report = now
            try:
                doc = loads(line)
            except orjson.JSONDecodeError as e:
                if line.strip():
                    self._reject_line(line, "malformed_json", f"line is not valid JSON: {e}")
                continue
            # The hot path: a well-formed RECORD is handled without building a message.
            if type(doc) is dict and doc.get("type") == "RECORD":
                stream, record = doc.get("stream"), doc.get("record")
                if type(stream) is str and stream and type(record) is dict:
                    extracted = doc.get("time_extracted")
                    on_record(stream, record, extracted if type(extracted) is str else None)
                    continue
            try:
                message = parse_document(doc)
            except ProtocolViolation as e:
                if line.strip():
                    self._reject_line(line, e.kind, e.reason)
                continue
            self._dispatch(message, line)

    def _dispatch(self, message: Message, line: bytes) -> None:
        if isinstance(message, RecordMessage):
            self._on_record(message.stream, message.record, message.time_extracted)
        elif isinstance(message, SchemaMessage):
            self._on_schema(message, line)
        elif isinstance(message, StateMessage):
            self._pending_states.append((self._seq, message.value, time.monotonic()))
        elif isinstance(message, BatchMessage):
            self._on_batch(message, line)
        elif isinstance(message, ActivateVersionMessage):
            log.info("activate_version", stream=message.stream, version=message.version)

    def resubmit(
        self,
        schemas: Iterable[SchemaMessage],
        records: Iterable[tuple[RecordMessage, int]],
    ) -> IngestSummary:
        """Send records back through the same validation (DLQ reprocessing): each record
        comes with its retry count, which grows by one if it is rejected again."""
        for schema in schemas:
            self._on_schema(schema, b"")
        try:
            for message, retries in records:
                self._seq += 1
                self._now_iso = iso_utc(self.clock())
                self._now_json = self._received_json()
                self._on_record(message.stream, message.record, message.time_extracted, retries)
            self._flush_all()
        finally:
            self._compressor.shutdown()
        return self.summary

    def _received_json(self) -> bytes:
        return b',"received_at":"' + self._now_iso.encode() + b'","extracted_at":'

    # --- messages ----------------------------------------------------------------------

    def _on_schema(self, message: SchemaMessage, line: bytes) -> None:
        stream = self._stream(message.stream)
        try:
            validator = RecordValidator(message.schema, message.key_properties)
        except InvalidSchemaError as e:
            stream.validator = None
            self._reject_line(line, "invalid_schema", e.message, stream=message.stream)
            return
        registration = self.registry.register(
            message.stream, message.schema, message.key_properties
        )
        stream.validator = validator
        stream.key_properties = message.key_properties
        stream.schema_version = registration.version.version
        stream.drift_blocked = None
        if registration.diff is not None and registration.diff.is_drift:
            changes = registration.diff.describe()
            self.summary.drift[message.stream] = changes
            log.warning(
                "schema_drift",
                tenant=self.tenant,
                provider=self.provider,
                stream=message.stream,
                version=stream.schema_version,
                changes=changes,
                policy=self.drift_policy,
            )
            if self.drift_policy == "dlq":
                stream.drift_blocked = "; ".join(changes)

    def _on_record(
        self, name: str, record: dict[str, Any], extracted: str | None, retry_count: int = 0
    ) -> None:
        stream = self._streams.get(name) or self._stream(name)
        stream.stats.records_in += 1
        error: RecordError | None
        if stream.validator is None:
            error = RecordError(
                type="missing_schema",
                reason=f"RECORD for stream {name!r} arrived before any valid SCHEMA for it",
            )
        elif stream.drift_blocked is not None:
            error = RecordError(type="schema_drift", reason=stream.drift_blocked)
        else:
            error = stream.validator.check(record)
        if error is not None:
            stream.stats.rejected += 1
            if error.type in PROTOCOL_ERRORS:
                self.summary.protocol_errors += 1
            meta = self._meta(name, stream.schema_version or None, extracted)
            self._dead_letter(error.type, meta, record, error.as_dict(), retry_count)
            return
        batch = stream.batch
        if batch is None:
            batch = stream.batch = self._open_buffer(stream)
        # The envelope is assembled from pre-serialized parts: only the record, its id
        # and the times are serialized per record (the hot path of ingestion).
        head, tail = batch.envelope
        keys = stream.key_properties
        record_id = str(record[keys[0]]) if len(keys) == 1 else _record_id(record, keys)
        added = batch.lines.add(
            b"".join(
                (
                    head,
                    orjson.dumps(record_id),
                    self._now_json,
                    b"null" if extracted is None else orjson.dumps(extracted),
                    tail,
                    orjson.dumps(record),
                    b"}",
                )
            )
        )
        if added >= self.batch_size:
            self._flush_stream(stream)
            self._save_safe_state()

    def _meta(
        self, stream: str | None, version: int | None, extracted: str | None
    ) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "provider": self.provider,
            "stream": stream,
            "kind": "tap",
            "id": None,
            "received_at": self._now_iso or iso_utc(self.clock()),
            "extracted_at": extracted,
            "batch_id": None,
            "schema_version": version,
            "event_type": None,
        }

    def _envelope_parts(self, stream: _Stream, batch_id: str) -> tuple[bytes, bytes]:
        """The constant bytes around a record's varying fields, for one batch."""
        meta = orjson.dumps(
            {"tenant": self.tenant, "provider": self.provider, "stream": stream.name, "kind": "tap"}
        )
        head = b'{"_meta":' + meta[:-1] + b',"id":'
        tail = orjson.dumps(
            {"batch_id": batch_id, "schema_version": stream.schema_version, "event_type": None}
        )
        return head, b"," + tail[1:-1] + b'},"record":'

    def _on_batch(self, message: BatchMessage, line: bytes) -> None:
        for uri in message.manifest:
            try:
                with fsspec.open(uri, "rb") as f:
                    data = f.read()
                if message.compression == "gzip":
                    data = gzip.decompress(data)
            except (OSError, EOFError, ValueError) as e:
                self._reject_line(line, "batch_file", f"cannot read BATCH file {uri}: {e}")
                continue
            for record_line in data.splitlines():
                if not record_line.strip():
                    continue
                try:
                    record = orjson.loads(record_line)
                except orjson.JSONDecodeError as e:
                    self._reject_line(record_line, "malformed_json", f"in {uri}: {e}")
                    continue
                if not isinstance(record, dict):
                    self._reject_line(record_line, "malformed_message", f"in {uri}: not an object")
                    continue
                self._on_record(message.stream, record, None)

    # --- buffers -------------------------------------------------------------------------

    def _stream(self, name: str) -> _Stream:
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[name] = _Stream(name=name)
            self.summary.streams[name] = stream.stats
        return stream

    def _open_buffer(self, stream: _Stream | None = None) -> _Buffer:
        """A new raw batch for `stream`, or a DLQ buffer when `stream` is None."""
        self._batches += 1
        batch_id = f"{self._run}-{self._batches:05d}"
        return _Buffer(
            lines=GzipLines(executor=self._compressor),
            first_seq=self._seq,
            opened_at=self.clock(),
            envelope=self._envelope_parts(stream, batch_id) if stream else (b"", b""),
        )

    def _reject_line(self, line: bytes, kind: str, reason: str, stream: str | None = None) -> None:
        self.summary.protocol_errors += 1
        log.error("singer_protocol_error", kind=kind, reason=reason, stream=stream)
        original = line.decode("utf-8", errors="replace")
        self._dead_letter(
            kind, self._meta(stream, None, None), original, {"type": kind, "reason": reason}
        )

    def _dead_letter(
        self,
        error_type: str,
        meta: dict[str, Any],
        record: Any,
        error: dict[str, Any],
        retry_count: int = 0,
    ) -> None:
        buffer = self._dlq.get(error_type)
        if buffer is None:
            buffer = self._dlq[error_type] = self._open_buffer()
        at = meta["received_at"] or iso_utc(self.clock())
        error = {**error, "at": at, "retry_count": retry_count}
        added = buffer.lines.add_json({"_meta": meta, "record": record, "error": error})
        if added >= self.batch_size:
            self._flush_dlq(error_type)
            self._save_safe_state()

    def _flush_stream(self, stream: _Stream) -> None:
        batch = stream.batch
        if batch is None:
            return
        stream.batch = None
        data = batch.lines.finish()
        lines = batch.lines.lines
        key = self.raw.commit_batch(stream.name, data, batch.opened_at)
        stats = stream.stats
        stats.written += lines
        stats.files += 1
        stats.raw_bytes += batch.lines.raw_bytes
        stats.compressed_bytes += len(data)
        self.summary.raw_files.append(key)
        log.debug("raw_batch_written", key=key, records=lines, bytes=len(data))

    def _flush_dlq(self, error_type: str) -> None:
        buffer = self._dlq.pop(error_type, None)
        if buffer is not None:
            data = buffer.lines.finish()
            key = self.dead_letters.commit(error_type, data, buffer.opened_at)
            self.summary.dlq_files.append(key)

    def _flush_all(self) -> None:
        for stream in self._streams.values():
            self._flush_stream(stream)
        for error_type in list(self._dlq):
            self._flush_dlq(error_type)
        self._save_safe_state()

    def _save_safe_state(self) -> None:
        if not self._pending_states:
            return
        open_since = min(
            [s.batch.first_seq for s in self._streams.values() if s.batch is not None]
            + [b.first_seq for b in self._dlq.values()],
            default=self._seq + 1,
        )
        safe = [p for p in self._pending_states if p[0] < open_since]
        if not safe:
            return
        _, value, _ = safe[-1]
        self.state_store.save(value)
        self.summary.states_saved += 1
        self.summary.last_state = value
        self._pending_states = self._pending_states[len(safe) :]


@contextmanager
def _fewer_gc_passes() -> Iterator[None]:
    """Decoded records are short-lived and free of reference cycles, yet their allocations
    trigger a collection every 700 objects: a fifth of ingestion's CPU time. Collecting less
    often costs a little memory, bounded by the threshold."""
    threshold = gc.get_threshold()
    gc.set_threshold(100_000, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


def _record_id(record: dict[str, Any], keys: tuple[str, ...]) -> str:
    """The dedup key: the key properties' values, or a hash of a keyless record."""
    if keys:
        return "|".join(str(record[k]) for k in keys)
    return hashlib.sha1(orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).hexdigest()[:20]  # noqa: S324
