"""The engine interface: what a transformation asks of DuckDB or Spark.

A stage is defined once: row-local work is a picklable Python function that the engine maps
over its inputs in parallel workers, set-based work is SQL written in DuckDB's dialect that
the engine runs (transpiled by SQLGlot where its dialect differs). Inputs and results are
Arrow; the Iceberg commit is not the engine's business (it goes through PyIceberg).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

import pyarrow as pa

T = TypeVar("T")
R = TypeVar("R")

# The dialect stage SQL is written in.
SOURCE_DIALECT = "duckdb"


@dataclass(frozen=True)
class ParquetFiles:
    """A relation stored as Parquet files that all share `schema` (engines read them in
    parallel; `schema` gives the relation its columns when there are no files)."""

    paths: tuple[str, ...]
    schema: pa.Schema


Relation: TypeAlias = "pa.Table | ParquetFiles"


class Engine(ABC):
    """One execution engine. Use it as a context manager: `close()` frees its resources."""

    name: str

    @property
    def starts_workers(self) -> bool:
        """Whether `map` would first start worker processes (seconds of start-up), so that
        a caller with little work does better without it."""
        return False

    @property
    @abstractmethod
    def parallelism(self) -> int:
        """How many items `map` works on at once."""

    @abstractmethod
    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        on_result: Callable[[R], None] | None = None,
    ) -> list[R]:
        """`[fn(item) for item in items]`, computed in parallel workers, in order;
        `on_result` sees each result as it arrives (for progress). `fn` must be a
        module-level function and items and results picklable."""

    @abstractmethod
    def query(self, sql: str, relations: Mapping[str, Relation]) -> pa.Table:
        """The result of one SELECT in DuckDB's dialect over the named relations."""

    @abstractmethod
    def linkage_api(self) -> AbstractContextManager[Any]:
        """Splink's database API on this engine, for record linkage (freed on exit)."""

    def leave_cores_to_linkage(self) -> AbstractContextManager[None]:
        """While inside, this engine's queries leave most of the cores to a linkage running
        beside them on `linkage_api` (the longer path of the two). By default, no change."""
        return nullcontext()

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
