"""`POST /v1/enrich`: partial identifiers in, the matched profile and how sure the match is out.

Stored identifiers (email, phone, a provider's id) decide first: they are what identity
resolution linked records by. Without one, the traits given are compared with the closest
profiles by the tenant's trained Fellegi-Sunter model, as resolution compares records.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.responses import Response
from psycopg import AsyncConnection

from opencdp.engine.duckdb_engine import DuckDBEngine
from opencdp.errors import NotFoundError
from opencdp.identity.matching import COMPARED, model_key, score_candidates
from opencdp.serve.api import queries
from opencdp.serve.api.auth import ProfilesReader, State
from opencdp.serve.api.models import EnrichRequest, EnrichResponse
from opencdp.serve.api.problems import ApiError
from opencdp.serve.api.responses import raw_json
from opencdp.serve.api.state import TenantServices
from opencdp.storage.objectstore import store_for
from opencdp.transform.rows import normalize_values
from opencdp.transform.single import normalize_email, normalize_phone

router = APIRouter(tags=["enrichment"])

_CANDIDATES = 20
# The traits the model compares, besides identifiers, and their kinds in the pipeline.
_TRAIT_KINDS = {
    "first_name": "name",
    "last_name": "name",
    "postcode": "postcode",
    "city": "text",
}
_MIN_TRAITS = 2  # as resolution: fewer traits say too little to match on

_IDENTITY_ROWS = """
SELECT i.id_type, i.profile_id, i.confidence
FROM identities i
JOIN unnest(%s::text[], %s::text[]) AS given(id_type, id_value)
  ON i.id_type = given.id_type AND i.id_value = given.id_value
WHERE NOT coalesce(i.blocked, false) AND i.profile_id IS NOT NULL
"""

_CANDIDATE_TRAITS = f"""
SELECT profile_id, {", ".join(COMPARED)} FROM profiles WHERE profile_id = ANY(%s)
"""


@router.post(
    "/v1/enrich",
    response_model=EnrichResponse,
    responses={404: {"description": "no profile matches"}},
    summary="Match partial identifiers to a profile and return its traits",
)
async def enrich(state: State, principal: ProfilesReader, request: EnrichRequest) -> Response:
    services = await state.tenant(principal.tenant)
    identifiers = _identifiers(request, services.default_country)
    record = _record(request, services.default_country)
    if not identifiers and sum(v is not None for v in record.values()) < _MIN_TRAITS:
        raise ApiError(
            400,
            "too-little",
            "give an email, a phone or an external_id with its source, or at least two of "
            "first_name, last_name, birth_date, postcode, city",
        )
    async with services.pool.connection() as conn:
        found = await _by_identifier(conn, identifiers) if identifiers else None
        if found is None and sum(v is not None for v in record.values()) >= _MIN_TRAITS:
            found = await _by_model(state.settings, principal.tenant, services, conn, record)
        if found is None:
            raise ApiError(404, "no-match", "no profile matches these identifiers and traits")
        profile_id, confidence, matched_on, method = found
        row = await (await conn.execute(queries.PROFILE, (profile_id,))).fetchone()
    if row is None:  # loaded away in between
        raise ApiError(404, "no-match", "no profile matches these identifiers and traits")
    services.audit.record(principal.key_id, "enrich", profile_id, {"method": method})
    head = orjson.dumps(
        {
            "profile_id": profile_id,
            "confidence": confidence,
            "matched_on": matched_on,
            "method": method,
        }
    ).decode()
    return raw_json(head[:-1] + ',"profile":' + str(row[0]) + "}")


def _identifiers(request: EnrichRequest, country: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if request.email is not None:
        email = normalize_email(request.email)
        if email is None:
            raise ApiError(
                400,
                "malformed-identifier",
                "email: not an email address the pipeline keeps (invalid, or a placeholder)",
            )
        found.append(("email", email))
    if request.phone is not None:
        phone = normalize_phone(request.phone, country)
        if phone is None:
            raise ApiError(400, "malformed-identifier", "phone: not a valid phone number")
        found.append(("phone", phone))
    if request.external_id is not None:
        if request.source is None or not request.external_id.strip():
            raise ApiError(400, "malformed-identifier", "external_id needs a value and its source")
        found.append((f"{request.source}_id", request.external_id))
    return found


def _record(request: EnrichRequest, country: str) -> dict[str, Any]:
    """The traits given, normalized as the pipeline stores them, by the model's names."""
    record: dict[str, Any] = dict.fromkeys(COMPARED)
    for name, kind in _TRAIT_KINDS.items():
        value = getattr(request, name)
        if value is not None:
            record[name] = normalize_values(kind, [value], country)[0].as_py()  # type: ignore[arg-type]
    record["birth_date"] = request.birth_date
    if request.email is not None:
        record["email"] = normalize_email(request.email)
    if request.phone is not None:
        record["phone"] = normalize_phone(request.phone, country)
    return record


