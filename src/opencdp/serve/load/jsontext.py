"""Arrow values as JSON text, computed column-wise with pyarrow compute (no Python loop
over rows): a struct an object, a map an object keyed by its (string) keys, a list an
array, timestamps ISO 8601 strings (UTC ones ending in Z), dates ISO strings, decimals
numbers with their exact digits, NaN and infinities null (JSON has no such numbers). NUL
characters in strings are dropped: PostgreSQL's jsonb cannot hold them.

A null value gives a null (SQL NULL in PostgreSQL); a null inside a document is JSON null.
A document is built by one element-wise concatenation of its parts wherever no null
is in the way, and strings are escaped only when they hold something to escape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

Part: TypeAlias = "pa.Array | str"

# The escapes JSON has short forms for; other control characters become \u00XX, but NUL,
# which jsonb refuses, is dropped.
_ESCAPES = {"\x00": "", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_QUOTE, _BACKSLASH = ord('"'), ord("\\")


def to_json(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Each value of `values` as JSON text (a string array of the same length)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if values.type == pa.null():
        return pa.nulls(len(values), pa.string())
    if pa.types.is_struct(values.type) and values.type.num_fields == 0:
        return _null_where(values, pa.array(["{}"] * len(values), pa.string()))
    if pa.types.is_struct(values.type) or _is_string(values.type):
        return _null_where(values, _concat(_parts(values)))
    for matches, encode in _ENCODERS:
        if matches(values.type):
            return encode(values)
    raise TypeError(f"no JSON encoding for Arrow type {values.type}")


def _parts(values: pa.Array) -> list[Part]:
    """Parts whose element-wise concatenation is the JSON of `values`, for the rows where
    the value is not null (a null inside is JSON null)."""
    if _is_string(values.type):
        return ['"', escaped(values), '"']
    if pa.types.is_struct(values.type):
        kind = values.type
        parts: list[Part] = ["{"]
        for i, child in enumerate(values.flatten()):  # the parent's offset applied
            name = kind.field(i).name
            parts.append(("," if i else "") + '"' + _escape_text(name) + '":')
            parts += _parts(child) if child.null_count == 0 else [_or_null(to_json(child))]
        parts.append("}")
        return parts
    return [to_json(values)]


def _concat(parts: list[Part]) -> pa.Array:
    """The parts joined element-wise (adjacent literals merged first); null where any
    array part is null."""
    merged: list[Part] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    arrays = [p for p in merged if not isinstance(p, str)]
    if not arrays:
        raise ValueError("a document needs at least one array part")
    if len(merged) == 1:
        return arrays[0]
    return pc.binary_join_element_wise(*merged, "")


def _or_null(json: pa.Array) -> pa.Array:
    """JSON text where a null value is the JSON null (inside a document)."""
    return pc.fill_null(json, "null") if json.null_count else json


def escaped(values: pa.Array) -> pa.Array:
    """Text escaped for the inside of a JSON string (backslashes, quotes, control
    characters), untouched when it has none of them (a test over its bytes)."""
    text = values.cast(pa.string())
    data = utf8_bytes(text)
    if len(data) == 0:
        return text
    if pc.any(pc.or_(pc.equal(data, _QUOTE), pc.equal(data, _BACKSLASH))).as_py():
        text = pc.replace_substring(text, "\\", "\\\\")
        text = pc.replace_substring(text, '"', '\\"')
    if pc.min(data).as_py() < 0x20:  # a control character: rare
        for code in range(0x20):
            char = chr(code)
            text = pc.replace_substring(text, char, _ESCAPES.get(char, f"\\u{code:04x}"))
    return text


def _escape_text(text: str) -> str:
    return str(escaped(pa.array([text]))[0].as_py())


def min_byte(text: pa.Array) -> int | None:
    """The smallest byte of the UTF-8 text of a string array (None when it has none): a
    quick test for control characters (UTF-8 uses no byte below 0x80 in a multi-byte
    character), without a pass per value."""
    data = utf8_bytes(text)
    return int(pc.min(data).as_py()) if len(data) else None


def utf8_bytes(text: pa.Array) -> pa.Array:
    """The bytes of a string array's values as a uint8 array over the same buffer."""
    buffers = text.buffers()
    if len(text) == 0 or buffers[2] is None:
        return pa.array([], pa.uint8())
    width = pa.int64() if pa.types.is_large_string(text.type) else pa.int32()
    offsets = pa.Array.from_buffers(width, len(text) + 1, [None, buffers[1]], offset=text.offset)
    start, end = offsets[0].as_py(), offsets[-1].as_py()
    return pa.Array.from_buffers(pa.uint8(), end - start, [None, buffers[2]], offset=start)


def _number(values: pa.Array) -> pa.Array:
    if pa.types.is_floating(values.type):
        finite = pc.is_finite(values)
        values = pc.if_else(finite, values, pa.nulls(len(values), values.type))
    return values.cast(pa.string())


def _boolean(values: pa.Array) -> pa.Array:
    return pc.if_else(values, "true", "false")


def _timestamp(values: pa.Array) -> pa.Array:
    kind = values.type
    if kind.tz is not None:
        # The same instants as naive UTC: formatting those skips the time zone database.
        naive = values.cast(pa.timestamp(kind.unit, "UTC")).cast(pa.timestamp(kind.unit))
        suffix = "Z"
    else:
        naive, suffix = values, ""
    text = pc.replace_substring(naive.cast(pa.string()), " ", "T", max_replacements=1)
    return _concat(['"', text, f'{suffix}"'])


def _date(values: pa.Array) -> pa.Array:
    return _concat(['"', values.cast(pa.string()), '"'])


def _map(values: pa.MapArray) -> pa.Array:
    keys, items = _elements(values).flatten()  # struct<key, value>
    value = _parts(items) if items.null_count == 0 else [_or_null(to_json(items))]
    return _joined(values, _concat(['"', escaped(keys), '":', *value]), "{", "}")


def _list(values: pa.ListArray) -> pa.Array:
    return _joined(values, _or_null(to_json(_elements(values))), "[", "]")


def _elements(values: pa.ListArray) -> pa.Array:
    """The child values the (possibly sliced) list array's offsets point into, from the
    first offset: a null list may still span elements, which `flatten` would drop."""
    start, end = values.offsets[0].as_py(), values.offsets[-1].as_py()
    return values.values.slice(start, end - start)


def _joined(values: pa.Array, elements: pa.Array, opening: str, closing: str) -> pa.Array:
    """Each row's `elements` (of `_elements`) joined by commas, in brackets."""
    offsets = pc.subtract(values.offsets, values.offsets[0])
    lists = pa.ListArray.from_arrays(offsets, elements)
    return _null_where(values, _concat([opening, pc.binary_join(lists, ","), closing]))


def _null_where(values: pa.Array, document: pa.Array) -> pa.Array:
    """`document`, null where `values` is."""
    if values.null_count == 0:
        return document
    return pc.if_else(values.is_null(), pa.nulls(len(values), pa.string()), document)


def _is_string(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _is_number(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    )


def _is_list(kind: pa.DataType) -> bool:
    return bool(pa.types.is_list(kind) or pa.types.is_large_list(kind))


_ENCODERS: tuple[tuple[Callable[[pa.DataType], bool], Callable[..., pa.Array]], ...] = (
    (_is_number, _number),
    (pa.types.is_boolean, _boolean),
    (pa.types.is_timestamp, _timestamp),
    (pa.types.is_date, _date),
    (pa.types.is_map, _map),
    (_is_list, _list),
)
