"""Tenant roles against a real PostgreSQL (embedded and $OPENCDP_TEST_DATABASE_URL): what a
session as a tenant's role can and cannot do, tables added later, and concurrent setups in
one database and across two databases of the same server."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr

from opencdp.db import Database, ensure_tenant
from opencdp.errors import NotFoundError
from opencdp.serve.roles import (
    ensure_tenant_role,
    grant_tenant_tables,
    tenant_conninfo,
    tenant_role,
)

pytestmark = pytest.mark.integration

Denied = psycopg.errors.InsufficientPrivilege


def _drop_roles(conn: psycopg.Connection[object], roles: list[str]) -> None:
    """Roles are per server: drop this test's, after undoing their grants in this database."""
    for role in roles:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def tenants(database: Database) -> Iterator[Callable[[str], str]]:
    """Makes tenants with names of this run's own (and a profiles table each)."""
    made: list[str] = []

    def make(prefix: str, length: int = 0) -> str:
        tenant = f"{prefix}_{secrets.token_hex(4)}"
        tenant += "x" * max(0, length - len(tenant))
        ensure_tenant(database, tenant)
        with database.connect() as conn:
            table = sql.Identifier(f"t_{tenant}", "profiles")
            conn.execute(
                sql.SQL("CREATE TABLE {} (profile_id text PRIMARY KEY, email text)").format(table)
            )
            conn.execute(
                sql.SQL("INSERT INTO {} VALUES ('p_1', %s)").format(table),
                (f"ann@{tenant}.example",),
            )
        made.append(tenant)
        return tenant

    yield make
    with database.connect() as conn:
        _drop_roles(conn, [tenant_role(t) for t in made])


def _setup(database: Database, tenant: str) -> str:
    with database.connect() as conn:
        return ensure_tenant_role(conn, tenant)


def _as(database: Database, tenant: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(tenant_conninfo(database, tenant), autocommit=True)


def _denied(conn: psycopg.Connection[tuple[object, ...]], query: str) -> bool:
    try:
        conn.execute(query.encode())
    except Denied:
        return True
    return False


def _one(conn: psycopg.Connection[tuple[object, ...]], query: str) -> object:
    row = conn.execute(query.encode()).fetchone()
    assert row is not None
    return row[0]


def test_a_tenants_role_reads_its_own_schema_only(
    database: Database, tenants: Callable[..., str]
) -> None:
    a = tenants("a", length=48)  # the longest tenant name: a 63-character role
    b = tenants("b")
    assert _setup(database, a) == tenant_role(a)
    _setup(database, b)
    assert len(tenant_role(a)) == 63
    with _as(database, a) as conn:
        assert _one(conn, "SELECT current_user") == tenant_role(a)
        # Its schema is the search path: names unqualified, as the API writes them.
        assert _one(conn, "SELECT email FROM profiles") == f"ann@{a}.example"
        assert _one(conn, f"SELECT count(*) FROM t_{a}.profiles") == 1
        refused = [
            f"SELECT * FROM t_{b}.profiles",
            f"SELECT * FROM t_{b}.audit_log",
            "SELECT * FROM opencdp.api_keys",
            "SELECT * FROM opencdp.tenants",
            f"INSERT INTO t_{a}.profiles VALUES ('p_2', 'x')",
            f"UPDATE t_{a}.profiles SET email = 'x'",
            f"DELETE FROM t_{a}.profiles",
            f"TRUNCATE t_{a}.profiles",
            f"DROP TABLE t_{a}.profiles",
            f"CREATE TABLE t_{a}.mine (id int)",
            f"UPDATE t_{a}.audit_log SET key_id = 'x'",
            f"DELETE FROM t_{a}.audit_log",
            f"INSERT INTO t_{b}.audit_log (at, key_id, action) VALUES (now(), 'k', 'enrich')",
            f"UPDATE t_{a}.load_state SET snapshot_id = 0",
        ]
        assert [query for query in refused if not _denied(conn, query)] == []
        # Its own audit log takes inserts (no sequence privilege needed for the identity id).
        conn.execute(
            f"INSERT INTO t_{a}.audit_log (at, key_id, action, profile_id) "
            "VALUES (now(), 'k', 'profile.read', 'p_1')".encode()
        )
        assert _one(conn, "SELECT count(*) FROM audit_log") == 1
        # The database still checks what is written there.
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                f"INSERT INTO t_{a}.audit_log (at, key_id, action) "
                "VALUES (now(), 'k', 'profile.delete')".encode()
            )


