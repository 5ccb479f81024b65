"""The profile search interface: what the loader keeps in sync and what the API asks.

A search index holds one tenant's profiles, and for each only what finding it needs (its
words, email, phone, identifiers and the traits filters match on); a hit is a profile_id
and a score, and the caller reads the profile itself from PostgreSQL.

The loader calls `sync` after each committed load with the profiles that changed, and the
index records the profiles snapshot it then reflects (`synced_snapshot`). When that is not
the snapshot the database held before the load (the index is missing, or a load stopped
between the database commit and the index commit), an incremental delta cannot bring the
index up to date: the loader syncs with `full=True` and the whole profiles table instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import pyarrow.compute as pc

from opencdp.errors import QueryError, TerminalError, TransientError
from opencdp.serve.search.documents import PROFILE_ID

if TYPE_CHECKING:
    import pyarrow as pa


class SearchError(QueryError, ValueError):
    """A search request was refused: an unknown filter, a bad filter value or bad paging.
    The request is at fault (the API answers 400); it is a ValueError too."""


class SearchIndexBusyError(TransientError):
    """Another process is writing the tenant's search index (one writer at a time)."""


class SearchIndexUnavailableError(TransientError):
    """The search index could not be opened or read (it changed under the reader)."""


class SearchRebuildNeededError(TerminalError):
    """The index cannot take an incremental sync (missing, or written in an older format):
    sync it with `full=True` and every profile."""


class SearchBackendError(TerminalError):
    """The search server refused a request or a document for a reason retrying cannot
    change: credentials, permissions, or a request it does not accept."""


@dataclass(frozen=True, slots=True)
class SearchHit:
    profile_id: str
    score: float


@dataclass(frozen=True, slots=True)
class SearchPage:
    """Hits best first. `total` is the exact number of profiles the query matches."""

    hits: tuple[SearchHit, ...]
    total: int


EMPTY_PAGE = SearchPage((), 0)


class ProfileSearch(Protocol):
    """One tenant's profile search index."""

    def sync(
        self, upserted: pa.Table, deleted: Sequence[str], *, full: bool, snapshot_id: int
    ) -> None:
        """Apply a load's profiles delta and record `snapshot_id` as the snapshot the
        index reflects. `upserted` holds rows of the curated `profiles` table (columns it
        lacks count as null; profile_id is required and unique), `deleted` the ids of
        removed profiles. full=True rebuilds the index from `upserted` alone. Readers see
        the old index until the new state is committed, whole."""
        ...

    def synced_snapshot(self) -> int | None:
        """The profiles snapshot the index reflects; None if it was never synced."""
        ...

    def search(
        self,
        q: str,
        *,
        filters: Mapping[str, str] | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> SearchPage:
        """Profiles matching `q` (names, emails, phones, ids, company and places; typos
        and prefixes tolerated) and every filter (trait name -> exact value), best first.
        Raises `SearchError` for bad filters or paging; an index never synced gives an
        empty page."""
        ...

    def close(self) -> None:
        """Let go of the index's files, memory and connections."""
        ...


def check_delta(upserted: pa.Table, deleted: Sequence[str], snapshot_id: int) -> list[str]:
    """The upserted profile ids of a sync's delta; a delta no index can take raises
    ValueError or TypeError before anything is written."""
    if isinstance(snapshot_id, bool) or not isinstance(snapshot_id, int):
        raise TypeError(f"snapshot_id must be an int, got {snapshot_id!r}")
    if PROFILE_ID not in upserted.column_names:
        raise ValueError(f"the upserted profiles have no {PROFILE_ID} column")
    column = upserted.column(PROFILE_ID)
    if column.null_count:
        raise ValueError(f"{column.null_count} upserted profiles have no {PROFILE_ID}")
    if pc.count_distinct(column).as_py() != len(column):
        raise ValueError(f"the upserted profiles repeat a {PROFILE_ID}")
    if any(not isinstance(d, str) for d in deleted):
        raise TypeError("deleted profile ids must be strings")
    return [str(v) for v in column.to_pylist()]
