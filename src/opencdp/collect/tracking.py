"""Segment's HTTP Tracking API, as a pure function of a request's body (no I/O).

`/v1/identify|track|page|screen|group|alias` carry one event; `/v1/batch` carries many,
with top-level `context` and `integrations` merged into each. Limits and status codes
follow Segment: 32 KB per event and 500 KB per batch request, else 400; invalid JSON is
400; an event that breaks the spec (no userId or anonymousId, a track without `event`)
does not fail the request (Segment answers 200 and drops it): it is returned as rejected,
and the caller keeps it in the DLQ.

Each accepted event is stored the way Segment stores it: `receivedAt` is added, and with
a `sentAt` the clock skew of the sender is corrected: `originalTimestamp` keeps what the
sender said and `timestamp = receivedAt - (sentAt - originalTimestamp)`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from opencdp.storage.rawzone import iso_utc

EVENT_TYPES = frozenset({"identify", "track", "page", "screen", "group", "alias"})
MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
# The field each event type cannot do without, besides userId or anonymousId.
_REQUIRED = {"track": "event", "group": "groupId", "alias": "previousId"}


class TrackingError(Exception):
    """The whole request is refused with `status` (400 for size and JSON problems)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class TrackingRequest:
    write_key: str | None
    events: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[tuple[dict[str, Any], str]] = field(default_factory=list)


def parse_request(kind: str, body: bytes, received_at: datetime) -> TrackingRequest:
    """The events of one request to `/v1/{kind}`; raises TrackingError for a bad request."""
    limit = MAX_BATCH_BYTES if kind == "batch" else MAX_EVENT_BYTES
    if len(body) > limit:
        raise TrackingError(400, f"request body is {len(body):,} bytes; the limit is {limit:,}")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise TrackingError(400, f"body is not valid JSON: {e}") from e
    if not isinstance(doc, dict):
        raise TrackingError(400, "body must be a JSON object")
    write_key = doc.get("writeKey") if isinstance(doc.get("writeKey"), str) else None
    if kind == "batch":
        items = doc.get("batch")
        if not isinstance(items, list):
            raise TrackingError(400, "a batch request needs a 'batch' array")
        shared = {k: doc[k] for k in ("context", "integrations") if isinstance(doc.get(k), dict)}
        events = [_merge(item, shared) for item in items]
    else:
        events = [{**doc, "type": kind}]
    request = TrackingRequest(write_key=write_key)
    received = iso_utc(received_at)
    for event in events:
        if not isinstance(event, dict):
            raise TrackingError(400, "every batch item must be a JSON object")
        size = len(orjson.dumps(event))
        if size > MAX_EVENT_BYTES:
            raise TrackingError(
                400, f"an event is {size:,} bytes; the limit is {MAX_EVENT_BYTES:,}"
            )
        event.pop("writeKey", None)
        sent_at = event.get("sentAt", doc.get("sentAt"))
        problem = _problem(event)
        if problem:
            request.rejected.append((event, problem))
            continue
        event.setdefault("messageId", f"opencdp-{uuid.uuid4()}")
        request.events.append(_timed(event, sent_at, received_at, received))
    return request


def event_name(event: dict[str, Any]) -> str:
    """The event type recorded in the envelope: the track event's name, else its type."""
    name = event.get("event")
    return name if event.get("type") == "track" and isinstance(name, str) else str(event["type"])


def _merge(item: Any, shared: dict[str, Any]) -> Any:
    if not isinstance(item, dict):
        return item
    merged = dict(item)
    for key, value in shared.items():
        own = merged.get(key)
        merged[key] = {**value, **own} if isinstance(own, dict) else value
    return merged


def _problem(event: dict[str, Any]) -> str | None:
    kind = event.get("type")
    if kind not in EVENT_TYPES:
        return f"unknown event type {kind!r}"
    if not event.get("userId") and not event.get("anonymousId"):
        return "no_user_anon_id: userId or anonymousId is required"
    needed = _REQUIRED.get(kind)
    if needed and not isinstance(event.get(needed), str):
        return f"a {kind} event needs a '{needed}'"
    message_id = event.get("messageId")
    if message_id is not None and (not isinstance(message_id, str) or len(message_id) > 100):
        return "messageId must be a string of at most 100 characters"
    return None


def _timed(
    event: dict[str, Any], sent_at: Any, received_at: datetime, received: str
) -> dict[str, Any]:
    event["receivedAt"] = received
    original = _parse(event.get("timestamp"))
    sent = _parse(sent_at)
    if original is None:
        event["timestamp"] = received
    elif sent is not None:
        event["originalTimestamp"] = event["timestamp"]
        event["timestamp"] = iso_utc(received_at - (sent - original))
    return event


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
