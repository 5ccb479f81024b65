"""JSON Schemas inferred from records (pure), for files that carry none.

Every field is nullable and none is required, so a record that leaves a field out or
empty stays valid; a field seen only as null accepts anything. Types and properties come
out in a fixed order, so the same records always give the same schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),  # before int: a bool is an int in Python
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (dict, "object"),
    (list, "array"),
)


@dataclass
class _Shape:
    """Everything seen at one place of the records: types, fields, array items."""

    types: set[str] = field(default_factory=set)
    properties: dict[str, _Shape] = field(default_factory=dict)
    items: _Shape | None = None

    def observe(self, value: Any) -> None:
        if value is None:
            self.types.add("null")
            return
        self.types.add(next((name for kind, name in _NAMES if isinstance(value, kind)), "string"))
        if isinstance(value, dict):
            for key, item in value.items():
                self.properties.setdefault(key, _Shape()).observe(item)
        elif isinstance(value, list):
            self.items = self.items or _Shape()
            for item in value:
                self.items.observe(item)

    def schema(self) -> dict[str, Any]:
        types = self.types - {"null"}
        if "number" in types:
            types.discard("integer")  # integers are numbers too
        if not types:
            return {}  # only nulls seen: any value is accepted
        schema: dict[str, Any] = {"type": [*sorted(types), "null"]}
        if "object" in types:
            schema["properties"] = {k: s.schema() for k, s in self.properties.items()}
        if "array" in types:
            schema["items"] = self.items.schema() if self.items else {}
        return schema


def infer_schema(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The JSON Schema of a stream of JSON objects."""
    root = _Shape()
    for record in records:
        root.observe(record)
    properties = {k: s.schema() for k, s in root.properties.items()}
    return {"type": "object", "properties": properties}


def csv_schema(columns: Sequence[str]) -> dict[str, Any]:
    """A CSV file's schema: every column a nullable string (CSV has no other types)."""
    return {
        "type": "object",
        "properties": {column: {"type": ["string", "null"]} for column in columns},
    }
