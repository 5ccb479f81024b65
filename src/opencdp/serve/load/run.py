"""`load_tenant`: the tenant's curated tables into its PostgreSQL schema, in one
transaction (every table and the load state, or nothing)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pyarrow as pa

from opencdp.db import Connection, Database, database_errors, ensure_tenant, tenant_schema
from opencdp.engine import open_engine
from opencdp.errors import NotFoundError
from opencdp.identity.model import PROFILES
from opencdp.lake import list_tables, open_catalog
from opencdp.logs import get_logger
from opencdp.names import check_name
from opencdp.serve.load.build import empty_table
from opencdp.serve.load.context import LoadContext, Loaded
from opencdp.serve.load.errors import LoadError
from opencdp.serve.load.historic import build_new, swap
from opencdp.serve.load.incremental import load_incremental
from opencdp.serve.load.report import LoadReport, TableLoad
from opencdp.serve.load.source import LakeTable
from opencdp.serve.load.state import (
    loaded_snapshots,
    lock_tenant,
    record_snapshot,
    table_exists,
)
from opencdp.serve.tables import SERVED, ServedTable, served
from opencdp.settings import Settings

log = get_logger(__name__)

PROFILES_TABLE = "profiles"


def load_tenant(
    settings: Settings,
    tenant: str,
    *,
    historic: bool = False,
    tables: list[str] | tuple[str, ...] | None = None,
    progress: Callable[[str], None] | None = None,
) -> LoadReport:
    """Load the tenant's curated tables (`tables`, default all served ones) into its
    schema: what changed since the last load, or everything afresh with `historic`.

    NotFoundError for a tenant that has no curated tables; IntegrityCheckError when a
    historic load's checks fail (then nothing changed).
    """
    check_name(tenant, "tenant")
    chosen = served(tables)
    say = progress or (lambda _: None)
    started = time.perf_counter()
    report = LoadReport(tenant, historic)
    with open_catalog(settings) as catalog:
        present = set(list_tables(catalog, tenant))  # NotFoundError: tenant unknown
        if not present & set(SERVED):
            raise NotFoundError(
                f"tenant {tenant!r} has no curated tables to load",
                hint=f"run `opencdp transform --tenant {tenant}` first",
            )
        lakes = {t.name: LakeTable.open(catalog, tenant, t) for t in chosen}
        db = Database.from_settings(settings)
        ensure_tenant(db, tenant)
        with open_engine("duckdb", settings.transform) as engine, db.connect() as conn:
            conn.autocommit = True  # the transaction below is the only one
            conn.execute("SET client_encoding TO 'UTF8'")
            ctx = LoadContext(conn, tenant, tenant_schema(tenant), engine, say)
            with database_errors(f"loading tenant {tenant}"), conn.transaction():
                _load(ctx, report, chosen, lakes, historic)
    report.seconds = time.perf_counter() - started
    log.info(
        "tenant loaded",
        tenant=tenant,
        historic=historic,
        seconds=round(report.seconds, 3),
        tables={name: t.mode for name, t in report.tables.items()},
    )
    return report


def _load(
    ctx: LoadContext,
    report: LoadReport,
    chosen: list[ServedTable],
    lakes: dict[str, LakeTable | None],
    historic: bool,
) -> None:
    lock_tenant(ctx.conn, ctx.tenant)
    loaded = loaded_snapshots(ctx.conn, ctx.schema)  # read under the lock
    for table in chosen:
        started = time.perf_counter()
        lake = lakes[table.name]
        current = lake.current_snapshot_id if lake is not None else None
        if lake is None or current is None:
            result = _absent(ctx, table, lake is None)
        else:
            result = _load_table(ctx, lake, current, loaded.get(table.name), historic)
            if result.result.mode != "skipped":
                record_snapshot(ctx.conn, ctx.schema, table.name, current)
            if table.name == PROFILES_TABLE:
                _profiles(report, result)
        result.result.seconds = time.perf_counter() - started
        report.tables[table.name] = result.result
        ctx.say(_line(result.result))
    built = [t for t in chosen if report.tables[t.name].mode == "historic"]
    if built:
        swap(ctx, built)
        ctx.say(f"swapped in {len(built)} tables: {', '.join(t.name for t in built)}")
    _grant(ctx.conn, ctx.tenant)


def _load_table(
    ctx: LoadContext, lake: LakeTable, current: int, loaded: int | None, historic: bool
) -> Loaded:
    name = lake.served.name
    keep = name == PROFILES_TABLE  # the search index needs the profiles that changed
    ctx.say(f"{name}: snapshot {current}")
    try:
        if historic:
            return build_new(ctx, lake, current, keep=keep)
        return load_incremental(ctx, lake, current, loaded, keep=keep)
    except OSError as e:
        raise LoadError(
            f"cannot read {name} of tenant {ctx.tenant} (snapshot {current}) from the lake: {e}",
            hint="check that the warehouse storage is reachable; a data file missing from the "
            "current snapshot means the table is damaged: rebuild it with "
            f"`opencdp transform --tenant {ctx.tenant} --historic`",
        ) from e


def _absent(ctx: LoadContext, table: ServedTable, missing: bool) -> Loaded:
    """A table the lake does not have (yet): skipped; the database gets it empty, so that
    queries find it."""
    notice = "not in the lake" if missing else "no snapshot in the lake yet"
    if not table_exists(ctx.conn, ctx.schema, table.name):
        empty_table(ctx.conn, ctx.schema, table.name, table)
        notice += "; created empty"
    return Loaded(TableLoad(table.name, "skipped", None, notice=notice))


def _profiles(report: LoadReport, loaded: Loaded) -> None:
    if loaded.rows:
        report.profiles_upserted = pa.concat_tables(loaded.rows).cast(PROFILES)
    report.profiles_deleted = [key[0] for key in loaded.deleted]
    report.profiles_full = loaded.full


def _line(result: TableLoad) -> str:
    line = f"{result.table}: {result.mode}"
    if result.mode != "skipped":
        line += f", {result.rows_upserted:,} rows upserted, {result.rows_deleted:,} deleted"
    if result.notice:
        line += f" ({result.notice})"
    return line


def _grant(conn: Connection, tenant: str) -> None:
    """The one place table privileges are (re)granted after a load created or swapped
    tables: the tenant's API role (when it was set up, by `opencdp keys` or `serve`) may
    read every table in the schema."""
    from opencdp.serve.roles import grant_tenant_tables, tenant_role

    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (tenant_role(tenant),)).fetchone():
        grant_tenant_tables(conn, tenant)
