"""The state of the contract server's cluster: indices with their settings, mappings,
documents and aliases, and OpenSearch's errors with their documented body shape.

A document is written to the index's live state and becomes searchable at the next
refresh. An index whose refresh_interval is not -1 refreshes after every request (a real
cluster does it every interval: tests cannot tell the two apart, and are not made to wait).
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

MAX_TERM_BYTES = 32_766  # Lucene's limit on one indexed term
MAX_ID_BYTES = 512
DEFAULT_MAX_RESULT_WINDOW = 10_000

# Parameters OpenSearch accepts on a keyword field; only the first four are modeled.
_KEYWORD_MODELED = {"type", "ignore_above", "doc_values", "index"}
_KEYWORD_KNOWN = _KEYWORD_MODELED | {
    "boost", "eager_global_ordinals", "fields", "index_options", "meta", "normalizer",
    "norms", "null_value", "similarity", "split_queries_on_whitespace", "store",
    "use_similarity",
}  # fmt: skip
_MAPPING_MODELED = {"dynamic", "_meta", "properties"}
_MAPPING_KNOWN = _MAPPING_MODELED | {
    "_source", "_routing", "date_detection", "numeric_detection", "dynamic_templates",
    "_field_names",
}  # fmt: skip
_SETTINGS_MODELED = {
    "number_of_shards",
    "number_of_replicas",
    "refresh_interval",
    "max_result_window",
}
_BAD_NAME_CHARS = set(' ,:"*/\\|?#><')


class ApiError(Exception):
    """An error answer: `{"error": {"root_cause": [...], "type", "reason", ...}, "status"}`."""

    def __init__(
        self, status: int, kind: str, reason: str, *, cause: ApiError | None = None, **extra: Any
    ) -> None:
        super().__init__(f"{status} {kind}: {reason}")
        self.status = status
        self.kind = kind
        self.reason = reason
        self.cause = cause  # the root cause, when it is not the error itself
        self.extra = extra

    def error(self) -> Json:
        """The `error` object, as a bulk item carries it too."""
        return {"type": self.kind, "reason": self.reason, **self.extra}

    def body(self) -> Json:
        root = (self.cause or self).error()
        return {"error": {"root_cause": [root], **self.error()}, "status": self.status}


def bad_request(reason: str, kind: str = "illegal_argument_exception", **extra: Any) -> ApiError:
    return ApiError(400, kind, reason, **extra)


def not_modeled(what: str) -> ApiError:
    """OpenSearch has it, this server does not model it: a backend that sends it fails."""
    return bad_request(f"{what} is not modeled by the contract server")


def index_not_found(name: str) -> ApiError:
    return ApiError(
        404,
        "index_not_found_exception",
        f"no such index [{name}]",
        index=name,
        **{"resource.type": "index_or_alias", "resource.id": name, "index_uuid": "_na_"},
    )


def check_index_name(name: str, kind: str = "index") -> None:
    """OpenSearch's naming rules for indices (and aliases)."""
    problem = None
    if "*" in name:
        raise not_modeled(f"the wildcard expression [{name}]")
    if name != name.lower():
        problem = "must be lowercase"
    elif set(name) & _BAD_NAME_CHARS:
        problem = f"must not contain the following characters {sorted(_BAD_NAME_CHARS)}"
    elif name[:1] in {"_", "-", "+"}:
        problem = "must not start with '_', '-', or '+'"
    elif name in {"", ".", ".."} or len(name.encode()) > 255:
        problem = "must not be empty, '.' or '..', nor longer than 255 bytes"
    if problem:
        raise bad_request(
            f"Invalid {kind} name [{name}], {problem}", f"invalid_{kind}_name_exception"
        )


@dataclass(frozen=True)
class Keyword:
    ignore_above: int | None = None
    doc_values: bool = True
    index: bool = True

    def json(self) -> Json:
        out: Json = {"type": "keyword"}
        if self.ignore_above is not None:
            out["ignore_above"] = self.ignore_above
        if not self.doc_values:
            out["doc_values"] = False
        if not self.index:
            out["index"] = False
        return out


