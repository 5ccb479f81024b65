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
from typing import Any

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
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.transforms import IdentityTransform, MonthTransform, Transform, YearTransform

from opencdp.lake.tables import table_identifier
from opencdp.lake.writer import add_rows

RUN_PROPERTY = "opencdp.run-id"

Partition = tuple[tuple[str, str], ...]  # (column, "identity" | "year" | "month")
# The time granularities a timestamp column is partitioned by, and their Iceberg transforms.
TIME_TRANSFORMS: dict[str, type[YearTransform[Any]] | type[MonthTransform[Any]]] = {
    "year": YearTransform,
    "month": MonthTransform,
}


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
                    if transform in TIME_TRANSFORMS:
                        spec.add_field(
                            column, TIME_TRANSFORMS[transform](), f"{column}_{transform}"
                        )
                    else:
                        spec.add_field(column, IdentityTransform(), column)
        return table
    with table.update_schema() as update:
        update.union_by_name(schema)
    return table


# Identity resolution only restamps profile ids on rows a transform run wrote: its commits
# follow that run (undoing the run undoes them too), under run ids with this prefix.
FOLLOW_UP_PREFIX = "identity-"


def run_of(snapshot: Snapshot) -> str | None:
    return snapshot.summary.additional_properties.get(RUN_PROPERTY) if snapshot.summary else None


def is_follow_up(run_id: str | None) -> bool:
    return run_id is not None and run_id.startswith(FOLLOW_UP_PREFIX)


def last_run(table: Table) -> str | None:
    """The id of the transform run that made the table's current snapshot, looking past
    the follow-up commits of identity resolution."""
    snapshot = table.current_snapshot()
    while snapshot is not None and is_follow_up(run_of(snapshot)):
        parent = snapshot.parent_snapshot_id
        snapshot = table.snapshot_by_id(parent) if parent is not None else None
    return run_of(snapshot) if snapshot is not None else None


def commit(
    table: Table,
    data: pa.Table,
    *,
    run_id: str,
    replace: BooleanExpression | None,
) -> None:
    """One catalog transaction: delete the rows `replace` selects (all rows for AlwaysTrue,
    none for None) and add `data`."""
    properties = {RUN_PROPERTY: run_id}
    with table.transaction() as tx, warnings.catch_warnings():
        # Replacing partitions that hold no rows yet is normal here, not worth a warning.
        warnings.filterwarnings("ignore", "Delete operation did not match any records")
        if replace is not None and table.current_snapshot() is not None:
            tx.delete(replace, snapshot_properties=properties)
        # As PyIceberg's overwrite does (a delete, then an append), with our writer.
        with tx.update_snapshot(snapshot_properties=properties).fast_append() as append:
            add_rows(tx, append, table, data)


def partition_filter(
    partition: Partition, values: Sequence[tuple[object, ...]]
) -> BooleanExpression:
    """The rows of the given partitions: `values` holds one tuple per partition, in the
    order of `partition`, each value the identity value or the first day of the year or
    month. On one column the filter stays small however many partitions it names:
    consecutive periods become one range, identity values one IN list."""
    if len(partition) == 1:
        (column, transform) = partition[0]
        present = sorted({v[0] for v in values if v[0] is not None}, key=repr)
        terms: list[BooleanExpression] = []
        if any(v[0] is None for v in values):
            terms.append(IsNull(term=Reference(column)))
        if transform == "identity":
            # Identity partitions are on text columns (provider), a handful of values.
            terms += [EqualTo(term=Reference(column), value=literal(str(v))) for v in present]
        else:
            runs = _period_runs(present, transform)
            terms += [_between(column, start, end) for start, end in runs]
        return _any(terms)
    return _any(
        [
            _all([_term(c, t, v) for (c, t), v in zip(partition, value, strict=True)])
            for value in values
        ]
    )


def _period_runs(periods: Sequence[object], granularity: str) -> list[tuple[date, date]]:
    """Runs of consecutive periods (their first days) as [first day, first day after)."""
    runs: list[tuple[date, date]] = []
    for period in sorted(p for p in periods if isinstance(p, date)):
        following = _next_period(period, granularity)
        if runs and runs[-1][1] == period:
            runs[-1] = (runs[-1][0], following)
        else:
            runs.append((period, following))
    return runs


def _next_period(day: date, granularity: str) -> date:
    if granularity == "year":
        return date(day.year + 1, 1, 1)
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def period_start(transform: Transform[Any, Any], value: int | None) -> date | None:
    """A time partition's value (years or months since 1970) as the first day of its
    period, as `partition_filter` takes it."""
    if value is None:
        return None
    if isinstance(transform, YearTransform):
        return date(1970 + value, 1, 1)
    return date(1970 + value // 12, value % 12 + 1, 1)


def granularity(transform: Transform[Any, Any]) -> str:
    """The name `Partition` gives a partition field's transform."""
    for name, kind in TIME_TRANSFORMS.items():
        if isinstance(transform, kind):
            return name
    return "identity"


def _between(column: str, start: date, end: date) -> BooleanExpression:
    # Keyword arguments: PyIceberg's predicates are pydantic models, typed by their fields.
    term = Reference(column)
    return And(
        GreaterThanOrEqual(term=term, value=literal(_utc(start))),
        LessThan(term=term, value=literal(_utc(end))),
    )


def _utc(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat()


def _term(column: str, transform: str, value: object) -> BooleanExpression:
    if value is None:
        return IsNull(term=Reference(column))
    if transform == "identity":
        return EqualTo(term=Reference(column), value=literal(value))
    assert isinstance(value, date)
    return _between(column, value, _next_period(value, transform))


def _any(terms: Sequence[BooleanExpression]) -> BooleanExpression:
    expression: BooleanExpression = AlwaysFalse()
    for term in terms:
        expression = Or(expression, term)
    return expression


def _all(terms: Sequence[BooleanExpression]) -> BooleanExpression:
    expression = terms[0]
    for term in terms[1:]:
        expression = And(expression, term)
    return expression
