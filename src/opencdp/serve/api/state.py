"""What the API keeps for as long as it runs: the key verifier, and per tenant (opened on its
first request) a pool of connections that run as the tenant's role, its audit log and its
search index."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

from opencdp.serve.audit import AuditLog
from opencdp.serve.keys import KeyVerifier
from opencdp.serve.roles import tenant_connection_options
from opencdp.serve.search import ProfileSearch, open_search
from opencdp.settings import Settings

if TYPE_CHECKING:
    from psycopg import AsyncConnection


@dataclass
class TenantServices:
    pool: AsyncConnectionPool[AsyncConnection[tuple[Any, ...]]]
    audit: AuditLog
    search: ProfileSearch
    default_country: str


@dataclass
class ApiState:
    settings: Settings
    conninfo: str
    verifier: KeyVerifier
    _tenants: dict[str, TenantServices] = field(default_factory=dict)
    _opening: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def tenant(self, tenant: str) -> TenantServices:
        """The tenant's services, opened on first use."""
        found = self._tenants.get(tenant)
        if found is not None:
            return found
        async with self._opening:
            found = self._tenants.get(tenant)
            if found is None:
                found = await self._open(tenant)
                self._tenants[tenant] = found
            return found

    async def _open(self, tenant: str) -> TenantServices:
        serve = self.settings.serve
        pool: AsyncConnectionPool[AsyncConnection[tuple[Any, ...]]] = AsyncConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=serve.pool_size,
            kwargs={
                "autocommit": True,
                "row_factory": tuple_row,
                "options": tenant_connection_options(tenant),
                "application_name": f"opencdp-api-{tenant}",
            },
            open=False,
            name=f"api-{tenant}",
        )
        await pool.open(wait=True, timeout=10)
        audit = AuditLog(pool, tenant, flush_seconds=serve.audit_flush_seconds)
        await audit.start()
        return TenantServices(
            pool=pool,
            audit=audit,
            search=open_search(self.settings, tenant),
            default_country=self.settings.tenant(tenant).default_country,
        )

    async def close(self) -> None:
        for services in self._tenants.values():
            await services.audit.close()
            await services.pool.close()
        self._tenants.clear()
        await self.verifier.close()


async def state_of(request: Request) -> ApiState:
    """The API's state, as a dependency. Async: FastAPI runs a sync dependency in a worker
    thread, a thread hop on every request."""
    state = request.app.state.api
    assert isinstance(state, ApiState)
    return state
