from __future__ import annotations

import pytest

from opencdp.ingest.singer.messages import (
    ActivateVersionMessage,
    BatchMessage,
    ProtocolViolation,
    RecordMessage,
    SchemaMessage,
    StateMessage,
    parse_message,
)


def test_record() -> None:
    msg = parse_message(
        b'{"type":"RECORD","stream":"s","record":{"a":1},"time_extracted":"2025-01-01T00:00:00Z","version":3}'
    )
    assert msg == RecordMessage("s", {"a": 1}, "2025-01-01T00:00:00Z", 3)


def test_schema() -> None:
    msg = parse_message(
        '{"type":"SCHEMA","stream":"s","schema":{"type":"object"},"key_properties":["id"],'
        '"bookmark_properties":["updated_at"]}'
    )
    assert msg == SchemaMessage("s", {"type": "object"}, ("id",), ("updated_at",))


def test_state_activate_version_and_batch() -> None:
    assert parse_message('{"type":"STATE","value":{"b":1}}') == StateMessage({"b": 1})
    assert parse_message('{"type":"ACTIVATE_VERSION","stream":"s","version":9}') == (
        ActivateVersionMessage("s", 9)
    )
    batch = parse_message(
        '{"type":"BATCH","stream":"s","encoding":{"format":"jsonl","compression":"gzip"},'
        '"manifest":["file:///tmp/a.jsonl.gz"]}'
    )
    assert batch == BatchMessage("s", "jsonl", "gzip", ("file:///tmp/a.jsonl.gz",))


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("{oops", "malformed_json"),
        ("[1, 2]", "malformed_message"),
        ('{"type":"RECORD","record":{}}', "malformed_message"),
        ('{"type":"RECORD","stream":"s","record":[1]}', "malformed_message"),
        ('{"type":"SCHEMA","stream":"s"}', "malformed_message"),
        ('{"type":"SCHEMA","stream":"s","schema":{},"key_properties":"id"}', "malformed_message"),
        ('{"type":"STATE","value":3}', "malformed_message"),
        ('{"type":"ACTIVATE_VERSION","stream":"s"}', "malformed_message"),
        (
            '{"type":"BATCH","stream":"s","encoding":{"format":"parquet"},"manifest":[]}',
            "unsupported_batch",
        ),
        ('{"type":"BATCH","stream":"s"}', "malformed_message"),
        ('{"type":"HELLO"}', "unknown_message_type"),
        ('{"record":{}}', "unknown_message_type"),
    ],
)
def test_violations_name_the_rule(line: str, kind: str) -> None:
    with pytest.raises(ProtocolViolation) as info:
        parse_message(line)
    assert info.value.kind == kind
    assert info.value.reason
