"""What every step of one load works with, and what each table's load gives back."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa
from pyiceberg.table import FileScanTask

from opencdp.db import Connection
from opencdp.engine.base import Engine
from opencdp.serve.load.checks import KeyChecksum
from opencdp.serve.load.prepare import Preparer
from opencdp.serve.load.report import TableLoad
from opencdp.serve.load.source import LakeTable

# Rows prepared at a time: slices double from the first, small one (the database starts
# early and always has the last slice to work on while the next is prepared).
SLICE_ROWS = 50_000
FIRST_SLICE_ROWS = 2_000


@dataclass
class LoadContext:
    conn: Connection  # inside the load's one transaction
    tenant: str
    schema: str  # the tenant's PostgreSQL schema
    engine: Engine
    say: Callable[[str], None]


@dataclass
class Loaded:
    """One table's load: its report line, and for the caller that asked to keep them,
    the rows upserted as read from the lake and the keys deleted."""

    result: TableLoad
    rows: list[pa.Table] = field(default_factory=list)
    deleted: list[tuple[str, ...]] = field(default_factory=list)
    full: bool = False  # `rows` holds every row of the table


def prepared_rows(
    lake: LakeTable,
    tasks: Iterable[FileScanTask],
    *,
    keep: list[pa.Table] | None = None,
    checksum: KeyChecksum | None = None,
) -> Iterator[pa.Table]:
    """The COPY-ready rows of the data files, in slices (the database works on one while
    the next is prepared); the rows as read go to `keep`, the rows as sent to
    `checksum`."""
    prepare = Preparer(lake.served)
    size = FIRST_SLICE_ROWS
    for rows in lake.read(tasks):
        if keep is not None:
            keep.append(rows)
        offset = 0
        while offset < rows.num_rows:
            prepared = prepare(rows.slice(offset, size))
            offset += size
            size = min(2 * size, SLICE_ROWS)
            if checksum is not None:
                checksum.add(prepared)
            yield prepared
