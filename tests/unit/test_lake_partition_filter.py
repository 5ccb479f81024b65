"""The filter that selects the partitions an incremental commit replaces."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa
from pyiceberg.expressions import visitors
from pyiceberg.io.pyarrow import expression_to_pyarrow, pyarrow_to_schema
from pyiceberg.table.name_mapping import MappedField, NameMapping

from opencdp.lake.commit import _month_runs, partition_filter

ROWS = pa.table(
    {
        "provider": ["shop", "stripe", "crm", None],
        "created_at": pa.array(
            [
                datetime(2024, 1, 31, 23, 59, tzinfo=UTC),
                datetime(2024, 2, 1, tzinfo=UTC),
                datetime(2024, 4, 15, tzinfo=UTC),
                None,
            ],
            pa.timestamp("us", tz="UTC"),
        ),
    }
)
SCHEMA = pyarrow_to_schema(
    ROWS.schema,
    name_mapping=NameMapping(
        [MappedField(field_id=1, names=["provider"]), MappedField(field_id=2, names=["created_at"])]
    ),
)


def selected(expression: object) -> list[int]:
    bound = visitors.bind(SCHEMA, expression, case_sensitive=True)  # type: ignore[arg-type]
    mask = ROWS.filter(expression_to_pyarrow(bound))
    return [
        ROWS.column("provider").to_pylist().index(p) if p else 3
        for p in mask.column("provider").to_pylist()
    ]


def test_consecutive_months_become_one_range() -> None:
    months = [date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1), date(2024, 12, 1)]
    assert _month_runs(months) == [
        (date(2024, 1, 1), date(2024, 4, 1)),
        (date(2024, 12, 1), date(2025, 1, 1)),
    ]


def test_month_partitions_select_their_rows_and_nothing_else() -> None:
    assert selected(partition_filter((("created_at", "month"),), [(date(2024, 1, 1),)])) == [0]
    both = partition_filter((("created_at", "month"),), [(date(2024, 2, 1),), (date(2024, 1, 1),)])
    assert selected(both) == [0, 1]
    assert selected(partition_filter((("created_at", "month"),), [(None,)])) == [3]


def test_identity_partitions_select_their_values() -> None:
    expression = partition_filter((("provider", "identity"),), [("crm",), ("shop",)])
    assert selected(expression) == [0, 2]
    assert selected(partition_filter((("provider", "identity"),), [])) == []
