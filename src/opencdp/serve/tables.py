"""The serving contract (docs/decisions/0008-serving.md): which curated tables are mirrored
into a tenant's PostgreSQL schema, their keys, column types and indexes, and the DDL that
makes them. The one place that says all this: the loader builds tables from it, the API
queries what it promises.

Tables keep the Iceberg table and column names. A table is created bare (no key, no
index: a bulk load goes fastest into that), then gets its primary key and the indexes the
API's lookups need.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
from psycopg import sql

from opencdp.errors import ConfigError
from opencdp.identity.model import IDENTITIES, PROFILE_MERGES, PROFILES
from opencdp.transform.model import TABLES


@dataclass(frozen=True)
class Index:
    """A secondary index, `{table}_{name}`."""

    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class ServedTable:
    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    # String columns that hold a JSON document as text (jsonb in PostgreSQL).
    json_text: frozenset[str] = frozenset()
    indexes: tuple[Index, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.schema.names)

    @property
    def lookup_columns(self) -> tuple[str, ...]:
        """The columns of the key and the indexes: the ones queries filter and sort by."""
        columns = [*self.key, *(c for index in self.indexes for c in index.columns)]
        return tuple(dict.fromkeys(columns))

    def is_json(self, column: str) -> bool:
        """Whether `column` is jsonb in PostgreSQL (nested, or JSON text)."""
        return column in self.json_text or is_nested(self.schema.field(column).type)

    @property
    def json_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if self.is_json(c))

    def pg_type(self, column: str) -> str:
        if column in self.json_text:
            return "jsonb"
        return pg_type(self.schema.field(column).type)

    def create_table(self, schema: str, table: str) -> sql.Composed:
        """CREATE TABLE `schema.table` with the columns only (NOT NULL where the model
        says so): no key, no index."""
        columns = [
            sql.SQL("{} {}{}").format(
                sql.Identifier(f.name),
                sql.SQL(self.pg_type(f.name)),
                sql.SQL("" if f.nullable else " NOT NULL"),
            )
            for f in self.schema
        ]
        return sql.SQL("CREATE TABLE {} ({})").format(
            sql.Identifier(schema, table), sql.SQL(", ").join(columns)
        )

    def add_column(self, schema: str, table: str, column: str) -> sql.Composed:
        """A column the contract gained since `table` was created (nullable: old rows
        have no value)."""
        return sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
            sql.Identifier(schema, table),
            sql.Identifier(column),
            sql.SQL(self.pg_type(column)),
        )

    def add_primary_key(self, schema: str, table: str) -> sql.Composed:
        return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({})").format(
            sql.Identifier(schema, table),
            sql.Identifier(primary_key_name(table)),
            sql.SQL(", ").join(map(sql.Identifier, self.key)),
        )

    def create_indexes(
        self, schema: str, table: str, *, if_not_exists: bool = False
    ) -> list[sql.Composed]:
        statements = []
        for index in self.indexes:
            columns = sql.SQL(", ").join(sql.Identifier(c) for c in index.columns)
            statements.append(
                sql.SQL("CREATE INDEX {}{} ON {} ({})").format(
                    sql.SQL("IF NOT EXISTS " if if_not_exists else ""),
                    sql.Identifier(index_name(table, index)),
                    sql.Identifier(schema, table),
                    columns,
                )
            )
        return statements

    def index_names(self, table: str) -> tuple[str, ...]:
        """The names of the primary key's index and of every index of `table`."""
        return (primary_key_name(table), *(index_name(table, i) for i in self.indexes))


def primary_key_name(table: str) -> str:
    return f"{table}_pkey"


def index_name(table: str, index: Index) -> str:
    return f"{table}_{index.name}"


def is_nested(kind: pa.DataType) -> bool:
    return pa.types.is_struct(kind) or pa.types.is_map(kind) or _is_list(kind)


def _is_list(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    )


# Scalar Arrow types and their PostgreSQL types, tried in order.
_SCALARS: tuple[tuple[Callable[[pa.DataType], bool], str], ...] = (
    (pa.types.is_string, "text"),
    (pa.types.is_large_string, "text"),
    (pa.types.is_int64, "bigint"),
    (pa.types.is_int32, "integer"),
    (pa.types.is_int16, "smallint"),
    (pa.types.is_int8, "smallint"),
    (pa.types.is_float64, "double precision"),
    (pa.types.is_float32, "real"),
    (pa.types.is_boolean, "boolean"),
    (pa.types.is_date, "date"),
)


def pg_type(kind: pa.DataType) -> str:
    """The PostgreSQL type of an Arrow type: nested types become jsonb."""
    if is_nested(kind):
        return "jsonb"
    if pa.types.is_decimal(kind):
        return f"numeric({kind.precision}, {kind.scale})"
    if pa.types.is_timestamp(kind):
        return "timestamptz" if kind.tz is not None else "timestamp"
    for matches, name in _SCALARS:
        if matches(kind):
            return name
    raise ConfigError(
        f"the serving contract has no PostgreSQL type for Arrow type {kind}",
        hint="map it in opencdp.serve.tables.pg_type (and docs/decisions/0008-serving.md)",
    )


def _model(name: str, indexes: tuple[Index, ...] = ()) -> ServedTable:
    model = TABLES[name]
    return ServedTable(
        name=name,
        schema=model.schema,
        key=model.key,
        json_text=frozenset(c.name for c in model.mapped if c.kind == "json"),
        indexes=indexes,
    )


_BY_PROFILE = Index("by_profile", ("profile_id",))

# In load order. order_items are looked up by order: the key's prefix (provider, order_id).
# A profile's timeline is read newest first by the whole sort key (the API's keyset
# pagination): an ascending index, scanned backwards.
SERVED: dict[str, ServedTable] = {
    t.name: t
    for t in (
        _model("customers", (_BY_PROFILE,)),
        _model(
            "orders",
            (Index("by_profile", ("profile_id", "created_at", "provider", "order_id")),),
        ),
        _model("order_items"),
        _model("products"),
        _model(
            "events",
            (Index("by_profile", ("profile_id", "timestamp", "event_id")),),
        ),
        ServedTable("identities", IDENTITIES, ("id_type", "id_value"), indexes=(_BY_PROFILE,)),
        ServedTable("profiles", PROFILES, ("profile_id",)),
        # Where a merged-away profile id went: the API redirects to the profile that lives on.
        ServedTable(
            "profile_merges",
            PROFILE_MERGES,
            ("run_id", "kind", "profile_id", "other_profile_id"),
            indexes=(Index("by_other", ("other_profile_id",)),),
        ),
    )
}


def served(names: list[str] | tuple[str, ...] | None = None) -> list[ServedTable]:
    """The served tables called `names` (all of them for None), in load order."""
    if names is None:
        return list(SERVED.values())
    unknown = sorted(set(names) - set(SERVED))
    if unknown:
        raise ConfigError(
            f"not a served table: {', '.join(unknown)}", hint=f"one of: {', '.join(SERVED)}"
        )
    return [t for name, t in SERVED.items() if name in names]
