"""The delta between the snapshot a table was loaded from and its current one.

A snapshot is a set of data files. The files only the current snapshot has were added,
those only the loaded one has were removed, whatever path led from one to the other (new
commits, or a rollback that moved the table back): no ancestry is walked. Rows of the
added files that are not, column for column, rows of the removed files are upserted (a
partition rewrite re-adds its unchanged rows, which are not sent again); keys of removed
rows that no added row has are deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from opencdp.engine.base import Engine
from opencdp.serve.load.prepare import quote

# skip: nothing to do; build: create the table and copy every row into it; reload: merge
# every row into the existing table (and delete the rest); diff: merge the delta.
Action = Literal["skip", "build", "reload", "diff"]

ROW = "__row"


def plan(loaded: int | None, current: int, exists: bool) -> tuple[Action, str | None]:
    """What to do with a table whose lake snapshot is `current`, last loaded from
    `loaded` (None: never), that the database has (`exists`) or not; and why, when it is
    not the obvious choice."""
    if not exists:
        why = None if loaded is None else "the table was missing from the database"
        return "build", why
    if loaded is None:
        return "reload", "no loaded snapshot recorded"
    if loaded == current:
        return "skip", None
    return "diff", None


@dataclass(frozen=True)
class FileDiff:
    added: tuple[str, ...]
    removed: tuple[str, ...]


def file_diff(loaded: Iterable[str], current: Iterable[str]) -> FileDiff:
    before, after = set(loaded), set(current)
    return FileDiff(tuple(sorted(after - before)), tuple(sorted(before - after)))


def changed_rows_sql(columns: Sequence[str], key: Sequence[str]) -> str:
    """Row numbers (`__row`) of `added` rows that no `removed` row equals column for
    column (NULL equal to NULL)."""
    on = " AND ".join(
        f"a.{quote(c)} = r.{quote(c)}"
        if c in key
        else f"a.{quote(c)} IS NOT DISTINCT FROM r.{quote(c)}"
        for c in columns
    )
    return f"SELECT a.{ROW} FROM added a ANTI JOIN removed r ON {on} ORDER BY a.{ROW}"


def deleted_keys_sql(key: Sequence[str]) -> str:
    """Keys of `removed` rows that no `added` row has."""
    names = ", ".join(f"r.{quote(c)}" for c in key)
    on = " AND ".join(f"a.{quote(c)} = r.{quote(c)}" for c in key)
    return f"SELECT DISTINCT {names} FROM removed r ANTI JOIN added a ON {on} ORDER BY {names}"


def row_diff(
    engine: Engine, added: pa.Table, removed: pa.Table, key: Sequence[str]
) -> tuple[pa.Array, pa.Table]:
    """(row numbers of `added` to upsert, keys to delete), from the rows of the added and
    the removed files (same schema). A row that differs only where PostgreSQL cannot (a NUL
    character it drops) is sent again: the merge leaves it as it was."""
    numbered = added.append_column(ROW, pa.array(range(added.num_rows), pa.int64()))
    relations = {"added": numbered, "removed": removed}
    rows = engine.query(changed_rows_sql(added.column_names, key), relations).column(ROW)
    keys = engine.query(deleted_keys_sql(key), relations)
    return rows.combine_chunks(), keys
