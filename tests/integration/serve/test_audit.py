"""The audit log against a real PostgreSQL (embedded and $OPENCDP_TEST_DATABASE_URL):
buffered, flushed in the background and on close, into each tenant's own schema, through
the tenant's pool (sessions as the tenant's role)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from opencdp.db import Database, ensure_tenant
from opencdp.errors import InvalidNameError, QueryError
from opencdp.serve.audit import AuditBacklogError, AuditLog
from opencdp.serve.roles import (
    ensure_tenant_role,
    grant_tenant_tables,
    tenant_conninfo,
    tenant_role,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def tenants(database: Database) -> Iterator[Callable[[str], str]]:
    """Tenants with names of this run's own, schema and role ready; roles dropped after."""
    made: list[str] = []

    def make(prefix: str) -> str:
        tenant = f"{prefix}_{secrets.token_hex(4)}"
        ensure_tenant(database, tenant)
        with database.connect() as conn:
            ensure_tenant_role(conn, tenant)
        made.append(tenant)
        return tenant

    yield make
    with database.connect() as conn:
        for tenant in made:
            role = sql.Identifier(tenant_role(tenant))
            conn.execute(sql.SQL("DROP OWNED BY {}").format(role))
            conn.execute(sql.SQL("DROP ROLE {}").format(role))


@asynccontextmanager
async def tenant_pool(database: Database, tenant: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        tenant_conninfo(database, tenant),
        min_size=1,
        max_size=2,
        kwargs={"autocommit": True},
        open=False,
    )
    await pool.open(wait=True)
    try:
        yield pool
    finally:
        await pool.close()


def _rows(database: Database, tenant: str) -> list[dict[str, Any]]:
    with database.connect() as conn:
        return conn.execute(
            sql.SQL("SELECT * FROM {} ORDER BY id").format(
                sql.Identifier(f"t_{tenant}", "audit_log")
            )
        ).fetchall()


def test_entries_are_written_when_flushed(
    database: Database, tenants: Callable[[str], str]
) -> None:
    a = tenants("a")

    async def run() -> None:
        async with tenant_pool(database, a) as pool:
            audit = AuditLog(pool, a, flush_seconds=3600)
            await audit.start()
            audit.record("key1", "profile.read", "p_1")
            audit.record("key1", "profile.lookup", "p_1", {"by": "email"})
            audit.record("key2", "profile.search", None, {"q": "zoë", "limit": 10})
            assert audit.pending == 3
            assert _rows(database, a) == []  # buffered, not written yet
            assert await audit.flush() == 3
            assert audit.pending == 0
            assert await audit.flush() == 0
            await audit.close()

    asyncio.run(run())
    rows = _rows(database, a)
    assert [(r["key_id"], r["action"], r["profile_id"], r["detail"]) for r in rows] == [
        ("key1", "profile.read", "p_1", {}),
        ("key1", "profile.lookup", "p_1", {"by": "email"}),
        ("key2", "profile.search", None, {"q": "zoë", "limit": 10}),
    ]
    assert all(r["at"].tzinfo is not None for r in rows)
    assert rows[0]["at"] <= rows[1]["at"] <= rows[2]["at"]


def test_the_background_flush_writes_without_being_asked(
    database: Database, tenants: Callable[[str], str]
) -> None:
    a = tenants("a")

    async def run() -> None:
        async with (
            tenant_pool(database, a) as pool,
            AuditLog(pool, a, flush_seconds=0.05) as audit,
        ):
            audit.record("key1", "enrich", "p_9")
            for _ in range(400):  # at most 20 s
                if _rows(database, a):
                    break
                await asyncio.sleep(0.05)
            assert [r["action"] for r in _rows(database, a)] == ["enrich"]
            assert audit.pending == 0

    asyncio.run(run())


def test_a_full_batch_is_written_before_its_time(
    database: Database, tenants: Callable[[str], str]
) -> None:
    a = tenants("a")

    async def run() -> None:
        async with (
            tenant_pool(database, a) as pool,
            AuditLog(pool, a, flush_seconds=3600, batch_size=5) as audit,
        ):
            for i in range(4):
                audit.record("key1", "profile.read", f"p_{i}")
            await asyncio.sleep(0.3)
            assert _rows(database, a) == []  # under a batch: waits for its time
            audit.record("key1", "profile.read", "p_4")
            for _ in range(400):
                if len(_rows(database, a)) == 5:
                    break
                await asyncio.sleep(0.05)
            assert len(_rows(database, a)) == 5

    asyncio.run(run())


def test_close_writes_what_is_left(database: Database, tenants: Callable[[str], str]) -> None:
    a = tenants("a")

    async def run() -> None:
        async with tenant_pool(database, a) as pool:
            audit = AuditLog(pool, a, flush_seconds=3600)
            await audit.start()
            for i in range(20_000):
                audit.record(f"key{i % 3}", "profile.events", f"p_{i}", {"i": i})
            await audit.close()
            assert audit.pending == 0
            await audit.close()  # again: nothing more to do
            with pytest.raises(RuntimeError, match="closed"):
                audit.record("key1", "profile.read", "p_1")

    asyncio.run(run())
    rows = _rows(database, a)
    assert len(rows) == 20_000
    assert [r["detail"]["i"] for r in rows] == list(range(20_000))  # in order, one COPY


