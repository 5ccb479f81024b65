"""The schema registry: every stream's schemas, versioned, with drift detection.

Versions live in the object store under state/schemas/{tenant}/{provider}/{stream}/, one
immutable JSON file per version. A SCHEMA identical to the latest version reuses it; any
other gets the next version number. Compared with the previous version, new fields are
backward compatible; a removed field, a changed type or a removed required field is drift.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from opencdp.errors import AlreadyExistsError, NotFoundError
from opencdp.storage import layout
from opencdp.storage.objectstore import ObjectStore

DriftPolicy = Literal["warn", "dlq"]


@dataclass(frozen=True)
class SchemaDiff:
    """What changed between two versions of a stream's schema (dot paths for nesting)."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    type_changed: tuple[tuple[str, str, str], ...] = ()  # (field, old types, new types)
    required_removed: tuple[str, ...] = ()
    key_changed: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    @property
    def is_drift(self) -> bool:
        return bool(self.removed or self.type_changed or self.required_removed or self.key_changed)

    def describe(self) -> list[str]:
        lines = [f"+ {f} (new field)" for f in self.added]
        lines += [f"- {f} (removed)" for f in self.removed]
        lines += [f"~ {f}: type {old} -> {new}" for f, old, new in self.type_changed]
        lines += [f"! {f} no longer required" for f in self.required_removed]
        if self.key_changed:
            old_key, new_key = self.key_changed
            lines.append(f"! key properties {list(old_key)} -> {list(new_key)}")
        return lines


@dataclass(frozen=True)
class SchemaVersion:
    stream: str
    version: int
    schema: dict[str, Any]
    key_properties: tuple[str, ...]
    fingerprint: str
    registered_at: str
    drift: tuple[str, ...] = field(default=())

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "stream": self.stream,
                "version": self.version,
                "key_properties": list(self.key_properties),
                "fingerprint": self.fingerprint,
                "registered_at": self.registered_at,
                "drift": list(self.drift),
                "schema": self.schema,
            },
            option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
        )

    @classmethod
    def from_json(cls, data: bytes) -> SchemaVersion:
        doc = orjson.loads(data)
        return cls(
            stream=doc["stream"],
            version=doc["version"],
            schema=doc["schema"],
            key_properties=tuple(doc["key_properties"]),
            fingerprint=doc["fingerprint"],
            registered_at=doc["registered_at"],
            drift=tuple(doc.get("drift", ())),
        )


@dataclass(frozen=True)
class Registration:
    version: SchemaVersion
    diff: SchemaDiff | None  # against the previous version; None for a reused or first one


def fingerprint(schema: dict[str, Any], key_properties: tuple[str, ...]) -> str:
    canonical = orjson.dumps({"s": schema, "k": list(key_properties)}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:16]


def diff_schemas(
    old: dict[str, Any],
    new: dict[str, Any],
    old_key: tuple[str, ...] = (),
    new_key: tuple[str, ...] = (),
) -> SchemaDiff:
    """Compare two JSON Schemas field by field (pure)."""
    old_fields, new_fields = _fields(old), _fields(new)
    old_required, new_required = _required(old), _required(new)
    added = tuple(sorted(set(new_fields) - set(old_fields)))
    removed = tuple(sorted(set(old_fields) - set(new_fields)))
    changed = tuple(
        (name, "|".join(sorted(old_fields[name])), "|".join(sorted(new_fields[name])))
        for name in sorted(set(old_fields) & set(new_fields))
        # Widening (adding "null", integer -> number) keeps old records valid; narrowing not.
        if not _widens(old_fields[name], new_fields[name])
    )
    required_removed = tuple(sorted((old_required - new_required) & set(new_fields)))
    return SchemaDiff(
        added=added,
        removed=removed,
        type_changed=changed,
        required_removed=required_removed,
        key_changed=(old_key, new_key) if old_key != new_key else None,
    )


def _widens(old: frozenset[str], new: frozenset[str]) -> bool:
    if not old or not new:  # untyped on either side: any value is accepted
        return not new
    widened = set(new) | ({"integer"} if "number" in new else set())
    return old <= widened


def _types(node: dict[str, Any]) -> frozenset[str]:
    kind = node.get("type")
    if isinstance(kind, str):
        return frozenset([kind])
    if isinstance(kind, list):
        return frozenset(str(k) for k in kind)
    options = node.get("anyOf") or node.get("oneOf")
    if isinstance(options, list):
        return frozenset().union(*(_types(o) for o in options if isinstance(o, dict)))
    return frozenset()


def _fields(schema: dict[str, Any], prefix: str = "") -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return out
    for name, node in properties.items():
        if not isinstance(node, dict):
            continue
        path = f"{prefix}{name}"
        out[path] = _types(node)
        out.update(_fields(node, f"{path}."))
    return out


def _required(schema: dict[str, Any], prefix: str = "") -> set[str]:
    names = {f"{prefix}{n}" for n in schema.get("required") or [] if isinstance(n, str)}
    for name, node in (schema.get("properties") or {}).items():
        if isinstance(node, dict):
            names |= _required(node, f"{prefix}{name}.")
    return names


class SchemaRegistry:
    """Versions of the schemas of one tenant and provider, kept in the object store."""

    def __init__(self, store: ObjectStore, tenant: str, provider: str) -> None:
        self.store = store
        self.tenant = tenant
        self.provider = provider

    def _prefix(self, stream: str | None = None) -> str:
        parts = ["schemas", self.tenant, self.provider]
        if stream is not None:
            parts.append(layout.file_safe(stream))
        return layout.state_key(*parts)

    def streams(self) -> list[str]:
        names = {info.key.split("/")[-2] for info in self.store.list(self._prefix())}
        return sorted(names)

    def versions(self, stream: str) -> list[SchemaVersion]:
        keys = [i.key for i in self.store.list(self._prefix(stream)) if i.key.endswith(".json")]
        return sorted(
            (SchemaVersion.from_json(self.store.read(k)) for k in keys), key=lambda v: v.version
        )

    def get(self, stream: str, version: int | None = None) -> SchemaVersion:
        versions = self.versions(stream)
        if not versions:
            raise NotFoundError(
                f"no schema registered for stream {stream!r} of {self.tenant}/{self.provider}",
                hint="run `opencdp schemas list` to see the registered streams",
            )
        if version is None:
            return versions[-1]
        for v in versions:
            if v.version == version:
                return v
        raise NotFoundError(
            f"stream {stream!r} has no schema version {version}",
            hint=f"versions are 1 to {versions[-1].version}",
        )

    def register(
        self, stream: str, schema: dict[str, Any], key_properties: tuple[str, ...]
    ) -> Registration:
        """Record `schema` for `stream`: reuse the latest version if identical."""
        print_ = fingerprint(schema, key_properties)
        versions = self.versions(stream)
        latest = versions[-1] if versions else None
        if latest is not None and latest.fingerprint == print_:
            return Registration(version=latest, diff=None)
        diff = (
            diff_schemas(latest.schema, schema, latest.key_properties, key_properties)
            if latest is not None
            else None
        )
        version = SchemaVersion(
            stream=stream,
            version=(latest.version + 1) if latest else 1,
            schema=schema,
            key_properties=key_properties,
            fingerprint=print_,
            registered_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            drift=tuple(diff.describe()) if diff is not None and diff.is_drift else (),
        )
        key = f"{self._prefix(stream)}/v{version.version:04d}.json"
        try:
            self.store.write(key, version.to_json())
        except AlreadyExistsError:
            # A concurrent run registered this version number first: start over from it.
            return self.register(stream, schema, key_properties)
        return Registration(version=version, diff=diff)
