"""Arrow rows into PostgreSQL by COPY, in bulk: CSV written by pyarrow in a producer
thread while the connection streams the previous chunk.

PostgreSQL's CSV: an unquoted empty field is NULL and a quoted one ("") the empty string;
pyarrow quotes every string and writes NULL as nothing, so both survive. Timestamps go as
UTC with the `Z` offset, decimals as their exact digits, booleans as true/false.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from opencdp.db import Connection

CHUNK_BYTES = 8 << 20  # of Arrow data per CSV chunk
_QUEUED = 4  # chunks the producer may run ahead
_OPTIONS = pacsv.WriteOptions(include_header=False, quoting_style="needed")
_DONE = object()


def csv_chunks(rows: pa.Table, chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[pa.Buffer, int]]:
    """`rows` as CSV (no header), in chunks of about `chunk_bytes`: (CSV, rows in it)."""
    if rows.num_rows == 0:
        return
    per_row = max(1, rows.nbytes // rows.num_rows)
    step = max(1, chunk_bytes // per_row)
    for offset in range(0, rows.num_rows, step):
        part = rows.slice(offset, step)
        sink = pa.BufferOutputStream()
        pacsv.write_csv(part, sink, _OPTIONS)
        yield sink.getvalue(), part.num_rows


def copy_statement(
    target: sql.Composable, columns: Sequence[str], *, freeze: bool = False
) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv{})").format(
        target,
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", FREEZE" if freeze else ""),
    )


def copy_rows(
    conn: Connection,
    target: sql.Composable,
    columns: Sequence[str],
    tables: Iterable[pa.Table],
    *,
    freeze: bool = False,
) -> int:
    """COPY the rows of `tables` (COPY-ready: see prepare.py) into `target`; rows copied.

    `tables` is consumed in a thread of its own (reading and preparing rows there
    overlaps with the database's work); its errors are raised here.
    """
    copied = 0
    with (
        _Producer(tables) as chunks,
        conn.cursor() as cursor,
        cursor.copy(copy_statement(target, columns, freeze=freeze)) as copy,
    ):
        for chunk, rows in chunks:
            copy.write(memoryview(chunk))
            copied += rows
    return copied


class _Producer:
    """CSV chunks of `tables`, made in a background thread, handed over through a
    bounded queue."""

    def __init__(self, tables: Iterable[pa.Table]) -> None:
        self._tables = tables
        self._queue: queue.Queue[Any] = queue.Queue(_QUEUED)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="copy-producer", daemon=True)

    def __enter__(self) -> Iterator[tuple[pa.Buffer, int]]:
        self._thread.start()
        return self._chunks()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        while self._thread.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.05)
        self._thread.join()

    def _chunks(self) -> Iterator[tuple[pa.Buffer, int]]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def _run(self) -> None:
        try:
            for table in self._tables:
                for chunk in csv_chunks(table):
                    if not self._put(chunk):
                        return
            self._put(_DONE)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, raised there
            self._put(e)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                self._queue.put(item, timeout=0.05)
                return True
        return False
