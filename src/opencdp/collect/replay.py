"""The replay guard: a bounded, time-windowed memory of the request ids already accepted.

The HTTP layer asks `seen_before(f"{tenant}/{source}/{event_id}", now)` after a request
verifies: a repeat within the window is a provider retry or a replay and is acknowledged
without being queued again. Memory is bounded by `max_entries`; when full, the oldest ids
are forgotten first, so the window should comfortably exceed a scheme's timestamp tolerance
(a replay older than the tolerance is refused by the signature check anyway). This is one
process's memory: workers do not share it, and the raw zone's `_meta.id` dedup downstream
remains the guarantee.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from opencdp.errors import ConfigError


class RecentIds:
    """Ids seen in the last `window_seconds`, at most `max_entries` of them."""

    def __init__(self, window_seconds: float, max_entries: int) -> None:
        if not window_seconds > 0:
            raise ConfigError("the replay window must be positive")
        if max_entries < 1:
            raise ConfigError("the replay guard must remember at least one id")
        self.window_seconds = float(window_seconds)
        self.max_entries = max_entries
        self._first_seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._first_seen)

    def seen_before(self, key: str, now: float) -> bool:
        """False the first time `key` is offered (and remember it), True for a repeat
        within `window_seconds` of that first time."""
        with self._lock:
            self._expire(now)
            first = self._first_seen.get(key)
            if first is not None and now - first < self.window_seconds:
                return True
            # The window runs from the first sighting: a repeat does not extend it.
            self._first_seen.pop(key, None)
            self._first_seen[key] = now
            while len(self._first_seen) > self.max_entries:
                self._first_seen.popitem(last=False)
            return False

    def _expire(self, now: float) -> None:
        # Entries are in insertion order, so the oldest are at the front. After a clock
        # step back an entry can sit behind a younger one and is freed late; `seen_before`
        # still compares its own time, so it never answers wrongly.
        horizon = now - self.window_seconds
        while self._first_seen:
            key, first = next(iter(self._first_seen.items()))
            if first > horizon:
                break
            del self._first_seen[key]
