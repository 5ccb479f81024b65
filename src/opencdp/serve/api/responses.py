"""JSON answers assembled from documents PostgreSQL already rendered as text."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from fastapi.responses import Response


def raw_json(document: str, status: int = 200) -> Response:
    return Response(document, status_code=status, media_type="application/json")


def page(items: Sequence[str], **tail: object) -> Response:
    """`{"data": [...], **tail}` around items that are JSON text already (`tail`: the
    paging, e.g. next_cursor)."""
    rest = orjson.dumps(tail).decode()
    body = '{"data":[' + ",".join(items) + "]," + rest[1:]
    return raw_json(body)
