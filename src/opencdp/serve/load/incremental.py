"""The default load of one table: nothing when its snapshot is the one loaded, the
snapshot diff merged when it can be computed (data files added and removed, rows deleted
by position), every row otherwise (a first load, a loaded snapshot since expired)."""

from __future__ import annotations

import pyarrow as pa

from opencdp.serve.load.build import build_table, conform_table
from opencdp.serve.load.context import LoadContext, Loaded, prepared_rows
from opencdp.serve.load.merge import merge
from opencdp.serve.load.prepare import Preparer, prepare_all
from opencdp.serve.load.report import TableLoad
from opencdp.serve.load.snapshots import file_diff, plan, row_diff
from opencdp.serve.load.source import LakeTable, SnapshotFiles
from opencdp.serve.load.state import table_exists


def load_incremental(
    ctx: LoadContext, lake: LakeTable, current: int, loaded: int | None, *, keep: bool
) -> Loaded:
    """Bring the table to snapshot `current`, from `loaded` (None: never loaded); with
    `keep`, the result holds the rows upserted as read from the lake."""
    name = lake.served.name
    exists = table_exists(ctx.conn, ctx.schema, name)
    action, why = plan(loaded, current, exists)
    if action == "skip":
        return Loaded(TableLoad(name, "skipped", current, notice="unchanged"))
    if exists:
        conform_table(ctx.conn, ctx.schema, name, lake.served)
    files = _files(lake, current)
    if action == "diff":
        assert loaded is not None
        diffed = _diff(ctx, lake, loaded, files, keep=keep)
        if isinstance(diffed, Loaded):
            return diffed
        action, why = "reload", diffed
    if why:
        ctx.say(f"{name}: {why}; loading every row of snapshot {current}")
    rows: list[pa.Table] | None = [] if keep else None
    stream = prepared_rows(lake, files.tasks.values(), keep=rows)
    if action == "build":
        copied = build_table(ctx.conn, ctx.schema, name, lake.served, stream)
        return Loaded(TableLoad(name, "full", current, copied, notice=why), rows or [], full=True)
    merged = merge(ctx.conn, ctx.schema, lake.served, stream, None, delete_missing=True)
    result = TableLoad(name, "full", current, merged.upserted, len(merged.deleted), notice=why)
    return Loaded(result, rows or [], merged.deleted, full=True)


def _files(lake: LakeTable, snapshot_id: int) -> SnapshotFiles:
    files = lake.files(snapshot_id)
    assert files is not None, "the current snapshot is in the table's metadata"
    return files


def _diff(
    ctx: LoadContext, lake: LakeTable, loaded: int, files: SnapshotFiles, *, keep: bool
) -> Loaded | str:
    """The snapshot diff merged; or why the table must be loaded in full instead."""
    before = lake.files(loaded)
    if before is None:
        return f"snapshot {loaded}, loaded last, is gone (expired)"
    diff = file_diff(before.tasks, files.tasks)
    try:
        removed = lake.read_all(before.tasks[path] for path in diff.removed)
    except FileNotFoundError:
        return f"data files of snapshot {loaded}, loaded last, are gone"
    added = lake.read_all(files.tasks[path] for path in diff.added)
    # Position deletes on files in both: rows gone since, or back (a rollback's diff).
    deleted, restored = lake.read_deleted(before, files), lake.read_deleted(files, before)
    ctx.say(
        f"{lake.served.name}: snapshot diff {loaded} -> {files.snapshot_id}: "
        f"{len(diff.added)} files added ({added.num_rows:,} rows), "
        f"{len(diff.removed)} removed ({removed.num_rows:,} rows), "
        f"{deleted.num_rows:,} rows deleted by position, {restored.num_rows:,} restored"
    )
    added = pa.concat_tables([added, restored])
    removed = pa.concat_tables([removed, deleted])
    # Compared as read (DuckDB compares nested values too), so that only the changed rows
    # are prepared for COPY: preparing every row of both sides cost more than the diff.
    numbers, deleted = row_diff(ctx.engine, added, removed, lake.served.key)
    sent = prepare_all(Preparer(lake.served), added.take(numbers))
    merged = merge(ctx.conn, ctx.schema, lake.served, [sent], deleted)
    result = TableLoad(
        lake.served.name, "diff", files.snapshot_id, merged.upserted, len(merged.deleted)
    )
    rows = [added.take(numbers)] if keep else []
    return Loaded(result, rows, merged.deleted)
