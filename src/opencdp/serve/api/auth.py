"""Who is asking: the API key in `Authorization: Bearer …`, checked on every request, and
the scopes each route needs. The tenant comes from the key, never from the request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from opencdp.serve.api.problems import ApiError
from opencdp.serve.api.state import ApiState, state_of
from opencdp.serve.keys import InvalidKeyError, Principal

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="opencdp"'}


async def authenticate(request: Request) -> Principal:
    header = request.headers.get("authorization")
    if not header:
        raise ApiError(
            401,
            "missing-key",
            "send an API key as `Authorization: Bearer <key>`; "
            "create one with `opencdp keys create`",
            headers=_CHALLENGE,
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "malformed-authorization",
            "the Authorization header must be `Bearer <key>`",
            headers=_CHALLENGE,
        )
    try:
        return await (await state_of(request)).verifier.verify(token.strip())
    except InvalidKeyError as e:
        raise ApiError(401, "invalid-key", str(e), headers=_CHALLENGE) from None


def require(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the caller's principal, when its key carries `scope` (or admin)."""

    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.allows(scope):
            raise ApiError(
                403,
                "missing-scope",
                f"this key lacks the scope {scope!r} (it has: {', '.join(principal.scopes)})",
            )
        return principal

    return check


ProfilesReader = Annotated[Principal, Depends(require("profiles:read"))]
EventsReader = Annotated[Principal, Depends(require("events:read"))]
State = Annotated[ApiState, Depends(state_of)]