@dataclass
class Mappings:
    dynamic: str = "true"
    meta: Json | None = None
    properties: dict[str, Keyword] = field(default_factory=dict)

    def json(self) -> Json:
        out: Json = {}
        if self.dynamic != "true":
            out["dynamic"] = self.dynamic
        if self.meta is not None:
            out["_meta"] = self.meta
        out["properties"] = {name: f.json() for name, f in sorted(self.properties.items())}
        return out

    def update(self, body: Any) -> None:
        """Apply a mapping body (create index, PUT _mapping): fields are added, `_meta`
        and `dynamic` replaced; a field's type or fixed parameters cannot change."""
        if not isinstance(body, dict):
            raise bad_request("mappings must be an object", "mapper_parsing_exception")
        _check_parameters(
            body,
            _MAPPING_KNOWN,
            _MAPPING_MODELED,
            unknown=lambda key: f"Root mapping definition has unsupported parameters: [{key}]",
            what=lambda key: f"the mapping parameter [{key}]",
        )
        if "dynamic" in body:
            dynamic = str(body["dynamic"]).lower()
            if dynamic not in {"true", "false", "strict"}:
                raise bad_request(f"unknown dynamic value [{dynamic}]", "mapper_parsing_exception")
            self.dynamic = dynamic
        if "_meta" in body:
            if not isinstance(body["_meta"], dict):
                raise bad_request("[_meta] must be an object", "mapper_parsing_exception")
            self.meta = body["_meta"]
        for name, spec in (body.get("properties") or {}).items():
            new = _keyword(name, spec)
            old = self.properties.get(name)
            if old is not None and (old.doc_values, old.index) != (new.doc_values, new.index):
                raise bad_request(
                    f"Mapper for [{name}] conflicts with existing mapper: cannot update "
                    "[doc_values] or [index]"
                )
            self.properties[name] = new


def _keyword(name: str, spec: Any) -> Keyword:
    if not isinstance(spec, dict) or "type" not in spec:
        raise bad_request(f"No type specified for field [{name}]", "mapper_parsing_exception")
    if spec["type"] != "keyword":
        raise not_modeled(f"the field type [{spec['type']}] of [{name}]")
    _check_parameters(
        spec,
        _KEYWORD_KNOWN,
        _KEYWORD_MODELED,
        unknown=lambda key: f"unknown parameter [{key}] on mapper [{name}] of type [keyword]",
        what=lambda key: f"the keyword parameter [{key}] of [{name}]",
    )
    ignore_above = spec.get("ignore_above")
    if ignore_above is not None and (not isinstance(ignore_above, int) or ignore_above < 0):
        raise bad_request(f"[ignore_above] must be a positive integer on [{name}]")
    return Keyword(ignore_above, bool(spec.get("doc_values", True)), bool(spec.get("index", True)))


@dataclass(frozen=True)
class Document:
    id: str
    source: Json
    terms: dict[str, tuple[str, ...]]  # indexed field -> its terms
    values: dict[str, tuple[str, ...]]  # field with doc values -> its values (for sorting)


