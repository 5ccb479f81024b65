"""One transform run: raw files → staged rows → merged curated tables, on any engine.

Incremental (the default) processes the raw files no earlier run processed and rewrites
nothing: new keys are appended, and a key's newer version is appended while its live row
is deleted by position (merge-on-read, lake/row_delta.py; `opencdp maintain` compacts).
Historic rebuilds every table from every raw file and replaces each one in one snapshot.
Either way the run's plan is recorded first and each commit is tagged with the run id
(transform/ledger.py), so a rerun after a crash finishes the same work exactly once.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import AlwaysTrue, BooleanExpression

from opencdp.engine.base import Engine, ParquetFiles
from opencdp.lake import ensure_namespace, open_catalog
from opencdp.lake.commit import RUN_PROPERTY, commit, ensure_table, last_run
from opencdp.lake.row_delta import LiveRows, commit_row_delta, live_rows
from opencdp.lake.tables import read_table
from opencdp.settings import Settings
from opencdp.storage import layout
from opencdp.storage.ndjson import GzipLines
from opencdp.storage.objectstore import ObjectStore, store_for
from opencdp.transform import merge, quality
from opencdp.transform.ledger import Ledger, Plan
from opencdp.transform.mapping import SourceMapping
from opencdp.transform.model import TABLES, Table
from opencdp.transform.stage import FileJob, FileResult, stage_file

# The tables merged in each of two threads at once: the merges wait on files, DuckDB and
# the catalog more than on Python. Customers follow orders in their lane: a customer's
# order facts are read from the committed orders.
LANES = (("products", "orders", "customers"), ("order_items", "events"))
TABLE_ORDER = tuple(name for lane in LANES for name in lane)  # as reports list them
QUALITY_TABLE = "quality_reports"
QUARANTINE_TABLE = "quarantine"

Progress = Callable[[str], None]
# Raw files (gzip'd bytes) below which a run whose workers are not running yet stages in its
# own process: about 40,000 lines.
SMALL_DELTA_BYTES = 8 * 1024 * 1024


@dataclass
class TableReport:
    staged: int = 0  # rows this run's raw files gave
    quarantined: int = 0
    written: int = 0  # rows in the commit
    replaced: int = 0  # rows superseded by a newer version of their key
    deletes: int = 0  # live rows deleted by position (0: append only)
    skipped: bool = False  # an interrupted attempt of this run committed it already


@dataclass
class RunReport:
    run_id: str
    tenant: str
    engine: str
    historic: bool
    resumed: bool = False
    files: int = 0
    lines: int = 0
    rejected: int = 0
    unmapped: int = 0
    dlq_files: list[str] = field(default_factory=list)
    tables: dict[str, TableReport] = field(default_factory=dict)
    quality: list[quality.Result] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # by stage
    elapsed: float = 0.0  # the whole run, in a process already started (as the scheduler's)

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "engine": self.engine,
            "mode": "historic" if self.historic else "incremental",
            "resumed": self.resumed,
            "files": self.files,
            "lines": self.lines,
            "rejected": self.rejected,
            "tables": {n: vars(t) for n, t in self.tables.items()},
            "quality_failures": [
                f"{r.table}/{r.provider} {r.rule} {r.rate:.3f} < {r.threshold}"
                for r in self.quality
                if not r.passed
            ],
            "seconds": self.seconds,
            "elapsed": self.elapsed,
        }


def raw_files(store: ObjectStore, tenant: str) -> list[str]:
    prefix = f"{layout.RAW}/{tenant}"
    return sorted(i.key for i in store.list(prefix) if i.key.endswith(layout.SUFFIX))


def transform(
    settings: Settings,
    tenant: str,
    engine: Engine,
    mappings: tuple[SourceMapping, ...],
    *,
    historic: bool = False,
    progress: Progress | None = None,
    after_commit: Callable[[str], None] | None = None,
) -> RunReport:
    """Run (or resume) one transform of `tenant`'s raw zone into its curated tables."""
    began = time.perf_counter()
    say = progress or (lambda _: None)
    store = store_for(settings)
    ledger = Ledger(store, tenant)
    plan = ledger.pending()
    resumed = plan is not None
    if plan is None:
        files = raw_files(store, tenant)
        if not historic:
            done = ledger.processed()
            files = [f for f in files if f not in done]
        plan = Plan(_new_run_id(), historic, tuple(files))
        if not files:
            return RunReport(plan.run_id, tenant, engine.name, historic)
        ledger.begin(plan)
    else:
        say(f"resuming interrupted run {plan.run_id} ({len(plan.files)} raw files)")
    report = RunReport(plan.run_id, tenant, engine.name, plan.historic, resumed=resumed)
    staging = settings.root.resolve() / layout.STATE / "staging" / plan.run_id
    try:
        with open_catalog(settings) as catalog:
            ensure_namespace(catalog, tenant)
            run = _Run(settings, tenant, engine, catalog, store, plan, report, say)
            results = run.stage(mappings, staging)
            run.write_dead_letters(results)
            run.merge_tables(results, after_commit)
            run.write_quality(results)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    ledger.finish(plan)
    report.elapsed = round(time.perf_counter() - began, 3)
    return report


