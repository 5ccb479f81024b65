"""The scale-out engine: Apache Spark (PySpark, classic mode), local[*] or a cluster.

Stage SQL is written in DuckDB's dialect and transpiled to Spark SQL by SQLGlot; the session
is configured so that both engines give the same answers (UTC, ANSI casts and overflow).
Which SQL both engines agree on is pinned by tests/integration/test_engine_parity.py.

A process holds one SparkContext, started by the first engine (a JVM start costs seconds)
and kept until the process exits; each engine works in a session of its own on it, so its
views and SQL settings never leak into another engine's.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import pyarrow as pa
import sqlglot
from sqlglot.errors import ErrorLevel, SqlglotError

from opencdp.engine.base import SOURCE_DIALECT, Engine, ParquetFiles, R, Relation, T
from opencdp.errors import ConfigError, MissingDependencyError, QueryError

try:
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException
    from pyspark.logger import PySparkLogger
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.pandas.types import from_arrow_schema
except ImportError as e:
    raise MissingDependencyError("the Spark engine", "pyspark", "spark") from e

_SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"
_SQL_HINT = (
    "stage SQL must keep to the subset both engines run alike: see the docstring of "
    "tests/integration/test_engine_parity.py"
)
_SQL_LINES_SHOWN = 12


class SparkEngine(Engine):
    name = "spark"

    def __init__(self, master: str = "local[*]", conf: Mapping[str, str] | None = None) -> None:
        conf = dict(conf or {})
        shared = _shared_session(master, conf)
        self._spark = shared.newSession()
        context = shared.sparkContext
        for key, value in conf.items():
            if self._spark.conf.isModifiable(key):
                self._spark.conf.set(key, value)
            elif context.getConf().get(key) != value:
                raise ConfigError(
                    f"the Spark setting {key}={value} cannot apply: this process's Spark "
                    f"runs with {key}={context.getConf().get(key)}",
                    hint="static Spark settings are fixed when the process starts Spark",
                )
        if master.startswith("local") and _SHUFFLE_PARTITIONS not in conf:
            # Spark's 200 shuffle partitions are far too many for one machine.
            self._spark.conf.set(_SHUFFLE_PARTITIONS, str(2 * context.defaultParallelism))
        # Views are registered by the names the SQL uses: one query at a time per engine.
        self._query_lock = threading.Lock()

    @property
    def parallelism(self) -> int:
        return int(self._spark.sparkContext.defaultParallelism)

    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        on_result: Callable[[R], None] | None = None,
    ) -> list[R]:
        if not items:
            return []
        context = self._spark.sparkContext
        # One task per item up to a few per core: items (raw files) vary in size, and a
        # task costs milliseconds.
        slices = min(len(items), 4 * context.defaultParallelism)
        results = context.parallelize(items, slices).map(partial(_capture, fn)).collect()
        values: list[R] = []
        for result in results:
            if isinstance(result, _Failure):
                result.error.add_note(f"raised in a Spark Python worker:\n{result.trace}")
                raise result.error
            values.append(result)
            if on_result is not None:
                on_result(result)
        return values

    def query(self, sql: str, relations: Mapping[str, Relation]) -> pa.Table:
        spark_sql = to_spark_sql(sql)
        with self._query_lock:
            try:
                for name, relation in relations.items():
                    self._frame(relation).createOrReplaceTempView(name)
                return self._spark.sql(spark_sql).toArrow()
            except (PySparkException, Py4JError) as e:
                raise QueryError(
                    f"Spark failed on a transform query: {_first_line(e)}\n"
                    f"the query, in Spark SQL:\n{_excerpt(spark_sql)}",
                    hint=_SQL_HINT,
                ) from e
            finally:
                for name in relations:
                    self._spark.catalog.dropTempView(name)

    @contextmanager
    def linkage_api(self) -> Iterator[Any]:
        from splink.backends.spark import SparkAPI

        # Persisted (cached) intermediate tables: a checkpoint would need a shared folder.
        yield SparkAPI(spark_session=self._spark, break_lineage_method="persist")  # type: ignore[no-untyped-call]

    def close(self) -> None:
        # Each query drops its views, so the engine holds nothing; the SparkContext stays
        # for the process's next engine and ends with the process.
        pass

    def _frame(self, relation: Relation) -> DataFrame:
        table = relation if isinstance(relation, pa.Table) else relation.schema.empty_table()
        # PySpark stops reading an Arrow table at its first empty chunk: drop them (an
        # empty table keeps its one empty chunk, which PySpark needs for the types).
        if table.num_rows:
            table = pa.Table.from_batches(
                [batch for batch in table.to_batches() if batch.num_rows], schema=table.schema
            )
        # Arrow timestamps without a zone are TIMESTAMP_NTZ, as on DuckDB, not the
        # session-zone TIMESTAMP Spark would make of them.
        schema = from_arrow_schema(table.schema, prefer_timestamp_ntz=True)
        if isinstance(relation, ParquetFiles) and relation.paths:
            return self._spark.read.schema(schema).parquet(*relation.paths)
        return self._spark.createDataFrame(table, schema=schema)


def to_spark_sql(sql: str) -> str:
    """`sql`, in DuckDB's dialect, as Spark SQL; QueryError for what SQLGlot cannot
    express in Spark (rather than SQL that means something else there)."""
    try:
        statements = sqlglot.transpile(
            sql, read=SOURCE_DIALECT, write="spark", pretty=True, unsupported_level=ErrorLevel.RAISE
        )
    except SqlglotError as e:
        raise QueryError(f"cannot translate a transform query to Spark SQL: {e}") from e
    if len(statements) != 1:
        raise QueryError(f"a transform query is one SELECT, not {len(statements)} statements")
    return statements[0]


@dataclass(frozen=True)
class _Failure:
    """An exception raised by a mapped function, carried back to the driver to be raised
    there as itself (as a process pool does), not as Spark's wrapper of its traceback."""

    error: Exception
    trace: str


