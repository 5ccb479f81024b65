"""Committing batches to the raw zone and the dead letter queue.

Raw files are immutable: batch numbers continue across the runs of a day, and the
object store's create-only write turns a race between two writers into a retry with the
next number, never an overwrite.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from opencdp.errors import AlreadyExistsError
from opencdp.storage import layout
from opencdp.storage.objectstore import ObjectStore

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(at: datetime) -> str:
    """The envelope's time format: ISO 8601 in UTC with milliseconds and a Z."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RawZoneWriter:
    """Writes the numbered batch files of one tenant and provider."""

    def __init__(self, store: ObjectStore, tenant: str, provider: str) -> None:
        self.store = store
        self.tenant = tenant
        self.provider = provider
        self._next: dict[tuple[str, str], int] = {}

    def commit_batch(self, stream: str, data: bytes, day: datetime) -> str:
        """Write one batch file for `stream` on `day`; return its key."""
        slot = (stream, f"{day:%Y%m%d}")
        for _ in range(100):
            number = self._next.get(slot) or self._first_free_number(stream, day)
            key = layout.raw_batch_key(self.tenant, self.provider, stream, day, number)
            try:
                self.store.write(key, data)
            except AlreadyExistsError:
                self._next.pop(slot, None)  # another writer took it: list again
                continue
            self._next[slot] = number + 1
            return key
        raise AlreadyExistsError(f"could not find a free batch number for {stream} on {day:%F}")

    def _first_free_number(self, stream: str, day: datetime) -> int:
        prefix = layout.raw_day_prefix(self.tenant, self.provider, day)
        names = [info.key for info in self.store.list(prefix)]
        return layout.next_batch_number(names, stream)


class DeadLetterWriter:
    """Writes DLQ files, one per flush and error type, under dlq/{tenant}/{provider}/{type}/."""

    def __init__(self, store: ObjectStore, tenant: str, provider: str) -> None:
        self.store = store
        self.tenant = tenant
        self.provider = provider

    def commit(self, error_type: str, data: bytes, at: datetime) -> str:
        key = layout.dlq_key(self.tenant, self.provider, error_type, at, uuid.uuid4().hex[:12])
        self.store.write(key, data)
        return key