class _Run:
    def __init__(
        self,
        settings: Settings,
        tenant: str,
        engine: Engine,
        catalog: Catalog,
        store: ObjectStore,
        plan: Plan,
        report: RunReport,
        say: Progress,
    ) -> None:
        self.settings = settings
        self.tenant = tenant
        self.engine = engine
        self.catalog = catalog
        self.store = store
        self.plan = plan
        self.report = report
        self.say = say
        self.started = _run_time(plan.run_id)
        self.table_properties = {
            "write.parquet.compression-codec": "snappy",
            "write.target-file-size-bytes": str(settings.transform.target_file_size_bytes),
        }

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        began = time.perf_counter()
        yield
        self.report.seconds[stage] = round(
            self.report.seconds.get(stage, 0.0) + time.perf_counter() - began, 3
        )

    # --- row-local stages, in workers -------------------------------------------------

    def stage(self, mappings: tuple[SourceMapping, ...], staging: Path) -> list[FileResult]:
        tenant_settings = self.settings.tenant(self.tenant)
        jobs = [
            FileJob(
                storage_url=self.settings.storage_url,
                storage_options=dict(self.settings.storage.options),
                tenant=self.tenant,
                key=key,
                mappings=mappings,
                default_country=tenant_settings.default_country,
                out_dir=str(staging),
                index=i,
            )
            for i, key in enumerate(self.plan.files)
        ]
        # Largest files first, so that no worker is left with a big one at the end.
        sizes = {i.key: i.size for i in self.store.list(f"{layout.RAW}/{self.tenant}")}
        jobs.sort(key=lambda job: (-sizes.get(job.key, 0), job.key))
        done: list[FileResult] = []
        every = max(1, len(jobs) // 10)

        def staged(result: FileResult) -> None:
            done.append(result)
            if len(done) % every == 0 or len(done) == len(jobs):
                lines = sum(r.lines for r in done)
                self.say(f"staged {len(done)}/{len(jobs)} raw files ({lines:,} lines)")

        with self.timed("read_validate_map_clean"):
            small = sum(sizes.get(job.key, 0) for job in jobs) < SMALL_DELTA_BYTES
            if small and self.engine.starts_workers:
                # Starting workers would cost more than the work: stage right here. (A
                # process that has them already, as the scheduler's, uses them.)
                results = []
                for job in jobs:
                    results.append(stage_file(job))
                    staged(results[-1])
            else:
                results = self.engine.map(stage_file, jobs, on_result=staged)
        self.report.files = len(results)
        self.report.lines = sum(r.lines for r in results)
        self.report.rejected = sum(len(r.rejected) for r in results)
        self.report.unmapped = sum(r.unmapped for r in results)
        return results

    def write_dead_letters(self, results: list[FileResult]) -> None:
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for result in results:
            provider = result.key.split("/")[2]
            for doc in result.rejected:
                groups[(provider, doc["error"]["type"])].append(doc)
        for (provider, error_type), docs in sorted(groups.items()):
            lines = GzipLines()
            for doc in docs:
                lines.add_json(doc)
            # Named by the run: a resumed run rewrites the same file, never a second one.
            key = layout.dlq_key(
                self.tenant, provider, error_type, self.started, f"transform-{self.plan.run_id}"
            )
            self.store.write(key, lines.finish(), overwrite=True)
            self.report.dlq_files.append(key)
        # A document without a line number names a whole file (damaged, or gone).
        files = sum(doc["error"]["line"] is None for docs in groups.values() for doc in docs)
        if self.report.rejected > files:
            self.say(f"{self.report.rejected - files:,} lines failed validation: kept in the DLQ")
        if files:
            self.say(
                f"{files:,} raw files could not be read whole: read as far as they go and "
                f"named in the DLQ (opencdp dlq list --tenant {self.tenant})"
            )

    # --- set-based stages, on the engine ----------------------------------------------

    def merge_tables(
        self, results: list[FileResult], after_commit: Callable[[str], None] | None
    ) -> None:
        self.quarantined: list[pa.Table] = []
        # The (provider, source_customer_id) whose orders this run changed; None when
        # not known (a resumed run that committed its orders before).
        self.orders_changed: pa.Table | None = pa.table(
            {"provider": pa.array([], pa.string()), "source_customer_id": pa.array([], pa.string())}
        )
        for name in TABLE_ORDER:  # reported in this order, whichever lane merges first
            self.report.tables[name] = TableReport(staged=sum(r.rows[name] for r in results))
        with ThreadPoolExecutor(len(LANES)) as pool:
            lanes = [pool.submit(self._merge_lane, lane, results, after_commit) for lane in LANES]
            for lane in lanes:
                lane.result()  # a lane's error, once the other lane has finished too

    def _merge_lane(
        self,
        names: tuple[str, ...],
        results: list[FileResult],
        after_commit: Callable[[str], None] | None,
    ) -> None:
        for name in names:
            model = TABLES[name]
            staged = tuple(r.staged[name] for r in results if name in r.staged)
            table_report = self.report.tables[name]
            if not staged and not self.plan.historic and name != "customers":
                continue
            lake = ensure_table(
                self.catalog,
                self.tenant,
                name,
                model.schema,
                model.partition,
                self.table_properties,
            )
            with self.timed(f"merge_{name}"):
                if last_run(lake) == self.plan.run_id:
                    table_report.skipped = True
                    if name == "orders":  # which customers it changed is not known now
                        self.orders_changed = None
                    continue
                delta = ParquetFiles(staged, model.schema)
                change = self._merge(model, lake, delta, table_report)
                if change is None:
                    continue
                change.land(lake, self.plan.run_id)
                table_report.written = change.data.num_rows
            self.say(
                f"{name}: {table_report.staged:,} staged, {table_report.written:,} written, "
                f"{table_report.replaced:,} replaced, {table_report.quarantined:,} quarantined"
            )
            if after_commit is not None:
                after_commit(name)

    def _merge(
        self,
        model: Table,
        lake: Any,
        delta: ParquetFiles,
        table_report: TableReport,
    ) -> _Change | None:
        engine = self.engine
        present = merge.key_present(model)
        bad = engine.query(merge.select_rows(model, "delta", f"NOT ({present})"), {"delta": delta})
        if bad.num_rows:
            self.quarantined.append(_quarantine_rows(self.plan.run_id, model, bad, self.started))
        table_report.quarantined = bad.num_rows
        keyed = f"({merge.select_rows(model, 'delta', present)}) AS d"
        # Ranking whole rows costs seconds on big tables; when no key repeats (a check on
        # the key columns alone) there is nothing to choose between.
        repeats = engine.query(merge.repeated_keys(model, "delta"), {"delta": delta})
        clean = engine.query(
            merge.latest_per_key(model, keyed)
            if repeats.column("repeated")[0].as_py()
            else f"SELECT * FROM {keyed}",
            {"delta": delta},
        )
        table_report.replaced = table_report.staged - bad.num_rows - clean.num_rows
        change: _Change | None
        if self.plan.historic or lake.current_snapshot() is None:
            if model.name == "orders":
                self.orders_changed = clean.select(["provider", "source_customer_id"])
            if clean.num_rows == 0 and not self.plan.historic:
                return None
            change = _Rewrite(clean, AlwaysTrue() if self.plan.historic else None)
        else:
            change = self._incremental(model, lake, clean, table_report)
        if model.name == "customers" and change is not None:
            change.data = self._with_order_facts(model, change.data)
        if change is not None:
            change.data = change.data.select(model.schema.names)
        return change

    def _incremental(
        self, model: Table, lake: Any, clean: pa.Table, table_report: TableReport
    ) -> _Change | None:
        """Merge-on-read: the delta's newer rows appended, the live rows they replace
        deleted by position; for customers, also the rows whose orders changed (their
        order facts are recomputed)."""
        engine = self.engine
        customers = model.name == "customers"
        columns = model.schema.names if customers else merge.rank_columns(model)
        if model.name == "orders":
            columns = (*columns, "source_customer_id")
        read = live_rows(lake, columns, self._keys(model, clean))
        old = read.numbered()
        ranked = engine.query(
            merge.ranked_versions(model, "old", "delta"), {"old": old, "delta": clean}
        )
        newer = engine.query(
            merge.newer_rows(model, "delta", "ranked"), {"delta": clean, "ranked": ranked}
        )
        lost = engine.query(merge.lost_rows("ranked"), {"ranked": ranked}).column("_row")
        table_report.replaced += lost.length() + clean.num_rows - newer.num_rows
        relations = {"newer": newer, "old": old, "lost": pa.table({"_row": lost})}
        if model.name == "orders":
            # Their customers' order facts change, old and new customer alike.
            self.orders_changed = engine.query(
                merge.changed_order_customers("newer", "old", "lost"), relations
            )
        if customers:
            # Customers whose orders changed are rewritten as they are, their order facts
            # recomputed; a resumed run no longer knows which: all of them.
            changed = self.orders_changed
            if changed is None:
                changed = old.select(["provider", "source_id"]).rename_columns(
                    ["provider", "source_customer_id"]
                )
            refreshed = engine.query(
                merge.refreshed_customers("old", "changed", "newer"),
                {**relations, "changed": changed},
            )
            newer = pa.concat_tables(
                [newer, refreshed.select(newer.column_names).cast(newer.schema)]
            )
            lost = pa.chunked_array([*lost.chunks, *refreshed.column("_row").chunks], pa.int64())
        if newer.num_rows == 0:
            return None
        table_report.deletes = len(lost)
        return _MergeOnRead(newer, read, lost)

    def _keys(self, model: Table, clean: pa.Table) -> pa.Table | None:
        """The keys whose live rows a merge reads: the delta's, and for customers those
        whose orders changed (None, every key, when that is not known)."""
        keys = clean.select(list(model.key))
        if model.name != "customers":
            return keys
        if self.orders_changed is None:
            return None
        changed = self.orders_changed.rename_columns(keys.column_names)
        return pa.concat_tables([keys, changed.cast(keys.schema)])

    def _with_order_facts(self, model: Table, rows: pa.Table) -> pa.Table:
        columns = ("provider", "source_customer_id", "total_amount", "created_at")
        # An incremental run needs the orders of the customers it writes, not all orders.
        schema = TABLES["orders"].schema
        keys = None
        if not self.plan.historic:
            keys = pa.table(
                [rows.column("provider"), rows.column("source_id")],
                schema=pa.schema([schema.field("provider"), schema.field("source_customer_id")]),
            )
        orders = read_table(self.catalog, self.tenant, "orders", schema, columns, keys=keys)
        return self.engine.query(
            merge.with_order_facts(model, "c_rows", "orders"), {"c_rows": rows, "orders": orders}
        )

    # --- quality ------------------------------------------------------------------------

    def write_quality(self, results: list[FileResult]) -> None:
        with self.timed("quality"):
            threshold = self.settings.transform.valid_rate_threshold
            results_: list[quality.Result] = []
            by_table: dict[str, Counter[tuple[str, str, str]]] = defaultdict(Counter)
            for r in results:
                for (table, provider, column, what), n in r.counts.items():
                    by_table[table][(provider, column, what)] += n
            for name in TABLE_ORDER:
                results_ += quality.value_rules(name, by_table[name], threshold)
                table_report = self.report.tables.get(name)
                if table_report is not None and table_report.staged:
                    results_.append(
                        quality.Result(
                            name,
                            "*",
                            "key_not_null",
                            "hard",
                            table_report.staged,
                            table_report.quarantined,
                            1.0,
                        )
                    )
            self.report.quality = results_
            reports = quality.report_table(self.plan.run_id, self.started, results_)
            self._append(QUALITY_TABLE, reports, quality.REPORT_SCHEMA)
            if self.quarantined:
                rows = pa.concat_tables(self.quarantined)
                self._append(QUARANTINE_TABLE, rows, quality.QUARANTINE_SCHEMA)

    def _append(self, name: str, data: pa.Table, schema: pa.Schema) -> None:
        lake = ensure_table(self.catalog, self.tenant, name, schema, (), self.table_properties)
        if last_run(lake) != self.plan.run_id:
            commit(lake, data, run_id=self.plan.run_id, replace=None)


@dataclass
class _Rewrite:
    """A commit that adds `data` and removes the rows `replace` selects (historic: all;
    None: nothing)."""

    data: pa.Table
    replace: BooleanExpression | None

    def land(self, lake: Any, run_id: str) -> None:
        commit(lake, self.data, run_id=run_id, replace=self.replace)


@dataclass
class _MergeOnRead:
    """A commit that adds `data` and deletes, by position, the rows of `read` numbered
    `lost`."""

    data: pa.Table
    read: LiveRows
    lost: pa.ChunkedArray

    def land(self, lake: Any, run_id: str) -> None:
        deletes = self.read.deletes(self.lost)
        commit_row_delta(lake, self.data, deletes, self.read, {RUN_PROPERTY: run_id})


_Change = _Rewrite | _MergeOnRead


def _quarantine_rows(run_id: str, model: Table, rows: pa.Table, at: datetime) -> pa.Table:
    records = rows.to_pylist()
    return pa.Table.from_pylist(
        [
            {
                "run_id": run_id,
                "table": model.name,
                "provider": r["provider"],
                "rule": "key_not_null",
                "row": orjson.dumps(r, default=str).decode(),
                "_raw_file": r["_raw_file"],
                "_line": r["_line"],
                "quarantined_at": at,
            }
            for r in records
        ],
        schema=quality.QUARANTINE_SCHEMA,
    )


def _new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def _run_time(run_id: str) -> datetime:
    return datetime.strptime(run_id.split("-", maxsplit=1)[0], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
