"""Ad-hoc read-only SQL over a tenant's curated Iceberg tables.

Check the SQL, decide which tables it reads (pure), scan only those through PyIceberg into
Arrow, and run the query on DuckDB in process: no DuckDB extension is ever needed.
"""

from __future__ import annotations

import pyarrow as pa
from pyiceberg.catalog import Catalog

from opencdp.engine import duckdb_query
from opencdp.engine.sql import plan_query
from opencdp.lake.tables import list_tables, load_table
from opencdp.names import check_name


def run_query(catalog: Catalog, tenant: str, sql: str) -> pa.Table:
    """The result of `sql` over the tenant's tables; QueryError or NotFoundError if refused."""
    namespace = check_name(tenant, "tenant")
    # DuckDB's parser first, so a syntax error reads as DuckDB reports it, before any scan.
    duckdb_query.check_statement(sql)
    plan = plan_query(sql, namespace=namespace, available=list_tables(catalog, tenant))
    # Whole Arrow tables, not one-shot batch readers: a query may read a table twice.
    tables = {name: load_table(catalog, tenant, name).scan().to_arrow() for name in plan.tables}
    return duckdb_query.execute(plan.sql, tables, namespace=namespace if plan.qualified else None)