def test_the_role_survives_reset_role(database: Database, tenants: Callable[..., str]) -> None:
    a, b = tenants("a"), tenants("b")
    for tenant in (a, b):
        _setup(database, tenant)
    with _as(database, a) as conn:
        # The role was set when the session started: RESET goes back to it, not to the
        # login user.
        for reset in ("RESET ROLE", "RESET ALL"):
            conn.execute(reset.encode())
            assert _one(conn, "SELECT current_user") == tenant_role(a)
            assert _denied(conn, f"SELECT * FROM t_{b}.profiles")
        # DISCARD ALL does too up to PostgreSQL 15; from 16 on it returns to the login user,
        # so a tenant's pool must never run it (psycopg_pool does not; pgbouncer's default
        # server_reset_query does).
        conn.execute(b"DISCARD ALL")
        version = _one(conn, "SHOW server_version_num")
        assert isinstance(version, str)
        after = _one(conn, "SELECT current_user")
        assert after == (
            tenant_role(a) if int(version) < 160000 else _one(conn, "SELECT session_user")
        )


def test_a_login_that_has_one_tenants_role_cannot_take_another(
    database: Database, tenants: Callable[..., str]
) -> None:
    a, b = tenants("a"), tenants("b")
    for tenant in (a, b):
        _setup(database, tenant)
    login = f"opencdp_test_login_{secrets.token_hex(4)}"
    with database.connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(login)))
        conn.execute(
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(tenant_role(a)), sql.Identifier(login))
        )
    try:
        conninfo = make_conninfo(tenant_conninfo(database, a), user=login)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            assert _one(conn, "SELECT current_user") == tenant_role(a)
            assert _one(conn, "SELECT count(*) FROM profiles") == 1
            for attempt in (f"SET ROLE {tenant_role(b)}", "SET ROLE postgres"):
                with pytest.raises(Denied, match="permission denied to set role"):
                    conn.execute(attempt.encode())
            conn.execute(b"SET ROLE NONE")  # back to the login user: still only tenant a's
            assert _one(conn, "SELECT current_user") == login
            with pytest.raises(Denied):
                conn.execute(f"SELECT * FROM t_{b}.profiles".encode())
        # Nor can it start a session as another tenant's role.
        with pytest.raises(psycopg.OperationalError, match="permission denied to set role"):
            psycopg.connect(make_conninfo(tenant_conninfo(database, b), user=login)).close()
    finally:
        with database.connect() as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(login)))


def test_a_superuser_login_can_leave_the_role_so_no_request_text_is_ever_run(
    database: Database, tenants: Callable[..., str]
) -> None:
    # The limit of the guarantee, pinned down: a session logged in as a superuser (as the
    # test servers' is) can drop the role with SET ROLE NONE. The API never executes text
    # from a request, so only the API's own code could, and it does not.
    a = tenants("a")
    _setup(database, a)
    with _as(database, a) as conn:
        login = _one(conn, "SELECT session_user")
        if not _one(conn, "SELECT rolsuper FROM pg_roles WHERE rolname = session_user"):
            pytest.skip("the login user is not a superuser")
        conn.execute(b"SET ROLE NONE")
        assert _one(conn, "SELECT current_user") == login


def test_tables_created_later_are_readable_and_can_be_granted_again(
    database: Database, tenants: Callable[..., str]
) -> None:
    a = tenants("a")
    _setup(database, a)
    with database.connect() as conn:
        # A historic load swaps a table in: created after the role's grants.
        conn.execute(
            sql.SQL("CREATE TABLE {} AS SELECT 1 AS order_id").format(
                sql.Identifier(f"t_{a}", "orders")
            )
        )
    with _as(database, a) as tenant_conn:
        assert _one(tenant_conn, "SELECT count(*) FROM orders") == 1
    with database.connect() as conn:
        # A table that missed its grant (made by another user, or revoked by hand)...
        conn.execute(
            sql.SQL("REVOKE ALL ON {} FROM {}").format(
                sql.Identifier(f"t_{a}", "orders"), sql.Identifier(tenant_role(a))
            )
        )
        conn.execute(
            sql.SQL("REVOKE INSERT ON {} FROM {}").format(
                sql.Identifier(f"t_{a}", "audit_log"), sql.Identifier(tenant_role(a))
            )
        )
    with _as(database, a) as tenant_conn, pytest.raises(Denied):
        tenant_conn.execute(b"SELECT * FROM orders")
    with database.connect() as conn:
        grant_tenant_tables(conn, a)  # ...is readable again after the loader's grant
    with _as(database, a) as tenant_conn:
        assert _one(tenant_conn, "SELECT count(*) FROM orders") == 1
        tenant_conn.execute(
            b"INSERT INTO audit_log (at, key_id, action) VALUES (now(), 'k', 'enrich')"
        )


