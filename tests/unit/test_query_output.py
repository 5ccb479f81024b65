"""How query results are printed: a table for people, CSV and JSON for scripts."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest
from rich.console import Console

from opencdp.cli.query import (
    DEFAULT_TABLE_ROWS,
    OutputFormat,
    json_keys,
    render_table,
    row_count_note,
    rows_to_show,
    text_value,
    write_csv,
    write_json,
)

RESULT = pa.table(
    {
        "id": pa.array([1, 2], pa.int64()),
        "email": ["ann@example.com", None],
        "total": pa.array([Decimal("10.50"), None], pa.decimal128(10, 2)),
        "seen_at": pa.array(
            [datetime(2025, 1, 15, 1, 0, tzinfo=UTC), None], pa.timestamp("us", tz="UTC")
        ),
        "external_ids": pa.array(
            [[("shopify", "7"), ("stripe", "cus_1")], None], pa.map_(pa.string(), pa.string())
        ),
        "tags": pa.array([["vip", "a,b"], []], pa.list_(pa.string())),
        "active": [True, False],
    }
)


@pytest.mark.parametrize(
    ("fmt", "limit", "expected"),
    [
        (OutputFormat.TABLE, None, DEFAULT_TABLE_ROWS),
        (OutputFormat.TABLE, 5, 5),
        (OutputFormat.CSV, None, None),
        (OutputFormat.JSON, None, None),
        (OutputFormat.JSONL, 0, 0),
    ],
)
def test_tables_are_capped_by_default_and_scripts_get_every_row(
    fmt: OutputFormat, limit: int | None, expected: int | None
) -> None:
    assert rows_to_show(fmt, limit) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        ("a,b", "a,b"),
        (True, "true"),
        (3, "3"),
        (1.5, "1.5"),
        (Decimal("10.50"), "10.50"),
        (date(2025, 1, 15), "2025-01-15"),
        (datetime(2025, 1, 15, 1, 0, tzinfo=UTC), "2025-01-15T01:00:00+00:00"),
        (timedelta(minutes=1), "60.0"),
        (b"\x00\xff", "AP8="),
        ({"shopify": "7"}, '{"shopify": "7"}'),
        (["vip"], '["vip"]'),
    ],
)
def test_cells_are_plain_text(value: object, expected: str) -> None:
    assert text_value(value) == expected


def test_csv_has_a_header_and_one_line_per_row() -> None:
    out = io.StringIO()
    write_csv(RESULT, out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows == [
        ["id", "email", "total", "seen_at", "external_ids", "tags", "active"],
        [
            "1",
            "ann@example.com",
            "10.50",
            "2025-01-15T01:00:00+00:00",
            '{"shopify": "7", "stripe": "cus_1"}',
            '["vip", "a,b"]',
            "true",
        ],
        ["2", "", "", "", "", "[]", "false"],
    ]


FIRST_ROW = {
    "id": 1,
    "email": "ann@example.com",
    "total": "10.50",
    "seen_at": "2025-01-15T01:00:00+00:00",
    "external_ids": {"shopify": "7", "stripe": "cus_1"},
    "tags": ["vip", "a,b"],
    "active": True,
}
SECOND_ROW = {
    "id": 2,
    "email": None,
    "total": None,
    "seen_at": None,
    "external_ids": None,
    "tags": [],
    "active": False,
}


def test_json_is_an_array_of_objects() -> None:
    out = io.StringIO()
    write_json(RESULT, out, lines=False)
    assert json.loads(out.getvalue()) == [FIRST_ROW, SECOND_ROW]


def test_json_lines_hold_one_object_per_line() -> None:
    out = io.StringIO()
    write_json(RESULT, out, lines=True)
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [FIRST_ROW, SECOND_ROW]


def test_json_of_no_rows_is_an_empty_array() -> None:
    out = io.StringIO()
    write_json(RESULT.slice(0, 0), out, lines=False)
    assert json.loads(out.getvalue()) == []


@pytest.mark.parametrize(
    ("names", "keys"),
    [
        (["a", "b"], ["a", "b"]),
        (["a", "a", "A"], ["a", "a_2", "A"]),
        (["a", "a_2", "a"], ["a", "a_2", "a_3"]),
    ],
)
def test_json_keys_are_unique(names: list[str], keys: list[str]) -> None:
    assert json_keys(names) == keys


def test_repeated_column_names_keep_every_value() -> None:
    result = pa.table([pa.array([1]), pa.array([2])], names=["a", "a"])
    out = io.StringIO()
    write_csv(result, out)
    assert out.getvalue() == "a,a\n1,2\n"
    out = io.StringIO()
    write_json(result, out, lines=True)
    assert json.loads(out.getvalue()) == {"a": 1, "a_2": 2}


def render(result: pa.Table) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(render_table(result))
    return out.getvalue()


def test_table_shows_headers_values_and_null() -> None:
    text = render(RESULT.select(["id", "email", "total"]))
    assert "email" in text
    assert "ann@example.com" in text
    assert "10.50" in text
    assert "NULL" in text


def test_table_prints_markup_in_the_data_literally() -> None:
    text = render(pa.table({"note": ["[bold]not bold[/bold]"]}))
    assert "[bold]not bold[/bold]" in text


@pytest.mark.parametrize(
    ("shown", "total", "expected"),
    [
        (0, 0, "0 rows"),
        (1, 1, "1 row"),
        (50, 50, "50 rows"),
        (50, 51, "1 more row (raise --limit, or use --format csv)"),
        (50, 1234, "1184 more rows (raise --limit, or use --format csv)"),
    ],
)
def test_the_note_under_a_table_counts_rows_left_out(shown: int, total: int, expected: str) -> None:
    assert row_count_note(shown, total) == expected
