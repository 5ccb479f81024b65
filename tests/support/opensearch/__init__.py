"""A local OpenSearch for tests: a real HTTP server on 127.0.0.1, in a thread, that follows
OpenSearch's documented REST contract for exactly what the search backend uses, and
answers anything else with OpenSearch's error bodies (400, or 404 and 405 for endpoints),
so a backend that sends something else fails its tests.

Endpoints, and the pages of the OpenSearch documentation (docs.opensearch.org/latest/)
whose contract they follow:

    PUT /{index}                   api-reference/index-apis/create-index (settings,
                                   mappings, aliases); index-settings (refresh_interval,
                                   max_result_window); field-types/.../keyword
    HEAD, GET, DELETE /{index}     api-reference/index-apis/exists, get-index, delete-index
    GET, PUT /{target}/_mapping    api-reference/index-apis/get-mapping, put-mapping;
                                   field-types/metadata-fields/meta (`_meta`)
    POST /_bulk, /{index}/_bulk    api-reference/document-apis/bulk (NDJSON; index, create,
                                   delete; a status per item, `errors` when one failed, a
                                   delete of a missing document is `not_found`, not an error)
    POST /_aliases                 api-reference/alias/aliases-api (add, remove with
                                   must_exist, remove_index; all or nothing)
    GET, HEAD /_alias/{name}       api-reference/alias/get-alias
    POST /{target}/_refresh        api-reference/index-apis/refresh
    GET, POST /{target}/_search    api-reference/search-apis/search;
                                   search-plugins/searching-data/sort, paginate; the
                                   query-dsl pages of what dsl.py models

Error bodies have the documented shape `{"error": {"root_cause": [...], "type", "reason",
...}, "status"}`. Writes become searchable at a refresh (cluster.py).

Not modeled: analyzers and every field type but keyword (the backend analyses text
itself); shards and replicas (an index is one copy; those settings are kept, not acted on);
scores other than constant ones (no BM25, no term statistics); dynamic mapping and
automatic index creation (as with `action.auto_create_index: false`, a write to a missing
index fails its item with 404); versioning and concurrency control; wildcards and lists
of names; security (any credentials are accepted). Everything is applied in the order the
requests arrive, one at a time.

Faults for tests: `faults.refuse` (document ids whose index items fail with 400, as a
document the cluster cannot take), `faults.unavailable` (every request answers 503, as a
cluster without an elected cluster manager) and `faults.lose_answer` ("METHOD /path" of
requests that are applied but whose answer is lost once: the connection closes). `after`
is called with "METHOD /path" once a request is applied and before it is answered, outside
the server's lock: a test can act there as another client would between two requests.
"""

from __future__ import annotations

import copy
import gzip
import http.server
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.opensearch import dsl
from tests.support.opensearch.cluster import (
    ApiError,
    Index,
    Json,
    Mappings,
    bad_request,
    check_index_name,
    index_not_found,
    not_modeled,
    parse_settings,
)
from tests.support.server import LocalServer

Answer = tuple[int, Json | None]
_SHARDS = {"total": 1, "successful": 1, "failed": 0}
_JSON_TYPES = {"application/json", "application/x-ndjson"}
_ALIAS_ACTION_KEYS = {
    "add": {"index", "indices", "alias", "aliases"},
    "remove": {"index", "indices", "alias", "aliases", "must_exist"},
    "remove_index": {"index", "indices"},
}
_BULK_META = {"_index", "_id"}
_BULK_META_KNOWN = _BULK_META | {
    "routing", "version", "version_type", "if_seq_no", "if_primary_term", "pipeline",
    "require_alias", "retry_on_conflict", "_source", "dynamic_templates",
}  # fmt: skip


@dataclass
class Faults:
    refuse: set[str] = field(default_factory=set)
    unavailable: bool = False
    lose_answer: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: dict[str, str]
    content_type: str
    authorization: str | None


