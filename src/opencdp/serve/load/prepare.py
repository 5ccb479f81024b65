"""Rows of the contract's schema made ready for PostgreSQL's COPY: nested columns become
JSON text (jsontext.py), timestamps with a zone text in UTC with the `Z` offset, and the
NUL character, which PostgreSQL text and jsonb cannot hold, is dropped.

Column-wise work only (pyarrow compute); Python touches a value only in the rare JSON
document that escapes a NUL.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from opencdp.serve.load.jsontext import min_byte, to_json
from opencdp.serve.tables import ServedTable, is_nested

NUL = "\x00"
_JSON_NUL = "\\u0000"
# A \u0000 escape and the backslashes before it: an even number of them leaves the escape
# standing, an odd number escapes its backslash (the text "\u0000", not a NUL).
_JSON_NUL_ESCAPE = re.compile(r"(\\*)\\u0000")


def quote(identifier: str) -> str:
    """A DuckDB identifier."""
    return '"' + identifier.replace('"', '""') + '"'


def prepared_schema(served: ServedTable) -> pa.Schema:
    """The schema of prepared rows: jsonb and timestamptz columns as text."""
    return pa.schema(
        pa.field(f.name, pa.string(), f.nullable) if _as_text(f.type) else f for f in served.schema
    )


def _as_text(kind: pa.DataType) -> bool:
    return is_nested(kind) or (pa.types.is_timestamp(kind) and kind.tz is not None)


class Preparer:
    """Turns rows of `served`'s schema into COPY-ready rows (`prepared_schema`)."""

    def __init__(self, served: ServedTable) -> None:
        self.schema = prepared_schema(served)
        kinds = {f.name: f.type for f in served.schema}
        self._nested = tuple(c for c in served.columns if is_nested(kinds[c]))
        self._zoned = tuple(
            c for c in served.columns if pa.types.is_timestamp(kinds[c]) and kinds[c].tz
        )
        self._json = tuple(sorted(served.json_text))
        self._text = tuple(
            c for c in served.columns if pa.types.is_string(kinds[c]) and c not in served.json_text
        )

    def __call__(self, rows: pa.Table) -> pa.Table:
        for column in self._text:
            rows = _replace(rows, column, without_nul(rows.column(column)))
        for column in self._nested:
            rows = _replace(rows, column, to_json(rows.column(column)))
        for column in self._json:
            rows = _replace(rows, column, json_without_nul(rows.column(column)))
        for column in self._zoned:
            rows = _replace(rows, column, utc_text(rows.column(column)))
        return rows.cast(self.schema)


def prepare_all(prepare: Preparer, rows: pa.Table, slice_rows: int = 50_000) -> pa.Table:
    """All of `rows` prepared, a slice at a time (faster than at once: the arrays made on
    the way stay small)."""
    parts = [prepare(rows.slice(i, slice_rows)) for i in range(0, rows.num_rows, slice_rows)]
    return pa.concat_tables(parts) if parts else prepare.schema.empty_table()


def utc_text(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Timestamps with a zone as `YYYY-MM-DD HH:MM:SS.ffffffZ` (formatting the naive UTC
    values skips the time zone database, many times faster)."""
    unit = values.type.unit
    naive = values.cast(pa.timestamp(unit, "UTC")).cast(pa.timestamp(unit))
    return pc.binary_join_element_wise(naive.cast(pa.string()), "Z", "")


def _replace(rows: pa.Table, column: str, values: pa.ChunkedArray | pa.Array) -> pa.Table:
    index = rows.schema.get_field_index(column)
    return rows.set_column(index, pa.field(column, values.type), values)


def without_nul(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Text without NUL characters (PostgreSQL text cannot hold them)."""
    if not any(min_byte(chunk) == 0 for chunk in values.chunks):
        return values
    return pc.replace_substring(values, NUL, "")


def json_without_nul(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """JSON text without NUL characters, raw or escaped as \\u0000 (jsonb refuses both)."""
    values = without_nul(values)
    if values.null_count == len(values):
        return values
    hits = pc.match_substring(values, _JSON_NUL)
    if not pc.any(hits).as_py():
        return values
    mask = hits.combine_chunks()
    fixed = [drop_nul_escapes(v) for v in pc.filter(values, mask).to_pylist()]
    combined = values.combine_chunks()
    return pa.chunked_array([pc.replace_with_mask(combined, mask, pa.array(fixed, pa.string()))])


def drop_nul_escapes(document: str) -> str:
    """A JSON text with its \\u0000 escapes removed (an escaped backslash followed by
    "u0000" is text, and stays)."""

    def drop(match: re.Match[str]) -> str:
        slashes = match.group(1)
        return slashes if len(slashes) % 2 == 0 else match.group(0)

    return _JSON_NUL_ESCAPE.sub(drop, document)
