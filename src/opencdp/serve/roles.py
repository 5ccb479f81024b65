"""Each tenant's PostgreSQL role, as which the API runs that tenant's queries.

`opencdp_tenant_<tenant>` (NOLOGIN) may use the schema `t_<tenant>` and nothing else: SELECT
on its tables (also those created later by the user that loads them), INSERT on its audit
log. The API's connections for a tenant take the role when they open
(`tenant_connection_options`, `tenant_conninfo`), so a query for one tenant cannot read
another tenant's schema or the control schema (API keys) even if the code had a bug.

What this guarantees, and what not: the role is set at connection start (libpq `options`,
`-c role=...`), so `RESET ROLE` and `RESET ALL` keep it (`DISCARD ALL` too up to PostgreSQL
15; from 16 on it returns to the login user, so a tenant's pool must never run it:
psycopg_pool does not). A session whose login user is a member of other roles (a superuser
is of all) can still `SET ROLE` to them. The API never runs request text (every value is
a query parameter, every name a validated identifier), so no request can issue that; the
role stops the API's own mistakes, not SQL injection, which parameters prevent. A
deployment that wants the database to enforce more can run one API process per tenant,
logged in as a user that is a member of that tenant's role only.

Roles are cluster-wide while schemas are per database: two databases of one server that
both hold tenant `acme` share its role (with each database's grants its own), and their
concurrent first setups are expected: a role created by the other one meanwhile is fine.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from opencdp.db import Database, database_errors, tenant_schema
from opencdp.db.conninfo import parse_conninfo
from opencdp.errors import NotFoundError
from opencdp.logs import get_logger
from opencdp.names import check_name

log = get_logger(__name__)

ROLE_PREFIX = "opencdp_tenant_"
AUDIT_TABLE = "audit_log"
# pg_advisory_xact_lock(class, key): "ocdp" as the class, a hash of the role as the key, so
# that setups of one tenant in a database wait for each other (concurrent GRANTs on one
# object fail with "tuple concurrently updated") and other tenants' do not.
_LOCK_CLASS = 0x6F636470

# What a concurrent setup in another database can make a role statement fail with: the
# role (or membership) was created meanwhile, or a catalog row changed under us.
_RACES = (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation)
_CONCURRENT_UPDATE = "tuple concurrently updated"


def tenant_role(tenant: str) -> str:
    """The role of `tenant` (validated): `opencdp_tenant_<tenant>`, at most 63 characters."""
    return ROLE_PREFIX + check_name(tenant, "tenant")


def ensure_tenant_role(conn: psycopg.Connection[Any], tenant: str) -> str:
    """Create the tenant's role if missing and grant it what it may do; returns its name.

    The tenant's schema must exist at its latest version (`opencdp.db.ensure_tenant`). The
    role is granted to the current user, so that the API's connections can take it. Runs in
    a transaction of its own, or in a savepoint of the caller's open transaction; safe to
    repeat and to run from several processes and databases at once.
    """
    role = tenant_role(tenant)
    schema = tenant_schema(tenant)
    with (
        database_errors(
            f"setting up the database role {role} of tenant {tenant}",
            hint="the user in the database URL needs CREATEROLE (or superuser) and must own "
            f"the schema {schema}",
        ),
        conn.transaction(),
    ):
        _lock(conn, role)
        _require_schema(conn, tenant, schema)
        _retrying(conn, sql.SQL("CREATE ROLE {} NOLOGIN"), role, unless_exists=True)
        _retrying(conn, sql.SQL("GRANT {} TO CURRENT_USER"), role)
        conn.execute(
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                sql.Identifier(schema), sql.Identifier(role)
            )
        )
        # Tables the current user creates in the schema later (a historic load swaps in new
        # ones) are readable by the role without a further grant.
        conn.execute(
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT SELECT ON TABLES TO {}").format(
                sql.Identifier(schema), sql.Identifier(role)
            )
        )
        _grant_tables(conn, schema, role)
    log.debug("tenant role ready", tenant=tenant, role=role)
    return role


def grant_tenant_tables(conn: psycopg.Connection[Any], tenant: str) -> None:
    """Grant the tenant's role SELECT on every table now in its schema (after a load swapped
    tables in) and INSERT on its audit log. Transaction or savepoint as `ensure_tenant_role`."""
    role = tenant_role(tenant)
    schema = tenant_schema(tenant)
    with (
        database_errors(f"granting the tables of schema {schema} to {role}"),
        conn.transaction(),
    ):
        _lock(conn, role)
        _grant_tables(conn, schema, role)


def tenant_connection_options(tenant: str) -> str:
    """libpq `options` for a session of the tenant: its role, its schema as search path."""
    # Names are validated ([a-z0-9_]): nothing in them needs escaping in libpq's options.
    return f"-c role={tenant_role(tenant)} -c search_path={tenant_schema(tenant)}"


def tenant_conninfo(base: Database | str, tenant: str) -> str:
    """A connection string of `base` whose sessions run as the tenant's role with the
    tenant's schema as search path (after any options `base` has). Starts the embedded
    server when `base` is one."""
    conninfo = base.conninfo() if isinstance(base, Database) else base
    existing = parse_conninfo(conninfo).get("options", "")
    options = f"{existing} {tenant_connection_options(tenant)}".strip()
    return make_conninfo(conninfo, options=options)


def _lock(conn: psycopg.Connection[Any], role: str) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_CLASS, role))


def _require_schema(conn: psycopg.Connection[Any], tenant: str, schema: str) -> None:
    cur = conn.cursor(row_factory=dict_row)
    found = cur.execute(
        "SELECT to_regclass(%s) IS NOT NULL AS ready", (f"{schema}.{AUDIT_TABLE}",)
    ).fetchone()
    if found is None or not found["ready"]:
        raise NotFoundError(
            f"tenant {tenant} has no schema {schema} at its latest version in this database",
            hint=f"run `opencdp db migrate --tenant {tenant}`",
        )


def _retrying(
    conn: psycopg.Connection[Any],
    statement: sql.SQL,
    role: str,
    *,
    unless_exists: bool = False,
) -> None:
    """Run a statement on the shared role catalogs, tolerating a concurrent setup of the same
    tenant in another database of the server (the advisory lock is per database)."""
    for attempt in range(5):
        if (
            unless_exists
            and conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        ):
            return
        try:
            with conn.transaction():  # a savepoint, so that a failure leaves the rest intact
                conn.execute(statement.format(sql.Identifier(role)))
        except _RACES:
            if unless_exists:
                return  # created by the other one meanwhile
            if attempt == 4:
                raise
        except psycopg.errors.InternalError_ as e:
            if _CONCURRENT_UPDATE not in str(e) or attempt == 4:
                raise
        else:
            return


def _grant_tables(conn: psycopg.Connection[Any], schema: str, role: str) -> None:
    conn.execute(
        sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(
            sql.Identifier(schema), sql.Identifier(role)
        )
    )
    conn.execute(
        sql.SQL("GRANT INSERT ON {} TO {}").format(
            sql.Identifier(schema, AUDIT_TABLE), sql.Identifier(role)
        )
    )
