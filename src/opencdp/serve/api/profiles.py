"""`/v1/profiles/…`: one profile, found by id or by any identifier, and its timeline."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, LiteralString

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from psycopg import AsyncConnection

from opencdp.serve.api import queries
from opencdp.serve.api.auth import EventsReader, ProfilesReader, State
from opencdp.serve.api.cursors import decode_cursor, encode_cursor
from opencdp.serve.api.models import EventPage, OrderPage, ProfileDocument
from opencdp.serve.api.problems import ApiError
from opencdp.serve.api.responses import page, raw_json
from opencdp.serve.api.state import ApiState, TenantServices
from opencdp.serve.keys import Principal
from opencdp.transform.single import normalize_email, normalize_phone

router = APIRouter(prefix="/v1/profiles", tags=["profiles"])

# Profile ids as identity resolution makes them (opencdp.identity.stable).
PROFILE_ID = re.compile(r"^p_[0-9a-f]{24}$")
EVENT_TYPES = ("track", "page", "screen", "identify", "group", "alias", "webhook", "campaign")
MAX_PAGE = 500
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    308: {"description": "the profile was merged into another: `Location` names it"},
    404: {"description": "no such profile for this key's tenant"},
}


def _check_profile_id(profile_id: str) -> None:
    if not PROFILE_ID.match(profile_id):
        raise ApiError(
            400,
            "malformed-profile-id",
            "a profile id is `p_` followed by 24 hexadecimal digits",
        )


async def _not_found(
    conn: AsyncConnection[tuple[Any, ...]], profile_id: str, request: Request
) -> ApiError:
    """404, or a permanent redirect to the same URL with the id of the profile a merge
    absorbed `profile_id` into. A chain of merges is followed one redirect at a time."""
    row = await (await conn.execute(queries.MERGED_INTO, (profile_id,))).fetchone()
    if row is None:
        return ApiError(404, "profile-not-found", f"no profile {profile_id} in this tenant")
    survivor = str(row[0])
    moved = request.url.path.replace(f"/{profile_id}", f"/{survivor}", 1)
    query = f"?{request.url.query}" if request.url.query else ""
    return ApiError(
        308,
        "profile-merged",
        f"profile {profile_id} was merged into {survivor}",
        headers={"Location": moved + query},
        merged_into=survivor,
    )


@router.get(
    "/lookup",
    response_model=ProfileDocument,
    responses=_NOT_FOUND,
    summary="Find a profile by one identifier",
)
async def lookup(
    state: State,
    principal: ProfilesReader,
    email: Annotated[str | None, Query(max_length=320)] = None,
    phone: Annotated[str | None, Query(max_length=64)] = None,
    external_id: Annotated[str | None, Query(max_length=256)] = None,
    source: Annotated[str | None, Query(max_length=48, pattern=r"^[a-z][a-z0-9_]*$")] = None,
) -> Response:
    """Exactly one of `email`, `phone` or `external_id` (with the `source` that issued it),
    normalized as the pipeline normalizes it: `+1 (415) 555-0100` and `4155550100` find
    the same person."""
    services = await state.tenant(principal.tenant)
    id_type, id_value = _identifier(services, email, phone, external_id, source)
    async with services.pool.connection() as conn:
        row = await (await conn.execute(queries.LOOKUP, (id_type, id_value))).fetchone()
    if row is None:
        raise ApiError(404, "identifier-not-found", f"no profile has this {id_type}")
    profile_id, blocked, reason, _, _, document = row
    if blocked:
        raise ApiError(
            404,
            "identifier-blocked",
            f"this {id_type} is blocked from identifying a profile: {reason}",
        )
    if document is None:
        raise ApiError(404, "identifier-not-found", f"no profile has this {id_type}")
    services.audit.record(principal.key_id, "profile.lookup", str(profile_id), {"by": id_type})
    return raw_json(str(document))


def _identifier(
    services: TenantServices,
    email: str | None,
    phone: str | None,
    external_id: str | None,
    source: str | None,
) -> tuple[str, str]:
    given = [name for name, value in (("email", email), ("phone", phone),
             ("external_id", external_id)) if value is not None]  # fmt: skip
    if len(given) != 1:
        raise ApiError(
            400,
            "one-identifier",
            "give exactly one of email, phone or external_id (with source)",
        )
    if email is not None:
        value = normalize_email(email)
        if value is None:
            raise ApiError(
                400,
                "malformed-identifier",
                "not an email address the pipeline keeps (invalid, or a placeholder)",
            )
        return "email", value
    if phone is not None:
        value = normalize_phone(phone, services.default_country)
        if value is None:
            raise ApiError(
                400,
                "malformed-identifier",
                f"not a valid phone number (read in {services.default_country} unless "
                "written with + and a country code)",
            )
        return "phone", value
    if source is None:
        raise ApiError(400, "malformed-identifier", "external_id needs the source that issued it")
    assert external_id is not None
    if not external_id.strip():
        raise ApiError(400, "malformed-identifier", "external_id is empty")
    return f"{source}_id", external_id


@router.get(
    "/{profile_id}",
    response_model=ProfileDocument,
    responses=_NOT_FOUND,
    summary="One profile: traits with lineage, identities, consent, computed traits",
)
async def get_profile(
    state: State, request: Request, principal: ProfilesReader, profile_id: str
) -> Response:
    _check_profile_id(profile_id)
    services = await state.tenant(principal.tenant)
    async with services.pool.connection() as conn:
        row = await (await conn.execute(queries.PROFILE, (profile_id,))).fetchone()
        if row is None:
            raise await _not_found(conn, profile_id, request)
    services.audit.record(principal.key_id, "profile.read", profile_id, None)
    return raw_json(str(row[0]))


@router.get(
    "/{profile_id}/events",
    response_model=EventPage,
    responses=_NOT_FOUND,
    summary="The profile's events, newest first",
)
async def events(
    state: State,
    request: Request,
    principal: EventsReader,
    profile_id: str,
    type: Annotated[list[Literal[EVENT_TYPES]] | None, Query()] = None,  # type: ignore[valid-type]
    name: Annotated[str | None, Query(max_length=200)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """Filter by event `type` (repeatable), `name`, and time (`since` inclusive, `until`
    exclusive); pass `next_cursor` back as `cursor` for the next page."""
    filters = {
        "types": list(type) if type else None,
        "name": name,
        "since": _aware(since),
        "until": _aware(until),
    }
    return await _timeline(
        state, request, principal, profile_id, queries.EVENTS, filters, ("after_id",),
        limit, cursor, "profile.events",
    )  # fmt: skip


@router.get(
    "/{profile_id}/orders",
    response_model=OrderPage,
    responses=_NOT_FOUND,
    summary="The profile's orders with their items, newest first",
)
async def orders(
    state: State,
    request: Request,
    principal: EventsReader,
    profile_id: str,
    status: Annotated[str | None, Query(max_length=50)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """Filter by `status` and creation time; pass `next_cursor` back as `cursor`."""
    filters = {"status": status, "since": _aware(since), "until": _aware(until)}
    return await _timeline(
        state, request, principal, profile_id, queries.ORDERS, filters,
        ("after_provider", "after_id"), limit, cursor, "profile.orders",
    )  # fmt: skip


async def _timeline(
    state: ApiState,
    request: Request,
    principal: Principal,
    profile_id: str,
    query: LiteralString,
    filters: dict[str, Any],
    after_keys: tuple[str, ...],
    limit: int,
    cursor: str | None,
    action: str,
) -> Response:
    """A page of a profile's timeline, newest first. `query` selects (time, *sort key,
    document) rows and takes the filters, `after_at` and `after_keys` (the cursor) and
    `limit`."""
    _check_profile_id(profile_id)
    after_at: datetime | None = None
    after: list[str | None] = [None] * len(after_keys)
    if cursor:
        after_at, found = decode_cursor(cursor, len(after_keys))
        after = list(found)
    services = await state.tenant(principal.tenant)
    params = {
        "profile_id": profile_id,
        **filters,
        "after_at": after_at,
        **dict(zip(after_keys, after, strict=True)),
        "limit": limit + 1,
    }
    async with services.pool.connection() as conn:
        rows = await (await conn.execute(query, params)).fetchall()
        if not rows and cursor is None:
            await _must_exist(conn, profile_id, request)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1][0], *rows[-1][1:-1]) if more else None
    services.audit.record(principal.key_id, action, profile_id, None)
    return page([str(r[-1]) for r in rows], next_cursor=next_cursor)


async def _must_exist(
    conn: AsyncConnection[tuple[Any, ...]], profile_id: str, request: Request
) -> None:
    if await (await conn.execute(queries.PROFILE_EXISTS, (profile_id,))).fetchone() is None:
        raise await _not_found(conn, profile_id, request)


def _aware(at: datetime | None) -> datetime | None:
    """A time given without a zone is UTC, as everywhere in OpenCDP."""
    if at is None or at.tzinfo is not None:
        return at
    return at.replace(tzinfo=UTC)
