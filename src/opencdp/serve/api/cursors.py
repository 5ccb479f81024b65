"""Opaque pagination cursors: the sort key of the last item of a page, in base64url JSON.

A cursor only narrows a query the key's tenant may run anyway, so it needs no signature; it
must only be well formed, and anything else is a clear 400.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

import orjson

from opencdp.serve.api.problems import ApiError


def encode_cursor(at: datetime, *key: str) -> str:
    """The cursor after an item sorted by (`at`, `key`...), newest first."""
    body = orjson.dumps([at.isoformat(), *key])
    return base64.urlsafe_b64encode(body).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, parts: int) -> tuple[datetime, list[str]]:
    """The time and the `parts` key strings of a cursor; a 400 problem for anything else."""
    bad = ApiError(
        400, "bad-cursor", "the cursor is not one this API gave: pass back `next_cursor` unchanged"
    )
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values: Any = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise bad from None
    if not (
        isinstance(values, list)
        and len(values) == 1 + parts
        and all(isinstance(v, str) for v in values)
    ):
        raise bad
    try:
        at = datetime.fromisoformat(values[0])
    except ValueError:
        raise bad from None
    if at.tzinfo is None:
        raise bad
    return at, values[1:]
