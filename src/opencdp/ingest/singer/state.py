"""Singer state (bookmarks) kept per tenant and source in the object store."""

from __future__ import annotations

from typing import Any

import orjson

from opencdp.errors import NotFoundError
from opencdp.storage import layout
from opencdp.storage.objectstore import ObjectStore


class StateStore:
    """The last durable state of one tenant's source; written atomically, replaced whole."""

    def __init__(self, store: ObjectStore, tenant: str, source: str) -> None:
        self.store = store
        self.key = layout.state_key("singer", tenant, f"{source}.json")

    def load(self) -> dict[str, Any] | None:
        try:
            value = orjson.loads(self.store.read(self.key))
        except NotFoundError:
            return None
        return value if isinstance(value, dict) else None

    def save(self, value: dict[str, Any]) -> None:
        self.store.write(self.key, orjson.dumps(value), overwrite=True)
