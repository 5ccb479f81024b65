"""Writing curated tables: create them with their partition spec, and commit new data as one
Iceberg snapshot tagged with the run that made it.

A commit either appends, replaces the rows a filter selects (the partitions a delta
touched: copy-on-write, whole files are dropped), or replaces the whole table (a historic
rebuild). Each is one catalog transaction: readers see the old snapshot until it lands,
and the previous snapshot stays for `opencdp rollback`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import (
    AlwaysFalse,
    And,
    BooleanExpression,
    EqualTo,
    GreaterThanOrEqual,
    IsNull,
    LessThan,
    Or,
    Reference,
)
from pyiceberg.expressions.literals import literal
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform, MonthTransform

from opencdp.lake.tables import table_identifier

RUN_PROPERTY = "opencdp.run-id"

Partition = tuple[tuple[str, str], ...]  # (column, "identity" | "month")


def ensure_table(
    catalog: Catalog,
    tenant: str,
    name: str,
    schema: pa.Schema,
    partition: Partition,
    properties: Mapping[str, str],
) -> Table:
    """The tenant's table `name`, created with `schema` and its partition spec if it does
    not exist; an existing table gains the columns `schema` adds."""
    identifier = table_identifier(tenant, name)
    try:
        table = catalog.load_table(identifier)
    except NoSuchTableError:
        table = catalog.create_table_if_not_exists(
            identifier, schema=schema, properties=dict(properties)
        )
        if partition:
            with table.update_spec() as spec:
                for column, transform in partition:
                    if transform == "month":
                        spec.add_field(column, MonthTransform(), f"{column}_month")
                    else:
                        spec.add_field(column, IdentityTransform(), column)
        return table
    with table.update_schema() as update:
        update.union_by_name(schema)
    return table


def last_run(table: Table) -> str | None:
    """The run id of the table's current snapshot, if a transform run made it."""
    snapshot = table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return None
    return snapshot.summary.additional_properties.get(RUN_PROPERTY)


def commit(
    table: Table,
    data: pa.Table,
    *,
    run_id: str,
    replace: BooleanExpression | None,
) -> None:
    """One snapshot: delete the rows `replace` selects (all rows for AlwaysTrue, none for
    None) and add `data`."""
    properties = {RUN_PROPERTY: run_id}
    data = (
        data.cast(table.schema().as_arrow()) if data.schema != table.schema().as_arrow() else data
    )
    with table.transaction() as tx, warnings.catch_warnings():
        # Replacing partitions that hold no rows yet is normal here, not worth a warning.
        warnings.filterwarnings("ignore", "Delete operation did not match any records")
        if replace is None or table.current_snapshot() is None:
            tx.append(data, snapshot_properties=properties)
        else:
            tx.overwrite(data, overwrite_filter=replace, snapshot_properties=properties)


def partition_filter(
    partition: Partition, values: Sequence[tuple[object, ...]]
) -> BooleanExpression:
    """The rows of the given partitions: `values` holds one tuple per partition, in the
    order of `partition`, each value the identity value or the first day of the month."""
    expression: BooleanExpression = AlwaysFalse()
    for value in values:
        terms = [
            _term(column, transform, v)
            for (column, transform), v in zip(partition, value, strict=True)
        ]
        conjunction = terms[0]
        for term in terms[1:]:
            conjunction = And(conjunction, term)
        expression = Or(expression, conjunction)
    return expression


def _term(column: str, transform: str, value: object) -> BooleanExpression:
    # Keyword arguments: PyIceberg's predicates are pydantic models, typed by their fields.
    term = Reference(column)
    if value is None:
        return IsNull(term=term)
    if transform == "identity":
        return EqualTo(term=term, value=literal(value))
    assert isinstance(value, date)
    start = datetime(value.year, value.month, 1, tzinfo=UTC)
    end = datetime(value.year + value.month // 12, value.month % 12 + 1, 1, tzinfo=UTC)
    return And(
        GreaterThanOrEqual(term=term, value=literal(start.isoformat())),
        LessThan(term=term, value=literal(end.isoformat())),
    )
