"""The search side of the contract server: the query DSL subset the backend sends,
evaluated on an index's searchable documents, with OpenSearch's sorting, paging and totals.

Modeled queries: `bool` (must, should, filter; minimum_should_match as a count), `dis_max`
(tie_breaker), `constant_score` (boost), `match_all`, and on keyword fields `term`,
`terms`, `prefix` and `fuzzy` (fuzziness 0, 1, 2 or AUTO; with transpositions the distance
is Lucene's, optimal string alignment, else Levenshtein; prefix_length; and unless the
rewrite is a constant-score one, only the max_expansions nearest terms count). A score is
defined only where it is constant: a term-level query in a scoring position (outside a
filter or constant_score, where Lucene would rank it by BM25) is refused as not modeled,
like every other query type and parameter.
"""

from __future__ import annotations

import functools
import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tests.support.opensearch.cluster import (
    ApiError,
    Document,
    Index,
    Json,
    bad_request,
    not_modeled,
)

Scorer = Callable[[Document], float | None]  # a document's score, None: no match

DEFAULT_TRACK_TOTAL_HITS = 10_000
_SEARCH_KEYS = {"query", "from", "size", "track_total_hits", "track_scores", "sort", "_source"}
_KNOWN_SEARCH_KEYS = _SEARCH_KEYS | {
    "aggs", "aggregations", "collapse", "docvalue_fields", "explain", "fields", "highlight",
    "indices_boost", "min_score", "post_filter", "profile", "rescore", "script_fields",
    "search_after", "seq_no_primary_term", "stats", "stored_fields", "suggest",
    "terminate_after", "timeout", "version", "pit", "ext",
}  # fmt: skip
_KNOWN_QUERIES = {
    "match", "match_phrase", "match_phrase_prefix", "match_bool_prefix", "multi_match",
    "query_string", "simple_query_string", "wildcard", "regexp", "range", "exists", "ids",
    "nested", "function_score", "script_score", "boosting", "terms_set", "intervals",
    "script", "knn", "neural", "hybrid", "more_like_this", "match_none", "geo_distance",
}  # fmt: skip
_CONSTANT_REWRITES = {"constant_score", "constant_score_boolean", "scoring_boolean"}
_TOP_TERMS = re.compile(r"top_terms_(?:boost_|blended_freqs_)?(\d+)")


def parsing(reason: str) -> ApiError:
    return bad_request(reason, "parsing_exception")


def shard_failure(cause: ApiError) -> ApiError:
    """An error found while searching the shards: all of them failed."""
    return ApiError(400, "search_phase_execution_exception", "all shards failed", cause=cause)


def search(indices: list[Index], body: Any) -> Json:
    if not isinstance(body, dict):
        raise parsing("request body or source parameter is required")
    for key in body:
        if key not in _KNOWN_SEARCH_KEYS:
            raise parsing(f"Unknown key for a START_OBJECT in [{key}].")
        if key not in _SEARCH_KEYS:
            raise not_modeled(f"the search parameter [{key}]")
    start, size = _natural(body, "from", 0), _natural(body, "size", 10)
    for index in indices:
        if start + size > index.max_result_window:
            raise shard_failure(
                bad_request(
                    f"Result window is too large, from + size must be less than or equal to: "
                    f"[{index.max_result_window}] but was [{start + size}]. See the scroll api "
                    "for a more efficient way to request large data sets. This limit can be set "
                    "by changing the [index.max_result_window] index level setting."
                )
            )
    sort = _sort_specs(body.get("sort"), indices)
    source = body.get("_source", True)
    if not isinstance(source, bool):
        raise not_modeled("a _source filter")
    scored = body.get("track_scores") is True or all(spec.field == "_score" for spec in sort)

    hits = []
    for index in indices:
        scorer = compile_query(body.get("query", {"match_all": {}}), index, scoring=True)
        for position, doc in enumerate(index.searchable.values()):
            score = scorer(doc)
            if score is not None:
                hits.append(_Hit(index, position, doc, _float32(score)))
    hits.sort(key=functools.cmp_to_key(functools.partial(_compare, sort)))

    page = hits[start : start + size]
    found: Json = {
        "max_score": max((h.score for h in hits), default=None) if scored else None,
        "hits": [
            _hit_json(h, sort, scored=scored, source=source, sorted_=bool(body.get("sort")))
            for h in page
        ],
    }
    total = _total(len(hits), body.get("track_total_hits", DEFAULT_TRACK_TOTAL_HITS))
    if total is not None:
        found = {"total": total, **found}
    shards = {"total": len(indices), "successful": len(indices), "skipped": 0, "failed": 0}
    return {"took": 1, "timed_out": False, "_shards": shards, "hits": found}


