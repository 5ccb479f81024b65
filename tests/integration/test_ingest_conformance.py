"""The singer-sdk target conformance files, each run through `opencdp ingest`.

For every file the behaviour we define is written down: which streams land how many
records, which lines go to the DLQ under which error type, and the exit code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from opencdp.cli.ingest import EXIT_PROTOCOL_ERRORS
from opencdp.cli.main import _register, app
from opencdp.storage.ndjson import read_lines

pytestmark = pytest.mark.integration

STREAMS = resources.files("singer_sdk.testing") / "target_test_streams"


@dataclass(frozen=True)
class Expected:
    written: dict[str, int]  # stream -> records landed in the raw zone
    dlq: dict[str, int] = field(default_factory=dict)  # error type -> lines
    exit_code: int = 0
    schema_versions: dict[str, int] = field(default_factory=dict)


EXPECTED = {
    "array_data": Expected({"test_array_data": 4}),
    "camelcase": Expected({"TestCamelcase": 2}),
    # Two SCHEMAs without records register two versions and land nothing.
    "camelcase_complex_schema": Expected({}, schema_versions={"ForecastingTypeToCategory": 2}),
    # Duplicates are landed as sent; the transform dedupes by key.
    "duplicate_records": Expected({"test_duplicate_records": 5}),
    "encoded_string_data": Expected(
        {"test_strings": 11, "test_strings_in_objects": 11, "test_strings_in_arrays": 6}
    ),
    # {"type": "object"} without properties is a valid JSON Schema that accepts any object.
    "invalid_schema": Expected({}, schema_versions={"test_invalid_schema": 1}),
    "multiple_state_messages": Expected(
        {"test_multiple_state_messages_a": 6, "test_multiple_state_messages_b": 6}
    ),
    "no_primary_keys": Expected({"test_no_pk": 3}),
    "no_primary_keys_append": Expected({"test_no_pk": 5}),
    "optional_attributes": Expected({"test_optional_attributes": 4}),
    # The second SCHEMA differs, so it is a second version of the stream.
    "pk_updates": Expected({"example_stream": 2}, schema_versions={"example_stream": 2}),
    "record_before_schema": Expected(
        {"test_record_before_schema": 1},
        dlq={"missing_schema": 1},
        exit_code=EXIT_PROTOCOL_ERRORS,
    ),
    "record_missing_fields": Expected({"record_missing_fields": 2}),
    "record_missing_key_property": Expected(
        {"test_record_missing_key_property": 0}, dlq={"missing_key_property": 1}
    ),
    "record_missing_required_property": Expected(
        {"test_record_missing_required_property": 0}, dlq={"validation": 1}
    ),
    "schema_no_properties": Expected(
        {"test_object_schema_with_properties": 2, "test_object_schema_no_properties": 2}
    ),
    # Four SCHEMAs that only add fields: four versions, no drift.
    "schema_updates": Expected(
        {"test_schema_updates": 6}, schema_versions={"test_schema_updates": 4}
    ),
    "special_chars_in_attributes": Expected({"test:SpecialChars!in?attributes": 1}),
    "user_location_data": Expected(
        {"test_users": 5, "test_locations": 3, "test_user_in_location": 3}
    ),
    "user_location_upsert_data": Expected(
        {"test_users": 6, "test_locations": 4, "test_user_in_location": 4}
    ),
}


def test_every_conformance_file_has_an_expectation() -> None:
    shipped = {
        p.name.removesuffix(".singer") for p in STREAMS.iterdir() if p.name.endswith(".singer")
    }
    assert shipped == set(EXPECTED)


def run_ingest(root: Path, path: Path, *extra: str) -> tuple[int, str]:
    _register()
    result = CliRunner().invoke(
        app,
        [
            "--root",
            str(root),
            "ingest",
            "--tenant",
            "acme",
            "--provider",
            "sdk",
            "--input",
            str(path),
            *extra,
        ],
    )
    return result.exit_code, result.output


def landed(root: Path, zone: str) -> dict[str, list[dict[str, object]]]:
    """Lines in the raw zone by stream, or in the DLQ by error type."""
    out: dict[str, list[dict[str, object]]] = {}
    base = root / zone / "acme" / "sdk"
    for path in sorted(base.rglob("*.ndjson.gz")):
        for doc in read_lines(path.read_bytes()):
            meta = doc["_meta"]
            key = meta["stream"] if zone == "raw" else doc["error"]["type"]
            assert path.parent.name == key or zone == "raw"
            out.setdefault(key, []).append(doc)
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_conformance_file(name: str, data_root: Path, clean_env: None) -> None:
    expected = EXPECTED[name]
    path = Path(str(STREAMS / f"{name}.singer"))
    code, output = run_ingest(data_root, path)
    assert code == expected.exit_code, output

    raw = landed(data_root, "raw")
    assert {s: len(raw.get(s, [])) for s in expected.written} == expected.written
    assert set(raw) <= set(expected.written)
    for stream, docs in raw.items():
        for doc in docs:
            meta = doc["_meta"]
            assert meta["tenant"] == "acme"
            assert meta["provider"] == "sdk"
            assert meta["stream"] == stream
            assert meta["kind"] == "tap"
            assert isinstance(meta["id"], str)
            assert meta["id"]
            assert isinstance(doc["record"], dict)

    dlq = landed(data_root, "dlq")
    assert {t: len(v) for t, v in dlq.items()} == expected.dlq
    for docs in dlq.values():
        for doc in docs:
            error = doc["error"]
            assert error["reason"]
            assert error["retry_count"] == 0
            assert error["at"]

    for stream, versions in expected.schema_versions.items():
        folder = data_root / "state" / "schemas" / "acme" / "sdk"
        found = [
            p for p in folder.rglob("v*.json") if orjson.loads(p.read_bytes())["stream"] == stream
        ]
        assert len(found) == versions


def test_multiple_states_save_the_last_one(data_root: Path, clean_env: None) -> None:
    code, _ = run_ingest(data_root, Path(str(STREAMS / "multiple_state_messages.singer")))
    assert code == 0
    state = orjson.loads((data_root / "state" / "singer" / "acme" / "sdk.json").read_bytes())
    assert state == {"test_multiple_state_messages_a": 5, "test_multiple_state_messages_b": 6}


def test_validation_errors_name_field_expected_and_got(data_root: Path, clean_env: None) -> None:
    run_ingest(data_root, Path(str(STREAMS / "record_missing_required_property.singer")))
    [doc] = landed(data_root, "dlq")["validation"]
    assert doc["error"]["field"] == "id"
    assert doc["error"]["got"] == "missing"
    assert doc["record"] == {"metric": 3215}
