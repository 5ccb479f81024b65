"""The raw-zone envelope of a collected event (DESIGN.md §3), built once per event."""

from __future__ import annotations

from typing import Any

import orjson


def envelope(
    *,
    tenant: str,
    provider: str,
    stream: str,
    kind: str,
    event_id: str | None,
    received_at: str,
    event_type: str | None,
    record: Any,
) -> bytes:
    """One NDJSON line: `_meta` lineage and the record exactly as the source sent it."""
    return orjson.dumps(
        {
            "_meta": {
                "tenant": tenant,
                "provider": provider,
                "stream": stream,
                "kind": kind,
                "id": event_id,
                "received_at": received_at,
                "extracted_at": None,
                "batch_id": None,
                "schema_version": None,
                "event_type": event_type,
            },
            "record": record,
        }
    )


def webhook_stream(event_type: str | None) -> str:
    """The raw-zone stream of a webhook: the resource its event type names
    ('orders/create' -> 'orders', 'customer.subscription.updated' -> 'customer')."""
    if not event_type:
        return "events"
    head = event_type.replace("/", ".").split(".", 1)[0].strip().lower()
    safe = "".join(c if c.isalnum() or c == "_" else "_" for c in head)
    return safe or "events"
