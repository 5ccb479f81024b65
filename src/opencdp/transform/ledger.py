"""Which raw files a tenant's curated tables hold, and the run in flight.

A run first writes its plan (run id, mode, files) as `pending.json`. Every table commit is
tagged with the run id, so a rerun after a crash resumes the same plan and skips the
tables that already hold it. Only when every table is committed does the plan join the
finished runs in `runs.json` and go away: no file is processed twice or skipped. The
processed files are those of the runs since the last historic one; rolling a run back
forgets it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from opencdp.errors import AlreadyExistsError, NotFoundError
from opencdp.storage import layout
from opencdp.storage.objectstore import ObjectStore


@dataclass(frozen=True)
class Plan:
    run_id: str
    historic: bool
    files: tuple[str, ...]

    def to_json(self) -> bytes:
        return orjson.dumps(
            {"run_id": self.run_id, "historic": self.historic, "files": list(self.files)}
        )

    @classmethod
    def from_json(cls, data: bytes) -> Plan:
        doc: dict[str, Any] = orjson.loads(data)
        return cls(doc["run_id"], bool(doc["historic"]), tuple(doc["files"]))


class Ledger:
    def __init__(self, store: ObjectStore, tenant: str) -> None:
        self.store = store
        self._pending = layout.state_key("transform", tenant, "pending.json")
        self._runs = layout.state_key("transform", tenant, "runs.json")

    def runs(self) -> list[Plan]:
        """The finished runs, oldest first."""
        try:
            docs = orjson.loads(self.store.read(self._runs))
        except NotFoundError:
            return []
        return [Plan.from_json(orjson.dumps(doc)) for doc in docs]

    def processed(self) -> set[str]:
        done: set[str] = set()
        for run in self.runs():
            done = set(run.files) if run.historic else done | set(run.files)
        return done

    def pending(self) -> Plan | None:
        try:
            return Plan.from_json(self.store.read(self._pending))
        except NotFoundError:
            return None

    def begin(self, plan: Plan) -> None:
        try:
            self.store.write(self._pending, plan.to_json())
        except AlreadyExistsError:
            raise AlreadyExistsError(
                "another transform run of this tenant is in flight or was interrupted",
                hint="rerun `opencdp transform` without --historic to resume it",
            ) from None

    def finish(self, plan: Plan) -> None:
        """Record the plan as finished, then drop it (in this order: a crash in between
        leaves a plan whose tables are all committed, which a rerun finishes without
        redoing anything)."""
        runs = [r for r in self.runs() if r.run_id != plan.run_id] + [plan]
        self._save(runs)
        self.store.delete(self._pending)

    def forget(self, run_id: str) -> None:
        """Drop a rolled-back run: its files count as unprocessed again."""
        self._save([r for r in self.runs() if r.run_id != run_id])

    def _save(self, runs: list[Plan]) -> None:
        body = b"[" + b",".join(r.to_json() for r in runs) + b"]"
        self.store.write(self._runs, body, overwrite=True)
