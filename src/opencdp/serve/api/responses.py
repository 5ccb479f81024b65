"""JSON answers assembled from documents PostgreSQL already rendered as text."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from fastapi.responses import Response


def raw_json(document: str, status: int = 200) -> Response:
    return Response(document, status_code=status, media_type="application/json")


def page(items: Sequence[str], next_cursor: str | None, **extra: object) -> Response:
    """`{"data": [...], "next_cursor": ...}` around items that are JSON text already."""
    tail = orjson.dumps({"next_cursor": next_cursor, **extra}).decode()
    body = '{"data":[' + ",".join(items) + "]," + tail[1:]
    return raw_json(body)
