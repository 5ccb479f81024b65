"""What `opencdp db status` reports: the server, and the version of every schema."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from opencdp.db.database import Connection, Database, database_errors
from opencdp.db.migrate import MIGRATIONS_TABLE
from opencdp.db.schemas import CONTROL_SCHEMA, control_migrations, tenant_migrations, tenant_schema


@dataclass(frozen=True)
class SchemaStatus:
    schema: str
    tenant: str | None  # None for the control schema
    version: int  # the last applied, 0 when none is
    latest: int  # the last this OpenCDP ships

    @property
    def pending(self) -> int:
        return self.latest - self.version


@dataclass(frozen=True)
class DatabaseStatus:
    location: str
    server_version: str
    pid: int | None  # of the embedded server; None for a database reached by URL
    schemas: list[SchemaStatus]


def database_status(db: Database) -> DatabaseStatus:
    """Read, never change: the control schema, then every registered tenant's schema."""
    with db.connect() as conn, database_errors("reading the schema versions"):
        schemas = [
            SchemaStatus(
                CONTROL_SCHEMA, None, _version(conn, CONTROL_SCHEMA), len(control_migrations())
            )
        ]
        schemas += [
            SchemaStatus(
                tenant_schema(tenant),
                tenant,
                _version(conn, tenant_schema(tenant)),
                len(tenant_migrations()),
            )
            for tenant in _tenants(conn)
        ]
        server_version = conn.info.parameter_status("server_version") or "unknown"
    running = db.server.running() if db.server is not None else None
    return DatabaseStatus(
        location=db.location,
        server_version=server_version,
        pid=running.pid if running is not None else None,
        schemas=schemas,
    )


def registered_tenants(db: Database) -> list[str]:
    """The tenants in the control schema's registry, by name; none before it is migrated."""
    with db.connect() as conn, database_errors("reading the tenant registry"):
        return _tenants(conn)


def _tenants(conn: Connection) -> list[str]:
    if not _exists(conn, sql.Identifier(CONTROL_SCHEMA, "tenants")):
        return []
    rows = conn.execute(
        sql.SQL("SELECT name FROM {} ORDER BY name").format(
            sql.Identifier(CONTROL_SCHEMA, "tenants")
        )
    ).fetchall()
    return [row["name"] for row in rows]


def _version(conn: Connection, schema: str) -> int:
    table = sql.Identifier(schema, MIGRATIONS_TABLE)
    if not _exists(conn, table):
        return 0
    row = conn.execute(
        sql.SQL("SELECT coalesce(max(version), 0) AS version FROM {}").format(table)
    ).fetchone()
    return int(row["version"]) if row is not None else 0


def _exists(conn: Connection, table: sql.Identifier) -> bool:
    row = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL AS found", (table.as_string(conn),)
    ).fetchone()
    return row is not None and bool(row["found"])
