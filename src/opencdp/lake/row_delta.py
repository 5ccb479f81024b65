"""Merge-on-read: replace rows by position deletes and new data files in one snapshot.

An incremental run that changes 2% of a table's rows should not rewrite the files those rows
live in (copy-on-write rewrote nearly every partition, decision 0009). Instead it commits
the new rows as new data files and, for each data file holding a replaced row, a Parquet
position-delete file (Iceberg spec v2: `file_path` and `pos`, field ids 2147483546 and
2147483545) naming the replaced rows. Readers apply the deletes (PyIceberg's scans do;
`live_rows` here does for the merge); `opencdp maintain` folds them back into the data.

PyIceberg 0.12 reads position deletes but does not write them: the snapshot producer below
extends its fast append with a delete manifest. Every delete file names one data file (its
`file_path` bounds are that path), so a reader skips it for any other file. The commit
refuses to land if another commit reached the table since the rows were read: a rewrite
of a data file in between would leave its deletes pointing at a file no longer live.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.conversions import to_bytes
from pyiceberg.exceptions import ValidationException
from pyiceberg.manifest import (
    DataFile,
    DataFileContent,
    FileFormat,
    ManifestContent,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestFile,
    ManifestWriterV2,
)
from pyiceberg.table import FileScanTask, Table, Transaction
from pyiceberg.table.snapshots import Operation, Summary
from pyiceberg.table.update.snapshot import _FastAppendFiles, _OverwriteFiles
from pyiceberg.typedef import EMPTY_DICT
from pyiceberg.types import LongType, StringType

from opencdp.lake.tables import read_local, semi_join
from opencdp.lake.writer import add_rows

FILE_PATH_ID = 2147483546
POS_ID = 2147483545
DELETES_SCHEMA = pa.schema(
    [
        pa.field("file_path", pa.string(), False, {b"PARQUET:field_id": str(FILE_PATH_ID)}),
        pa.field("pos", pa.int64(), False, {b"PARQUET:field_id": str(POS_ID)}),
    ]
)
# The columns `live_rows` adds: where each row lives.
FILE, POS = "_file", "_pos"


@dataclass(frozen=True)
class LiveRows:
    """Rows as a merge reads them: where each one lives, in which snapshot."""

    rows: pa.Table  # the columns asked for, then `_file` and `_pos`
    files: Mapping[str, DataFile]  # the live data files, by path
    snapshot_id: int | None

    def numbered(self) -> pa.Table:
        """The rows without their places, each numbered by its index here (`_row`)."""
        rows = self.rows.drop_columns([FILE, POS])
        return rows.append_column("_row", pa.array(np.arange(rows.num_rows)))

    def deletes(self, numbers: pa.Array | pa.ChunkedArray) -> pa.Table:
        """The (file_path, pos) of the rows numbered `numbers`, as `commit_row_delta`
        takes them."""
        places = self.rows.select([FILE, POS]).take(numbers)
        return pa.table(
            {"file_path": places.column(FILE).cast(pa.string()), "pos": places.column(POS)}
        )


def live_rows(table: Table, columns: Iterable[str], keys: pa.Table | None = None) -> LiveRows:
    """`columns` of the live rows of the table's current snapshot (with `keys`, of those
    whose values in the key's columns are a row of `keys`), with the data file (`_file`)
    and the position in it (`_pos`) each row is at. Rows an earlier commit deleted by
    position are left out."""
    selected = list(columns)
    snapshot = table.current_snapshot()
    tasks = list(table.scan(selected_fields=tuple(selected)).plan_files())
    rows = read_local(tasks, selected, keys=keys, placed=True)
    if rows is None:  # files in an object store, or none at all: file by file
        wanted = list(dict.fromkeys([*selected, *(keys.column_names if keys else ())]))
        deleted = deleted_positions(table, (f for task in tasks for f in task.delete_files))
        parts = [
            _file_rows(table, task, wanted, deleted.get(task.file.file_path)) for task in tasks
        ]
        empty = table.schema().as_arrow().empty_table().select(wanted)
        rows = pa.concat_tables(parts) if parts else _placed(empty, "")
        if keys is not None:
            with duckdb.connect(":memory:") as con:
                rows = semi_join(con, con.from_arrow(rows), keys).to_arrow_table()
        rows = rows.select([*selected, FILE, POS])
    return LiveRows(
        rows=rows,
        files={task.file.file_path: task.file for task in tasks},
        snapshot_id=snapshot.snapshot_id if snapshot is not None else None,
    )


def _file_rows(
    table: Table, task: FileScanTask, columns: list[str], deleted: pa.Array | None
) -> pa.Table:
    with table.io.new_input(task.file.file_path).open() as stream:
        parquet = pq.ParquetFile(stream)
        present = [c for c in columns if c in parquet.schema_arrow.names]
        rows = parquet.read(columns=present)
    # A file written before a column was added: nulls for it (columns are never renamed).
    schema = table.schema().as_arrow()
    for name in columns:
        if name not in present:
            rows = rows.append_column(
                schema.field(name), pa.nulls(rows.num_rows, schema.field(name).type)
            )
    rows = _placed(rows, task.file.file_path)
    if deleted is not None:
        rows = rows.filter(pc.invert(pc.is_in(rows.column(POS), value_set=deleted)))
    return rows.select([*columns, FILE, POS])


def _placed(rows: pa.Table, path: str) -> pa.Table:
    """`rows` of one file with its path and positions."""
    n = rows.num_rows
    paths = pa.array(np.full(n, path, dtype=object), pa.string())
    return rows.append_column(FILE, paths).append_column(POS, pa.array(np.arange(n)))


def deleted_positions(table: Table, delete_files: Iterable[DataFile]) -> dict[str, pa.Array]:
    """data file path -> the positions the position-delete files remove from it."""
    by_path: dict[str, list[pa.Array]] = defaultdict(list)
    for location in sorted({f.file_path for f in delete_files}):
        with table.io.new_input(location).open() as stream:
            deletes = pq.read_table(stream, columns=["file_path", "pos"])
        for path in pc.unique(deletes.column("file_path")).to_pylist():
            mask = pc.equal(deletes.column("file_path"), path)
            by_path[path].append(deletes.column("pos").filter(mask).combine_chunks())
    return {path: pa.concat_arrays(arrays) for path, arrays in by_path.items()}


def commit_row_delta(
    table: Table, data: pa.Table, deletes: pa.Table, read: LiveRows, properties: Mapping[str, str]
) -> None:
    """One snapshot of `table`: `data` appended and the rows at `deletes` (file_path, pos)
    removed, positions as `read` found them. ValidationException when a delete names a
    file `read` did not see, or when another commit reached the table since `read` (the
    positions may no longer hold)."""
    snapshot = table.current_snapshot()
    if (snapshot.snapshot_id if snapshot is not None else None) != read.snapshot_id:
        raise ValidationException("the table changed since its rows were read: rerun the merge")
    unknown = set(pc.unique(deletes.column("file_path")).to_pylist()) - set(read.files)
    if unknown:
        raise ValidationException(f"position deletes name files that are not live: {unknown}")
    with table.transaction() as tx:
        producer = _RowDelta(tx, table, dict(properties))
        add_rows(tx, producer, table, data)
        for delete_file in _write_deletes(table, deletes, read.files):
            producer.add_delete_file(delete_file)
        producer.commit()


def _write_deletes(
    table: Table, deletes: pa.Table, files: Mapping[str, DataFile]
) -> list[DataFile]:
    """One position-delete file per data file, beside it, its positions sorted."""
    written = []
    rows = deletes.select(["file_path", "pos"]).cast(DELETES_SCHEMA)
    for path in sorted(pc.unique(rows.column("file_path")).to_pylist()):
        of_file = rows.filter(pc.equal(rows.column("file_path"), path)).sort_by("pos")
        location = f"{path.rsplit('/', 1)[0]}/{uuid.uuid4()}-deletes.parquet"
        output = table.io.new_output(location)
        with output.create() as stream:
            pq.write_table(of_file, stream, compression="snappy")
        positions = of_file.column("pos")
        bounds = {FILE_PATH_ID: to_bytes(StringType(), path)}
        data_file = files[path]
        delete_file = DataFile.from_args(
            content=DataFileContent.POSITION_DELETES,
            file_path=location,
            file_format=FileFormat.PARQUET,
            partition=data_file.partition,
            record_count=of_file.num_rows,
            file_size_in_bytes=len(output.to_input_file()),
            column_sizes={},
            value_counts={FILE_PATH_ID: of_file.num_rows, POS_ID: of_file.num_rows},
            null_value_counts={FILE_PATH_ID: 0, POS_ID: 0},
            nan_value_counts={},
            lower_bounds={**bounds, POS_ID: to_bytes(LongType(), pc.min(positions).as_py())},
            upper_bounds={**bounds, POS_ID: to_bytes(LongType(), pc.max(positions).as_py())},
            split_offsets=None,
            equality_ids=None,
            sort_order_id=None,
            key_metadata=None,
        )
        delete_file.spec_id = data_file.spec_id  # from_args does not take it
        written.append(delete_file)
    return written


class _DeleteManifestWriter(ManifestWriterV2):
    def content(self) -> ManifestContent:
        return ManifestContent.DELETES

    @property
    def _meta(self) -> dict[str, str]:
        return {**super()._meta, "content": "deletes"}


class _RowDelta(_FastAppendFiles):
    """A fast append that also adds position-delete files, in a manifest of their own."""

    def __init__(self, tx: Transaction, table: Table, properties: dict[str, str]) -> None:
        super().__init__(Operation.OVERWRITE, tx, table.io, snapshot_properties=properties)
        self._added_delete_files: list[DataFile] = []

    def add_delete_file(self, delete_file: DataFile) -> None:
        self._added_delete_files.append(delete_file)

    def _manifests(self) -> list[ManifestFile]:
        manifests = super()._manifests()
        by_spec: dict[int, list[DataFile]] = defaultdict(list)
        for delete_file in self._added_delete_files:
            by_spec[delete_file.spec_id].append(delete_file)
        for spec_id, files in by_spec.items():
            writer = _DeleteManifestWriter(
                self.spec(spec_id),
                self.schema(),
                self.new_manifest_output(),
                self._snapshot_id,
                self._compression,
            )
            with writer:
                for delete_file in files:
                    writer.add_entry(
                        ManifestEntry.from_args(
                            status=ManifestEntryStatus.ADDED,
                            snapshot_id=self._snapshot_id,
                            sequence_number=None,
                            file_sequence_number=None,
                            data_file=delete_file,
                        )
                    )
            manifests.append(writer.to_manifest_file())
        return manifests

    def _summary(self, snapshot_properties: dict[str, str] = EMPTY_DICT) -> Summary:
        # The parent counts the files it was given: the delete files too, for the summary.
        data_files = self._added_data_files
        self._added_data_files = [*data_files, *self._added_delete_files]
        try:
            return super()._summary(snapshot_properties)
        finally:
            self._added_data_files = data_files

    def _validate_concurrency(self) -> None:
        # Called on a retry after another commit landed first: the positions were read
        # from the snapshot this one started from, so nothing may have changed since.
        if self._commit_window is not None and not self._commit_window.is_empty():
            raise ValidationException(
                "another commit reached the table while this merge ran: rerun it"
            )


def fold_deletes(
    table: Table,
    rewritten: list[DataFile],
    dropped: list[DataFile],
    data: pa.Table,
    properties: Mapping[str, str],
) -> None:
    """One snapshot of `table`: the data files `rewritten` replaced by `data` (their live
    rows, deletes applied), and the position-delete files `dropped` gone. The delete
    manifests go whole (see _FoldDeletes): `dropped` must be every delete file, and
    `rewritten` every data file they name that is still live."""
    with table.transaction() as tx:
        producer = _FoldDeletes(tx, table, dict(properties), dropped)
        for data_file in rewritten:
            producer.delete_data_file(data_file)
        add_rows(tx, producer, table, data)
        producer.commit()


class _FoldDeletes(_OverwriteFiles):
    """An overwrite that also drops every delete manifest. PyIceberg's own overwrite keeps
    delete manifests, and would write one it rewrites as a data manifest: dropping them
    whole avoids that."""

    def __init__(
        self, tx: Transaction, table: Table, properties: dict[str, str], dropped: list[DataFile]
    ) -> None:
        super().__init__(Operation.OVERWRITE, tx, table.io, snapshot_properties=properties)
        self._dropped = dropped

    def _existing_manifests(self) -> list[ManifestFile]:
        return [m for m in super()._existing_manifests() if m.content == ManifestContent.DATA]

    def _summary(self, snapshot_properties: dict[str, str] = EMPTY_DICT) -> Summary:
        # Counted as removed in the summary; not before, where PyIceberg requires every
        # removed file to be a data file.
        deleted = self._deleted_data_files
        self._deleted_data_files = deleted | set(self._dropped)
        try:
            return super()._summary(snapshot_properties)
        finally:
            self._deleted_data_files = deleted
