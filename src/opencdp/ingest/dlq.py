"""Inspecting and reprocessing the dead letter queue.

Reprocessing sends records back through the same validation as ingestion (the Singer
target, with the latest registered schema of each stream). Records that now pass land in
the raw zone; the others go back to the DLQ with their retry count raised by one. The
original DLQ files are deleted only after every new file is durable: a crash in between
can duplicate a record, never lose one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from opencdp.ingest.schemas import SchemaRegistry
from opencdp.ingest.singer.messages import (
    ProtocolViolation,
    RecordMessage,
    SchemaMessage,
    parse_message,
)
from opencdp.ingest.singer.state import StateStore
from opencdp.ingest.singer.target import SingerTarget
from opencdp.names import check_name
from opencdp.storage import layout
from opencdp.storage.ndjson import GzipLines, read_lines
from opencdp.storage.objectstore import ObjectStore
from opencdp.storage.rawzone import DeadLetterWriter, RawZoneWriter, utc_now


@dataclass(frozen=True)
class DlqGroup:
    tenant: str
    provider: str
    error_type: str
    files: int
    records: int


@dataclass(frozen=True)
class DlqEntry:
    key: str  # the DLQ file
    line: int  # 1-based line number in that file: (key, line) identifies an entry
    doc: dict[str, Any]

    @property
    def ref(self) -> str:
        return f"{self.key}:{self.line}"


@dataclass
class ReprocessReport:
    total: int = 0
    passed: int = 0
    still_failing: Counter[str] = field(default_factory=Counter)
    raw_files: list[str] = field(default_factory=list)
    removed_files: list[str] = field(default_factory=list)


def dlq_files(
    store: ObjectStore, tenant: str, provider: str | None = None, error_type: str | None = None
) -> list[str]:
    if provider is None:
        prefix = f"{layout.DLQ}/{check_name(tenant)}"
    else:
        prefix = layout.dlq_prefix(tenant, provider, error_type)
    return [i.key for i in store.list(prefix) if i.key.endswith(layout.SUFFIX)]


def summarize(store: ObjectStore, tenant: str, provider: str | None = None) -> list[DlqGroup]:
    """Files and records per provider and error type."""
    files: Counter[tuple[str, str]] = Counter()
    records: Counter[tuple[str, str]] = Counter()
    for key in dlq_files(store, tenant, provider):
        parts = key.split("/")  # dlq/{tenant}/{provider}/{error_type}/{file}
        group = (parts[2], parts[3])
        files[group] += 1
        records[group] += sum(1 for _ in read_lines(store.read(key)))
    return [DlqGroup(tenant, p, e, files[(p, e)], records[(p, e)]) for p, e in sorted(files)]


def entries(
    store: ObjectStore, tenant: str, provider: str, error_type: str | None = None
) -> Iterator[DlqEntry]:
    for key in dlq_files(store, tenant, provider, error_type):
        for n, doc in enumerate(read_lines(store.read(key)), start=1):
            yield DlqEntry(key=key, line=n, doc=doc)


def reprocess(
    store: ObjectStore,
    tenant: str,
    provider: str,
    error_type: str | None = None,
    edits: Mapping[str, dict[str, Any]] | None = None,
    batch_size: int = 20_000,
) -> ReprocessReport:
    """Resubmit the selected DLQ records; `edits` maps an entry's ref to a new record."""
    edits = edits or {}
    report = ReprocessReport()
    selected = list(entries(store, tenant, provider, error_type))
    records: list[tuple[RecordMessage, int]] = []
    # Lines that are still not records go back under their own error type.
    unparseable: dict[str, GzipLines] = {}
    for entry in selected:
        report.total += 1
        doc = entry.doc
        error = doc.get("error") or {}
        retries = int(error.get("retry_count", 0)) + 1
        record = edits.get(entry.ref, doc.get("record"))
        message = _as_record(doc, record)
        if message is None:
            error_type = str(error.get("type") or "malformed_message")
            report.still_failing[error_type] += 1
            again = {**doc, "record": record, "error": {**error, "retry_count": retries}}
            unparseable.setdefault(error_type, GzipLines()).add(orjson.dumps(again))
        else:
            records.append((message, retries))

    registry = SchemaRegistry(store, tenant, provider)
    streams = {message.stream for message, _ in records}
    schemas = [
        SchemaMessage(v.stream, v.schema, v.key_properties, ())
        for v in (registry.get(s) for s in sorted(streams) if registry.versions(s))
    ]
    target = SingerTarget(
        tenant=tenant,
        provider=provider,
        raw=RawZoneWriter(store, tenant, provider),
        dead_letters=DeadLetterWriter(store, tenant, provider),
        registry=registry,
        state=StateStore(store, tenant, f"{provider}_dlq_reprocess"),
        batch_size=batch_size,
    )
    summary = target.resubmit(schemas, records)
    for stats in summary.streams.values():
        report.passed += stats.written
    for key in summary.dlq_files:
        error = key.split("/")[3]
        report.still_failing[error] += sum(1 for _ in read_lines(store.read(key)))
    for error_type_, lines in unparseable.items():
        DeadLetterWriter(store, tenant, provider).commit(error_type_, lines.finish(), utc_now())
    report.raw_files = summary.raw_files
    for key in sorted({e.key for e in selected}):
        store.delete(key)
        report.removed_files.append(key)
    return report


def _as_record(doc: dict[str, Any], record: Any) -> RecordMessage | None:
    """The RECORD a DLQ entry stands for, or None if it is not (yet) a record."""
    meta = doc.get("_meta") or {}
    if isinstance(record, dict) and meta.get("stream"):
        return RecordMessage(meta["stream"], record, meta.get("extracted_at"), None)
    if isinstance(record, str):  # a protocol error kept as the original line
        try:
            message = parse_message(record.encode())
        except ProtocolViolation:
            return None
        return message if isinstance(message, RecordMessage) else None
    return None
