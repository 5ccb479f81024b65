"""Segment's HTTP Tracking API semantics, as a pure function of the request body."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from opencdp.collect.envelope import webhook_stream
from opencdp.collect.ratelimit import RateLimiter
from opencdp.collect.tracking import TrackingError, event_name, parse_request

NOW = datetime(2025, 1, 15, 12, 0, 0, tzinfo=UTC)


def body(doc: Any) -> bytes:
    return orjson.dumps(doc)


def test_single_event_gets_its_type_and_receipt_time() -> None:
    request = parse_request("track", body({"userId": "u1", "event": "Signed Up"}), NOW)
    [event] = request.events
    assert event["type"] == "track"
    assert event["receivedAt"] == "2025-01-15T12:00:00.000Z"
    assert event["timestamp"] == "2025-01-15T12:00:00.000Z"  # none sent: the receipt time
    assert event["messageId"].startswith("opencdp-")
    assert event_name(event) == "Signed Up"


def test_batch_merges_shared_context_and_takes_the_write_key() -> None:
    doc = {
        "writeKey": "wk",
        "context": {"ip": "1.2.3.4", "library": {"name": "x"}},
        "integrations": {"All": True},
        "batch": [
            {"type": "identify", "userId": "u1", "messageId": "m1", "context": {"ip": "9.9.9.9"}},
            {"type": "page", "anonymousId": "a1", "messageId": "m2", "writeKey": "ignored"},
        ],
    }
    request = parse_request("batch", body(doc), NOW)
    assert request.write_key == "wk"
    first, second = request.events
    assert first["context"] == {"ip": "9.9.9.9", "library": {"name": "x"}}  # own keys win
    assert second["context"] == {"ip": "1.2.3.4", "library": {"name": "x"}}
    assert second["integrations"] == {"All": True}
    assert "writeKey" not in second
    assert event_name(first) == "identify"


def test_clock_skew_is_corrected_as_segment_does() -> None:
    # The sender's clock is 10 minutes fast: it stamped the event at 12:09 and sent at 12:10.
    doc = {
        "batch": [
            {"type": "track", "event": "E", "userId": "u", "timestamp": "2025-01-15T12:09:00Z"}
        ],
        "sentAt": "2025-01-15T12:10:00Z",
    }
    [event] = parse_request("batch", body(doc), NOW).events
    assert event["originalTimestamp"] == "2025-01-15T12:09:00Z"
    assert event["timestamp"] == "2025-01-15T11:59:00.000Z"


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"type": "track", "event": "E"}, "no_user_anon_id"),
        ({"type": "track", "userId": "u"}, "needs a 'event'"),
        ({"type": "group", "userId": "u"}, "needs a 'groupId'"),
        ({"type": "alias", "userId": "u"}, "needs a 'previousId'"),
        ({"type": "launch", "userId": "u"}, "unknown event type"),
        ({"type": "page", "userId": "u", "messageId": "x" * 101}, "messageId"),
    ],
)
def test_invalid_events_are_rejected_not_fatal(event: dict[str, Any], reason: str) -> None:
    ok = {"type": "identify", "userId": "u", "messageId": "ok"}
    request = parse_request("batch", body({"batch": [event, ok]}), NOW)
    assert [e["messageId"] for e in request.events] == ["ok"]
    [(rejected, why)] = request.rejected
    assert reason in why
    assert rejected["type"] == event["type"]


def test_size_limits_and_bad_json_refuse_the_request() -> None:
    big = {"type": "track", "event": "E", "userId": "u", "properties": {"x": "y" * 33_000}}
    with pytest.raises(TrackingError, match="limit is 32,768") as info:
        parse_request("track", body(big), NOW)
    assert info.value.status == 400
    with pytest.raises(TrackingError, match="limit is 32,768"):
        parse_request("batch", body({"batch": [big]}), NOW)
    huge = {"batch": [{"type": "page", "userId": "u", "p": "y" * 20_000} for _ in range(30)]}
    with pytest.raises(TrackingError, match="limit is 512,000"):
        parse_request("batch", body(huge), NOW)
    with pytest.raises(TrackingError, match="not valid JSON"):
        parse_request("track", b"{nope", NOW)
    with pytest.raises(TrackingError, match="'batch' array"):
        parse_request("batch", body({"events": []}), NOW)


@pytest.mark.parametrize(
    ("event_type", "stream"),
    [
        ("orders/create", "orders"),
        ("customer.subscription.updated", "customer"),
        ("charge.succeeded", "charge"),
        (None, "events"),
        ("", "events"),
        ("Weird Type!", "weird_type_"),
    ],
)
def test_webhook_streams_come_from_the_event_type(event_type: str | None, stream: str) -> None:
    assert webhook_stream(event_type) == stream


def test_rate_limiter_allows_a_burst_then_the_rate() -> None:
    limiter = RateLimiter(rate=10, burst=3)
    assert [limiter.take("t", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("t", 0.0)
    assert wait == pytest.approx(0.1)
    assert limiter.take("other", 0.0) == 0.0  # buckets are per tenant
    assert limiter.take("t", 0.1) == 0.0  # one token refilled after 1/rate seconds