@dataclass
class Index:
    name: str
    mappings: Mappings
    settings: dict[str, str]
    uuid: str = field(default_factory=lambda: uuid.uuid4().hex[:22])
    aliases: set[str] = field(default_factory=set)
    live: dict[str, Document] = field(default_factory=dict)
    searchable: dict[str, Document] = field(default_factory=dict)
    seq_no: itertools.count[int] = field(default_factory=itertools.count)
    versions: dict[str, int] = field(default_factory=dict)

    @property
    def refreshes_itself(self) -> bool:
        return self.settings.get("refresh_interval", "1s") != "-1"

    @property
    def max_result_window(self) -> int:
        return int(self.settings.get("max_result_window", DEFAULT_MAX_RESULT_WINDOW))

    def refresh(self) -> None:
        self.searchable = dict(self.live)

    def put(self, doc_id: str, source: Any) -> tuple[str, int]:
        """Index a document whole; ("created" | "updated", its version)."""
        document = self._analyse(doc_id, source)
        result = "updated" if self.live.pop(doc_id, None) else "created"
        self.live[doc_id] = document  # a new version goes to the end, as in Lucene
        self.versions[doc_id] = self.versions.get(doc_id, 0) + 1
        return result, self.versions[doc_id]

    def delete(self, doc_id: str) -> bool:
        found = self.live.pop(doc_id, None) is not None
        self.versions[doc_id] = self.versions.get(doc_id, 0) + 1
        return found

    def json(self) -> Json:
        return {
            "aliases": {alias: {} for alias in sorted(self.aliases)},
            "mappings": self.mappings.json(),
            "settings": {"index": {**self.settings, "uuid": self.uuid, "provided_name": self.name}},
        }

    def _analyse(self, doc_id: str, source: Any) -> Document:
        if len(doc_id.encode()) > MAX_ID_BYTES:
            raise bad_request(
                f"id [{doc_id[:20]}...] is too long, must be no longer than {MAX_ID_BYTES} bytes"
            )
        if not isinstance(source, dict):
            raise bad_request(
                "failed to parse: the document is not an object", "mapper_parsing_exception"
            )
        terms: dict[str, tuple[str, ...]] = {}
        values: dict[str, tuple[str, ...]] = {}
        for name, value in source.items():
            mapping = self.mappings.properties.get(name)
            if mapping is None:
                if self.mappings.dynamic == "strict":
                    raise bad_request(
                        f"mapping set to strict, dynamic introduction of [{name}] within "
                        "[_doc] is not allowed",
                        "strict_dynamic_mapping_exception",
                    )
                if self.mappings.dynamic == "true":
                    raise not_modeled(f"dynamic mapping of the new field [{name}]")
                continue
            kept = tuple(v for v in _keywords(name, doc_id, value) if _fits(v, mapping))
            for term in kept:
                if len(term.encode()) > MAX_TERM_BYTES:
                    raise bad_request(
                        f'Document contains at least one immense term in field="{name}" '
                        f"(whose UTF8 encoding is longer than the max length {MAX_TERM_BYTES})"
                    )
            if kept and mapping.index:
                terms[name] = kept
            if kept and mapping.doc_values:
                values[name] = tuple(sorted(kept))
        return Document(doc_id, source, terms, values)


def _keywords(name: str, doc_id: str, value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if item is None:
            continue
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, str | int | float):
            out.append(str(item))
        else:
            raise bad_request(
                f"failed to parse field [{name}] of type [keyword] in document with id '{doc_id}'",
                "mapper_parsing_exception",
            )
    return out


def _fits(value: str, mapping: Keyword) -> bool:
    """ignore_above counts characters as Java does: UTF-16 code units."""
    return (
        mapping.ignore_above is None or len(value.encode("utf-16-le")) // 2 <= mapping.ignore_above
    )


def parse_settings(body: Any) -> dict[str, str]:
    """Index settings, given flat ("index.x"), nested ({"index": {"x"}}) or bare."""
    if not isinstance(body, dict):
        raise bad_request("settings must be an object")
    flat: dict[str, Any] = {}
    for key, value in body.items():
        if key == "index" and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key.removeprefix("index.")] = value
    settings = {}
    for key, value in flat.items():
        if key not in _SETTINGS_MODELED:
            raise bad_request(
                f"unknown setting [index.{key}] please check that any required plugins are "
                "installed, or check the breaking changes documentation for removed settings"
            )
        settings[key] = str(value)
    interval = settings.get("refresh_interval", "1s")
    if not re.fullmatch(r"-1|\d+(ms|s|m|h)?", interval):
        raise bad_request(f"failed to parse setting [index.refresh_interval] with [{interval}]")
    if not settings.get("max_result_window", "1").isdigit():
        raise bad_request("failed to parse setting [index.max_result_window]")
    return settings


def _check_parameters(
    keys: Iterable[str],
    known: set[str],
    modeled: set[str],
    *,
    unknown: Callable[[str], str],
    what: Callable[[str], str],
) -> None:
    """OpenSearch refuses a parameter it does not know; this server also refuses, as not
    modelled, one that OpenSearch knows but it does not imitate."""
    for key in keys:
        if key not in known:
            raise bad_request(unknown(key), "mapper_parsing_exception")
        if key not in modeled:
            raise not_modeled(what(key))
