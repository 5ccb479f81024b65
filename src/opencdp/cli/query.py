"""`opencdp query`: read-only SQL over a tenant's curated tables, for people or scripts."""

from __future__ import annotations

import base64
import csv
import json
import sys
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from opencdp.cli.context import settings_of

if TYPE_CHECKING:
    import pyarrow as pa

# Rows a terminal table shows when --limit is not given; scripts get every row by default.
DEFAULT_TABLE_ROWS = 50


class OutputFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"
    JSONL = "jsonl"


def rows_to_show(fmt: OutputFormat, limit: int | None) -> int | None:
    """How many rows to print; None for all of them."""
    if limit is None and fmt is OutputFormat.TABLE:
        return DEFAULT_TABLE_ROWS
    return limit


def iter_rows(result: pa.Table) -> Iterator[list[Any]]:
    """Rows as lists: a result may repeat a column name (SELECT 1 AS a, 2 AS a)."""
    for batch in result.to_batches():
        # Maps (e.g. external_ids) become dicts, not lists of key/value pairs.
        columns = [column.to_pylist(maps_as_pydicts="lossy") for column in batch.columns]
        yield from (list(row) for row in zip(*columns, strict=True))


def json_keys(names: list[str]) -> list[str]:
    """Column names made unique for JSON objects: a repeated name gets _2, _3, ..."""
    keys: list[str] = []
    for name in names:
        key, n = name, 1
        while key in keys:
            n += 1
            key = f"{name}_{n}"
        keys.append(key)
    return keys


def json_value(value: Any) -> Any:
    """`json.dumps(default=...)`: the JSON form of values JSON has no type for."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # exact: a float would round amounts of money
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


def text_value(value: Any) -> str:
    """A value as one CSV or table cell: nested values as JSON, NULL as ""."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list | tuple):
        return _dumps(value)
    if isinstance(value, int | float):
        return str(value)
    return str(json_value(value))


def write_csv(result: pa.Table, out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(result.column_names)
    for row in iter_rows(result):
        writer.writerow([text_value(value) for value in row])


def write_json(result: pa.Table, out: TextIO, *, lines: bool) -> None:
    """A JSON array of objects, or one object per line (JSON Lines) when `lines`."""
    keys = json_keys(result.column_names)
    objects = (_dumps(dict(zip(keys, row, strict=True))) for row in iter_rows(result))
    if lines:
        for obj in objects:
            out.write(obj + "\n")
        return
    out.write("[")
    for i, obj in enumerate(objects):
        out.write(("," if i else "") + "\n" + obj)
    out.write("\n]\n")


def render_table(result: pa.Table) -> Table:
    table = Table()
    # Text cells, not strings: rich would read "[...]" in the data as markup.
    for name in result.column_names:
        table.add_column(Text(name))
    for row in iter_rows(result):
        table.add_row(
            *(Text("NULL", style="dim") if v is None else Text(text_value(v)) for v in row)
        )
    return table


def row_count_note(shown: int, total: int) -> str:
    """The line under a table: how many rows there are, or how many it leaves out."""
    if hidden := total - shown:
        return f"{hidden} more {_rows(hidden)} (raise --limit, or use --format csv)"
    return f"{total} {_rows(total)}"


def print_result(result: pa.Table, fmt: OutputFormat, limit: int | None) -> None:
    total_rows = result.num_rows
    shown = rows_to_show(fmt, limit)
    if shown is not None:
        result = result.slice(0, shown)
    if fmt is OutputFormat.TABLE:
        console = Console(file=sys.stdout)
        console.print(render_table(result))
        console.print(row_count_note(result.num_rows, total_rows), style="dim")
    elif fmt is OutputFormat.CSV:
        write_csv(result, sys.stdout)
    else:
        write_json(result, sys.stdout, lines=fmt is OutputFormat.JSONL)


def _rows(n: int) -> str:
    return "row" if n == 1 else "rows"


def _dumps(value: Any) -> str:
    return json.dumps(value, default=json_value, ensure_ascii=False)


def register(app: typer.Typer) -> None:
    @app.command("query")
    def query(
        ctx: typer.Context,
        sql: Annotated[
            str, typer.Argument(help="One SELECT query over the tenant's tables; - reads stdin.")
        ],
        tenant: Annotated[str, typer.Option(help="The tenant whose tables are queried.")],
        fmt: Annotated[
            OutputFormat,
            typer.Option("--format", help="table for people; csv, json or jsonl for scripts."),
        ] = OutputFormat.TABLE,
        limit: Annotated[
            int | None,
            typer.Option(
                min=0,
                help=f"Print at most N rows (default: {DEFAULT_TABLE_ROWS} for table, all "
                "for the others).",
                show_default=False,
            ),
        ] = None,
    ) -> None:
        """Run read-only SQL (DuckDB dialect) over a tenant's curated Iceberg tables."""
        # Imported here so that other commands start without the query stack.
        from opencdp.engine.query import run_query
        from opencdp.lake import open_catalog

        settings = settings_of(ctx)
        if sql == "-":
            sql = sys.stdin.read()
        with open_catalog(settings) as catalog:
            result = run_query(catalog, tenant, sql)
        print_result(result, fmt, limit)
