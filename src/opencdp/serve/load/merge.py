"""Changes merged into an existing served table: the rows to upsert are copied into a
temporary staging table, then inserted or updated by key (a row that is already equal is
left alone), and the rows to delete are deleted by key."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
import pyarrow as pa
from psycopg import sql

from opencdp.db import Connection
from opencdp.serve.load.checks import constraint_failure
from opencdp.serve.load.copy import copy_rows
from opencdp.serve.tables import ServedTable


@dataclass
class Merged:
    upserted: int  # rows inserted or changed
    deleted: list[tuple[str, ...]]  # keys of the rows deleted


def upsert_sql(schema: str, table: str, stage: str, served: ServedTable) -> sql.Composed:
    columns = sql.SQL(", ").join(map(sql.Identifier, served.columns))
    values = [c for c in served.columns if c not in served.key]
    action: sql.Composable
    if not values:
        action = sql.SQL("DO NOTHING")
    else:
        action = sql.SQL("DO UPDATE SET {} WHERE ({}) IS DISTINCT FROM ({})").format(
            sql.SQL(", ").join(
                sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c))
                for c in values
            ),
            sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in values),
            sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in values),
        )
    return sql.SQL("INSERT INTO {} AS t ({}) SELECT {} FROM {} ON CONFLICT ({}) {}").format(
        sql.Identifier(schema, table),
        columns,
        columns,
        sql.Identifier(stage),
        sql.SQL(", ").join(map(sql.Identifier, served.key)),
        action,
    )


def delete_sql(
    schema: str, table: str, source: str, served: ServedTable, *, missing: bool
) -> sql.Composed:
    """DELETE the rows whose key is in `source` (or, `missing`, is not in it), RETURNING
    their keys."""
    match = sql.SQL(" AND ").join(
        sql.SQL("s.{} = t.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in served.key
    )
    keys = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in served.key)
    target = sql.Identifier(schema, table)
    if missing:
        return sql.SQL(
            "DELETE FROM {} AS t WHERE NOT EXISTS (SELECT 1 FROM {} AS s WHERE {}) RETURNING {}"
        ).format(target, sql.Identifier(source), match, keys)
    return sql.SQL("DELETE FROM {} AS t USING {} AS s WHERE {} RETURNING {}").format(
        target, sql.Identifier(source), match, keys
    )


def merge(
    conn: Connection,
    schema: str,
    served: ServedTable,
    upserts: Iterable[pa.Table],
    deletes: pa.Table | None,
    *,
    delete_missing: bool = False,
) -> Merged:
    """Merge the prepared `upserts` into `schema.<table>` and delete the keys in `deletes`
    (with `delete_missing`: every row whose key is not among the upserts instead)."""
    table = served.name
    stage = f"load_{table}"
    try:
        _temp_like(conn, stage, schema, table, served.columns)
        staged = copy_rows(conn, sql.Identifier(stage), served.columns, upserts)
        upserted = 0
        if staged:
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(stage)))
            upserted = conn.execute(upsert_sql(schema, table, stage, served)).rowcount
        if delete_missing:
            gone = conn.execute(delete_sql(schema, table, stage, served, missing=True)).fetchall()
        elif deletes is not None and deletes.num_rows:
            keys = f"{stage}_deleted"
            _temp_like(conn, keys, schema, table, served.key)
            copy_rows(conn, sql.Identifier(keys), served.key, [deletes.select(list(served.key))])
            gone = conn.execute(delete_sql(schema, table, keys, served, missing=False)).fetchall()
        else:
            gone = []
    except psycopg.Error as e:
        failure = constraint_failure(e, table)
        if failure is None:
            raise
        raise failure from e
    return Merged(upserted, [tuple(row[c] for c in served.key) for row in gone])


def _temp_like(
    conn: Connection, name: str, schema: str, table: str, columns: tuple[str, ...]
) -> None:
    """A temporary table with `columns` of `schema.table`, dropped at commit."""
    conn.execute(
        sql.SQL(
            "CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA"
        ).format(
            sql.Identifier(name),
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.Identifier(schema, table),
        )
    )
