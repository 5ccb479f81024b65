"""`GET /v1/profiles/search`: typo-tolerant, prefix-matching profile search with filters."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from opencdp.serve.api import queries
from opencdp.serve.api.auth import ProfilesReader, State
from opencdp.serve.api.models import SearchPage
from opencdp.serve.api.problems import ApiError
from opencdp.serve.api.responses import page
from opencdp.serve.search import SearchError

router = APIRouter(prefix="/v1/profiles", tags=["search"])

_PAGING = {"q", "limit", "offset"}
MAX_OFFSET = 10_000


@router.get("/search", response_model=SearchPage, summary="Search profiles")
async def search(
    request: Request,
    state: State,
    principal: ProfilesReader,
    q: Annotated[str, Query(max_length=200)] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """`q` matches names, emails (misspelled, or their first letters), phones (in any
    format, or their last digits), company and places. Any other query parameter filters on
    a trait by exact value: `country=FR`, `city=Lyon`, `rfm_segment=champions`, ..."""
    filters = {k: v for k, v in request.query_params.items() if k not in _PAGING}
    services = await state.tenant(principal.tenant)
    try:
        found = await asyncio.to_thread(
            services.search.search, q, filters=filters, limit=limit, offset=offset
        )
    except SearchError as e:
        raise ApiError(400, "bad-search", str(e)) from None
    ids = [hit.profile_id for hit in found.hits]
    documents: dict[str, str] = {}
    if ids:
        async with services.pool.connection() as conn:
            rows = await (await conn.execute(queries.SUMMARIES, (ids,))).fetchall()
        documents = {str(r[0]): str(r[1]) for r in rows}
    # A hit whose profile the database no longer holds (a load in between) is left out.
    items = [
        documents[hit.profile_id][:-1] + f',"score":{hit.score:.6g}}}'
        for hit in found.hits
        if hit.profile_id in documents
    ]
    more = offset + len(found.hits) < found.total
    services.audit.record(principal.key_id, "profile.search", None, {"q": q[:200], **filters})
    return page(items, next_offset=offset + limit if more else None, total=found.total)
