from __future__ import annotations

from typing import Any

from opencdp.ingest.schemas import diff_schemas, fingerprint


def schema(required: list[str] | None = None, **fields: Any) -> dict[str, Any]:
    return {"type": "object", "required": required or [], "properties": fields}


def test_new_fields_are_compatible() -> None:
    diff = diff_schemas(
        schema(a={"type": "string"}), schema(a={"type": "string"}, b={"type": "integer"})
    )
    assert diff.added == ("b",)
    assert not diff.is_drift


def test_widening_a_type_is_compatible() -> None:
    old = schema(a={"type": "integer"}, b={"type": "string"})
    new = schema(a={"type": "number"}, b={"type": ["string", "null"]})
    assert not diff_schemas(old, new).is_drift


def test_removed_field_changed_type_and_removed_required_are_drift() -> None:
    old = schema(["a", "b"], a={"type": "string"}, b={"type": "string"}, c={"type": "integer"})
    new = schema(["a"], a={"type": "integer"}, b={"type": "string"})
    diff = diff_schemas(old, new)
    assert diff.is_drift
    assert diff.removed == ("c",)
    assert diff.type_changed == (("a", "string", "integer"),)
    assert diff.required_removed == ("b",)
    assert diff.describe() == [
        "- c (removed)",
        "~ a: type string -> integer",
        "! b no longer required",
    ]


def test_nested_fields_are_compared_by_path() -> None:
    old = schema(addr={"type": "object", "properties": {"zip": {"type": "string"}}})
    new = schema(addr={"type": "object", "properties": {"city": {"type": "string"}}})
    diff = diff_schemas(old, new)
    assert diff.removed == ("addr.zip",)
    assert diff.added == ("addr.city",)


def test_any_of_types_are_understood() -> None:
    old = schema(at={"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]})
    new = schema(at={"type": ["string", "null"]})
    assert not diff_schemas(old, new).is_drift


def test_key_change_is_drift() -> None:
    diff = diff_schemas(schema(), schema(), ("id",), ("email",))
    assert diff.is_drift
    assert diff.key_changed == (("id",), ("email",))


def test_fingerprint_ignores_key_order_but_not_content() -> None:
    a = {"type": "object", "properties": {"x": {"type": "string"}, "y": {"type": "integer"}}}
    b = {"properties": {"y": {"type": "integer"}, "x": {"type": "string"}}, "type": "object"}
    assert fingerprint(a, ("x",)) == fingerprint(b, ("x",))
    assert fingerprint(a, ("x",)) != fingerprint(a, ("y",))
