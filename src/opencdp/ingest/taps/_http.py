"""What the built-in API taps share: retries that honour Retry-After, errors that say what
to fix, records landed exactly as the API sent them, and the incremental window."""

from __future__ import annotations

import random
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from singer_sdk import RESTStream
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel

_Token = TypeVar("_Token")

# First retry after about half a second, doubling up to MAX_BACKOFF (the official Stripe
# client's figures); a Retry-After above MAX_RETRY_AFTER is capped there.
BASE_BACKOFF = 0.5
MAX_BACKOFF = 16.0
MAX_RETRY_AFTER = 120.0
MAX_TRIES = 8
_ERROR_BODY_CHARS = 300


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks to wait: delta seconds (Shopify sends decimals
    such as "2.0") or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (at - (now or datetime.now(UTC))).total_seconds())


def backoff_delays(
    base: float = BASE_BACKOFF, cap: float = MAX_BACKOFF
) -> Generator[float, BaseException | None, None]:
    """A `backoff` wait generator: it is sent each failure and answers how long to wait,
    the server's Retry-After when the failed response has one, else exponential with
    jitter (so parallel extractions do not retry in step)."""
    failure = yield 0.0  # primed by `backoff` before the first failure
    attempt = 0
    while True:
        response = failure.response if isinstance(failure, RetriableAPIError) else None
        asked = retry_after(response.headers.get("Retry-After")) if response is not None else None
        if asked is not None:
            delay = min(asked, MAX_RETRY_AFTER)
        else:
            delay = min(cap, base * 2**attempt) * random.uniform(0.5, 1.0)  # noqa: S311
        attempt += 1
        failure = yield delay


def api_error(provider: str, response: requests.Response, hint: str) -> str:
    """A one-line description of a refused request (the last line of the tap's stderr is
    what `opencdp extract` reports); never includes request headers, so no secret."""
    body = " ".join(response.text.split())[:_ERROR_BODY_CHARS]
    status = f"{response.status_code} {response.reason or ''}".rstrip()
    path = urlsplit(response.url).path
    return f"{provider} answered HTTP {status} for {path}: {body} ({hint})"


class ApiStream(RESTStream[_Token]):
    """Base of the built-in API taps' streams."""

    provider = "the API"
    credentials = "the credentials"  # the config key to check when authentication fails
    # The raw zone keeps records exactly as the source sent them: no SDK type coercion,
    # and fields the schema does not declare are kept, not dropped.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
            raise FatalAPIError(
                api_error(
                    self.provider,
                    response,
                    f"authentication failed: check {self.credentials} in the tap configuration",
                )
            )
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise RetriableAPIError(
                api_error(self.provider, response, "retried with backoff"), response
            )
        if status >= HTTPStatus.BAD_REQUEST:
            raise FatalAPIError(api_error(self.provider, response, "the request was refused"))

    def backoff_wait_generator(self) -> Generator[float, Any, None]:
        return backoff_delays()

    def backoff_jitter(self, value: float) -> float:
        return value  # backoff_delays adds its own jitter and keeps Retry-After exact

    def backoff_max_tries(self) -> int:
        return MAX_TRIES


def parse_time(value: str) -> datetime:
    """An ISO 8601 time; a naive one is taken as UTC."""
    at = datetime.fromisoformat(value)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def window(
    bookmark: datetime | None, start_date: datetime | None, started: datetime
) -> tuple[datetime | None, datetime]:
    """The [since, until] range of update times one incremental run asks for (pure).

    Both APIs keep whole seconds. The range ends one second before the run started, so
    every record stamped within it was already written when it was read; the next run then
    starts one second after the bookmark and reads no record twice, and one changed during
    a run is read by the next.
    """
    until = started.replace(microsecond=0) - timedelta(seconds=1)
    since = bookmark + timedelta(seconds=1) if bookmark is not None else None
    if start_date is not None and (since is None or start_date > since):
        since = start_date
    return since, until
