"""The embedded profile search index: Tantivy, in a folder per tenant.

Layout of `{root}/state/search/{tenant}/`:

    index.json      the pointer: format, generation, profiles snapshot, documents
    gen-000003/     the Tantivy index of the current generation
    gen-000002/     the previous one, kept for readers that read the old pointer
    writer.lock     held (flock) by the one process that writes

A full sync builds a new generation beside the current one and then replaces the pointer
(written to a temporary file and renamed), so readers switch from the whole old index to
the whole new one. An incremental sync deletes the delta's profiles and adds them back in
the current generation in one Tantivy commit, then rewrites the pointer with the snapshot.
A sync that stops half way leaves the pointer as it was, and an index that is one commit
ahead of its pointer's snapshot is harmless (the next sync applies the delta again).

Readers (API workers, any number of processes) check on every search whether the pointer
or the generation's meta.json changed (two stat calls) and only then reload; reloading on
every search would cost far more (see benchmarks/results/search.json).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import tantivy

from opencdp.logs import get_logger
from opencdp.serve.search.base import (
    EMPTY_PAGE,
    SearchHit,
    SearchIndexBusyError,
    SearchIndexUnavailableError,
    SearchPage,
    SearchRebuildNeededError,
    check_delta,
)
from opencdp.serve.search.documents import (
    FILTERS,
    PROFILE_ID,
    TEXT_FIELDS,
    filter_field,
    profile_documents,
)
from opencdp.serve.search.query import (
    AllOf,
    AnyOf,
    Match,
    SearchPlan,
    TermFilter,
    plan_page,
)

log = get_logger(__name__)

FORMAT = 1  # bump when the fields or their analysis change: a full sync is then needed
POINTER = "index.json"
LOCK = "writer.lock"
META = "meta.json"  # Tantivy's own, rewritten (by rename) on every commit
_GENERATION = "gen-"
_OPEN_ATTEMPTS = 3
_LOCK_POLL_SECONDS = 0.05

Stamp = tuple[int, int, int] | None  # inode, mtime (ns), size; None: no such file


@dataclass(frozen=True, slots=True)
class Pointer:
    format: int
    generation: int
    snapshot_id: int
    documents: int


@dataclass(frozen=True, slots=True)
class _Reader:
    generation: int
    index: tantivy.Index
    searcher: tantivy.Searcher
    pointer_stamp: Stamp
    meta_path: Path
    meta_stamp: Stamp


def schema() -> tantivy.Schema:
    """Every field holds terms verbatim (the analysis is documents.py's), with no
    frequencies or positions: scores are fixed per alternative (query.py)."""
    builder = tantivy.SchemaBuilder()
    for name in TEXT_FIELDS:
        builder.add_text_field(
            name, stored=name == PROFILE_ID, tokenizer_name="raw", index_option="basic"
        )
    for name in FILTERS:
        builder.add_text_field(filter_field(name), tokenizer_name="raw", index_option="basic")
    return builder.build()


class TantivyProfileSearch:
    """A tenant's search index in `folder` (see the module's docstring).

    `lock_timeout` is how long a sync waits for another writer before it gives up with
    `SearchIndexBusyError`; `writer_heap_bytes` and `writer_threads` (0: one per core)
    size Tantivy's indexing."""

    def __init__(
        self,
        folder: Path,
        *,
        default_country: str = "US",
        lock_timeout: float = 60.0,
        writer_heap_bytes: int = 256_000_000,
        writer_threads: int = 0,
    ) -> None:
        self.folder = folder
        self.default_country = default_country
        self.lock_timeout = lock_timeout
        self.writer_heap_bytes = writer_heap_bytes
        self.writer_threads = writer_threads
        self._schema = schema()
        self._reader: _Reader | None = None
        self._refreshing = threading.Lock()

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
        reader = self._current()
        if reader is None:
            return EMPTY_PAGE
        query = build_query(plan, self._schema)
        searcher = reader.searcher
        found = searcher.search(query, limit=limit, count=True, offset=offset)
        hits = tuple(
            SearchHit(str(searcher.doc(address).get_first(PROFILE_ID)), float(score))
            for score, address in found.hits
        )
        # `count` is missing from tantivy-py's stubs; with count=True it is the exact total.
        return SearchPage(hits, int(getattr(found, "count", 0) or 0))

    def synced_snapshot(self) -> int | None:
        """The snapshot the index reflects; None when never synced or written in an older
        format (a full sync is needed either way)."""
        pointer = self.pointer()
        if pointer is None or pointer.format != FORMAT:
            return None
        return pointer.snapshot_id

    def pointer(self) -> Pointer | None:
        """The index's current state as written after its last sync (None: never synced)."""
        try:
            data = json.loads((self.folder / POINTER).read_bytes())
        except FileNotFoundError:
            return None
        return Pointer(
            format=int(data["format"]),
            generation=int(data["generation"]),
            snapshot_id=int(data["snapshot_id"]),
            documents=int(data["documents"]),
        )

    def close(self) -> None:
        self._reader = None

    def _current(self) -> _Reader | None:
        """The reader of the newest commit, reopened only when a stat shows a change."""
        reader = self._reader
        if (
            reader is not None
            and reader.pointer_stamp == _stamp(self.folder / POINTER)
            and reader.meta_stamp == _stamp(reader.meta_path)
        ):
            return reader
        with self._refreshing:
            error: Exception | None = None
            for attempt in range(_OPEN_ATTEMPTS):
                try:
                    self._reader = self._refresh(self._reader)
                except (OSError, ValueError) as e:
                    # A writer replaced a file or a generation between our reads: again.
                    error = e
                    time.sleep(0.01 * (attempt + 1))
                else:
                    return self._reader
        raise SearchIndexUnavailableError(
            f"the search index in {self.folder} cannot be read: {error}",
            hint="if it keeps failing, rebuild it with a full sync (opencdp load --historic)",
        ) from error

    def _refresh(self, reader: _Reader | None) -> _Reader | None:
        pointer_stamp = _stamp(self.folder / POINTER)
        if pointer_stamp is None:
            return None
        if reader is not None and reader.pointer_stamp == pointer_stamp:
            generation = reader.generation
        else:
            pointer = self.pointer()
            if pointer is None:
                return None
            if pointer.format != FORMAT:
                raise SearchRebuildNeededError(
                    f"the search index in {self.folder} has format {pointer.format}, this "
                    f"version reads format {FORMAT}",
                    hint="rebuild it with a full sync (opencdp load --historic)",
                )
            generation = pointer.generation
        path = self._generation_path(generation)
        meta_path = path / META
        meta_stamp = _stamp(meta_path)  # before the reload: a later commit shows next time
        if reader is not None and reader.generation == generation:
            index = reader.index
            index.reload()
        else:
            index = tantivy.Index.open(str(path))
            index.config_reader(reload_policy="manual")
        return _Reader(generation, index, index.searcher(), pointer_stamp, meta_path, meta_stamp)

    # --- writing -------------------------------------------------------------------------

    def sync(
        self, upserted: pa.Table, deleted: Sequence[str], *, full: bool, snapshot_id: int
    ) -> None:
        ids = check_delta(upserted, deleted, snapshot_id)
        started = time.monotonic()
        with self._writer_lock():
            previous = self.pointer()
            if full:
                pointer = self._rebuild(upserted, snapshot_id, previous)
            else:
                pointer = self._apply(upserted, ids, deleted, snapshot_id, previous)
        log.info(
            "search index synced",
            folder=str(self.folder),
            full=full,
            upserted=upserted.num_rows,
            deleted=len(deleted),
            documents=pointer.documents,
            snapshot_id=snapshot_id,
            seconds=round(time.monotonic() - started, 3),
        )

    def _rebuild(self, table: pa.Table, snapshot_id: int, previous: Pointer | None) -> Pointer:
        generation = max([0, *self._generations()]) + 1
        path = self._generation_path(generation)
        path.mkdir(parents=True)
        try:
            index = tantivy.Index(self._schema, path=str(path), reuse=False)
            writer = index.writer(self.writer_heap_bytes, self.writer_threads)
            _add(writer, table)
            writer.commit()
            writer.wait_merging_threads()
            pointer = Pointer(FORMAT, generation, snapshot_id, _documents(index))
            self._write_pointer(pointer)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        keep = {generation, previous.generation if previous else generation}
        for old in self._generations():
            if old not in keep:
                shutil.rmtree(self._generation_path(old), ignore_errors=True)
        return pointer

    def _apply(
        self,
        table: pa.Table,
        ids: list[str],
        deleted: Sequence[str],
        snapshot_id: int,
        previous: Pointer | None,
    ) -> Pointer:
        if previous is None or previous.format != FORMAT:
            why = "does not exist" if previous is None else "was written in an older format"
            raise SearchRebuildNeededError(
                f"the search index in {self.folder} {why}: an incremental sync cannot "
                "bring it up to date",
                hint="sync it with full=True and every profile (opencdp load --historic)",
            )
        index = tantivy.Index.open(str(self._generation_path(previous.generation)))
        writer = index.writer(self.writer_heap_bytes, self.writer_threads)
        try:
            # Deletes apply to documents added before them: the new versions survive.
            for profile_id in (*deleted, *ids):
                writer.delete_documents_by_term(PROFILE_ID, profile_id)
            _add(writer, table)
            writer.commit()
        except BaseException:
            writer.rollback()
            raise
        writer.wait_merging_threads()
        pointer = Pointer(FORMAT, previous.generation, snapshot_id, _documents(index))
        self._write_pointer(pointer)
        return pointer

    @contextlib.contextmanager
    def _writer_lock(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise SearchIndexBusyError(
                            f"another process is writing the search index in {self.folder}",
                            hint="wait for the running load to finish, then sync again",
                        ) from None
                    time.sleep(_LOCK_POLL_SECONDS)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _write_pointer(self, pointer: Pointer) -> None:
        data = {
            "format": pointer.format,
            "generation": pointer.generation,
            "snapshot_id": pointer.snapshot_id,
            "documents": pointer.documents,
        }
        temporary = self.folder / f".{POINTER}.{os.getpid()}.tmp"
        with temporary.open("wb") as f:
            f.write(json.dumps(data).encode())
            f.flush()
            os.fsync(f.fileno())
        temporary.replace(self.folder / POINTER)
        folder = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    def _generations(self) -> list[int]:
        if not self.folder.is_dir():
            return []
        return [
            int(p.name.removeprefix(_GENERATION))
            for p in self.folder.iterdir()
            if p.name.startswith(_GENERATION) and p.name.removeprefix(_GENERATION).isdigit()
        ]

    def _generation_path(self, generation: int) -> Path:
        return self.folder / f"{_GENERATION}{generation:06d}"


def build_query(plan: SearchPlan, schema: tantivy.Schema) -> tantivy.Query:
    """The Tantivy query of a plan: every part built with a Query constructor, so nothing
    the user typed is ever read as query syntax."""
    Occur = tantivy.Occur  # noqa: N806
    parts: list[tuple[tantivy.Occur, tantivy.Query]] = []
    whole = plan.required == len(plan.clauses)
    for clause in plan.clauses:
        parts.append((Occur.Must if whole else Occur.Should, _any_of(clause, schema)))
    parts += [(Occur.Must, _filter(term, schema)) for term in plan.filters]
    if whole:
        return tantivy.Query.boolean_query(parts)
    return tantivy.Query.boolean_query(parts, minimum_number_should_match=plan.required)


def _any_of(clause: AnyOf, schema: tantivy.Schema) -> tantivy.Query:
    queries = [
        _all_of(alt, schema) if isinstance(alt, AllOf) else _match(alt, schema)
        for alt in clause.alternatives
    ]
    return queries[0] if len(queries) == 1 else tantivy.Query.disjunction_max_query(queries)


def _all_of(group: AllOf, schema: tantivy.Schema) -> tantivy.Query:
    Occur = tantivy.Occur  # noqa: N806
    return tantivy.Query.boolean_query([(Occur.Must, _any_of(c, schema)) for c in group.clauses])


def _match(match: Match, schema: tantivy.Schema) -> tantivy.Query:
    Query = tantivy.Query  # noqa: N806
    if match.kind == "exact":
        query = Query.term_query(schema, match.field, match.text, index_option="basic")
    else:
        query = Query.fuzzy_term_query(
            schema,
            match.field,
            match.text,
            distance=match.distance,
            transposition_cost_one=True,
            prefix=match.kind == "prefix",
        )
    return Query.const_score_query(query, match.score)


def _filter(term: TermFilter, schema: tantivy.Schema) -> tantivy.Query:
    Query = tantivy.Query  # noqa: N806
    if len(term.values) == 1:
        query = Query.term_query(schema, term.field, term.values[0], index_option="basic")
    else:
        query = Query.term_set_query(schema, term.field, list(term.values))
    return Query.const_score_query(query, 0.0)


def _add(writer: tantivy.IndexWriter, table: pa.Table) -> None:
    for doc in profile_documents(table):
        writer.add_document(tantivy.Document(**doc))


def _documents(index: tantivy.Index) -> int:
    index.reload()
    return index.searcher().num_docs


def _stamp(path: Path) -> Stamp:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)
