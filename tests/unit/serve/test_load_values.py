"""Values on their way to COPY: JSON text from Arrow, rows prepared for PostgreSQL, CSV
chunks, the row diff and the key checksum (DuckDB in process, no server)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from opencdp.engine.base import Engine
from opencdp.engine.duckdb_engine import DuckDBEngine
from opencdp.serve.load.checks import KeyChecksum
from opencdp.serve.load.copy import csv_chunks
from opencdp.serve.load.jsontext import min_byte, to_json
from opencdp.serve.load.prepare import (
    Preparer,
    drop_nul_escapes,
    json_without_nul,
    prepared_schema,
    utc_text,
    without_nul,
)
from opencdp.serve.load.snapshots import row_diff
from opencdp.serve.tables import SERVED

T = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with DuckDBEngine(workers=1) as e:
        yield e


def _json(values: pa.Array) -> list[Any]:
    return [None if v is None else json.loads(v) for v in to_json(values).to_pylist()]


def test_scalars_as_json() -> None:
    assert to_json(pa.array(["a", "", None, 'q"\\\n\t\x01é😀'])).to_pylist() == [
        '"a"', '""', None, '"q\\"\\\\\\n\\t\\u0001é😀"',
    ]  # fmt: skip
    assert to_json(pa.array([1, None, -(2**63)])).to_pylist() == ["1", None, "-9223372036854775808"]
    assert to_json(pa.array([0.1, float("nan"), float("inf"), None])).to_pylist() == [
        "0.1", None, None, None,
    ]  # fmt: skip
    assert to_json(pa.array([True, False, None])).to_pylist() == ["true", "false", None]
    amounts = pa.array([Decimal("1.2300"), Decimal("-0.0001")], pa.decimal128(18, 4))
    assert to_json(amounts).to_pylist() == ["1.2300", "-0.0001"]
    assert to_json(pa.array([T, None], pa.timestamp("us", tz="UTC"))).to_pylist() == [
        '"2025-01-02T03:04:05.678901Z"', None,
    ]  # fmt: skip
    assert to_json(pa.array([T.replace(tzinfo=None)], pa.timestamp("us"))).to_pylist() == [
        '"2025-01-02T03:04:05.678901"'
    ]
    assert to_json(pa.array([date(1, 1, 1), date(9999, 12, 31)])).to_pylist() == [
        '"0001-01-01"', '"9999-12-31"',
    ]  # fmt: skip


def test_nul_is_dropped_from_json_strings() -> None:
    assert to_json(pa.array(["a\x00b"])).to_pylist() == ['"ab"']


def test_a_map_is_an_object_a_struct_an_object_a_list_an_array() -> None:
    lineage = pa.map_(
        pa.string(), pa.struct([("provider", pa.string()), ("at", pa.timestamp("us", "UTC"))])
    )
    maps = pa.array(
        [[("email", {"provider": "crm", "at": T}), ("na\"me", {"provider": None, "at": None})],
         None, [], [("k", None)]],
        lineage,
    )  # fmt: skip
    assert _json(maps) == [
        {"email": {"provider": "crm", "at": "2025-01-02T03:04:05.678901Z"},
         'na"me': {"provider": None, "at": None}},
        None, {}, {"k": None},
    ]  # fmt: skip
    lists = pa.array([["a", None], None, [], ["\n"]], pa.list_(pa.string()))
    assert _json(lists) == [["a", None], None, [], ["\n"]]
    nested = pa.array([[[1, 2], []], [None]], pa.list_(pa.list_(pa.int64())))
    assert _json(nested) == [[[1, 2], []], [None]]
    structs = pa.array(
        [{"a": Decimal("1.50"), "b": [True]}, None, {"a": None, "b": None}],
        pa.struct([("a", pa.decimal128(10, 2)), ("b", pa.list_(pa.bool_()))]),
    )
    assert to_json(structs).to_pylist() == ['{"a":1.50,"b":[true]}', None, '{"a":null,"b":null}']
    assert to_json(pa.array([{}, None], pa.struct([]))).to_pylist() == ["{}", None]


def test_slices_of_nested_arrays_keep_their_own_values() -> None:
    maps = pa.array(
        [[("a", "1")], [("b", "2"), ("c", None)], None, [("d", "4")]],
        pa.map_(pa.string(), pa.string()),
    )
    assert _json(maps.slice(1, 2)) == [{"b": "2", "c": None}, None]
    assert _json(maps.slice(3)) == [{"d": "4"}]
    structs = pa.array([{"x": "1"}, None, {"x": "3"}], pa.struct([("x", pa.string())]))
    assert _json(structs.slice(1)) == [None, {"x": "3"}]
    chunked = pa.chunked_array([maps.slice(0, 1), maps.slice(3)])
    assert _json(chunked) == [{"a": "1"}, {"d": "4"}]


def test_min_byte_sees_control_characters_only_in_the_values() -> None:
    assert min_byte(pa.array(["ab", "é"])) == ord("a")
    assert min_byte(pa.array(["\x01", "ab"]).slice(1)) == ord("a")
    assert min_byte(pa.array(["a\tb"])) == 9
    assert min_byte(pa.array([None, ""], pa.string())) is None


def test_text_and_json_text_lose_nul_characters() -> None:
    text = pa.chunked_array([pa.array(["a\x00b", None, ""]), pa.array(["c"])])
    assert without_nul(text).to_pylist() == ["ab", None, "", "c"]
    clean = pa.chunked_array([pa.array(["x"])])
    assert without_nul(clean) is clean
    docs = pa.chunked_array([pa.array(['{"a":"x\\u0000y"}', '{"a":"\\\\u0000"}', None, "{}"])])
    assert json_without_nul(docs).to_pylist() == ['{"a":"xy"}', '{"a":"\\\\u0000"}', None, "{}"]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ('"\\u0000"', '""'),
        ('"\\\\u0000"', '"\\\\u0000"'),  # an escaped backslash, then the text u0000
        ('"\\\\\\u0000"', '"\\\\"'),  # an escaped backslash, then a NUL
        ('"\\u0000\\u0000a"', '"a"'),
        ('{"\\u0000k": 1}', '{"k": 1}'),
    ],
)
def test_nul_escapes(document: str, expected: str) -> None:
    assert drop_nul_escapes(document) == expected
    json.loads(expected)


def test_utc_text_has_an_explicit_offset() -> None:
    values = pa.chunked_array([pa.array([T, None], pa.timestamp("us", tz="UTC"))])
    assert utc_text(values).to_pylist() == ["2025-01-02 03:04:05.678901Z", None]
    paris = pa.chunked_array(
        [pa.array([T], pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us", "Europe/Paris"))]
    )
    assert utc_text(paris).to_pylist() == ["2025-01-02 03:04:05.678901Z"]  # the same instant


def test_prepared_rows_have_json_and_timestamps_as_text() -> None:
    customers = SERVED["customers"]
    row = {
        "provider": "crm", "source_id": "1", "email": "", "first_name": 'A "b"\nc',
        "external_ids": [("crm", "1")], "consent": {"email": "granted", "updated_at": T},
        "created_at": T, "_quality_flags": ["x"], "total_revenue": Decimal("2.5000"),
    }  # fmt: skip
    rows = pa.Table.from_pylist([row], schema=customers.schema)
    prepared = Preparer(customers)(rows)
    assert prepared.schema == prepared_schema(customers)
    out = prepared.to_pylist()[0]
    assert out["email"] == ""
    assert out["last_name"] is None
    assert json.loads(out["external_ids"]) == {"crm": "1"}
    assert json.loads(out["consent"]) == {
        "email": "granted", "sms": None, "ads": None, "updated_at": "2025-01-02T03:04:05.678901Z",
    }  # fmt: skip
    assert out["created_at"] == "2025-01-02 03:04:05.678901Z"
    assert out["total_revenue"] == Decimal("2.5000")


def test_csv_keeps_null_apart_from_the_empty_string() -> None:
    rows = pa.table({
        "s": pa.array(["a", "", None, 'q"u,o\nte', "é"]),
        "n": pa.array([1, None, 3, 4, 5]),
        "d": pa.array(
            [Decimal("1.2300"), None, Decimal("0"), Decimal("-1"), None], pa.decimal128(18, 4)
        ),
        "b": pa.array([True, False, None, True, False]),
    })  # fmt: skip
    [(chunk, count)] = list(csv_chunks(rows))
    assert count == 5
    assert chunk.to_pybytes().decode() == (
        '"a",1,1.2300,true\n"",,,false\n,3,0.0000,\n"q""u,o\nte",4,-1.0000,true\n"é",5,,false\n'
    )


def test_csv_comes_in_chunks_of_about_the_size_asked() -> None:
    rows = pa.table({"s": pa.array([f"row {i}" for i in range(1000)])})
    chunks = list(csv_chunks(rows, chunk_bytes=1000))
    assert len(chunks) > 5
    assert sum(count for _, count in chunks) == 1000
    text = b"".join(chunk.to_pybytes() for chunk, _ in chunks).decode()
    assert text.splitlines() == [f'"row {i}"' for i in range(1000)]
    assert list(csv_chunks(rows.slice(0, 0))) == []


def test_row_diff_sends_only_changed_rows_and_deletes_keys_that_went(engine: Engine) -> None:
    schema = pa.schema([("k", pa.string()), ("v", pa.string()), ("n", pa.int64())])
    removed = pa.Table.from_pylist(
        [{"k": "same", "v": None, "n": 1}, {"k": "changed", "v": "a", "n": 2},
         {"k": "gone", "v": "x", "n": 3}, {"k": "nulled", "v": "y", "n": 4}],
        schema,
    )  # fmt: skip
    added = pa.Table.from_pylist(
        [{"k": "new", "v": "n", "n": 0}, {"k": "same", "v": None, "n": 1},
         {"k": "changed", "v": "b", "n": 2}, {"k": "nulled", "v": None, "n": 4}],
        schema,
    )  # fmt: skip
    rows, keys = row_diff(engine, added, removed, ("k",))
    assert added.take(rows).column("k").to_pylist() == ["new", "changed", "nulled"]
    assert keys.to_pylist() == [{"k": "gone"}]
    rows, keys = row_diff(engine, added, schema.empty_table(), ("k",))
    assert rows.to_pylist() == [0, 1, 2, 3]
    assert keys.num_rows == 0


def test_key_checksum_is_the_sum_of_md5_prefixes(engine: Engine) -> None:
    items = SERVED["order_items"]
    keys = [("shopify", "o1", "1"), ("shopify", "o1", "2"), ("crm", "ü", "x")]
    rows = pa.Table.from_pylist(
        [dict(zip(items.key, k, strict=True)) for k in keys],
        schema=pa.schema([items.schema.field(c) for c in items.key]),
    )
    checksum = KeyChecksum(engine, items)
    checksum.add(rows.slice(0, 2))
    checksum.add(rows.slice(2))
    checksum.add(rows.slice(0, 0))
    expected = sum(
        int(hashlib.md5("\x1f".join(k).encode()).hexdigest()[:15], 16)  # noqa: S324 - a checksum
        for k in keys
    )
    assert (checksum.rows, checksum.checksum) == (3, expected)


def test_row_diff_compares_nested_values_as_read(engine: Engine) -> None:
    lineage = pa.struct([("provider", pa.string()), ("rule", pa.string())])
    schema = pa.schema([
        ("k", pa.string()),
        ("ids", pa.map_(pa.string(), pa.string())),
        ("lineage", pa.map_(pa.string(), lineage)),
        ("sources", pa.list_(pa.string())),
        ("amount", pa.decimal128(18, 4)),
    ])  # fmt: skip

    def row(k: str, rule: str = "most_recent", source: str = "crm") -> dict[str, Any]:
        return {"k": k, "ids": [("crm", "1")], "lineage": [("email", {"provider": "crm",
                "rule": rule})], "sources": [source, "shop"], "amount": Decimal("1.5")}  # fmt: skip

    removed = pa.Table.from_pylist([row("same"), row("rule"), row("list")], schema)
    added = pa.Table.from_pylist(
        [row("same"), row("rule", rule="source_priority"), row("list", source="web")], schema
    )
    rows, keys = row_diff(engine, added, removed, ("k",))
    assert added.take(rows).column("k").to_pylist() == ["rule", "list"]
    assert keys.num_rows == 0
