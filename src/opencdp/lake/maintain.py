"""Table maintenance: compact small files and position deletes, expire old snapshots, roll
back a run.

PyIceberg has no file compaction, so the partitions holding several small files, or the
position deletes of incremental runs (lake/row_delta.py), are read and rewritten in one
overwrite of exactly those partitions (readers keep the old files until the commit
lands). Expiry keeps the current snapshot and every snapshot newer than the retention, so a
recent run can still be rolled back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pyiceberg.catalog import Catalog
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.manifest import DataFile, DataFileContent
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.transforms import IdentityTransform

from opencdp.errors import NotFoundError
from opencdp.lake.commit import (
    RUN_PROPERTY,
    granularity,
    is_follow_up,
    last_run,
    partition_filter,
    period_start,
    run_of,
)
from opencdp.lake.row_delta import fold_deletes
from opencdp.lake.tables import list_tables, load_table


@dataclass(frozen=True)
class Maintenance:
    """What maintenance did to one table (files: data and delete files)."""

    table: str
    files_before: int
    files_after: int
    partitions_compacted: int
    snapshots_expired: int


def maintain(
    catalog: Catalog, tenant: str, target_bytes: int, keep: timedelta
) -> list[Maintenance]:
    """Compact, then expire snapshots older than `keep`, in each of the tenant's tables."""
    done = []
    for name in list_tables(catalog, tenant):
        table = load_table(catalog, tenant, name)
        before, after, partitions = compact(table, target_bytes)
        done.append(Maintenance(name, before, after, partitions, expire(table, keep)))
    return done


def compact(table: Table, target_bytes: int) -> tuple[int, int, int]:
    """Rewrite each partition that holds two or more data files smaller than half the
    target size, or any position-delete file (merge-on-read folded back into the data), in
    one snapshot; (files before, files after, partitions rewritten), delete files counted."""
    snapshot = table.current_snapshot()
    if snapshot is None:
        return 0, 0, 0
    spec = table.spec()
    layout = tuple(
        (table.schema().find_column_name(f.source_id) or "", granularity(f.transform))
        for f in spec.fields
    )

    def partition_of(file: DataFile) -> tuple[Any, ...]:
        return tuple(
            _partition_value(f.transform, file.partition[i]) for i, f in enumerate(spec.fields)
        )

    files = [
        entry.data_file
        for manifest in snapshot.manifests(table.io)
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True)
    ]
    data_files = [f for f in files if f.content == DataFileContent.DATA]
    delete_files = [f for f in files if f.content != DataFileContent.DATA]
    small = Counter(partition_of(f) for f in data_files if f.file_size_in_bytes < target_bytes // 2)
    rewrite = {row for row, count in small.items() if count >= 2}
    rewrite |= {partition_of(f) for f in delete_files}
    if not rewrite:
        return len(files), len(files), 0
    where = partition_filter(layout, sorted(rewrite, key=repr)) if layout else AlwaysTrue()
    data = table.scan(row_filter=where).to_arrow()  # deletes applied
    # The same rows in fewer files: the snapshot keeps the run id its data came from, so
    # a rollback still knows which run it would undo.
    run = last_run(table)
    rewritten = [f for f in data_files if partition_of(f) in rewrite]
    fold_deletes(table, rewritten, delete_files, data, {RUN_PROPERTY: run} if run else {})
    return len(files), len(table.refresh().inspect.files()), len(rewrite)


def _partition_value(transform: Any, value: Any) -> Any:
    """A partition value as `partition_filter` takes it."""
    return value if isinstance(transform, IdentityTransform) else period_start(transform, value)


def expire(table: Table, keep: timedelta, now: datetime | None = None) -> int:
    """Expire snapshots older than `keep` (never the current one); how many went."""
    cutoff = (now or datetime.now(UTC)) - keep
    current = table.current_snapshot()
    old = [
        s.snapshot_id
        for s in table.snapshots()
        if s.timestamp_ms < cutoff.timestamp() * 1000
        and (current is None or s.snapshot_id != current.snapshot_id)
    ]
    if old:
        table.maintenance.expire_snapshots().by_ids(old).commit()
    return len(old)


def rollback(catalog: Catalog, tenant: str, tables: Iterable[str]) -> dict[str, int]:
    """Put each table back to where it was before its last run's commits; the snapshot id
    each table now shows. A table that run created is emptied (in a new snapshot)."""
    rolled: dict[str, int] = {}
    for name in tables:
        table = load_table(catalog, tenant, name)
        target = _before_last_run(table)
        if target is None:
            table.delete(AlwaysTrue())
        else:
            table.manage_snapshots().set_current_snapshot(snapshot_id=target).commit()
        current = table.refresh().current_snapshot()
        assert current is not None
        rolled[name] = current.snapshot_id
    return rolled


def _before_last_run(table: Table) -> int | None:
    """The newest ancestor of the current snapshot that another run made (identity
    follow-ups of the last run go with it); None when the last run created the table.
    NotFoundError when that ancestor was expired."""
    run = last_run(table)
    snapshot: Snapshot | None = table.current_snapshot()
    while snapshot is not None:
        made_by = run_of(snapshot)
        if made_by != run and not is_follow_up(made_by):
            return snapshot.snapshot_id
        parent = snapshot.parent_snapshot_id
        if parent is None and snapshot.sequence_number == 1:
            return None  # the table's first snapshot: the run created the table
        snapshot = table.snapshot_by_id(parent) if parent is not None else None
    raise NotFoundError(
        f"the snapshot of {'.'.join(table.name())} before run {run} was expired",
        hint="`opencdp maintain --keep-days N` keeps N days of snapshots for rollback; "
        "rebuild with `opencdp transform --historic` instead",
    )
