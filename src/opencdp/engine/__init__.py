"""Execution engines: the only package that imports duckdb and pyspark."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opencdp.engine.base import Engine
    from opencdp.settings import TransformSettings


def open_engine(name: str, settings: TransformSettings) -> Engine:
    """The engine called `name` ("duckdb" or "spark"), configured by the settings."""
    if name == "duckdb":
        from opencdp.engine.duckdb_engine import DuckDBEngine

        return DuckDBEngine(workers=settings.workers)
    if name == "spark":
        from opencdp.engine.spark_engine import SparkEngine

        return SparkEngine(master=settings.spark_master, conf=settings.spark_conf)
    from opencdp.errors import ConfigError

    raise ConfigError(f"unknown engine {name!r}", hint="use duckdb or spark")


def start_workers(name: str, settings: TransformSettings) -> None:
    """Starts the workers of the engine called `name` now, for a process that stays up
    (`opencdp scheduler`): they outlive each run, so that every later run, even a small
    delta's, works on all of them. Spark's executors belong to its cluster: none here."""
    if name == "duckdb":
        from opencdp.engine.duckdb_engine import start_workers as start

        start(settings.workers)


def stop_workers() -> None:
    """Stops the workers that `start_workers` or an engine's runs left running."""
    duckdb_engine = sys.modules.get("opencdp.engine.duckdb_engine")
    if duckdb_engine is not None:  # else no run started any (and DuckDB is not imported)
        duckdb_engine.stop_workers()
