"""Unlink rules: a person's correction of a wrong merge, kept per tenant in the state.

`apart` keeps two nodes in different profiles (every link that would join them is refused);
`blocked` stops an identifier value from linking anything. Rules apply from the next run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from opencdp.errors import NotFoundError
from opencdp.storage import layout
from opencdp.storage.objectstore import ObjectStore


@dataclass
class Rules:
    apart: list[dict[str, Any]] = field(default_factory=list)  # node_a, node_b, reason, at
    blocked: list[dict[str, Any]] = field(default_factory=list)  # id_type, id_value, ...

    def apart_table(self) -> pa.Table:
        pairs = [sorted((r["node_a"], r["node_b"])) for r in self.apart]
        # Both directions, so a join needs to look one way only.
        a = [p[0] for p in pairs] + [p[1] for p in pairs]
        b = [p[1] for p in pairs] + [p[0] for p in pairs]
        return pa.table({"node_a": pa.array(a, pa.string()), "node_b": pa.array(b, pa.string())})

    def blocked_table(self) -> pa.Table:
        return pa.table(
            {
                "id_type": pa.array([r["id_type"] for r in self.blocked], pa.string()),
                "id_value": pa.array([r["id_value"] for r in self.blocked], pa.string()),
            }
        )


class RuleBook:
    """The tenant's rules in `state/identity/{tenant}/rules.json`."""

    def __init__(self, store: ObjectStore, tenant: str) -> None:
        self.store = store
        self.key = layout.state_key("identity", tenant, "rules.json")

    def load(self) -> Rules:
        try:
            doc = orjson.loads(self.store.read(self.key))
        except NotFoundError:
            return Rules()
        return Rules(apart=list(doc.get("apart", [])), blocked=list(doc.get("blocked", [])))

    def keep_apart(self, node_a: str, node_b: str, reason: str, at: datetime) -> bool:
        """Add the rule; False when it was there already."""
        rules = self.load()
        pair = sorted((node_a, node_b))
        if any(sorted((r["node_a"], r["node_b"])) == pair for r in rules.apart):
            return False
        rules.apart.append(
            {"node_a": pair[0], "node_b": pair[1], "reason": reason, "at": at.isoformat()}
        )
        self._save(rules)
        return True

    def block(self, id_type: str, id_value: str, reason: str, at: datetime) -> bool:
        rules = self.load()
        if any(r["id_type"] == id_type and r["id_value"] == id_value for r in rules.blocked):
            return False
        rules.blocked.append(
            {"id_type": id_type, "id_value": id_value, "reason": reason, "at": at.isoformat()}
        )
        self._save(rules)
        return True

    def _save(self, rules: Rules) -> None:
        doc = {"apart": rules.apart, "blocked": rules.blocked}
        self.store.write(self.key, orjson.dumps(doc, option=orjson.OPT_INDENT_2), overwrite=True)
