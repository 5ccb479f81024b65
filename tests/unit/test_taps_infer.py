"""Schemas inferred from records: nullable, nested, stable."""

from __future__ import annotations

from typing import Any

from opencdp.ingest.taps._infer import csv_schema, infer_schema

NULLABLE_STRING = {"type": ["string", "null"]}


def test_types_are_the_json_types_seen_and_always_nullable() -> None:
    schema = infer_schema(
        [
            {"id": 1, "email": "a@example.com", "vip": True, "total": 9.5, "note": None},
            {"id": 2, "email": None, "vip": False, "total": 3},
        ]
    )
    assert schema == {
        "type": "object",
        "properties": {
            "id": {"type": ["integer", "null"]},
            "email": NULLABLE_STRING,
            "vip": {"type": ["boolean", "null"]},
            "total": {"type": ["number", "null"]},  # integers are numbers too
            "note": {},  # only ever null: anything goes
        },
    }


def test_nested_objects_and_arrays() -> None:
    schema = infer_schema(
        [
            {"address": {"city": "Leeds", "zip": None}, "tags": ["a"], "lines": [{"qty": 1}]},
            {"address": {"city": None, "country": "GB"}, "tags": [], "lines": [{"sku": "X"}]},
            {"address": None, "tags": None},
        ]
    )
    properties = schema["properties"]
    assert properties["address"] == {
        "type": ["object", "null"],
        "properties": {"city": NULLABLE_STRING, "zip": {}, "country": NULLABLE_STRING},
    }
    assert properties["tags"] == {"type": ["array", "null"], "items": NULLABLE_STRING}
    assert properties["lines"]["items"] == {
        "type": ["object", "null"],
        "properties": {"qty": {"type": ["integer", "null"]}, "sku": NULLABLE_STRING},
    }


def test_mixed_types_are_listed_in_a_fixed_order() -> None:
    schema = infer_schema([{"v": "1"}, {"v": 1}, {"v": {"a": 1}}])
    assert schema["properties"]["v"]["type"] == ["integer", "object", "string", "null"]


def test_the_same_records_give_the_same_schema() -> None:
    records: list[dict[str, Any]] = [{"b": 1, "a": [1.5]}, {"a": None, "c": {"d": "x"}}]
    assert infer_schema(records) == infer_schema(list(records))
    assert infer_schema(reversed(records)) == infer_schema(records)  # same fields and types


def test_no_records_no_fields() -> None:
    assert infer_schema([]) == {"type": "object", "properties": {}}


def test_csv_columns_are_nullable_strings() -> None:
    assert csv_schema(["Id", "Email"]) == {
        "type": "object",
        "properties": {"Id": NULLABLE_STRING, "Email": NULLABLE_STRING},
    }
