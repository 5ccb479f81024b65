"""The serving PostgreSQL database: where it is, connections, schemas and their migrations.

Used by ingest (run records), collect, serve and segments alike, hence a package of its own
(docs/decisions/0001-db-package.md). `Database.from_settings` resolves the configured URL or
the embedded server; `ensure_tenant` gives a tenant its schema `t_<tenant>`.
"""

from opencdp.db.database import Connection, Database, database_errors
from opencdp.db.embedded import EmbeddedServer, embedded_pgdata
from opencdp.db.migrate import apply_migrations, ensure_tenant, migrate_control, register_tenant
from opencdp.db.plan import Migration, read_migrations
from opencdp.db.schemas import CONTROL_SCHEMA, tenant_schema
from opencdp.db.status import DatabaseStatus, SchemaStatus, database_status, registered_tenants

__all__ = [
    "CONTROL_SCHEMA",
    "Connection",
    "Database",
    "DatabaseStatus",
    "EmbeddedServer",
    "Migration",
    "SchemaStatus",
    "apply_migrations",
    "database_errors",
    "database_status",
    "embedded_pgdata",
    "ensure_tenant",
    "migrate_control",
    "read_migrations",
    "register_tenant",
    "registered_tenants",
    "tenant_schema",
]
