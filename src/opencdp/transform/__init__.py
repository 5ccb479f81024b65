"""Transformation: raw zone → curated Iceberg tables."""
