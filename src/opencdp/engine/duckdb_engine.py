"""The embedded engine: DuckDB in process, and a process pool for row-local Python work."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

import duckdb
import pyarrow as pa

from opencdp.engine.base import Engine, R, Relation, T
from opencdp.errors import QueryError


class DuckDBEngine(Engine):
    name = "duckdb"
    starts_workers = True

    def __init__(self, workers: int | None = None, memory_limit: str | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None
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

    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        on_result: Callable[[R], None] | None = None,
    ) -> list[R]:
        if self.workers == 1 or len(items) <= 1:
            computed: Iterable[R] = (fn(item) for item in items)
        else:
            if self._pool is None:
                # forkserver: workers never inherit this process's DuckDB threads or locks.
                context = multiprocessing.get_context("forkserver")
                self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
            computed = self._pool.map(fn, items)
        results = []
        for result in computed:
            results.append(result)
            if on_result is not None:
                on_result(result)
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
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        self._con.close()


def _arrow(
    con: duckdb.DuckDBPyConnection, relation: Relation
) -> pa.Table | duckdb.DuckDBPyRelation:
    if isinstance(relation, pa.Table):
        return relation
    if not relation.paths:
        return relation.schema.empty_table()
    return con.read_parquet(list(relation.paths))
