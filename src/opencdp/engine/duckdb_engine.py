"""The embedded engine: DuckDB in process, and a process pool for row-local Python work."""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

import duckdb
import pyarrow as pa

from opencdp.engine.base import Engine, R, Relation, T
from opencdp.errors import QueryError


class _SharedPool:
    """One worker pool per process, shared by its engines and kept after them: a process
    that runs the pipeline again and again (`opencdp scheduler`) starts its workers once,
    and then stages even a small delta on every core instead of one. The workers end with
    the process, or earlier with `stop_workers` (the scheduler's shutdown)."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._size = 0
        self._lock = threading.Lock()

    def ready(self, size: int) -> bool:
        return self._pool is not None and self._size == size

    def get(self, size: int) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is not None and self._size != size:
                self._pool.shutdown(wait=False)
                self._pool = None
            if self._pool is None:
                # forkserver: workers never inherit this process's DuckDB threads or locks.
                context = multiprocessing.get_context("forkserver")
                self._pool, self._size = ProcessPoolExecutor(size, mp_context=context), size
            return self._pool

    def stop(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown()

    def drop(self, pool: ProcessPoolExecutor) -> None:
        """A worker of `pool` died (killed, out of memory): the next `get` starts anew."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False)


_workers = _SharedPool()


def start_workers(workers: int | None = None) -> None:
    """Starts the process's workers now instead of at the first `map` that needs them."""
    size = _size(workers)
    if size > 1:
        list(_workers.get(size).map(abs, range(size)))


def stop_workers() -> None:
    _workers.stop()


def _size(workers: int | None) -> int:
    return workers or os.cpu_count() or 1


class DuckDBEngine(Engine):
    name = "duckdb"

    def __init__(self, workers: int | None = None, memory_limit: str | None = None) -> None:
        self.workers = _size(workers)
        config: dict[str, str | bool | int | float | list[str]] = {"threads": self.workers}
        if memory_limit:
            config["memory_limit"] = memory_limit
        self._con = duckdb.connect(":memory:", config=config)
        # Days and months of timestamps are cut in UTC, as on Spark. (As a connect option
        # this setting needs the ICU extension, a download; as a statement it does not.)
        self._con.execute("SET TimeZone = 'UTC'")

    @property
    def parallelism(self) -> int:
        return self.workers

    @property
    def starts_workers(self) -> bool:
        return self.workers > 1 and not _workers.ready(self.workers)

    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        on_result: Callable[[R], None] | None = None,
    ) -> list[R]:
        results: list[R] = []
        if self.workers == 1 or len(items) <= 1:
            _collect((fn(item) for item in items), results, on_result)
            return results
        for attempt in (1, 2):
            pool = _workers.get(self.workers)
            try:
                _collect(pool.map(fn, items), results, on_result)
                break
            except BrokenProcessPool:
                _workers.drop(pool)
                # A pool that broke while idle (a worker killed between two runs) is
                # replaced once; one that broke on this work is not.
                if results or attempt == 2:
                    raise
        return results

    def query(self, sql: str, relations: Mapping[str, Relation]) -> pa.Table:
        con = self._con.cursor()  # a fresh cursor: registered names never leak between queries
        try:
            for name, relation in relations.items():
                con.register(name, _arrow(con, relation))
            return con.sql(sql).to_arrow_table()
        except duckdb.Error as e:
            raise QueryError(f"DuckDB failed on a transform query: {e}") from e
        finally:
            con.close()

    @contextmanager
    def linkage_api(self) -> Iterator[Any]:
        from splink import DuckDBAPI

        # A connection of its own: Splink's working tables go when it closes.
        con = duckdb.connect(":memory:", config={"threads": self.workers})
        con.execute("SET TimeZone = 'UTC'")
        try:
            yield DuckDBAPI(connection=con)
        finally:
            con.close()

    @contextmanager
    def leave_cores_to_linkage(self) -> Iterator[None]:
        # Splink's connection is a database of its own with its own threads; the OS shares
        # the cores by thread, so one thread here leaves it most of them.
        self._con.execute("SET threads = 1")
        try:
            yield
        finally:
            self._con.execute(f"SET threads = {self.workers}")

    def close(self) -> None:
        self._con.close()  # the worker pool stays for the process's next engine


def _collect(
    computed: Iterable[R], results: list[R], on_result: Callable[[R], None] | None
) -> None:
    for result in computed:
        results.append(result)
        if on_result is not None:
            on_result(result)


def _arrow(
    con: duckdb.DuckDBPyConnection, relation: Relation
) -> pa.Table | duckdb.DuckDBPyRelation:
    if isinstance(relation, pa.Table):
        return relation
    if not relation.paths:
        return relation.schema.empty_table()
    return con.read_parquet(list(relation.paths))