def _capture(fn: Callable[[T], R], item: T) -> R | _Failure:
    try:
        return fn(item)
    except Exception as e:  # noqa: BLE001 - re-raised in the driver
        return _Failure(e, traceback.format_exc())


def _session_conf(master: str) -> dict[str, str]:
    """Spark settings for this machine and for parity with DuckDB."""
    return {
        "spark.master": master,
        "spark.app.name": "opencdp",
        # map() and the Arrow conversions use the classic API, not Spark Connect.
        "spark.api.mode": "classic",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.log.level": "WARN",
        "spark.driver.memory": "4g",
        # Python workers run this interpreter, so they import this environment's packages.
        "spark.pyspark.python": sys.executable,
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # DuckDB's semantics: timestamps in UTC; a bad CAST or an overflow is an error
        # (TRY_CAST gives NULL), never a silent NULL or a wrapped-around number.
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.ansi.enabled": "true",
        **_splink_jars(),
    }


def _splink_jars() -> dict[str, str]:
    """Splink's string-similarity functions for Spark SQL (a jar it ships), if installed."""
    try:
        from splink.backends.spark import similarity_jar_location
    except ImportError:
        return {}
    return {"spark.jars": similarity_jar_location()}


_session_lock = threading.Lock()
_session: SparkSession | None = None


def _shared_session(master: str, conf: Mapping[str, str]) -> SparkSession:
    """The process's SparkSession, started by the first call with its settings."""
    global _session  # noqa: PLW0603 - one SparkContext per process is Spark's rule
    with _session_lock:
        if _session is None:
            settings = _session_conf(master) | dict(conf)
            # PySpark's classic API takes the workers' interpreter from this variable,
            # not from the setting.
            os.environ.setdefault("PYSPARK_PYTHON", settings["spark.pyspark.python"])
            builder = SparkSession.builder
            for key, value in settings.items():
                builder = builder.config(key, value)
            try:
                _session = builder.getOrCreate()
            except (PySparkException, Py4JError) as e:
                raise ConfigError(
                    f"cannot start Spark on {master}: {_first_line(e)}",
                    hint="Spark needs Java 17 or newer: install it or set JAVA_HOME",
                ) from e
            # PySpark prints every SQL error as JSON with the JVM's stack to stderr; the
            # error is raised as a QueryError with the same message, so that is noise.
            for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
                PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)
        running = _session.sparkContext.master
        if running != master:
            raise ConfigError(
                f"this process runs Spark on {running}, not on {master}",
                hint="a process holds one Spark session: use one master per process",
            )
        return _session


def _first_line(error: Exception) -> str:
    return next(iter(str(error).strip().splitlines()), type(error).__name__)


def _excerpt(sql: str) -> str:
    lines = sql.strip().splitlines()
    shown = "\n".join(f"    {line}" for line in lines[:_SQL_LINES_SHOWN])
    return shown + ("\n    ..." if len(lines) > _SQL_LINES_SHOWN else "")
