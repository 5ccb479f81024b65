"""The raw-zone envelope of a collected event (DESIGN.md §3), built once per event."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import lru_cache
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


def received_at(now: float) -> str:
    """Unix time `now` in the envelope's time format (`rawzone.iso_utc`: UTC, milliseconds,
    a Z), with the date and time of day formatted once per second rather than per event."""
    fraction, whole = math.modf(now)
    carry, micros = divmod(round(fraction * 1e6), 1_000_000)  # as `datetime` rounds
    return f"{_utc_second(int(whole) + carry)}.{micros // 1000:03d}Z"


@lru_cache(maxsize=4)
def _utc_second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