def test_each_tenants_entries_go_to_its_own_schema(
    database: Database, tenants: Callable[[str], str]
) -> None:
    a, b = tenants("a"), tenants("b")

    async def run() -> None:
        async with tenant_pool(database, a) as pool_a, tenant_pool(database, b) as pool_b:
            async with (
                AuditLog(pool_a, a, flush_seconds=3600) as audit_a,
                AuditLog(pool_b, b, flush_seconds=3600) as audit_b,
            ):
                audit_a.record("key_a", "profile.read", "p_a")
                audit_b.record("key_b", "profile.orders", "p_b")
            # Given another tenant's pool by mistake, the database refuses the write: the
            # entries stay buffered, nothing lands in the wrong schema.
            wrong = AuditLog(pool_a, b, flush_seconds=3600)
            wrong.record("key_a", "profile.read", "p_a")
            with pytest.raises(QueryError, match="permission denied") as err:
                await wrong.flush()
            assert f"--tenant {b}" in str(err.value)
            assert wrong.pending == 1

    asyncio.run(run())
    assert [(r["key_id"], r["profile_id"]) for r in _rows(database, a)] == [("key_a", "p_a")]
    assert [(r["key_id"], r["profile_id"]) for r in _rows(database, b)] == [("key_b", "p_b")]


def test_entries_that_cannot_be_written_are_kept_and_retried(
    database: Database, tenants: Callable[[str], str]
) -> None:
    a = tenants("a")
    audit_log = sql.Identifier(f"t_{a}", "audit_log")
    role = sql.Identifier(tenant_role(a))

    async def run() -> None:
        async with tenant_pool(database, a) as pool:
            audit = AuditLog(pool, a, flush_seconds=3600)
            await audit.start()
            audit.record("key1", "profile.read", "p_1")
            with database.connect() as conn:  # the grant is lost (a table swapped in by hand)
                conn.execute(sql.SQL("REVOKE INSERT ON {} FROM {}").format(audit_log, role))
            with pytest.raises(QueryError, match="permission denied"):
                await audit.flush()
            audit.record("key1", "profile.read", "p_2")
            assert audit.pending == 2
            with database.connect() as conn:
                grant_tenant_tables(conn, a)
            assert await audit.flush() == 2
            await audit.close()

    asyncio.run(run())
    assert [r["profile_id"] for r in _rows(database, a)] == ["p_1", "p_2"]


def test_close_raises_when_the_rest_cannot_be_written(
    database: Database, tenants: Callable[[str], str]
) -> None:
    a = tenants("a")

    async def run() -> None:
        async with tenant_pool(database, a) as pool:
            with database.connect() as conn:
                conn.execute(
                    sql.SQL("REVOKE INSERT ON {} FROM {}").format(
                        sql.Identifier(f"t_{a}", "audit_log"), sql.Identifier(tenant_role(a))
                    )
                )
            audit = AuditLog(pool, a, flush_seconds=3600)
            await audit.start()
            audit.record("key1", "profile.read", "p_1")
            with pytest.raises(QueryError):
                await audit.close()
            assert audit.pending == 1  # said in the log as lost

    asyncio.run(run())


def test_bad_entries_are_refused_when_recorded_and_a_backlog_is_capped(
    database: Database, tenants: Callable[[str], str]
) -> None:
    a = tenants("a")

    async def run() -> None:
        async with tenant_pool(database, a) as pool:
            audit = AuditLog(pool, a, flush_seconds=3600, batch_size=3, max_pending=3)
            for bad in [
                ("key1", "profile.delete"),
                ("", "profile.read"),
                ("key1", "profile.read", None, {"x": float("inf")}),
            ]:
                with pytest.raises(ValueError, match=r"audit|key id"):
                    audit.record(*bad)  # type: ignore[arg-type]
            assert audit.pending == 0
            for i in range(3):
                audit.record("key1", "profile.read", f"p_{i}")
            with pytest.raises(AuditBacklogError, match="3 audit entries"):
                audit.record("key1", "profile.read", "p_3")
            assert await audit.flush() == 3
            # Room again; request text PostgreSQL cannot store is replaced, not refused.
            audit.record("key1", "profile.search", "p_\x00", {"q": "a\x00\ud800"})
            await audit.close()

    asyncio.run(run())
    rows = _rows(database, a)
    assert len(rows) == 4
    assert (rows[3]["profile_id"], rows[3]["detail"]) == ("p_\ufffd", {"q": "a\ufffd\ufffd"})


def test_bad_settings_are_refused() -> None:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool("dbname=unused", open=False)
    for kwargs in ({"flush_seconds": 0}, {"flush_seconds": float("nan")}):
        with pytest.raises(ValueError, match="flush_seconds"):
            AuditLog(pool, "acme", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        AuditLog(pool, "acme", flush_seconds=1, batch_size=10, max_pending=5)
    with pytest.raises(InvalidNameError):
        AuditLog(pool, "Acme; --", flush_seconds=1)
