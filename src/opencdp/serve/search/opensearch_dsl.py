"""What the OpenSearch backend sends, decided without a server: a tenant index's settings
and mappings, its metadata, and a search plan (query.py) as query DSL.

Every field is a `keyword`: documents.py has analysed the text already, so the server
stores the terms verbatim and a query's terms meet them as they are; both backends see the
same terms. The ranking is the Tantivy backend's, term for term:

- a `Match` is a `constant_score` whose boost is the plan's fixed score, around a `term`,
  a `prefix` or a `fuzzy` query (transpositions count as one edit, as in Tantivy; the
  `constant_score` rewrite, so that every term within the distance matches, not only the
  `max_expansions` nearest);
- an `AnyOf` is a `dis_max` with tie_breaker 0 (a clause scores its best alternative), an
  `AllOf` a `bool.must` (the scores add up);
- the plan's clauses are a `bool.should` with `minimum_should_match` = `required`, its
  filters a `bool.filter` (they score nothing).

No term statistics take part, so a score does not depend on how the shards split the
profiles. Hits are sorted by score, then by profile id: ties come back in the same order
from every shard and replica, so pages do not overlap.
"""

from __future__ import annotations

from typing import Any

from opencdp.serve.search.documents import FILTERS, PROFILE_ID, TEXT_FIELDS, filter_field
from opencdp.serve.search.query import (
    MAX_LIMIT,
    MAX_OFFSET,
    AllOf,
    AnyOf,
    Match,
    SearchPlan,
    TermFilter,
)

FORMAT = 1  # bump when the mappings or the analysis change: a full sync is then needed
# Lucene refuses a term over 32,766 bytes, and with it the whole document: longer values
# are left out of the index instead (8,191 characters fit in any encoding). No query can
# ask for one: a query is cut at 256 characters.
MAX_TERM_CHARS = 8191
FIELDS: tuple[str, ...] = (*TEXT_FIELDS, *(filter_field(name) for name in FILTERS))

Json = dict[str, Any]


def index_body(snapshot_id: int) -> Json:
    """The settings and mappings of a new generation of a tenant's index, with the
    snapshot it will hold in its metadata. It refreshes only when asked: readers see a
    sync's documents all at once."""
    return {
        "settings": {
            "index": {
                "refresh_interval": "-1",
                # The API pages up to offset MAX_OFFSET with limit up to MAX_LIMIT.
                "max_result_window": MAX_OFFSET + MAX_LIMIT,
            }
        },
        "mappings": {
            "dynamic": "strict",
            "_meta": meta(snapshot_id),
            "properties": {
                field: {
                    "type": "keyword",
                    "ignore_above": MAX_TERM_CHARS,
                    "doc_values": field == PROFILE_ID,  # only the tiebreak sorts
                }
                for field in FIELDS
            },
        },
    }


def meta(snapshot_id: int) -> Json:
    # A snapshot id is a 64-bit integer: as a string it survives any JSON reader that
    # turns numbers into doubles.
    return {"format": FORMAT, "snapshot_id": str(snapshot_id)}


def synced_snapshot(mappings: Json) -> int | None:
    """The snapshot an index's mappings record; None when it is not of this format."""
    recorded = mappings.get("_meta") or {}
    if recorded.get("format") != FORMAT:
        return None
    try:
        return int(recorded["snapshot_id"])
    except (KeyError, TypeError, ValueError):
        return None


def search_body(plan: SearchPlan, *, limit: int, offset: int) -> Json:
    return {
        "query": build_query(plan),
        "from": offset,
        "size": limit,
        "track_total_hits": True,  # the exact total, not "at least 10,000"
        "track_scores": True,  # sorting by more than the score would leave it out
        "sort": [{"_score": {"order": "desc"}}, {PROFILE_ID: {"order": "asc"}}],
        "_source": False,
    }


def build_query(plan: SearchPlan) -> Json:
    """The query DSL of a plan: the user's text only ever appears as a term's value."""
    query: Json = {}
    if plan.clauses:
        query["should"] = [_any_of(clause) for clause in plan.clauses]
        query["minimum_should_match"] = plan.required
    if plan.filters:
        query["filter"] = [_filter(term) for term in plan.filters]
    return {"bool": query}


def _any_of(clause: AnyOf) -> Json:
    queries = [
        _all_of(alt) if isinstance(alt, AllOf) else _match(alt) for alt in clause.alternatives
    ]
    if len(queries) == 1:
        return queries[0]
    return {"dis_max": {"queries": queries, "tie_breaker": 0.0}}


def _all_of(group: AllOf) -> Json:
    return {"bool": {"must": [_any_of(clause) for clause in group.clauses]}}


def _match(match: Match) -> Json:
    leaf: Json
    if match.kind == "exact":
        leaf = {"term": {match.field: {"value": match.text}}}
    elif match.kind == "prefix":
        assert not match.distance, "a prefix within edits has no OpenSearch query"
        leaf = {"prefix": {match.field: {"value": match.text}}}
    else:
        leaf = {
            "fuzzy": {
                match.field: {
                    "value": match.text,
                    "fuzziness": match.distance,
                    "transpositions": True,
                    "prefix_length": 0,
                    "rewrite": "constant_score",
                }
            }
        }
    return {"constant_score": {"filter": leaf, "boost": match.score}}


def _filter(term: TermFilter) -> Json:
    return {"terms": {term.field: list(term.values)}}