# --- queries -------------------------------------------------------------------------------


def compile_query(query: Any, index: Index, *, scoring: bool) -> Scorer:
    """A query as a scorer of `index`'s documents; `scoring` is False in filter context."""
    if not isinstance(query, dict) or len(query) != 1:
        raise parsing("[_na] query malformed, must start with start_object")
    ((kind, body),) = query.items()
    compiler = _QUERIES.get(kind)
    if compiler is None:
        if kind in _KNOWN_QUERIES:
            raise not_modeled(f"the [{kind}] query")
        raise parsing(f"unknown query [{kind}]")
    if not isinstance(body, dict):
        raise parsing(f"[{kind}] query malformed, no start_object after query name")
    return compiler(body, index, scoring)


def _bool(body: Json, index: Index, scoring: bool) -> Scorer:
    _only_keys("bool", body, {"must", "should", "filter", "minimum_should_match", "boost"})
    must = [compile_query(q, index, scoring=scoring) for q in _clauses(body, "must")]
    should = [compile_query(q, index, scoring=scoring) for q in _clauses(body, "should")]
    filters = [compile_query(q, index, scoring=False) for q in _clauses(body, "filter")]
    required = _minimum_should_match(body, len(should), default=0 if must or filters else 1)
    boost = _boost(body)
    if not (must or should or filters):
        return lambda doc: boost  # an empty bool matches everything, as match_all

    def score(doc: Document) -> float | None:
        total = 0.0
        for query in must:
            value = query(doc)
            if value is None:
                return None
            total += value
        if any(query(doc) is None for query in filters):
            return None
        matched = [value for query in should if (value := query(doc)) is not None]
        if len(matched) < required:
            return None
        return (total + sum(matched)) * boost

    return score


def _dis_max(body: Json, index: Index, scoring: bool) -> Scorer:
    _only_keys("dis_max", body, {"queries", "tie_breaker", "boost"})
    queries = body.get("queries")
    if not isinstance(queries, list) or not queries:
        raise parsing("[dis_max] requires 'queries' field with at least one clause")
    compiled = [compile_query(q, index, scoring=scoring) for q in queries]
    tie_breaker, boost = float(body.get("tie_breaker", 0.0)), _boost(body)

    def score(doc: Document) -> float | None:
        scores = [value for query in compiled if (value := query(doc)) is not None]
        if not scores:
            return None
        best = max(scores)
        return (best + tie_breaker * (sum(scores) - best)) * boost

    return score


def _constant_score(body: Json, index: Index, scoring: bool) -> Scorer:
    _only_keys("constant_score", body, {"filter", "boost"})
    if "filter" not in body:
        raise parsing("[constant_score] requires a 'filter' element")
    inner, boost = compile_query(body["filter"], index, scoring=False), _boost(body)
    return lambda doc: None if inner(doc) is None else boost


def _match_all(body: Json, index: Index, scoring: bool) -> Scorer:
    _only_keys("match_all", body, {"boost"})
    boost = _boost(body)
    return lambda doc: boost


def _term(body: Json, index: Index, scoring: bool) -> Scorer:
    field, spec = _field_query("term", body, {"value", "boost", "case_insensitive"}, scoring)
    wanted = _keyword(spec["value"])
    return _terms_matcher(index, field, lambda terms: [t for t in terms if t == wanted])


def _terms(body: Json, index: Index, scoring: bool) -> Scorer:
    fields = [key for key in body if key != "boost"]
    if len(fields) != 1 or not isinstance(body[fields[0]], list):
        raise parsing("[terms] query requires one field with an array of values")
    _leaf("terms", scoring)
    wanted = {_keyword(v) for v in body[fields[0]]}
    return _terms_matcher(index, fields[0], lambda terms: [t for t in terms if t in wanted])


def _prefix(body: Json, index: Index, scoring: bool) -> Scorer:
    keys = {"value", "boost", "rewrite", "case_insensitive"}
    field, spec = _field_query("prefix", body, keys, scoring)
    _rewrite_limit(spec.get("rewrite"), None)
    prefix = _keyword(spec["value"])
    return _terms_matcher(index, field, lambda terms: [t for t in terms if t.startswith(prefix)])


