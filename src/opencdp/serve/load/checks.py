"""Integrity checks of a table loaded afresh against the Iceberg snapshot it came from:
the row count, the uniqueness of the key (the primary key's creation checks it) and a
checksum of the key columns.

The checksum is order-independent: the sum over rows of the first 60 bits of the MD5 of
the key columns' text joined by the unit separator (U+001F). DuckDB computes it over the
rows as they were sent, PostgreSQL over the rows it holds; keys are text on both sides, so
both hash the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
import pyarrow as pa
from psycopg import sql

from opencdp.db import Connection
from opencdp.engine.base import Engine
from opencdp.serve.load.errors import IntegrityCheckError
from opencdp.serve.load.prepare import quote
from opencdp.serve.tables import ServedTable

ROW_COUNT = "row count"
KEY_UNIQUENESS = "key uniqueness"
NOT_NULL = "not null"
KEY_CHECKSUM = "key checksum"


def lake_checksum_sql(key: Sequence[str], relation: str) -> str:
    joined = ", ".join(quote(c) for c in key)
    return (
        "SELECT count(*) AS n, coalesce(sum(('0x' || substr(md5(concat_ws(chr(31), "
        f"{joined})), 1, 15))::BIGINT)::HUGEINT, 0) AS checksum FROM {quote(relation)}"
    )


def database_checksum_sql(schema: str, table: str, key: Sequence[str]) -> sql.Composed:
    return sql.SQL(
        "SELECT count(*) AS n, coalesce(sum(('x' || lpad(substr(md5(concat_ws(chr(31), {})), "
        "1, 15), 16, '0'))::bit(64)::bigint), 0) AS checksum FROM {}"
    ).format(sql.SQL(", ").join(map(sql.Identifier, key)), sql.Identifier(schema, table))


class KeyChecksum:
    """The row count and key checksum of the rows sent, added up batch by batch."""

    def __init__(self, engine: Engine, served: ServedTable) -> None:
        self.engine = engine
        self.served = served
        self._sql = lake_checksum_sql(served.key, "rows")
        self.rows = 0
        self.checksum = 0

    def add(self, prepared: pa.Table) -> None:
        if prepared.num_rows == 0:
            return
        result = self.engine.query(self._sql, {"rows": prepared.select(list(self.served.key))})
        self.rows += int(result.column("n")[0].as_py())
        self.checksum += int(result.column("checksum")[0].as_py())


def verify(
    conn: Connection, schema: str, table: str, expected_rows: int, sent: KeyChecksum
) -> None:
    """Raise IntegrityCheckError unless `table` holds `expected_rows` rows (the snapshot's
    count) and the key checksum of the rows sent."""
    name = sent.served.name
    if sent.rows != expected_rows:
        raise IntegrityCheckError(
            ROW_COUNT,
            name,
            f"the snapshot counts {expected_rows:,} rows, its files gave {sent.rows:,}",
        )
    row = conn.execute(database_checksum_sql(schema, table, sent.served.key)).fetchone()
    assert row is not None
    if row["n"] != expected_rows:
        raise IntegrityCheckError(
            ROW_COUNT, name, f"the snapshot has {expected_rows:,} rows, the database {row['n']:,}"
        )
    if int(row["checksum"]) != sent.checksum:
        raise IntegrityCheckError(
            KEY_CHECKSUM,
            name,
            f"the keys in the database differ from the snapshot's (checksum {row['checksum']} "
            f"!= {sent.checksum})",
        )


def constraint_failure(error: psycopg.Error, table: str) -> IntegrityCheckError | None:
    """The check a database error means, when it is a key or NOT NULL violation."""
    detail = (error.diag.message_primary or str(error)).strip()
    if error.diag.message_detail:
        detail += f" ({error.diag.message_detail.strip()})"
    if isinstance(error, psycopg.errors.UniqueViolation | psycopg.errors.CardinalityViolation):
        return IntegrityCheckError(KEY_UNIQUENESS, table, detail)
    if isinstance(error, psycopg.errors.NotNullViolation):
        return IntegrityCheckError(NOT_NULL, table, detail)
    return None
