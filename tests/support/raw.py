"""Landing records in a raw zone the way the real paths do: taps through the Singer target
(with a registered schema), live events as the collection service's batcher writes them."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from opencdp.ingest.pipeline import ingest_lines
from opencdp.settings import Settings
from opencdp.storage import layout, store_for
from opencdp.storage.ndjson import GzipLines
from opencdp.storage.rawzone import iso_utc

# A schema every object passes (the tests of the transform are not about ingest validation).
OPEN_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def land_tap(
    settings: Settings,
    tenant: str,
    provider: str,
    stream: str,
    records: Iterable[dict[str, Any]],
    *,
    key: str = "id",
    schema: dict[str, Any] | None = None,
) -> None:
    """Records of one stream through the Singer target (SCHEMA, then RECORDs)."""
    messages = [
        orjson.dumps(
            {
                "type": "SCHEMA",
                "stream": stream,
                "schema": schema or OPEN_SCHEMA,
                "key_properties": [key],
            }
        )
    ]
    messages += [orjson.dumps({"type": "RECORD", "stream": stream, "record": r}) for r in records]
    summary = ingest_lines(settings, tenant=tenant, provider=provider, lines=messages)
    assert not summary.dlq_files, summary


def land_live(
    settings: Settings,
    tenant: str,
    provider: str,
    stream: str,
    docs: Iterable[tuple[str | None, str | None, dict[str, Any]]],
    *,
    kind: str = "track",
    at: datetime | None = None,
) -> str:
    """(id, event type, record) triples as one batcher file of `kind` lines; its key."""
    at = at or datetime.now(UTC)
    lines = GzipLines()
    for event_id, event_type, record in docs:
        meta = {
            "tenant": tenant,
            "provider": provider,
            "stream": stream,
            "kind": kind,
            "id": event_id,
            "received_at": iso_utc(at),
            "extracted_at": None,
            "batch_id": None,
            "schema_version": None,
            "event_type": event_type,
        }
        lines.add_json({"_meta": meta, "record": record})
    key = layout.raw_timed_key(tenant, provider, stream, at)
    store_for(settings).write(key, lines.finish())
    return key


def csv_records(path: Path) -> list[dict[str, Any]]:
    """A CSV export as records of strings, the way the files tap reads it."""
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def land_generated(settings: Settings, tenant: str, *, events: int | None = None) -> None:
    """The session's generated tenant through the Singer target: Shopify, Stripe, the CRM
    contacts and Segment events (the first `events` of them, or all)."""
    from tests.support import data

    for provider, stream in (
        ("shopify", "customers"),
        ("shopify", "orders"),
        ("shopify", "products"),
        ("stripe", "customers"),
        ("stripe", "charges"),
    ):
        land_tap(settings, tenant, provider, stream, data.records(provider, stream))
    contacts = csv_records(data.generated() / "crm" / "contacts.csv")
    land_tap(settings, tenant, "crm", "contacts", contacts, key="Id")
    messages = data.records("events", "events")[:events]
    land_tap(settings, tenant, "segment", "events", messages, key="messageId")
