"""Splitting rows by partition for writing: the same partitions and rows as PyIceberg's own
split, whatever the rows' order, with nulls, on one field or two."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from pyiceberg.io.pyarrow import _determine_partitions, pyarrow_to_schema
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.name_mapping import MappedField, NameMapping
from pyiceberg.transforms import IdentityTransform, MonthTransform, YearTransform

from opencdp.lake.writer import partitions

START = datetime(2023, 11, 20, tzinfo=UTC)


def rows(n: int, *, grouped: bool) -> pa.Table:
    """n rows over ~8 months and 3 providers (some of both null), shuffled or in month
    order (as rows read back from a month-partitioned table come)."""
    shuffle = random.Random(7)
    days = [shuffle.randrange(240) for _ in range(n)]
    created = [None if i % 17 == 0 else START + timedelta(days=d) for i, d in enumerate(days)]
    names = [shuffle.choice(["shop", "stripe", "crm"]) for _ in range(n)]
    providers = [None if i % 13 == 0 else name for i, name in enumerate(names)]
    table = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "provider": pa.array(providers, pa.string()),
            "created_at": pa.array(created, pa.timestamp("us", tz="UTC")),
        }
    )
    return table.sort_by([("created_at", "ascending")]) if grouped else table


def schema_of(table: pa.Table) -> Schema:
    fields = [MappedField(field_id=i + 1, names=[n]) for i, n in enumerate(table.column_names)]
    return pyarrow_to_schema(table.schema, name_mapping=NameMapping(fields))


def spec(*fields: str) -> PartitionSpec:
    made = {
        "month": PartitionField(3, 1000, MonthTransform(), "created_at_month"),
        "year": PartitionField(3, 1000, YearTransform(), "created_at_year"),
        "provider": PartitionField(2, 1001, IdentityTransform(), "provider"),
    }
    return PartitionSpec(*(made[f] for f in fields))


@pytest.mark.parametrize("fields", [("month",), ("year",), ("provider",), ("provider", "month")])
@pytest.mark.parametrize("grouped", [False, True])
def test_the_same_split_as_pyiceberg(fields: tuple[str, ...], grouped: bool) -> None:
    table = rows(500, grouped=grouped)
    schema, partition_spec = schema_of(table), spec(*fields)
    ours = [
        (tuple(v.value for v in key.field_values), part.column("id").to_pylist())
        for key, part in partitions(partition_spec, schema, table)
    ]
    theirs = [
        (
            tuple(v.value for v in p.partition_key.field_values),
            p.arrow_table_partition.column("id").to_pylist(),
        )
        for p in _determine_partitions(partition_spec, schema, table)
    ]
    assert len(ours) == len(dict(ours)), "each partition comes once"
    assert dict(ours) == dict(theirs)  # partition values -> its rows' ids, in order
    assert any(None in key for key, _ in ours), "the null partition is one of them"
    assert sum(len(ids) for _, ids in ours) == table.num_rows


def test_rows_in_partition_order_are_sliced_not_copied() -> None:
    table = rows(300, grouped=True).combine_chunks()
    schema = schema_of(table)
    parts = list(partitions(spec("month"), schema, table))
    ids = table.column("id").chunk(0)
    for _, part in parts:
        # A slice shares the table's buffers: its ids start inside the table's.
        (chunk,) = part.column("id").chunks
        assert chunk.buffers()[1].address >= ids.buffers()[1].address
        assert chunk.buffers()[1].address < ids.buffers()[1].address + ids.buffers()[1].size
    assert [i for _, part in parts for i in part.column("id").to_pylist()] == ids.to_pylist()


def test_no_rows_make_no_partitions() -> None:
    table = rows(0, grouped=False)
    assert list(partitions(spec("provider", "month"), schema_of(table), table)) == []