class OpenSearchServer(LocalServer):
    def __init__(self) -> None:
        self.indices: dict[str, Index] = {}
        self.faults = Faults()
        self.after: Callable[[str], None] | None = None
        self.log: list[Request] = []
        self.lock = threading.Lock()
        super().__init__(_handler(self))

    # --- what tests look at --------------------------------------------------------------

    def aliases(self) -> dict[str, list[str]]:
        """Alias -> the indices behind it."""
        with self.lock:
            found: dict[str, list[str]] = {}
            for name, index in sorted(self.indices.items()):
                for alias in index.aliases:
                    found.setdefault(alias, []).append(name)
            return found

    def searchable(self, name: str) -> list[str]:
        """The ids of the documents index `name` shows to searches."""
        with self.lock:
            return sorted(self.indices[name].searchable)

    def requests(self, method: str | None = None) -> list[str]:
        """ "METHOD /path" of every request so far (of one method)."""
        with self.lock:
            return [f"{r.method} {r.path}" for r in self.log if method in {None, r.method}]

    # --- requests ------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        split = urlsplit(target)
        params = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        parts = [unquote(p) for p in split.path.split("/") if p]
        content_type = headers.get("content-type", "")
        with self.lock:
            self.log.append(
                Request(method, split.path, params, content_type, headers.get("authorization"))
            )
            if self.faults.unavailable:
                return 503, _no_cluster_manager().body()
            if body and content_type.split(";", maxsplit=1)[0].strip() not in _JSON_TYPES:
                return 406, {
                    "error": f"Content-Type header [{content_type}] is not supported",
                    "status": 406,
                }
            try:
                answer = self._route(method, split.path, parts, params, body)
            except ApiError as e:
                return e.status, e.body()
            for index in self.indices.values():
                if index.refreshes_itself:
                    index.refresh()
            return answer

    def _route(
        self, method: str, path: str, parts: list[str], params: dict[str, str], body: bytes
    ) -> Answer:
        handlers: dict[str, Callable[[], Answer]]
        allowed_params: set[str] = set()
        match parts:
            case ["_bulk"] | [_, "_bulk"]:
                bulk = lambda: self._bulk(parts[0] if len(parts) == 2 else None, params, body)  # noqa: E731
                handlers, allowed_params = {"POST": bulk, "PUT": bulk}, {"refresh"}
            case ["_aliases"]:
                handlers = {"POST": lambda: self._update_aliases(_json(body))}
            case ["_alias", name]:
                handlers = {
                    "GET": lambda: self._get_alias(name),
                    "HEAD": lambda: self._get_alias(name),
                }
            case [target, "_mapping"]:
                handlers = {
                    "GET": lambda: self._get_mapping(target),
                    "PUT": lambda: self._put_mapping(target, _json(body)),
                }
            case [target, "_refresh"]:
                handlers = {
                    "POST": lambda: self._refresh(target),
                    "GET": lambda: self._refresh(target),
                }
            case [target, "_search"]:
                search = lambda: (200, dsl.search(self._resolve(target), _json(body)))  # noqa: E731
                handlers = {"GET": search, "POST": search}
            case [name] if not name.startswith("_"):
                handlers = {
                    "PUT": lambda: self._create(name, _json(body)),
                    "HEAD": lambda: self._exists(name),
                    "GET": lambda: (200, {i.name: i.json() for i in self._resolve(name)}),
                    "DELETE": lambda: self._delete(name),
                }
            case _:
                return 400, {
                    "error": f"no handler found for uri [{path}] and method [{method}]",
                    "status": 400,
                }
        if method not in handlers:
            allowed = ",".join(sorted(handlers))
            return 405, {
                "error": f"Incorrect HTTP method for uri [{path}] and method [{method}], "
                f"allowed: [{allowed}]",
                "status": 405,
            }
        for name in params:
            if name not in allowed_params:
                raise not_modeled(f"the URL parameter [{name}] of [{method} {path}]")
        return handlers[method]()

    # --- indices -------------------------------------------------------------------------

    def _resolve(self, target: str) -> list[Index]:
        """The indices a name means: the index, or those an alias points at."""
        if "*" in target or "," in target:
            raise not_modeled(f"the expression [{target}]")
        if target in self.indices:
            return [self.indices[target]]
        found = [i for _, i in sorted(self.indices.items()) if target in i.aliases]
        if not found:
            raise index_not_found(target)
        return found

    def _create(self, name: str, body: Any) -> Answer:
        check_index_name(name)
        if name in self.indices:
            existing = self.indices[name]
            raise bad_request(
                f"index [{name}/{existing.uuid}] already exists",
                "resource_already_exists_exception",
                index_uuid=existing.uuid,
                index=name,
            )
        if any(name in i.aliases for i in self.indices.values()):
            raise bad_request(
                f"Invalid index name [{name}], already exists as alias",
                "invalid_index_name_exception",
            )
        body = body or {}
        for key in body:
            if key not in {"settings", "mappings", "aliases"}:
                raise bad_request(f"unknown key [{key}] for create index", "parse_exception")
        mappings = Mappings()
        mappings.update(body.get("mappings", {}))
        index = Index(name, mappings, parse_settings(body.get("settings", {})))
        for alias in body.get("aliases") or {}:
            self._check_alias_name(alias)
            index.aliases.add(alias)
        self.indices[name] = index
        return 200, {"acknowledged": True, "shards_acknowledged": True, "index": name}

    def _exists(self, name: str) -> Answer:
        try:
            self._resolve(name)
        except ApiError:
            return 404, None
        return 200, None

    def _delete(self, name: str) -> Answer:
        if name not in self.indices:
            self._refuse_alias(name)
            raise index_not_found(name)
        del self.indices[name]
        return 200, {"acknowledged": True}

    def _get_mapping(self, target: str) -> Answer:
        return 200, {i.name: {"mappings": i.mappings.json()} for i in self._resolve(target)}

    def _put_mapping(self, target: str, body: Any) -> Answer:
        indices = self._resolve(target)
        updated = []
        for index in indices:  # every index takes the update, or none does
            mappings = copy.deepcopy(index.mappings)
            mappings.update(body)
            updated.append(mappings)
        for index, mappings in zip(indices, updated, strict=True):
            index.mappings = mappings
        return 200, {"acknowledged": True}

    def _refresh(self, target: str) -> Answer:
        indices = self._resolve(target)
        for index in indices:
            index.refresh()
        count = len(indices)
        return 200, {"_shards": {"total": count, "successful": count, "failed": 0}}

    # --- aliases -------------------------------------------------------------------------

    def _get_alias(self, name: str) -> Answer:
        holders = {
            n: {"aliases": {name: {}}} for n, i in sorted(self.indices.items()) if name in i.aliases
        }
        if not holders:
            return 404, {"error": f"alias [{name}] missing", "status": 404}
        return 200, holders

    def _update_aliases(self, body: Any) -> Answer:
        """Every action is checked against the state the earlier ones leave, and the
        whole request is applied only if all pass. remove_index actions run first."""
        actions = body.get("actions") if isinstance(body, dict) else None
        if not isinstance(actions, list) or not actions:
            raise bad_request(
                "Validation Failed: 1: No action specified;", "action_request_validation_exception"
            )
        parsed = [_alias_action(action) for action in actions]
        staged = {name: set(index.aliases) for name, index in self.indices.items()}
        for kind, spec in parsed:
            if kind == "remove_index":
                self._stage_removal(staged, spec)
        for kind, spec in parsed:
            if kind != "remove_index":
                self._stage_aliases(staged, kind, spec)
        for name in set(self.indices) - set(staged):
            del self.indices[name]
        for name, aliases in staged.items():
            self.indices[name].aliases = aliases
        return 200, {"acknowledged": True}

    def _stage_removal(self, staged: dict[str, set[str]], spec: Json) -> None:
        for name in _names(spec, "index", "indices"):
            if name not in staged:
                self._refuse_alias(name)
                raise index_not_found(name)
            del staged[name]

    def _stage_aliases(self, staged: dict[str, set[str]], kind: str, spec: Json) -> None:
        aliases = _names(spec, "alias", "aliases")
        for name in _names(spec, "index", "indices"):
            if name not in staged:
                raise index_not_found(name)
            if kind == "add":
                for alias in aliases:
                    self._check_alias_name(alias, staged)
                staged[name] |= set(aliases)
            else:
                self._remove_aliases(staged[name], aliases, spec.get("must_exist"))

    @staticmethod
    def _remove_aliases(held: set[str], aliases: list[str], must_exist: bool | None) -> None:
        missing = [a for a in aliases if a not in held]
        if (must_exist is True and missing) or (
            must_exist is None and len(missing) == len(aliases)
        ):
            names = ",".join(missing)
            raise ApiError(
                404,
                "aliases_not_found_exception",
                f"aliases [{names}] missing",
                **{"resource.type": "aliases", "resource.id": names},
            )
        held.difference_update(aliases)

    def _check_alias_name(self, alias: str, indices: Any = None) -> None:
        check_index_name(alias, "alias")
        if alias in (self.indices if indices is None else indices):
            raise bad_request(
                f"Invalid alias name [{alias}]: an index or data stream exists with the same "
                "name as the alias",
                "invalid_alias_name_exception",
            )

    def _refuse_alias(self, name: str) -> None:
        if any(name in i.aliases for i in self.indices.values()):
            raise bad_request(
                f"The provided expression [{name}] matches an alias, specify the corresponding "
                "concrete indices instead."
            )

    # --- documents -----------------------------------------------------------------------

    def _bulk(self, default_index: str | None, params: dict[str, str], body: bytes) -> Answer:
        """The whole request is parsed first; then every item is applied on its own."""
        text = body.decode()
        if not text.endswith("\n"):
            raise bad_request("The bulk request must be terminated by a newline [\\n]")
        lines = text.split("\n")[:-1]
        operations = []
        number = 0
        while number < len(lines):
            line, number = lines[number], number + 1
            if not line.strip():
                continue
            op, meta = _bulk_action(line, number)
            target = meta.get("_index", default_index)
            if target is None:
                raise bad_request(
                    "Validation Failed: 1: index is missing;", "action_request_validation_exception"
                )
            source = None
            if op != "delete":
                if number >= len(lines):
                    raise bad_request(
                        f"Malformed action/metadata line [{number}]: no document follows"
                    )
                source, number = _json(lines[number].encode()), number + 1
            operations.append((op, target, meta.get("_id"), source))
        items = [self._bulk_item(*operation) for operation in operations]
        if params.get("refresh") in {"", "true", "wait_for"}:
            touched = {result["_index"] for item in items for result in item.values()}
            for name in touched & set(self.indices):
                self.indices[name].refresh()
        errors = any("error" in result for item in items for result in item.values())
        return 200, {"took": 1, "errors": errors, "items": items}

    def _bulk_item(self, op: str, target: str, doc_id: str | None, source: Any) -> Json:
        result: Json = {"_index": target, "_id": doc_id}
        try:
            index = self._write_index(target)
            result["_index"] = index.name
            if op != "delete":
                result["_id"] = doc_id or uuid.uuid4().hex
            outcome, status, version = self._apply_item(op, index, result["_id"], source)
        except ApiError as e:
            return {op: {**result, "status": e.status, "error": e.error()}}
        return {
            op: {
                **result,
                "_version": version,
                "result": outcome,
                "_shards": _SHARDS,
                "_seq_no": next(index.seq_no),
                "_primary_term": 1,
                "status": status,
            }
        }

    def _apply_item(
        self, op: str, index: Index, doc_id: str | None, source: Any
    ) -> tuple[str, int, int]:
        """(result, status, version) of one bulk item."""
        if doc_id is None:
            raise bad_request(
                "Validation Failed: 1: id is missing;", "action_request_validation_exception"
            )
        if op == "delete":
            found = index.delete(doc_id)
            outcome, status = ("deleted", 200) if found else ("not_found", 404)
            return outcome, status, index.versions[doc_id]
        if doc_id in self.faults.refuse:
            raise bad_request(
                f"failed to parse: the test told the server to refuse [{doc_id}]",
                "mapper_parsing_exception",
            )
        if op == "create" and doc_id in index.live:
            raise ApiError(
                409,
                "version_conflict_engine_exception",
                f"[{doc_id}]: version conflict, document already exists (current version "
                f"[{index.versions[doc_id]}])",
            )
        outcome, version = index.put(doc_id, source)
        return outcome, 201 if outcome == "created" else 200, version

    def _write_index(self, target: str) -> Index:
        indices = self._resolve(target)
        if len(indices) > 1:
            raise bad_request(
                f"no write index is defined for alias [{target}]. The write index may be "
                "explicitly disabled using is_write_index=false or the alias points to "
                "multiple indices without one being designated as a write index"
            )
        return indices[0]


