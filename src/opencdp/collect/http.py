"""Plain-ASGI request and response helpers for the collection service's hot path.

The intake path stays off frameworks (performance.md §2a: Starlette alone halves the
ceiling); these few helpers are all it needs.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class HttpError(Exception):
    """Answer the request with `status` and a JSON problem document (RFC 9457)."""

    def __init__(
        self, status: int, title: str, detail: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})


def headers_of(scope: Scope) -> dict[str, str]:
    """Request headers with lower-case names (a repeated header keeps its last value)."""
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


async def read_body(receive: Receive, headers: Mapping[str, str], limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit`."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HttpError(413, "Payload Too Large", f"the body limit is {limit:,} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HttpError(400, "Bad Request", "the client went away mid-request")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HttpError(413, "Payload Too Large", f"the body limit is {limit:,} bytes")
        if not message.get("more_body"):
            return b"".join([*chunks, chunk]) if chunks else chunk
        chunks.append(chunk)


def decode_content(body: bytes, headers: Mapping[str, str], limit: int) -> bytes:
    """The body after Content-Encoding (gzip), never inflated beyond `limit` bytes."""
    encoding = headers.get("content-encoding", "identity").lower()
    if encoding in ("identity", ""):
        return body
    if encoding != "gzip":
        raise HttpError(415, "Unsupported Media Type", f"content encoding {encoding!r}")
    inflater = zlib.decompressobj(wbits=31)
    try:
        plain = inflater.decompress(body, limit + 1)
    except zlib.error as e:
        raise HttpError(400, "Bad Request", f"the gzip body is corrupt: {e}") from e
    if len(plain) > limit or inflater.unconsumed_tail:
        raise HttpError(413, "Payload Too Large", f"the body limit is {limit:,} bytes")
    return plain


def require_json(headers: Mapping[str, str]) -> None:
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise HttpError(415, "Unsupported Media Type", "send the body as application/json")


def basic_user(headers: Mapping[str, str]) -> str | None:
    """The user name of HTTP Basic credentials (Segment's write key), if any."""
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


async def respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
) -> None:
    raw = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Send, status: int, doc: Any) -> None:
    await respond(send, status, orjson.dumps(doc))


async def respond_problem(send: Send, error: HttpError) -> None:
    doc = {
        "type": "about:blank",
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
    }
    await respond(send, error.status, orjson.dumps(doc), "application/problem+json", error.headers)
