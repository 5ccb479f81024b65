"""Parsing of Singer messages (one JSON document per line): pure, no I/O.

Message types: SCHEMA, RECORD, STATE, ACTIVATE_VERSION and BATCH (the singer-sdk
extension whose manifest lists gzip JSONL files of records). Anything else is a
`ProtocolViolation` that says what was wrong with the line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


class ProtocolViolation(Exception):  # noqa: N818 - a finding about input, not a program error
    """A line that is not a valid Singer message; `kind` names the rule it broke."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SchemaMessage:
    stream: str
    schema: dict[str, Any]
    key_properties: tuple[str, ...]
    bookmark_properties: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RecordMessage:
    stream: str
    record: dict[str, Any]
    time_extracted: str | None
    version: int | None


@dataclass(frozen=True, slots=True)
class StateMessage:
    value: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ActivateVersionMessage:
    stream: str
    version: int


@dataclass(frozen=True, slots=True)
class BatchMessage:
    stream: str
    format: str
    compression: str
    manifest: tuple[str, ...]


Message = SchemaMessage | RecordMessage | StateMessage | ActivateVersionMessage | BatchMessage


def parse_message(line: bytes | str) -> Message:
    """Parse one line; raise `ProtocolViolation` for anything that is not a Singer message."""
    return parse_document(decode_line(line))


def decode_line(line: bytes | str) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise ProtocolViolation("malformed_json", f"line is not valid JSON: {e}") from e


def parse_document(doc: Any) -> Message:
    """The Singer message in an already decoded line."""
    if not isinstance(doc, dict):
        raise ProtocolViolation("malformed_message", "a Singer message must be a JSON object")
    kind = doc.get("type")
    if kind == "RECORD":
        record = doc.get("record")
        if not isinstance(record, dict):
            raise ProtocolViolation("malformed_message", "RECORD has no 'record' object")
        extracted = doc.get("time_extracted")
        version = doc.get("version")
        return RecordMessage(
            stream=_stream(doc),
            record=record,
            time_extracted=extracted if isinstance(extracted, str) else None,
            version=version if isinstance(version, int) else None,
        )
    if kind == "SCHEMA":
        schema = doc.get("schema")
        if not isinstance(schema, dict):
            raise ProtocolViolation("malformed_message", "SCHEMA has no 'schema' object")
        return SchemaMessage(
            stream=_stream(doc),
            schema=schema,
            key_properties=_names(doc, "key_properties"),
            bookmark_properties=_names(doc, "bookmark_properties"),
        )
    if kind == "STATE":
        value = doc.get("value")
        if not isinstance(value, dict):
            raise ProtocolViolation("malformed_message", "STATE has no 'value' object")
        return StateMessage(value=value)
    if kind == "ACTIVATE_VERSION":
        version = doc.get("version")
        if not isinstance(version, int):
            raise ProtocolViolation("malformed_message", "ACTIVATE_VERSION has no integer version")
        return ActivateVersionMessage(stream=_stream(doc), version=version)
    if kind == "BATCH":
        return _batch(doc)
    raise ProtocolViolation("unknown_message_type", f"unknown Singer message type {kind!r}")


def _stream(doc: dict[str, Any]) -> str:
    stream = doc.get("stream")
    if not isinstance(stream, str) or not stream:
        raise ProtocolViolation("malformed_message", f"{doc.get('type')} has no 'stream' name")
    return stream


def _names(doc: dict[str, Any], field: str) -> tuple[str, ...]:
    value = doc.get(field) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProtocolViolation("malformed_message", f"'{field}' must be a list of field names")
    return tuple(value)


def _batch(doc: dict[str, Any]) -> BatchMessage:
    encoding = doc.get("encoding")
    manifest = doc.get("manifest")
    if not isinstance(encoding, dict) or not isinstance(manifest, list):
        raise ProtocolViolation("malformed_message", "BATCH needs 'encoding' and 'manifest'")
    fmt = encoding.get("format")
    compression = encoding.get("compression") or "none"
    if fmt != "jsonl" or compression not in ("gzip", "none"):
        raise ProtocolViolation(
            "unsupported_batch",
            f"BATCH encoding {fmt}/{compression} is not supported (jsonl with gzip or none is)",
        )
    if not all(isinstance(uri, str) for uri in manifest):
        raise ProtocolViolation("malformed_message", "BATCH manifest must list file URIs")
    return BatchMessage(
        stream=_stream(doc), format=fmt, compression=compression, manifest=tuple(manifest)
    )
