"""Quality rules and their reports, one row per run, table, provider and rule.

Hard rules (a key present and unique) quarantine the rows that break them; soft rules (the
rate of valid values of a column, orders whose customer is known) are measured against a
threshold and reported, and a failure raises an alert.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from opencdp.transform.model import TIMESTAMP, Table

REPORT_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("checked_at", TIMESTAMP),
        pa.field("table", pa.string()),
        pa.field("provider", pa.string()),
        pa.field("rule", pa.string()),
        pa.field("severity", pa.string()),
        pa.field("checked", pa.int64()),
        pa.field("failed", pa.int64()),
        pa.field("rate", pa.float64()),
        pa.field("threshold", pa.float64()),
        pa.field("passed", pa.bool_()),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("table", pa.string()),
        pa.field("provider", pa.string()),
        pa.field("rule", pa.string()),
        pa.field("row", pa.string()),  # the quarantined row as JSON
        pa.field("_raw_file", pa.string()),
        pa.field("_line", pa.int64()),
        pa.field("quarantined_at", TIMESTAMP),
    ]
)


@dataclass(frozen=True)
class Result:
    table: str
    provider: str
    rule: str
    severity: str  # hard | soft
    checked: int
    failed: int
    threshold: float

    @property
    def rate(self) -> float:
        return 1.0 if self.checked == 0 else 1 - self.failed / self.checked

    @property
    def passed(self) -> bool:
        return self.rate >= self.threshold


def column_counts(model: Table, staged: pa.Table) -> Counter[tuple[str, str, str]]:
    """(provider, column, "checked" | "invalid") counts of one staged table: a value is
    checked when the source gave one, invalid when normalization refused it."""
    counts: Counter[tuple[str, str, str]] = Counter()
    flags = staged.column("_quality_flags")
    providers = staged.column("provider")
    for provider in pc.unique(providers).to_pylist():
        mine = pc.equal(providers, provider)
        flat = pc.list_flatten(pc.filter(flags, mine))
        invalid = Counter({v["values"]: v["counts"] for v in pc.value_counts(flat).to_pylist()})
        for column in model.mapped:
            name = column.name
            if name not in staged.column_names or column.kind in ("id", "text", "json", "ids"):
                continue
            bad = invalid.get(f"{name}_invalid", 0)
            present = pc.sum(pc.is_valid(pc.filter(staged.column(name), mine))).as_py() or 0
            if present + bad:
                counts[(provider, name, "checked")] += present + bad
                counts[(provider, name, "invalid")] += bad
    return counts


def value_rules(
    table: str, counts: Counter[tuple[str, str, str]], threshold: float
) -> list[Result]:
    columns = sorted({(p, c) for p, c, _ in counts})
    return [
        Result(
            table=table,
            provider=provider,
            rule=f"valid_{column}",
            severity="soft",
            checked=counts[(provider, column, "checked")],
            failed=counts[(provider, column, "invalid")],
            threshold=threshold,
        )
        for provider, column in columns
    ]


def report_table(run_id: str, at: datetime, results: list[Result]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "run_id": run_id,
                "checked_at": at,
                "table": r.table,
                "provider": r.provider,
                "rule": r.rule,
                "severity": r.severity,
                "checked": r.checked,
                "failed": r.failed,
                "rate": round(r.rate, 6),
                "threshold": r.threshold,
                "passed": r.passed,
            }
            for r in results
        ],
        schema=REPORT_SCHEMA,
    )
