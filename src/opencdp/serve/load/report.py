"""What a load did: per table, and the profiles that changed (for the search index)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa

from opencdp.identity.model import PROFILES

# full: every row of the snapshot (a first load, or a reload when no diff was possible);
# diff: the rows the snapshot diff changed; skipped: nothing to do (unchanged, or not in
# the lake); historic: rebuilt and swapped in.
Mode = Literal["full", "diff", "skipped", "historic"]


@dataclass
class TableLoad:
    table: str
    mode: Mode
    snapshot_id: int | None = None  # the Iceberg snapshot the table now mirrors
    rows_upserted: int = 0
    rows_deleted: int = 0
    seconds: float = 0.0
    notice: str | None = None  # why a table was skipped or fully reloaded


@dataclass
class LoadReport:
    tenant: str
    historic: bool
    tables: dict[str, TableLoad] = field(default_factory=dict)
    # The profile rows that changed (all of them when `profiles_full`: rebuild the search
    # index from them) and the ids of profiles that are gone.
    profiles_upserted: pa.Table = field(default_factory=PROFILES.empty_table)
    profiles_deleted: list[str] = field(default_factory=list)
    profiles_full: bool = False
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return any(t.mode != "skipped" for t in self.tables.values())

    def summary(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "historic": self.historic,
            "seconds": round(self.seconds, 3),
            "tables": {
                name: {
                    "mode": t.mode,
                    "snapshot_id": t.snapshot_id,
                    "rows_upserted": t.rows_upserted,
                    "rows_deleted": t.rows_deleted,
                    "seconds": round(t.seconds, 3),
                    **({"notice": t.notice} if t.notice else {}),
                }
                for name, t in self.tables.items()
            },
            "profiles_changed": self.profiles_upserted.num_rows,
            "profiles_deleted": len(self.profiles_deleted),
            "profiles_full": self.profiles_full,
        }
