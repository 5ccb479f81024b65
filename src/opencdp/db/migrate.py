"""Applying schema migrations, and creating tenants' schemas.

Every step runs in a transaction of its own that first takes one PostgreSQL advisory lock,
so that processes migrating the same database at once wait for each other; each then
re-reads what is applied before it decides, and a migration is never applied twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager

from psycopg import sql

from opencdp.db.database import Connection, Database, database_errors
from opencdp.db.plan import AppliedMigration, Migration, plan_migrations
from opencdp.db.schemas import CONTROL_SCHEMA, control_migrations, tenant_migrations, tenant_schema
from opencdp.errors import MigrationError
from opencdp.logs import get_logger

log = get_logger(__name__)

# "opencdp" in ASCII: the key of the advisory lock that serialises all OpenCDP migrations in
# a database (advisory locks are per database, so other databases never wait on it).
MIGRATION_LOCK = 0x6F70656E636470
MIGRATIONS_TABLE = "schema_migrations"

_RETRY_HINT = (
    "the failed step was rolled back; fix its cause (the SQL, or the database user's "
    "privileges) and run `opencdp db migrate` again"
)


def apply_migrations(db: Database, schema: str, migrations: Sequence[Migration]) -> list[Migration]:
    """Bring `schema` (created if missing) to the last of `migrations`; returns those applied."""
    with db.connect() as conn:
        return _migrate(conn, schema, migrations)


def migrate_control(db: Database) -> list[Migration]:
    """Bring the control schema to the version this OpenCDP ships."""
    return apply_migrations(db, CONTROL_SCHEMA, control_migrations())


def ensure_tenant(db: Database, tenant: str) -> list[Migration]:
    """Create the tenant's schema, bring it to the latest version and register the tenant.

    Safe to repeat and to run from several processes at once. Returns the tenant migrations
    applied now (none when the tenant was up to date).
    """
    schema = tenant_schema(tenant)  # validates the name before anything touches the database
    with db.connect() as conn:
        _migrate(conn, CONTROL_SCHEMA, control_migrations())
        applied = _migrate(conn, schema, tenant_migrations())
        register_tenant(conn, tenant)
    return applied


def register_tenant(conn: Connection, tenant: str) -> None:
    """Record the tenant and its schema in the control schema; a no-op when it is there,
    also when another process registers it at the same moment."""
    with _failures(f"registering tenant {tenant}"), conn.transaction():
        # No conflict target: a race can surface on either unique column (name or
        # schema_name, one derived from the other), and both mean "registered already".
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (name, schema_name) VALUES (%s, %s) ON CONFLICT DO NOTHING"
            ).format(sql.Identifier(CONTROL_SCHEMA, "tenants")),
            (tenant, tenant_schema(tenant)),
        )


def _migrate(conn: Connection, schema: str, migrations: Sequence[Migration]) -> list[Migration]:
    applied_now: list[Migration] = []
    while True:
        with _failures(f"migrating schema {schema}"), conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            _create_bookkeeping(conn, schema)
            pending = plan_migrations(migrations, _applied(conn, schema), schema=schema)
            if not pending:
                return applied_now
            migration = pending[0]
            with _failures(f"migration {migration.label} of schema {schema} failed"):
                _apply(conn, schema, migration)
        applied_now.append(migration)
        log.info("migration applied", schema=schema, migration=migration.label)


def _create_bookkeeping(conn: Connection, schema: str) -> None:
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} ("
            " version integer PRIMARY KEY,"
            " name text NOT NULL,"
            " checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        ).format(sql.Identifier(schema, MIGRATIONS_TABLE))
    )


def _applied(conn: Connection, schema: str) -> list[AppliedMigration]:
    rows = conn.execute(
        sql.SQL("SELECT version, name, checksum FROM {} ORDER BY version").format(
            sql.Identifier(schema, MIGRATIONS_TABLE)
        )
    ).fetchall()
    return [AppliedMigration(row["version"], row["name"], row["checksum"]) for row in rows]


def _apply(conn: Connection, schema: str, migration: Migration) -> None:
    # Migration files name their tables unqualified: they land in the schema being migrated.
    conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
    # Trusted SQL shipped in the package, run as one script; as bytes, psycopg's typing
    # accepts a query that is not a literal.
    conn.execute(migration.sql.encode("utf-8"))
    conn.execute(
        sql.SQL("INSERT INTO {} (version, name, checksum) VALUES (%s, %s, %s)").format(
            sql.Identifier(schema, MIGRATIONS_TABLE)
        ),
        (migration.version, migration.name, migration.checksum),
    )


def _failures(what: str) -> AbstractContextManager[None]:
    return database_errors(what, error=MigrationError, hint=_RETRY_HINT)
