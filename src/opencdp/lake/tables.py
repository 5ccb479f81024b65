"""Tenant namespaces and their tables: one Iceberg namespace per tenant, named after it."""

from __future__ import annotations

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
from pyiceberg.table import Table

from opencdp.errors import NotFoundError
from opencdp.names import check_name


def table_identifier(tenant: str, name: str) -> tuple[str, str]:
    """The Iceberg identifier (namespace, table) of a tenant's table; both names checked."""
    return check_name(tenant, "tenant"), check_name(name, "table")


def ensure_namespace(catalog: Catalog, tenant: str) -> None:
    """Create the tenant's namespace unless it exists."""
    catalog.create_namespace_if_not_exists(check_name(tenant, "tenant"))


def list_tables(catalog: Catalog, tenant: str) -> list[str]:
    """The names of the tenant's tables, sorted; NotFoundError for an unknown tenant."""
    namespace = check_name(tenant, "tenant")
    try:
        identifiers = catalog.list_tables(namespace)
    except NoSuchNamespaceError as e:
        raise NotFoundError(
            f"tenant {tenant!r} has no namespace in the Iceberg catalog",
            hint=_build_hint(tenant),
        ) from e
    return sorted(identifier[-1] for identifier in identifiers)


def load_table(catalog: Catalog, tenant: str, name: str) -> Table:
    """The tenant's table `name`; NotFoundError if it was never built."""
    identifier = table_identifier(tenant, name)
    try:
        return catalog.load_table(identifier)
    except NoSuchTableError as e:
        raise NotFoundError(
            f"table {'.'.join(identifier)} does not exist", hint=_build_hint(tenant)
        ) from e


def _build_hint(tenant: str) -> str:
    return f"run `opencdp transform --tenant {tenant}` first to build its curated tables"


def read_table(
    catalog: Catalog,
    tenant: str,
    name: str,
    schema: pa.Schema,
    columns: tuple[str, ...] | None = None,
    snapshot_id: int | None = None,
) -> pa.Table:
    """The tenant's table `name` as Arrow in `schema` (or its `columns`), at `snapshot_id`
    or the current snapshot: empty when the table was never built, nulls for a column
    added to the model after it was written."""
    wanted = pa.schema([schema.field(c) for c in columns]) if columns else schema
    try:
        table = catalog.load_table(table_identifier(tenant, name))
    except NoSuchTableError:
        return wanted.empty_table()
    present = set(table.schema().column_names)
    selected = tuple(c for c in wanted.names if c in present)
    data = table.scan(selected_fields=selected, snapshot_id=snapshot_id).to_arrow()
    arrays = [
        data.column(f.name) if f.name in present else pa.nulls(data.num_rows, f.type)
        for f in wanted
    ]
    return pa.Table.from_arrays(arrays, names=wanted.names).cast(wanted)
