"""Record validation against a stream's JSON Schema: pure, no I/O.

Validators are compiled once per schema version by jsonschema-rs (Rust; well under a
microsecond for a typical record), so validation is not what limits ingestion speed.
Formats such as date-time are checked, not just types. A failure names the field, what the
schema expected and what the record held.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jsonschema_rs
import orjson

from opencdp.errors import TerminalError

# Values quoted in error reports are cut to this many characters.
_MAX_VALUE_CHARS = 200


class InvalidSchemaError(TerminalError):
    """A stream's JSON Schema is itself invalid and cannot validate anything."""


@dataclass(frozen=True, slots=True)
class RecordError:
    """Why a record was rejected: the error type (the DLQ folder) and the details."""

    type: str
    reason: str
    field: str | None = None
    expected: str | None = None
    got: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "type": self.type,
            "reason": self.reason,
            "field": self.field,
            "expected": self.expected,
            "got": self.got,
        }


class RecordValidator:
    """Checks records of one stream: key properties present, then the JSON Schema."""

    __slots__ = ("_schema", "_validator", "key_properties")

    def __init__(self, schema: dict[str, Any], key_properties: tuple[str, ...] = ()) -> None:
        try:
            self._validator = jsonschema_rs.validator_for(schema, validate_formats=True)
        except (jsonschema_rs.ValidationError, ValueError) as e:
            raise InvalidSchemaError(
                f"the stream's JSON Schema is invalid: {str(e).splitlines()[0]}",
                hint="fix the tap's SCHEMA message",
            ) from e
        self._schema = schema
        self.key_properties = key_properties

    def check(self, record: dict[str, Any]) -> RecordError | None:
        """None if the record is valid, else the first problem found."""
        for key in self.key_properties:
            if record.get(key) is None:
                return RecordError(
                    type="missing_key_property",
                    reason=f"key property {key!r} is missing or null",
                    field=key,
                    expected="a non-null value (key property)",
                    got="missing" if key not in record else "null",
                )
        if self._validator.is_valid(record):
            return None
        error = next(iter(self._validator.iter_errors(record)))
        return self._describe(error)

    def _describe(self, error: jsonschema_rs.ValidationError) -> RecordError:
        path = [str(p) for p in error.instance_path]
        keyword = str(error.schema_path[-1]) if error.schema_path else "schema"
        if keyword == "required":
            missing = str(getattr(error.kind, "property", "")).strip('"')
            return RecordError(
                type="validation",
                reason=error.message,
                field=".".join([*path, missing]),
                expected="a value (required property)",
                got="missing",
            )
        return RecordError(
            type="validation",
            reason=error.message,
            field=".".join(path) or None,
            expected=f"{keyword} {_at(self._schema, error.schema_path)}",
            got=_short(error.instance),
        )


def _at(schema: Any, path: list[str | int]) -> str:
    """The schema value at `path`, as compact text ('integer', '["null", "string"]')."""
    node = schema
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return "?"
    return node if isinstance(node, str) else _short(node)


def _short(value: Any) -> str:
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 1] + "…"
