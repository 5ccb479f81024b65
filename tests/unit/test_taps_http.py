"""What the API taps share: Retry-After, backoff, error lines, the incremental window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from singer_sdk.exceptions import RetriableAPIError

from opencdp.ingest.taps._http import (
    BASE_BACKOFF,
    MAX_BACKOFF,
    MAX_RETRY_AFTER,
    api_error,
    backoff_delays,
    retry_after,
    window,
)

NOW = datetime(2025, 7, 1, 12, 0, 0, tzinfo=UTC)


def response(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> requests.Response:
    reply = requests.Response()
    reply.status_code = status
    reply._content = body
    reply.url = "https://acme.myshopify.com/admin/api/2024-10/customers.json?limit=250"
    reply.headers.update(headers or {})
    return reply


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("2", 2.0),
        ("2.0", 2.0),  # Shopify's form
        ("0.5", 0.5),
        ("Tue, 01 Jul 2025 12:00:30 GMT", 30.0),
        ("Tue, 01 Jul 2025 11:00:00 GMT", 0.0),  # already past
        ("-3", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after(header: str | None, seconds: float | None) -> None:
    assert retry_after(header, now=NOW) == seconds


def test_backoff_waits_what_retry_after_asks() -> None:
    delays = backoff_delays()
    next(delays)
    limited = RetriableAPIError("429", response(429, headers={"Retry-After": "0.7"}))
    assert delays.send(limited) == 0.7
    too_long = RetriableAPIError("429", response(429, headers={"Retry-After": "3600"}))
    assert delays.send(too_long) == MAX_RETRY_AFTER


def test_backoff_without_retry_after_grows_exponentially_up_to_a_cap() -> None:
    delays = backoff_delays()
    next(delays)
    failure = RetriableAPIError("503", response(503))
    waits = [delays.send(failure) for _ in range(10)]
    for attempt, wait in enumerate(waits):
        ceiling = min(MAX_BACKOFF, BASE_BACKOFF * 2**attempt)
        assert ceiling / 2 <= wait <= ceiling
    assert waits[-1] >= MAX_BACKOFF / 2
    assert 0 < delays.send(ConnectionResetError()) <= MAX_BACKOFF  # no response at all


def test_an_error_line_names_status_path_and_body_but_not_the_query() -> None:
    reply = response(401, b'{"errors": "[API] Invalid API key or access token"}')
    reply.reason = "Unauthorized"
    line = api_error("Shopify", reply, "check access_token")
    assert line == (
        "Shopify answered HTTP 401 Unauthorized for /admin/api/2024-10/customers.json: "
        '{"errors": "[API] Invalid API key or access token"} (check access_token)'
    )
    long = api_error("Stripe", response(500, b"x" * 5000), "retried")
    assert len(long) < 500
    assert "\n" not in api_error("Stripe", response(502, b"<html>\n<p>Bad</p>\n</html>"), "")


def test_the_window_ends_a_second_before_the_run() -> None:
    started = NOW + timedelta(microseconds=600_000)
    assert window(None, None, started) == (None, NOW - timedelta(seconds=1))


def test_the_window_starts_a_second_after_the_bookmark() -> None:
    bookmark = datetime(2025, 6, 29, 22, 31, 23, tzinfo=UTC)
    since, _ = window(bookmark, None, NOW)
    assert since == bookmark + timedelta(seconds=1)


def test_the_start_date_applies_when_later_than_the_bookmark() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    assert window(None, start, NOW)[0] == start  # inclusive on a first run
    assert window(start - timedelta(days=9), start, NOW)[0] == start
    later = start + timedelta(days=9)
    assert window(later, start, NOW)[0] == later + timedelta(seconds=1)
