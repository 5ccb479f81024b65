"""The curated zone: Apache Iceberg tables through PyIceberg, one namespace per tenant."""

from opencdp.lake.catalog import open_catalog
from opencdp.lake.tables import ensure_namespace, list_tables, load_table, table_identifier

__all__ = ["ensure_namespace", "list_tables", "load_table", "open_catalog", "table_identifier"]
