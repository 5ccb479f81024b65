"""The lake side of a load: a served table's snapshot as the set of its data files, and
rows of data files as Arrow in the serving contract's schema.

Files are read through PyIceberg's Arrow scan, so a file written under an older schema
gets the current column names, and a column the contract has but the table lacks comes
back null.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan
from pyiceberg.table import FileScanTask, Table

from opencdp.lake.row_delta import deleted_positions
from opencdp.lake.tables import table_identifier
from opencdp.serve.load.errors import LoadError
from opencdp.serve.tables import ServedTable


@dataclass(frozen=True)
class SnapshotFiles:
    """The live data files of one snapshot, by path, each with the delete files that apply."""

    snapshot_id: int
    tasks: Mapping[str, FileScanTask]

    @property
    def has_deletes(self) -> bool:
        return any(task.delete_files for task in self.tasks.values())

    @property
    def record_count(self) -> int:
        """Rows in the data files (the table's rows when there are no delete files)."""
        return sum(task.file.record_count for task in self.tasks.values())


class LakeTable:
    """One served table in the tenant's Iceberg namespace."""

    def __init__(self, table: Table, served: ServedTable) -> None:
        self.table = table
        self.served = served
        present = set(table.schema().column_names)
        self._read = tuple(c for c in served.columns if c in present)

    @classmethod
    def open(cls, catalog: Catalog, tenant: str, served: ServedTable) -> LakeTable | None:
        """The table, or None when it was never built (identity tables exist only after a
        resolution)."""
        try:
            return cls(catalog.load_table(table_identifier(tenant, served.name)), served)
        except NoSuchTableError:
            return None

    @property
    def current_snapshot_id(self) -> int | None:
        snapshot = self.table.current_snapshot()
        return snapshot.snapshot_id if snapshot is not None else None

    def files(self, snapshot_id: int) -> SnapshotFiles | None:
        """The data files of `snapshot_id`; None when that snapshot is gone (expired, or
        its manifests deleted)."""
        if self.table.snapshot_by_id(snapshot_id) is None:
            return None
        try:
            tasks = list(self.table.scan(snapshot_id=snapshot_id).plan_files())
        except FileNotFoundError:
            return None
        except ValueError as e:  # PyIceberg cannot read equality deletes
            raise LoadError(
                f"cannot read snapshot {snapshot_id} of {self.served.name}: {e}",
                hint="equality delete files come from another writer than OpenCDP; rewrite "
                "the table without them (e.g. Spark's rewrite_data_files) and load again",
            ) from e
        return SnapshotFiles(snapshot_id, {task.file.file_path: task for task in tasks})

    def read(self, tasks: Iterable[FileScanTask]) -> Iterator[pa.Table]:
        """The rows of the data files (their delete files applied) in the contract's
        schema, batch by batch as the Parquet reader decodes them. FileNotFoundError when
        a file is gone."""
        schema = self.table.schema()
        scan = ArrowScan(
            self.table.metadata,
            self.table.io,
            schema.select(*self._read) if self._read else schema.select(),
            AlwaysTrue(),
        )
        for task in tasks:
            for batch in _batches(scan, task):
                yield conform([batch], self.served.schema)

    def read_all(self, tasks: Iterable[FileScanTask]) -> pa.Table:
        parts = list(self.read(tasks))
        return pa.concat_tables(parts) if parts else self.served.schema.empty_table()

    def read_deleted(self, before: SnapshotFiles, after: SnapshotFiles) -> pa.Table:
        """The rows of data files in both snapshots that are live in `before` and deleted
        by position in `after` (merge-on-read, lake/row_delta.py). Each delete file is read
        once, and only for the data files whose delete files differ."""
        changed = [
            path
            for path, task in after.tasks.items()
            if path in before.tasks and task.delete_files != before.tasks[path].delete_files
        ]
        involved = {
            f
            for path in changed
            for f in after.tasks[path].delete_files | before.tasks[path].delete_files
        }
        read = {f.file_path: deleted_positions(self.table, [f]) for f in involved}

        def positions(task: FileScanTask) -> pa.Array:
            path = task.file.file_path
            found = [
                read[f.file_path][path] for f in task.delete_files if path in read[f.file_path]
            ]
            return pa.concat_arrays(found) if found else pa.array([], pa.int64())

        parts = []
        for path in changed:
            gone = positions(after.tasks[path])
            gone = gone.filter(pc.invert(pc.is_in(gone, value_set=positions(before.tasks[path]))))
            # The file as written, no deletes applied: a position is a row number in it.
            rows = self.read_all([FileScanTask(after.tasks[path].file)])
            parts.append(rows.take(gone))
        return pa.concat_tables(parts) if parts else self.served.schema.empty_table()


def _batches(scan: ArrowScan, task: FileScanTask) -> Iterator[pa.RecordBatch]:
    """The batches of one data file, lazily. PyIceberg's public `to_record_batches` reads
    a whole file before it yields its first batch, which would keep the database idle
    meanwhile; the generator it uses underneath yields each batch as it is decoded."""
    try:  # PyIceberg 0.12's internals
        from pyiceberg.io.pyarrow import _read_all_delete_files

        stream = scan._record_batches_from_scan_tasks_and_deletes
    except (ImportError, AttributeError):  # another version: the public, eager way
        yield from scan.to_record_batches([task])
        return
    yield from stream([task], _read_all_delete_files(scan._io, [task]))


def conform(batches: list[pa.RecordBatch], schema: pa.Schema) -> pa.Table:
    """Batches read from a data file as a table of `schema`: columns in its order and
    types, nulls for those the file lacks."""
    if not batches:
        return schema.empty_table()
    data = pa.Table.from_batches(batches)
    rows = data.num_rows
    arrays = [
        data.column(f.name) if f.name in data.column_names else pa.nulls(rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, names=schema.names).cast(schema)
