"""The historic load: every table built afresh beside the one being served
(`<table>__new`), checked against its Iceberg snapshot, then swapped in. All of it runs in
the load's one transaction, so readers see the old tables until it commits, and a failed
check or a crash leaves nothing behind."""

from __future__ import annotations

import pyarrow as pa
from psycopg import sql

from opencdp.serve.load.build import build_table
from opencdp.serve.load.checks import KeyChecksum, verify
from opencdp.serve.load.context import LoadContext, Loaded, prepared_rows
from opencdp.serve.load.report import TableLoad
from opencdp.serve.load.source import LakeTable
from opencdp.serve.load.state import table_exists
from opencdp.serve.tables import ServedTable

NEW_SUFFIX = "__new"


def new_name(table: str) -> str:
    return table + NEW_SUFFIX


def build_new(ctx: LoadContext, lake: LakeTable, current: int, *, keep: bool) -> Loaded:
    """`<table>__new` holding snapshot `current`, keyed, indexed and checked."""
    served = lake.served
    new = new_name(served.name)
    files = lake.files(current)
    assert files is not None, "the current snapshot is in the table's metadata"
    ctx.conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(ctx.schema, new)))
    sent = KeyChecksum(ctx.engine, served)
    rows: list[pa.Table] | None = [] if keep else None
    stream = prepared_rows(lake, files.tasks.values(), keep=rows, checksum=sent)
    copied = build_table(ctx.conn, ctx.schema, new, served, stream)
    # Without delete files the manifests count the snapshot's rows independently of what
    # was read; with them, only reading the files can.
    expected = sent.rows if files.has_deletes else files.record_count
    verify(ctx.conn, ctx.schema, new, expected, sent)
    deleted = _keys_gone(ctx, served)
    result = TableLoad(served.name, "historic", current, copied, len(deleted))
    return Loaded(result, rows or [], deleted, full=True)


def _keys_gone(ctx: LoadContext, served: ServedTable) -> list[tuple[str, ...]]:
    """Keys the served table has and its replacement lacks."""
    if not table_exists(ctx.conn, ctx.schema, served.name):
        return []
    keys = sql.SQL(", ").join(map(sql.Identifier, served.key))
    rows = ctx.conn.execute(
        sql.SQL("SELECT {} FROM {} EXCEPT SELECT {} FROM {}").format(
            keys,
            sql.Identifier(ctx.schema, served.name),
            keys,
            sql.Identifier(ctx.schema, new_name(served.name)),
        )
    ).fetchall()
    return [tuple(row[c] for c in served.key) for row in rows]


def swap(ctx: LoadContext, tables: list[ServedTable]) -> None:
    """Each `<table>__new` becomes `<table>` (the old one dropped), indexes renamed."""
    for served in tables:
        new = new_name(served.name)
        ctx.conn.execute(
            sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(ctx.schema, served.name))
        )
        ctx.conn.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                sql.Identifier(ctx.schema, new), sql.Identifier(served.name)
            )
        )
        for old, final in zip(
            served.index_names(new), served.index_names(served.name), strict=True
        ):
            ctx.conn.execute(
                sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                    sql.Identifier(ctx.schema, old), sql.Identifier(final)
                )
            )
