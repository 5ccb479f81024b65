"""Execution engines: the only package that imports duckdb and pyspark."""

from __future__ import annotations

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