def test_setting_up_is_repeatable_and_makes_a_nologin_role_of_the_current_user(
    database: Database, tenants: Callable[..., str]
) -> None:
    a = tenants("a")
    with database.connect() as conn:
        for _ in range(2):
            ensure_tenant_role(conn, a)
        row = conn.execute(
            "SELECT r.rolcanlogin, r.rolsuper, r.rolinherit, "
            "pg_has_role(current_user, r.oid, 'MEMBER') AS member, "
            "EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.roleid = r.oid "
            "        AND m.member = (SELECT oid FROM pg_roles WHERE rolname = current_user))"
            " AS granted FROM pg_roles r WHERE r.rolname = %s",
            (tenant_role(a),),
        ).fetchone()
    assert row == {
        "rolcanlogin": False,
        "rolsuper": False,
        "rolinherit": True,
        "member": True,
        "granted": True,
    }


def test_a_tenant_without_its_schema_is_refused(database: Database) -> None:
    missing = f"missing_{secrets.token_hex(4)}"
    with database.connect() as conn, pytest.raises(NotFoundError, match="db migrate"):
        ensure_tenant_role(conn, missing)
    with database.connect() as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", (tenant_role(missing),)
        ).fetchone()
    assert found is None  # nothing was created


def test_setup_inside_the_callers_transaction_is_a_savepoint(
    database: Database, tenants: Callable[..., str]
) -> None:
    a = tenants("a")
    with database.connect() as conn:
        conn.execute("SELECT 1")  # the caller's transaction is open
        ensure_tenant_role(conn, a)
        conn.rollback()  # and the caller changes its mind
        found = conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", (tenant_role(a),)
        ).fetchone()
    assert found is None


def _wait_until_blocked(database: Database, application_name: str) -> None:
    deadline = time.monotonic() + 30
    with database.connect() as conn:
        conn.autocommit = True
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = %s "
                "AND wait_event_type = 'Lock'",
                (application_name,),
            ).fetchone()
            if row is not None:
                return
            time.sleep(0.02)
    raise AssertionError(f"{application_name} never waited for a lock")


def _setup_in_thread(conninfo: str, tenant: str, name: str) -> str:
    with psycopg.connect(conninfo, application_name=name) as conn:
        return ensure_tenant_role(conn, tenant)


def test_concurrent_setups_in_one_database_wait_for_each_other(
    database: Database, tenants: Callable[..., str]
) -> None:
    a = tenants("a")
    name = f"second_{secrets.token_hex(4)}"
    with database.connect() as first, ThreadPoolExecutor(1) as pool:
        first.execute("SELECT 1")
        ensure_tenant_role(first, a)  # done, not committed: holds the tenant's lock
        second = pool.submit(_setup_in_thread, database.conninfo(), a, name)
        _wait_until_blocked(database, name)
        first.commit()
        assert second.result(timeout=60) == tenant_role(a)


def test_concurrent_first_setups_in_two_databases_of_one_server(
    database: Database, postgres_admin: str, tenants: Callable[..., str]
) -> None:
    a = tenants("a")
    other_name = f"opencdp_test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_admin, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(other_name)))
    other = Database(SecretStr(make_conninfo(postgres_admin, dbname=other_name)))
    try:
        ensure_tenant(other, a)
        name = f"other_{secrets.token_hex(4)}"
        with database.connect() as first, ThreadPoolExecutor(1) as pool:
            first.execute("SELECT 1")
            ensure_tenant_role(first, a)  # creates the role, not committed yet
            # The other database's setup has not seen the role: its CREATE ROLE waits for
            # this transaction, then finds the name taken, and must carry on.
            second = pool.submit(_setup_in_thread, other.conninfo(), a, name)
            _wait_until_blocked(other, name)
            first.commit()
            assert second.result(timeout=60) == tenant_role(a)
        with psycopg.connect(tenant_conninfo(other, a)) as conn:
            assert conn.execute(b"SELECT count(*) FROM audit_log").fetchone() == (0,)
        with _as(database, a) as conn:
            assert _one(conn, "SELECT count(*) FROM profiles") == 1

        # And many at once, both databases, a fresh tenant: none fails.
        b = tenants("b")
        ensure_tenant(other, b)
        start = threading.Barrier(6)

        def race(conninfo: str) -> str:
            start.wait(timeout=30)
            return _setup_in_thread(conninfo, b, "race")

        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(race, [database.conninfo(), other.conninfo()] * 3))
        assert results == [tenant_role(b)] * 6
    finally:
        # Its grants go with it; the fixture drops the roles after.
        with psycopg.connect(postgres_admin, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(other_name))
            )