def _fuzzy(body: Json, index: Index, scoring: bool) -> Scorer:
    keys = {"value", "boost", "fuzziness", "transpositions", "prefix_length"}
    keys |= {"max_expansions", "rewrite"}
    field, spec = _field_query("fuzzy", body, keys, scoring)
    value = _keyword(spec["value"])
    edits = _fuzziness(spec.get("fuzziness", "AUTO"), value)
    transpositions = spec.get("transpositions", True) is not False
    prefix_length = int(spec.get("prefix_length", 0))
    limit = _rewrite_limit(spec.get("rewrite"), int(spec.get("max_expansions", 50)))
    distance = _osa if transpositions else _levenshtein
    near = sorted(
        (d, term)
        for term in _vocabulary(index, field)
        if term[:prefix_length] == value[:prefix_length]
        and (d := distance(value, term, edits)) <= edits
    )
    expansions = {term for _, term in (near if limit is None else near[:limit])}
    return _terms_matcher(index, field, lambda terms: [t for t in terms if t in expansions])


_QUERIES: dict[str, Callable[[Json, Index, bool], Scorer]] = {
    "bool": _bool,
    "dis_max": _dis_max,
    "constant_score": _constant_score,
    "match_all": _match_all,
    "term": _term,
    "terms": _terms,
    "prefix": _prefix,
    "fuzzy": _fuzzy,
}


def _field_query(kind: str, body: Json, keys: set[str], scoring: bool) -> tuple[str, Json]:
    """The field and parameters of a term-level query, `{field: value}` or
    `{field: {"value": ...}}`."""
    if len(body) != 1:
        raise parsing(f"[{kind}] query doesn't support multiple fields")
    ((field, spec),) = body.items()
    spec = spec if isinstance(spec, dict) else {"value": spec}
    for key in spec:
        if key not in keys:
            raise parsing(f"[{kind}] query does not support [{key}]")
    if "value" not in spec:
        raise parsing(f"[{kind}] query requires a value")
    if spec.get("case_insensitive"):
        raise not_modeled(f"case_insensitive in a [{kind}] query")
    _leaf(kind, scoring)
    return field, spec


def _leaf(kind: str, scoring: bool) -> None:
    if scoring:
        raise not_modeled(f"scoring a [{kind}] query outside a filter or constant_score (BM25)")


def _terms_matcher(
    index: Index, field: str, matching: Callable[[tuple[str, ...]], list[str]]
) -> Scorer:
    mapping = index.mappings.properties.get(field)
    if mapping is not None and not mapping.index:
        raise shard_failure(
            bad_request(
                f"Cannot search on field [{field}] since it is not indexed.",
                "query_shard_exception",
            )
        )
    # An unmapped field matches nothing, without an error.
    return lambda doc: 0.0 if matching(doc.terms.get(field, ())) else None


def _vocabulary(index: Index, field: str) -> set[str]:
    return {term for doc in index.searchable.values() for term in doc.terms.get(field, ())}


def _fuzziness(value: Any, term: str) -> int:
    if value == "AUTO":
        return 0 if len(term) <= 2 else 1 if len(term) <= 5 else 2
    if isinstance(value, bool) or not str(value).isdigit():
        raise not_modeled(f"the fuzziness [{value}]")
    edits = int(value)
    if edits > 2:
        raise bad_request(f"Valid edit distances are [0, 1, 2] but was [{edits}]")
    return edits


def _rewrite_limit(rewrite: Any, max_expansions: int | None) -> int | None:
    """How many matching terms a multi-term query keeps (None: all of them)."""
    if rewrite is None:
        return max_expansions  # fuzzy's default: the top terms; prefix's: constant score
    if rewrite in _CONSTANT_REWRITES:
        return None
    found = _TOP_TERMS.fullmatch(str(rewrite))
    if found is None:
        raise bad_request(f"Failed to parse rewrite_method [{rewrite}]")
    return int(found[1])


def _osa(a: str, b: str, bound: int) -> int:
    """Optimal string alignment distance: edits and swaps of neighbours, each once."""
    return _edits(a, b, bound, swaps=True)


def _levenshtein(a: str, b: str, bound: int) -> int:
    return _edits(a, b, bound, swaps=False)


def _edits(a: str, b: str, bound: int, *, swaps: bool) -> int:
    if abs(len(a) - len(b)) > bound:
        return bound + 1
    before: list[int] = []
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + cost)
            if swaps and i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], before[j - 2] + 1)
        before, row = row, current
    return row[len(b)]


# --- request parameters --------------------------------------------------------------------


def _only_keys(kind: str, body: Json, keys: set[str]) -> None:
    for key in body:
        if key not in keys:
            if key in {"must_not", "_name"}:
                raise not_modeled(f"[{key}] in a [{kind}] query")
            raise parsing(f"[{kind}] query does not support [{key}]")


