"""A served table built afresh: created bare, filled by COPY, then given its primary key
and indexes (faster than maintaining them row by row) and analyzed for the planner."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
import pyarrow as pa
from psycopg import sql

from opencdp.db import Connection
from opencdp.serve.load.checks import constraint_failure
from opencdp.serve.load.copy import copy_rows
from opencdp.serve.tables import ServedTable


def build_table(
    conn: Connection, schema: str, table: str, served: ServedTable, rows: Iterable[pa.Table]
) -> int:
    """Create `schema.table` and fill it with the prepared `rows`; rows copied.

    The table is new in this transaction, so COPY FREEZE writes its rows frozen (no later
    pass to set their hint bits). A duplicate or null key raises IntegrityCheckError.
    """
    conn.execute(served.create_table(schema, table))
    try:
        copied = copy_rows(conn, sql.Identifier(schema, table), served.columns, rows, freeze=True)
        add_keys(conn, schema, table, served)
    except psycopg.Error as e:
        failure = constraint_failure(e, served.name)
        if failure is None:
            raise
        raise failure from e
    analyze(conn, schema, table, served)
    return copied


def analyze(conn: Connection, schema: str, table: str, served: ServedTable) -> None:
    """Statistics for the planner on the columns lookups use (sampling wide jsonb columns
    too would cost more than the rest of a load's finishing steps)."""
    conn.execute(
        sql.SQL("ANALYZE {} ({})").format(
            sql.Identifier(schema, table),
            sql.SQL(", ").join(map(sql.Identifier, served.lookup_columns)),
        )
    )


def add_keys(conn: Connection, schema: str, table: str, served: ServedTable) -> None:
    conn.execute(served.add_primary_key(schema, table))
    for statement in served.create_indexes(schema, table):
        conn.execute(statement)


def empty_table(conn: Connection, schema: str, table: str, served: ServedTable) -> None:
    """An empty served table, keys and indexes included (for one the lake lacks yet)."""
    conn.execute(served.create_table(schema, table))
    add_keys(conn, schema, table, served)


def conform_table(conn: Connection, schema: str, table: str, served: ServedTable) -> None:
    """Give an existing table the columns and indexes the contract gained since it was
    made (a column whose type changed needs a historic load)."""
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s",
        (schema, table),
    ).fetchall()
    present = {row["column_name"] for row in rows}
    for column in served.columns:
        if column not in present:
            conn.execute(served.add_column(schema, table, column))
    for statement in served.create_indexes(schema, table, if_not_exists=True):
        conn.execute(statement)
