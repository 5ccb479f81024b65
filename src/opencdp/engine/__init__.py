"""Execution engines: the only package that imports duckdb (and, later, pyspark)."""
