"""The load state in the tenant's schema: which Iceberg snapshot each table mirrors, and
the lock that keeps two loads of one tenant from running at once."""

from __future__ import annotations

from psycopg import sql

from opencdp.db import Connection

# The class of the loader's advisory locks (two-key form: class, tenant): "load".
LOAD_LOCK_CLASS = 0x6C6F6164


def lock_tenant(conn: Connection, tenant: str) -> None:
    """Wait for any other load of `tenant`; held until the transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOAD_LOCK_CLASS, tenant))


def loaded_snapshots(conn: Connection, schema: str) -> dict[str, int]:
    rows = conn.execute(
        sql.SQL("SELECT table_name, snapshot_id FROM {}").format(
            sql.Identifier(schema, "load_state")
        )
    ).fetchall()
    return {row["table_name"]: row["snapshot_id"] for row in rows}


def record_snapshot(conn: Connection, schema: str, table: str, snapshot_id: int) -> None:
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (table_name, snapshot_id, loaded_at) VALUES (%s, %s, now()) "
            "ON CONFLICT (table_name) DO UPDATE "
            "SET snapshot_id = EXCLUDED.snapshot_id, loaded_at = EXCLUDED.loaded_at"
        ).format(sql.Identifier(schema, "load_state")),
        (table, snapshot_id),
    )


def table_exists(conn: Connection, schema: str, table: str) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = %s) AS e",
        (schema, table),
    ).fetchone()
    return bool(row and row["e"])
