"""The Stripe tap's pure part: the cursor of the next page."""

from __future__ import annotations

from opencdp.ingest.taps.stripe import next_cursor


def test_the_next_page_starts_after_the_last_object() -> None:
    page = {"object": "list", "data": [{"id": "cus_b"}, {"id": "cus_a"}], "has_more": True}
    assert next_cursor(page) == "cus_a"


def test_no_next_page_without_has_more_or_data() -> None:
    assert next_cursor({"object": "list", "data": [{"id": "cus_a"}], "has_more": False}) is None
    assert next_cursor({"object": "list", "data": [], "has_more": True}) is None
    assert next_cursor({}) is None
