"""The replay guard: first sighting False, repeats True within the window, bounded memory."""

from __future__ import annotations

import pytest

from opencdp.collect.replay import RecentIds
from opencdp.errors import ConfigError

T0 = 1_750_000_000.0


def test_first_sighting_then_repeats() -> None:
    ids = RecentIds(window_seconds=60, max_entries=100)
    assert ids.seen_before("acme/shopify/wh-1", T0) is False
    assert ids.seen_before("acme/shopify/wh-1", T0 + 1) is True
    assert ids.seen_before("acme/shopify/wh-1", T0 + 59.9) is True
    assert ids.seen_before("acme/shopify/wh-2", T0 + 2) is False
    # The same event id under another tenant is another key.
    assert ids.seen_before("globex/shopify/wh-1", T0 + 3) is False
    assert len(ids) == 3


def test_entries_expire_after_the_window() -> None:
    ids = RecentIds(window_seconds=60, max_entries=100)
    assert ids.seen_before("a", T0) is False
    assert ids.seen_before("a", T0 + 60) is False  # the window has passed: new again
    assert ids.seen_before("a", T0 + 61) is True  # and remembered from its new sighting


def test_a_repeat_does_not_extend_the_window() -> None:
    ids = RecentIds(window_seconds=60, max_entries=100)
    ids.seen_before("a", T0)
    assert ids.seen_before("a", T0 + 50) is True
    assert ids.seen_before("a", T0 + 70) is False


def test_expired_entries_free_their_memory() -> None:
    ids = RecentIds(window_seconds=10, max_entries=100)
    for n in range(50):
        ids.seen_before(f"id-{n}", T0 + n * 0.1)
    assert len(ids) == 50
    ids.seen_before("later", T0 + 100)
    assert len(ids) == 1


def test_memory_is_bounded_and_the_oldest_go_first() -> None:
    ids = RecentIds(window_seconds=3600, max_entries=3)
    for n in range(5):
        assert ids.seen_before(f"id-{n}", T0 + n) is False
    assert len(ids) == 3
    assert ids.seen_before("id-4", T0 + 10) is True
    assert ids.seen_before("id-2", T0 + 10) is True
    # id-0 and id-1 were evicted to stay within the bound: they read as new.
    assert ids.seen_before("id-0", T0 + 10) is False
    assert len(ids) == 3


def test_a_clock_stepping_back_forgets_nothing_early() -> None:
    ids = RecentIds(window_seconds=60, max_entries=10)
    ids.seen_before("a", T0)
    ids.seen_before("b", T0 - 30)  # the clock stepped back
    assert ids.seen_before("a", T0 + 10) is True
    assert ids.seen_before("b", T0 + 10) is True


def test_an_expired_entry_behind_a_younger_one_still_reads_as_new() -> None:
    ids = RecentIds(window_seconds=60, max_entries=10)
    ids.seen_before("a", T0 + 100)
    ids.seen_before("b", T0)  # the clock stepped back: "b" sits behind a younger entry
    assert ids.seen_before("b", T0 + 65) is False  # 65 s after its sighting: expired
    assert ids.seen_before("b", T0 + 66) is True  # and remembered again from T0 + 65
    assert ids.seen_before("a", T0 + 66) is True


@pytest.mark.parametrize(("window", "entries"), [(0, 10), (-1, 10), (60, 0)])
def test_bad_bounds_are_config_errors(window: float, entries: int) -> None:
    with pytest.raises(ConfigError):
        RecentIds(window_seconds=window, max_entries=entries)
