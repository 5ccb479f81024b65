"""The canonical model of DESIGN.md §4: the curated tables, their columns, keys and partitions.

Each column has a kind, which decides its Arrow type and how the row stage cleans and
normalizes it. Mappings fill the mapped columns; the row stage adds the derived ones and
the lineage columns every table keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

Kind = Literal[
    "id",  # an identifier: cleaned, never reformatted
    "text",  # free text: cleaned
    "name",  # a person's name: cleaned, placeholders dropped, case fixed
    "email",
    "phone",  # E.164 after normalization
    "country",  # ISO-3166 alpha-2
    "currency",  # ISO-4217
    "postcode",
    "amount",  # exact decimal
    "integer",
    "boolean",
    "timestamp",  # UTC
    "date",
    "json",  # a JSON document as text (properties, context, traits)
    "ids",  # map provider -> id (external_ids)
]

AMOUNT = pa.decimal128(18, 4)
TIMESTAMP = pa.timestamp("us", tz="UTC")
CONSENT = pa.struct(
    [
        pa.field("email", pa.string()),
        pa.field("sms", pa.string()),
        pa.field("ads", pa.string()),
        pa.field("updated_at", TIMESTAMP),
    ]
)

ARROW_TYPES: dict[str, pa.DataType] = {
    "id": pa.string(),
    "text": pa.string(),
    "name": pa.string(),
    "email": pa.string(),
    "phone": pa.string(),
    "country": pa.string(),
    "currency": pa.string(),
    "postcode": pa.string(),
    "amount": AMOUNT,
    "integer": pa.int64(),
    "boolean": pa.bool_(),
    "timestamp": TIMESTAMP,
    "date": pa.date32(),
    "json": pa.string(),
    "ids": pa.map_(pa.string(), pa.string()),
}

# Consent values after mapping: what a source says is translated by its mapping. Mappings
# fill consent_email, consent_sms, consent_ads and consent_at; the row stage packs them into
# the one `consent` column of the model.
CONSENT_VALUES = ("granted", "denied")
CONSENT_PREFIX = "consent_"

# Lineage and quality columns every curated table keeps (DESIGN.md §4).
LINEAGE = pa.schema(
    [
        pa.field("_raw_file", pa.string()),
        pa.field("_line", pa.int64()),
        pa.field("_ingested_at", TIMESTAMP),
        pa.field("_quality_flags", pa.list_(pa.string())),
    ]
)


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind


@dataclass(frozen=True)
class Table:
    """A curated table. `key` identifies a row; among rows of one key the one with the
    greatest `version` column wins (then the later `_ingested_at`, then the greater
    `_raw_file` and `_line`: a total order, so every engine picks the same row)."""

    name: str
    key: tuple[str, ...]
    mapped: tuple[Column, ...]
    derived: tuple[pa.Field, ...]
    version: tuple[str, ...]  # coalesced, in order
    partition: tuple[tuple[str, Literal["identity", "year", "month"]], ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.mapped) + tuple(f.name for f in self.derived)

    def kind(self, column: str) -> Kind:
        for c in self.mapped:
            if c.name == column:
                return c.kind
        raise KeyError(column)

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the curated table: provider, mapped, derived, lineage."""
        fields = [pa.field("provider", pa.string(), nullable=False)]
        fields += [
            pa.field(c.name, ARROW_TYPES[c.kind])
            for c in self.mapped
            if not c.name.startswith(CONSENT_PREFIX)
        ]
        if any(c.name.startswith(CONSENT_PREFIX) for c in self.mapped):
            fields.append(pa.field("consent", CONSENT))
        fields += list(self.derived)
        return pa.schema(fields + list(LINEAGE))


def _cols(spec: str) -> tuple[Column, ...]:
    """Columns from "name:kind name:kind ..." (a compact way to write the model down)."""
    out = []
    for item in spec.split():
        name, kind = item.split(":")
        out.append(Column(name, kind))  # type: ignore[arg-type]
    return tuple(out)


CUSTOMERS = Table(
    name="customers",
    key=("provider", "source_id"),
    mapped=_cols(
        "source_id:id email:email phone:phone first_name:name last_name:name full_name:name "
        "birth_date:date company:text address_line1:text address_line2:text city:text "
        "region:text postcode:postcode country:country external_ids:ids "
        "consent_email:text consent_sms:text consent_ads:text consent_at:timestamp "
        "created_at:timestamp updated_at:timestamp"
    ),
    derived=(
        pa.field("profile_id", pa.string()),
        pa.field("email_domain", pa.string()),
        pa.field("email_free", pa.bool_()),
        pa.field("email_disposable", pa.bool_()),
        pa.field("phone_country", pa.string()),
        pa.field("phone_line_type", pa.string()),
        pa.field("timezone", pa.string()),
        pa.field("order_count", pa.int64()),
        pa.field("total_revenue", AMOUNT),
        pa.field("first_order_at", TIMESTAMP),
        pa.field("last_order_at", TIMESTAMP),
    ),
    version=("updated_at", "created_at"),
    partition=(("provider", "identity"),),
)

ORDERS = Table(
    name="orders",
    key=("provider", "order_id"),
    mapped=_cols(
        "order_id:id source_customer_id:id email:email status:text currency:currency "
        "total_amount:amount subtotal:amount tax:amount discount:amount "
        "created_at:timestamp updated_at:timestamp"
    ),
    derived=(pa.field("profile_id", pa.string()),),
    version=("updated_at", "created_at"),
    partition=(("created_at", "year"),),
)

ORDER_ITEMS = Table(
    name="order_items",
    key=("provider", "order_id", "line_id"),
    mapped=_cols(
        "order_id:id line_id:id product_id:id sku:id name:text quantity:integer "
        "unit_price:amount total:amount currency:currency created_at:timestamp "
        "updated_at:timestamp"
    ),
    derived=(),
    version=("updated_at", "created_at"),
    partition=(("created_at", "year"),),
)

PRODUCTS = Table(
    name="products",
    key=("provider", "product_id"),
    mapped=_cols(
        "product_id:id sku:id title:text category:text vendor:text price:amount "
        "currency:currency created_at:timestamp updated_at:timestamp"
    ),
    derived=(),
    version=("updated_at", "created_at"),
    partition=(("provider", "identity"),),
)

EVENTS = Table(
    name="events",
    key=("event_id",),
    mapped=_cols(
        "event_id:id type:id name:text user_id:id anonymous_id:id previous_id:id email:email "
        "timestamp:timestamp received_at:timestamp properties:json traits:json context:json"
    ),
    derived=(pa.field("profile_id", pa.string()),),
    version=("received_at",),
    partition=(("timestamp", "year"),),
)

TABLES: dict[str, Table] = {t.name: t for t in (CUSTOMERS, ORDERS, ORDER_ITEMS, PRODUCTS, EVENTS)}


def table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        from opencdp.errors import ConfigError

        raise ConfigError(
            f"unknown canonical table {name!r}", hint=f"one of: {', '.join(sorted(TABLES))}"
        ) from None
