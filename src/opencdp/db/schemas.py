"""Schema names and the migration sets shipped with OpenCDP.

The control schema `opencdp` holds what spans tenants (the tenant registry, pipeline runs,
later API keys). Each tenant has a schema of its own, `t_<tenant>`: the prefix keeps every
valid tenant name clear of `opencdp`, `public`, `information_schema` and the reserved `pg_*`.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from opencdp.db.plan import Migration, read_migrations
from opencdp.names import check_name

CONTROL_SCHEMA = "opencdp"
TENANT_SCHEMA_PREFIX = "t_"


def tenant_schema(tenant: str) -> str:
    """The PostgreSQL schema of `tenant` (validated): `t_<tenant>`."""
    return TENANT_SCHEMA_PREFIX + check_name(tenant, "tenant")


@cache
def control_migrations() -> tuple[Migration, ...]:
    return _shipped("control")


@cache
def tenant_migrations() -> tuple[Migration, ...]:
    return _shipped("tenant")


def _shipped(kind: str) -> tuple[Migration, ...]:
    folder = resources.files("opencdp.db") / "migrations" / kind
    return read_migrations(folder, source=f"opencdp/db/migrations/{kind}")