def _clauses(body: Json, occur: str) -> list[Any]:
    clauses = body.get(occur, [])
    return clauses if isinstance(clauses, list) else [clauses]


def _minimum_should_match(body: Json, optional: int, *, default: int) -> int:
    value = body.get("minimum_should_match")
    if value is None:
        return default
    text = str(value)
    if isinstance(value, bool) or not re.fullmatch(r"-?\d+", text):
        raise not_modeled(f"minimum_should_match [{value}]")
    count = int(text)
    return max(0, optional + count if count < 0 else count)


def _boost(body: Json) -> float:
    boost = body.get("boost", 1.0)
    if isinstance(boost, bool) or not isinstance(boost, int | float) or boost < 0:
        raise bad_request(f"negative [boost] are not allowed: [{boost}]")
    return float(boost)


def _keyword(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str | int | float):
        raise parsing(f"[term] value must be a string or a number, got [{value}]")
    return str(value)


def _natural(body: Json, key: str, default: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise parsing(f"[{key}] must be an integer")
    if value < 0:
        raise bad_request(f"[{key}] parameter cannot be negative")
    return value


def _total(count: int, track: Any) -> Json | None:
    if track is False:
        return None
    if track is True:
        return {"value": count, "relation": "eq"}
    if isinstance(track, int):
        return {"value": min(count, track), "relation": "gte" if count > track else "eq"}
    raise parsing(f"[track_total_hits] must be a boolean or an integer, got [{track}]")


# --- sorting -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sort:
    field: str  # "_score" or a keyword field with doc values
    descending: bool

    def value(self, hit: _Hit) -> float | str | None:
        if self.field == "_score":
            return hit.score
        values = hit.doc.values.get(self.field)
        if not values:
            return None
        return values[-1] if self.descending else values[0]  # max, or min, of a list


@dataclass(frozen=True)
class _Hit:
    index: Index
    position: int  # in index order: a shard's last resort between equal hits
    doc: Document
    score: float


def _sort_specs(sort: Any, indices: Iterable[Index]) -> list[_Sort]:
    if sort is None:
        return [_Sort("_score", descending=True)]
    specs = []
    for entry in sort if isinstance(sort, list) else [sort]:
        if isinstance(entry, str):
            field, order = entry, None
        elif isinstance(entry, dict) and len(entry) == 1:
            ((field, order),) = entry.items()
            if isinstance(order, dict):
                if set(order) - {"order"}:
                    raise not_modeled(f"sort options {sorted(set(order) - {'order'})}")
                order = order.get("order")
        else:
            raise parsing(f"malformed sort entry [{entry}]")
        if order not in {None, "asc", "desc"}:
            raise bad_request(f"Unknown SortOrder [{order}]")
        if field == "_doc":
            raise not_modeled("sorting by _doc")
        if field != "_score":
            _check_sortable(field, indices)
        specs.append(
            _Sort(field, descending=(order or ("desc" if field == "_score" else "asc")) == "desc")
        )
    return specs


def _check_sortable(field: str, indices: Iterable[Index]) -> None:
    for index in indices:
        mapping = index.mappings.properties.get(field)
        if mapping is None:
            raise shard_failure(
                bad_request(
                    f"No mapping found for [{field}] in order to sort on", "query_shard_exception"
                )
            )
        if not mapping.doc_values:
            raise shard_failure(
                bad_request(
                    f"Can't load fielddata on [{field}] because fielddata is unsupported on "
                    "fields of type [keyword]. Use doc values instead."
                )
            )


def _compare(specs: list[_Sort], a: _Hit, b: _Hit) -> int:
    for spec in specs:
        left, right = spec.value(a), spec.value(b)
        if left == right:
            continue
        if left is None or right is None:  # a missing value sorts last, either way
            return 1 if left is None else -1
        before = left < right  # type: ignore[operator]
        return (1 if before else -1) if spec.descending else (-1 if before else 1)
    left_place, right_place = (a.index.name, a.position), (b.index.name, b.position)
    return (left_place > right_place) - (left_place < right_place)


def _hit_json(hit: _Hit, specs: list[_Sort], *, scored: bool, source: bool, sorted_: bool) -> Json:
    out: Json = {
        "_index": hit.index.name,
        "_id": hit.doc.id,
        "_score": hit.score if scored else None,
    }
    if source:
        out["_source"] = hit.doc.source
    if sorted_:
        out["sort"] = [spec.value(hit) for spec in specs]
    return out


def _float32(value: float) -> float:
    """Lucene's scores are 32-bit floats."""
    return float(struct.unpack("f", struct.pack("f", value))[0])