def _alias_action(action: Any) -> tuple[str, Json]:
    if not isinstance(action, dict) or len(action) != 1:
        raise bad_request(
            "[aliases] an action must be an object with one key", "x_content_parse_exception"
        )
    ((kind, spec),) = action.items()
    keys = _ALIAS_ACTION_KEYS.get(kind)
    if keys is None:
        raise bad_request(f"[aliases] unknown field [{kind}]", "x_content_parse_exception")
    if not isinstance(spec, dict):
        raise bad_request(f"[{kind}] must be an object", "x_content_parse_exception")
    for key in spec:
        if key not in keys:
            raise not_modeled(f"[{key}] in an alias [{kind}] action")
    if kind != "remove_index" and not _names(spec, "alias", "aliases"):
        raise bad_request(
            "Validation Failed: 1: [aliases] can't be empty;", "action_request_validation_exception"
        )
    if not _names(spec, "index", "indices"):
        raise bad_request(
            "Validation Failed: 1: One of [index/indices] is required;",
            "action_request_validation_exception",
        )
    return kind, spec


def _names(spec: Json, one: str, many: str) -> list[str]:
    names = [spec[one]] if one in spec else list(spec.get(many) or [])
    for name in names:
        if not isinstance(name, str):
            raise bad_request(f"[{one}] must be a string", "x_content_parse_exception")
        if "*" in name:
            raise not_modeled(f"the wildcard expression [{name}]")
    return names


