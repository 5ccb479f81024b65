"""The scale-out profile search index: OpenSearch, one index alias per tenant.

On the cluster, for tenant `acme` and the default prefix:

    opencdp-profiles-acme           the alias: every read and write goes through it
    opencdp-profiles-acme-000003    the index behind it (a generation); the `_meta` of
                                    its mappings records the profiles snapshot it holds

A full sync creates the next generation beside the current one, loads it with `_bulk`
(every item's result is checked), refreshes it, then moves the alias to it and deletes the
old index in one `POST /_aliases`, which the cluster applies atomically: readers switch
from the whole old index to the whole new one. A failed item, or any error before that
swap, deletes the new index and leaves the old one as it was.

An incremental sync writes the delta into the current index with `_bulk`, refreshes it,
then records the snapshot in its `_meta`. The index never refreshes by itself (its
refresh_interval is -1), so readers see the whole delta at that refresh. A sync that stops
before recording leaves the index a delta ahead of its snapshot, which is harmless: the
loader applies the same delta again, or rebuilds.

Writers of one tenant do not wait for each other (no lock spans processes here, unlike
the Tantivy backend's), and the swap keeps the index whole when two overlap: a swap also
deletes the index its sync started from, so of two rebuilds from the same index the
second one's swap fails and it drops its own index; an incremental sync that finds the
alias moved under it raises too (its writes went to the index that was retired). Both
raise `SearchIndexBusyError`, and the next load brings the index up to date.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa

from opencdp.errors import MissingDependencyError, OpenCDPError
from opencdp.logs import get_logger
from opencdp.names import check_name
from opencdp.serve.search.base import (
    EMPTY_PAGE,
    SearchBackendError,
    SearchHit,
    SearchIndexBusyError,
    SearchIndexUnavailableError,
    SearchPage,
    SearchRebuildNeededError,
    check_delta,
)
from opencdp.serve.search.documents import PROFILE_ID, profile_documents
from opencdp.serve.search.opensearch_dsl import Json, index_body, meta, search_body, synced_snapshot
from opencdp.serve.search.query import plan_page
from opencdp.settings import SearchSettings

try:
    from opensearchpy import OpenSearch
    from opensearchpy.exceptions import ConnectionError as ConnectionFailedError
    from opensearchpy.exceptions import NotFoundError, RequestError, TransportError
    from opensearchpy.helpers import streaming_bulk
except ImportError as e:
    raise MissingDependencyError(
        "the OpenSearch search backend", "opensearch-py", "opensearch"
    ) from e

log = get_logger(__name__)

_BULK_ACTIONS = 2_000
_BULK_BYTES = 10 * 1024 * 1024  # the Bulk API's advice: requests of 5 to 15 MB
_BULK_RETRIES = 3  # for items the cluster rejects with 429 (its write queue is full)
_REQUEST_RETRIES = 2  # for connection errors, timeouts and 502/503/504
_CREATE_ATTEMPTS = 10
_REBUILD_HINT = "sync it with full=True and every profile (opencdp load --historic)"


class OpenSearchProfileSearch:
    """A tenant's search index on an OpenSearch cluster (see the module's docstring).
    Thread-safe; the connection is opened at the first use."""

    def __init__(
        self, settings: SearchSettings, tenant: str, *, default_country: str = "US"
    ) -> None:
        if settings.url is None:
            raise ValueError("the OpenSearch search backend needs serve.search.url")
        self.settings = settings
        self.alias = f"{settings.index_prefix}-profiles-{check_name(tenant, 'tenant')}"
        self.default_country = default_country
        self.endpoint = _without_credentials(settings.url.get_secret_value())
        self._client: OpenSearch | None = None
        self._connecting = threading.Lock()

    # --- reading -------------------------------------------------------------------------

    def search(
        self,
        q: str,
        *,
        filters: Mapping[str, str] | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> SearchPage:
        plan = plan_page(
            q, filters, limit=limit, offset=offset, default_country=self.default_country
        )
        if plan.matches_nothing:
            return EMPTY_PAGE
        body = search_body(plan, limit=limit, offset=offset)
        with self._answers(f"searching {self.alias}"):
            try:
                found = self.client.search(index=self.alias, body=body)
            except NotFoundError:
                return EMPTY_PAGE  # never synced
        hits = found["hits"]
        return SearchPage(
            tuple(SearchHit(str(hit["_id"]), float(hit["_score"])) for hit in hits["hits"]),
            int(hits["total"]["value"]),
        )

    def synced_snapshot(self) -> int | None:
        """The snapshot the index reflects; None when never synced, written in an older
        format, or when the alias points at more than one index (a full sync is needed
        in every case)."""
        current = self._current()
        if len(current) != 1:
            return None
        (mappings,) = current.values()
        return synced_snapshot(mappings)

    def close(self) -> None:
        with self._connecting:
            if self._client is not None:
                self._client.close()
                self._client = None

    @property
    def client(self) -> OpenSearch:
        with self._connecting:
            if self._client is None:
                self._client = _connect(self.settings)
            return self._client

    def _current(self) -> dict[str, Json]:
        """The indices behind the alias (one, unless writers raced) and their mappings;
        empty before the first sync."""
        with self._answers(f"reading the mappings of {self.alias}"):
            try:
                found = self.client.indices.get_mapping(index=self.alias)
            except NotFoundError:
                return {}
        return {name: body.get("mappings") or {} for name, body in found.items()}

    # --- writing -------------------------------------------------------------------------

    def sync(
        self, upserted: pa.Table, deleted: Sequence[str], *, full: bool, snapshot_id: int
    ) -> None:
        check_delta(upserted, deleted, snapshot_id)
        started = time.monotonic()
        current = self._current()
        if full:
            index = self._rebuild(upserted, snapshot_id, current)
        else:
            index = self._apply(upserted, deleted, snapshot_id, current)
        log.info(
            "search index synced",
            index=index,
            full=full,
            upserted=upserted.num_rows,
            deleted=len(deleted),
            snapshot_id=snapshot_id,
            seconds=round(time.monotonic() - started, 3),
        )

    def _rebuild(self, table: pa.Table, snapshot_id: int, current: dict[str, Json]) -> str:
        index, leftovers = self._create(snapshot_id, current)
        try:
            self._bulk(index, _index_actions(table))
            self._refresh(index)
            self._swap(index, retired=[*current, *leftovers])
        except BaseException:
            self._drop_unless_live(index)
            raise
        return index

    def _create(self, snapshot_id: int, current: dict[str, Json]) -> tuple[str, list[str]]:
        """The next generation's index, created empty, and the names skipped because an
        index had them: left by a rebuild that stopped, or being built by another."""
        newest = max((_generation(self.alias, name) for name in current), default=0)
        leftovers: list[str] = []
        for generation in range(newest + 1, newest + 1 + _CREATE_ATTEMPTS):
            index = f"{self.alias}-{generation:06d}"
            with self._answers(f"creating {index}"):
                try:
                    self.client.indices.create(index=index, body=index_body(snapshot_id))
                except RequestError as e:
                    if e.error != "resource_already_exists_exception":
                        raise
                    leftovers.append(index)
                    continue
            return index, leftovers
        raise SearchIndexBusyError(
            f"the next {_CREATE_ATTEMPTS} generations of {self.alias} exist already: other "
            "syncs are building them",
            hint="wait for the running loads to finish, then sync again",
        )

    def _swap(self, index: str, *, retired: list[str]) -> None:
        """Point the alias at `index` alone and delete `retired`, in one atomic request.
        Deleting an index that is gone fails it: another sync swapped first."""
        actions: list[Json] = [{"add": {"index": index, "alias": self.alias}}]
        actions += [{"remove_index": {"index": old}} for old in retired]
        with self._answers(f"moving {self.alias} to {index}"):
            try:
                self.client.indices.update_aliases(body={"actions": actions})
            except NotFoundError as e:
                if list(self._current()) == [index]:
                    return  # the retry of a swap that was applied, its answer lost
                raise self._replaced(index) from e

    def _apply(
        self, table: pa.Table, deleted: Sequence[str], snapshot_id: int, current: dict[str, Json]
    ) -> str:
        index = self._only_index(current)
        # An `index` action replaces a profile whole. Deletes go first: a profile deleted
        # and upserted in one delta stays.
        self._bulk(index, itertools.chain(_delete_actions(deleted), _index_actions(table)))
        self._refresh(index, then_record=snapshot_id)
        if index not in self._current():
            # A full sync retired the index during this one: what was written is lost
            # with it, and anything written after re-created it as a stray index.
            self._drop_unless_live(index)
            raise self._replaced(index)
        return index

    def _refresh(self, index: str, *, then_record: int | None = None) -> None:
        """Make what was written to `index` searchable, then record the snapshot it holds
        (a full sync's new index has it from its creation)."""
        with self._answers(f"refreshing {index}"):
            try:
                self.client.indices.refresh(index=index)
                if then_record is not None:
                    body = {"_meta": meta(then_record)}
                    self.client.indices.put_mapping(index=index, body=body)
            except NotFoundError as e:  # another sync's swap deleted it
                raise self._replaced(index) from e

    def _only_index(self, current: dict[str, Json]) -> str:
        if not current:
            why = "does not exist"
        elif len(current) > 1:
            why = f"points at {len(current)} indices (two syncs raced)"
        else:
            ((index, mappings),) = current.items()
            if synced_snapshot(mappings) is not None:
                return index
            why = "was written in an older format"
        raise SearchRebuildNeededError(
            f"the search index {self.alias} on {self.endpoint} {why}: an incremental sync "
            "cannot bring it up to date",
            hint=_REBUILD_HINT,
        )

    def _bulk(self, index: str, actions: Iterable[Json]) -> None:
        """Send `actions` to `index`; the first item that failed raises."""
        with self._answers(f"writing to {index}"):
            for _ok, item in streaming_bulk(
                self.client,
                actions,
                index=index,
                chunk_size=_BULK_ACTIONS,
                max_chunk_bytes=_BULK_BYTES,
                raise_on_error=False,
                max_retries=_BULK_RETRIES,
                initial_backoff=1,
                yield_ok=False,
            ):
                ((action, result),) = item.items()
                if action == "delete" and result.get("status") == 404:
                    continue  # the profile was not in the index: deleted already
                raise self._refused_item(index, result)

    def _refused_item(self, index: str, result: Json) -> OpenCDPError:
        status = int(result.get("status") or 0)
        error = result.get("error")
        kind, reason = (
            (error.get("type"), error.get("reason")) if isinstance(error, dict) else (error, "")
        )
        if kind == "index_not_found_exception":
            return self._replaced(index)
        what = (
            f"the search server {self.endpoint} refused profile {result.get('_id')!r} in "
            f"{index} ({status} {kind}: {reason}); nothing of this sync is visible"
        )
        if status == 429 or status >= 500:
            return SearchIndexUnavailableError(
                what, hint="the cluster is overloaded or recovering: sync again later"
            )
        return SearchBackendError(what, hint="check the cluster's log for the document")

    def _replaced(self, index: str) -> SearchIndexBusyError:
        return SearchIndexBusyError(
            f"another sync replaced the search index {self.alias} while this one wrote to {index}",
            hint="wait for the running loads to finish: the next load brings it up to date",
        )

    def _drop_unless_live(self, index: str) -> None:
        """Delete an index this sync made or wrote, unless the alias points at it (a swap
        whose answer was lost); a cleanup that fails is left to the next full sync."""
        try:
            if index not in self._current():
                with contextlib.suppress(NotFoundError):
                    self.client.indices.delete(index=index)
        except (OpenCDPError, TransportError) as e:
            log.warning("search index left behind", index=index, error=str(e))

    @contextlib.contextmanager
    def _answers(self, doing: str) -> Iterator[None]:
        """The client's errors as ours: the cluster out of reach or overloaded is
        transient, a refusal is terminal."""
        try:
            yield
        except ConnectionFailedError as e:
            raise SearchIndexUnavailableError(
                f"the search server {self.endpoint} cannot be reached while {doing}: {e}",
                hint="check serve.search.url and that the cluster is up",
            ) from e
        except TransportError as e:
            status = e.status_code if isinstance(e.status_code, int) else 0
            what = f"the search server {self.endpoint} answered {status} while {doing}: {e.error}"
            reason = _reason(e)
            if reason:
                what += f" ({reason})"
            if status == 429 or status >= 500:
                raise SearchIndexUnavailableError(
                    what, hint="the cluster is overloaded or recovering: try again later"
                ) from e
            if status in {401, 403}:
                raise SearchBackendError(
                    what,
                    hint="check serve.search.username, OPENCDP_SERVE__SEARCH__PASSWORD and "
                    f"the user's permissions on {self.settings.index_prefix}-profiles-*",
                ) from e
            raise SearchBackendError(
                what, hint="the cluster refused the request: see its log"
            ) from e


def _connect(settings: SearchSettings) -> OpenSearch:
    assert settings.url is not None
    auth = None
    if settings.username:
        password = settings.password.get_secret_value() if settings.password else ""
        auth = (settings.username, password)
    return OpenSearch(
        hosts=[settings.url.get_secret_value()],
        http_auth=auth,
        verify_certs=settings.verify_certs,
        ca_certs=str(settings.ca_certs) if settings.ca_certs else None,
        timeout=settings.timeout_seconds,
        max_retries=_REQUEST_RETRIES,
        retry_on_timeout=True,
        http_compress=True,  # a bulk request of profile terms shrinks several times
    )


def _index_actions(table: pa.Table) -> Iterator[Json]:
    for doc in profile_documents(table):
        yield {"_op_type": "index", "_id": doc[PROFILE_ID], "_source": doc}


def _delete_actions(ids: Iterable[str]) -> Iterator[Json]:
    for profile_id in ids:
        yield {"_op_type": "delete", "_id": profile_id}


def _generation(alias: str, index: str) -> int:
    found = re.fullmatch(re.escape(alias) + r"-(\d+)", index)
    return int(found[1]) if found else 0


def _reason(error: TransportError) -> str:
    info: Any = error.info
    if isinstance(info, dict) and isinstance(info.get("error"), dict):
        return str(info["error"].get("reason") or "")
    return ""


def _without_credentials(url: str) -> str:
    """The URL as messages show it: without user and password."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
