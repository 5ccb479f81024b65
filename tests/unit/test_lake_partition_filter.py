"""The filter that selects the partitions an incremental commit replaces."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa
from pyiceberg.expressions import visitors
from pyiceberg.io.pyarrow import expression_to_pyarrow, pyarrow_to_schema
from pyiceberg.table.name_mapping import MappedField, NameMapping
from pyiceberg.transforms import IdentityTransform, MonthTransform, YearTransform

from opencdp.lake.commit import _period_runs, granularity, partition_filter, period_start

ROWS = pa.table(
    {
        "provider": ["shop", "stripe", "crm", None, "web"],
        "created_at": pa.array(
            [
                datetime(2024, 1, 31, 23, 59, tzinfo=UTC),
                datetime(2024, 2, 1, tzinfo=UTC),
                datetime(2024, 4, 15, tzinfo=UTC),
                None,
                datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC),
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
    assert _period_runs(months, "month") == [
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


def test_consecutive_years_become_one_range() -> None:
    years = [date(2025, 1, 1), date(2022, 1, 1), date(2023, 1, 1)]
    assert _period_runs(years, "year") == [
        (date(2022, 1, 1), date(2024, 1, 1)),
        (date(2025, 1, 1), date(2026, 1, 1)),
    ]


def test_year_partitions_select_their_rows_and_nothing_else() -> None:
    assert selected(partition_filter((("created_at", "year"),), [(date(2024, 1, 1),)])) == [0, 1, 2]
    assert selected(partition_filter((("created_at", "year"),), [(date(2023, 1, 1),)])) == [4]
    both = partition_filter((("created_at", "year"),), [(date(2024, 1, 1),), (date(2023, 1, 1),)])
    assert selected(both) == [0, 1, 2, 4]


def test_partition_values_become_the_first_day_of_their_period() -> None:
    # Iceberg stores years and months since 1970.
    assert period_start(YearTransform(), 54) == date(2024, 1, 1)
    assert period_start(MonthTransform(), 54 * 12 + 1) == date(2024, 2, 1)
    assert period_start(YearTransform(), None) is None
    assert [granularity(t) for t in (YearTransform(), MonthTransform(), IdentityTransform())] == [
        "year",
        "month",
        "identity",
    ]