def _bulk_action(line: str, number: int) -> tuple[str, Json]:
    action = _json(line.encode())
    if not isinstance(action, dict) or len(action) != 1:
        raise bad_request(f"Malformed action/metadata line [{number}], expected START_OBJECT")
    ((op, meta),) = action.items()
    if op == "update":
        raise not_modeled("the bulk action [update]")
    if op not in {"index", "create", "delete"}:
        raise bad_request(
            f"Malformed action/metadata line [{number}], expected one of [create, delete, "
            f"index, update] but found [{op}]"
        )
    for key in meta:
        if key not in _BULK_META_KNOWN:
            raise bad_request(
                f"Action/metadata line [{number}] contains an unknown parameter [{key}]"
            )
        if key not in _BULK_META:
            raise not_modeled(f"[{key}] in a bulk action")
    return op, meta


def _json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError as e:
        raise bad_request(f"Failed to parse content to map: {e}", "parse_exception") from e


def _no_cluster_manager() -> ApiError:
    return ApiError(
        503,
        "cluster_block_exception",
        "blocked by: [SERVICE_UNAVAILABLE/2/no cluster-manager];",
    )


def _handler(server: OpenSearchServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, answer = server.handle(self.command, self.path, headers, body)
            request = f"{self.command} {urlsplit(self.path).path}"
            if server.after is not None:
                server.after(request)
            with server.lock:
                lost = request in server.faults.lose_answer
                server.faults.lose_answer.discard(request)
            if lost:
                self.close_connection = True
                return
            payload = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def do_GET(self) -> None:
            self._serve()

        def do_HEAD(self) -> None:
            self._serve()

        def do_PUT(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

        def log_message(self, *args: object) -> None:
            pass

    return Handler
