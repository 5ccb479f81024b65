"""Schema migrations as data: versioned SQL files, and the pure decision of what to apply.

A migration set is a folder of `NNNN_what_it_does.sql` files numbered 1, 2, 3, ... without
gaps. Each schema records what it has applied (version, name, checksum) in its own
`schema_migrations` table; `plan_migrations` compares that record with the files and either
returns what is pending or refuses, when an applied file was edited or is unknown here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable

from opencdp.errors import MigrationError

_FILE_NAME = re.compile(r"(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str = field(repr=False)
    checksum: str

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


@dataclass(frozen=True)
class AppliedMigration:
    """A row of a schema's `schema_migrations` table."""

    version: int
    name: str
    checksum: str


def checksum(sql: str) -> str:
    # Line endings are normalised so that a checkout with CRLF endings is not an "edit".
    return hashlib.sha256(sql.replace("\r\n", "\n").encode("utf-8")).hexdigest()


def parse_migrations(files: Mapping[str, str], *, source: str) -> tuple[Migration, ...]:
    """The migrations in `files` (file name -> SQL text) in version order."""
    migrations = []
    for file_name, sql in files.items():
        match = _FILE_NAME.fullmatch(file_name)
        if match is None:
            raise MigrationError(
                f"{source}/{file_name} is not named like a migration",
                hint="name migration files NNNN_what_it_does.sql, e.g. 0002_api_keys.sql",
            )
        if not sql.strip():
            raise MigrationError(f"{source}/{file_name} is empty", hint="put its SQL in it")
        version = int(match["version"])
        migrations.append(Migration(version, match["name"], sql, checksum(sql)))
    migrations.sort(key=lambda m: m.version)
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise MigrationError(
            f"the migrations in {source} must be numbered 1, 2, 3, ... without gaps or "
            f"duplicates, found {versions}",
            hint="give the newest file the number after the last one",
        )
    return tuple(migrations)


def read_migrations(folder: Traversable, *, source: str) -> tuple[Migration, ...]:
    """The migrations of the `*.sql` files in `folder` (a package folder or a path)."""
    files = {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    }
    return parse_migrations(files, source=source)


def plan_migrations(
    available: Sequence[Migration], applied: Sequence[AppliedMigration], *, schema: str
) -> list[Migration]:
    """The migrations still to apply to `schema`, in order."""
    shipped = {m.version: m for m in available}
    for row in applied:
        migration = shipped.get(row.version)
        if migration is None:
            raise MigrationError(
                f"schema {schema} has migration {row.version:04d}_{row.name} applied, which "
                "this version of OpenCDP does not ship",
                hint="run the OpenCDP version that migrated this database, or a newer one",
            )
        if migration.checksum != row.checksum:
            raise MigrationError(
                f"migration {migration.label} of schema {schema} was edited after it was "
                f"applied (checksum {row.checksum[:12]} applied, {migration.checksum[:12]} "
                "in the file)",
                hint="restore the applied file as it was and put the change in a new "
                "migration file",
            )
    done = {row.version for row in applied}
    pending = [m for m in available if m.version not in done]
    if pending and done and pending[0].version < max(done):
        raise MigrationError(
            f"schema {schema} has version {max(done)} applied but not {pending[0].label}",
            hint=f"its schema_migrations table was altered by hand; restore it or recreate "
            f"the schema {schema}",
        )
    return pending
