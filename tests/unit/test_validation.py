from __future__ import annotations

import pytest

from opencdp.ingest.validation import InvalidSchemaError, RecordValidator

SCHEMA = {
    "type": "object",
    "required": ["id", "name"],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string", "maxLength": 5},
        "at": {"type": ["string", "null"], "format": "date-time"},
        "address": {"type": "object", "properties": {"zip": {"type": "string"}}},
    },
}


@pytest.fixture
def validator() -> RecordValidator:
    return RecordValidator(SCHEMA, ("id",))


def test_valid_record(validator: RecordValidator) -> None:
    assert validator.check({"id": 1, "name": "ann", "at": "2025-01-15T01:00:00Z"}) is None
    assert validator.check({"id": 1, "name": "ann", "at": None}) is None


@pytest.mark.parametrize(
    ("record", "error_type", "field", "expected", "got"),
    [
        ({"name": "a"}, "missing_key_property", "id", "a non-null value (key property)", "missing"),
        (
            {"id": None, "name": "a"},
            "missing_key_property",
            "id",
            "a non-null value (key property)",
            "null",
        ),
        ({"id": 1}, "validation", "name", "a value (required property)", "missing"),
        ({"id": "1", "name": "a"}, "validation", "id", "type integer", '"1"'),
        ({"id": 1, "name": "toolong"}, "validation", "name", "maxLength 5", '"toolong"'),
        (
            {"id": 1, "name": "a", "at": "monday"},
            "validation",
            "at",
            "format date-time",
            '"monday"',
        ),
        (
            {"id": 1, "name": "a", "address": {"zip": 12}},
            "validation",
            "address.zip",
            "type string",
            "12",
        ),
    ],
)
def test_errors_name_field_expected_and_got(
    validator: RecordValidator,
    record: dict[str, object],
    error_type: str,
    field: str,
    expected: str,
    got: str,
) -> None:
    error = validator.check(record)
    assert error is not None
    assert (error.type, error.field, error.expected, error.got) == (
        error_type,
        field,
        expected,
        got,
    )
    assert error.reason


def test_long_values_are_cut(validator: RecordValidator) -> None:
    error = validator.check({"id": "x" * 1000, "name": "a"})
    assert error is not None
    assert error.got is not None
    assert len(error.got) <= 200


def test_an_invalid_schema_is_refused() -> None:
    with pytest.raises(InvalidSchemaError, match="JSON Schema is invalid"):
        RecordValidator({"type": "objectish"})
