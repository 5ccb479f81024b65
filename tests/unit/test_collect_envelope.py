"""The envelope's pure helpers."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from opencdp.collect.envelope import received_at, webhook_stream
from opencdp.storage.rawzone import iso_utc


@pytest.mark.parametrize(
    "now",
    [0.0, 1.9995, 1736902800.0, 1736902800.1234567, 1736902800.9999996, -1.5],
)
def test_received_at_is_the_raw_zone_time_format(now: float) -> None:
    assert received_at(now) == iso_utc(datetime.fromtimestamp(now, UTC))


def test_received_at_rounds_as_datetime_does() -> None:
    rng = random.Random(7)
    for now in (rng.uniform(0, 4e9) for _ in range(20_000)):
        assert received_at(now) == iso_utc(datetime.fromtimestamp(now, UTC)), now


@pytest.mark.parametrize(
    ("event_type", "stream"),
    [(None, "events"), ("orders/create", "orders"), ("customer.subscription.updated", "customer")],
)
def test_webhook_stream(event_type: str | None, stream: str) -> None:
    assert webhook_stream(event_type) == stream