async def _by_identifier(
    conn: AsyncConnection[tuple[Any, ...]], identifiers: list[tuple[str, str]]
) -> tuple[str, float, list[str], str] | None:
    """The profile most of the given identifiers belong to (ties: the first given)."""
    types = [t for t, _ in identifiers]
    rows = await (
        await conn.execute(_IDENTITY_ROWS, (types, [v for _, v in identifiers]))
    ).fetchall()
    if not rows:
        return None
    votes = Counter(str(profile_id) for _, profile_id, _ in rows)
    first = {str(p): min(types.index(t) for t, q, _ in rows if q == p) for _, p, _ in rows}
    best = max(votes, key=lambda p: (votes[p], -first[p]))
    matched = sorted({str(t) for t, p, _ in rows if p == best}, key=types.index)
    confidence = max(float(c if c is not None else 1.0) for _, p, c in rows if p == best)
    return best, confidence, matched, "identifier"


async def _by_model(
    settings: Any,
    tenant: str,
    services: TenantServices,
    conn: AsyncConnection[tuple[Any, ...]],
    record: dict[str, Any],
) -> tuple[str, float, list[str], str] | None:
    """The likeliest of the profiles the search finds for the names, by the tenant's model,
    if its probability reaches the tenant's possible-match threshold."""
    try:
        model = orjson.loads(store_for(settings).read(model_key(tenant)))
    except NotFoundError:
        raise ApiError(
            404,
            "no-model",
            "matching on traits needs the tenant's trained model: run "
            f"`opencdp identity resolve --tenant {tenant}` on enough records first",
        ) from None
    names = " ".join(v for v in (record["first_name"], record["last_name"]) if v)
    query = names or " ".join(v for v in (record["postcode"], record["city"]) if v)
    page = await asyncio.to_thread(services.search.search, query, limit=_CANDIDATES)
    ids = [hit.profile_id for hit in page.hits]
    if not ids:
        return None
    rows = await (await conn.execute(_CANDIDATE_TRAITS, (ids,))).fetchall()
    candidates = [{"unique_id": r[0], **dict(zip(COMPARED, r[1:], strict=True))} for r in rows]
    scores = await asyncio.to_thread(_score, model, record, candidates)
    if not scores:
        return None
    (probability, evidence), candidate = max(
        zip(scores, candidates, strict=True), key=lambda pair: pair[0][0]
    )
    if probability < settings.tenant(tenant).identity.possible_threshold:
        return None
    matched = sorted(name for name, weight in evidence.items() if weight > 0)
    return str(candidate["unique_id"]), round(probability, 6), matched, "model"


def _score(
    model: dict[str, Any], record: dict[str, Any], candidates: list[dict[str, Any]]
) -> list[tuple[float, dict[str, float]]]:
    with DuckDBEngine(workers=1) as engine:
        return score_candidates(engine, model, record, candidates)
