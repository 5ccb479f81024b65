"""The row-local stages: mapped text columns → cleaned, normalized, enriched Arrow table.

Every column is cleaned and normalized by its kind in the canonical model (transform/
model.py); what fails is nulled and flagged in `_quality_flags` (`{column}_invalid`,
`{column}_placeholder`), never dropped here. Quarantine is decided later, by the quality
rules. The functions are pure and vectorized: they run per raw file inside workers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from opencdp.transform import clean, enrich, normalize
from opencdp.transform.mapping import Extraction, Field
from opencdp.transform.model import (
    ARROW_TYPES,
    CONSENT,
    CONSENT_PREFIX,
    TIMESTAMP,
    Kind,
    Table,
)

_PLACEHOLDER_KINDS: dict[str, clean.PlaceholderKind] = {
    "text": "text",
    "name": "name",
    "email": "email",
    "phone": "phone",
    "postcode": "postcode",
}


@dataclass
class Flags:
    """Quality flags of a table's rows: a name and a row mask per flag."""

    names: list[str] = field(default_factory=list)
    masks: list[pa.Array] = field(default_factory=list)

    def add(self, name: str, mask: pa.Array) -> None:
        mask = pc.fill_null(mask, False)
        if pc.any(mask).as_py():
            self.names.append(name)
            self.masks.append(mask)

    def to_arrow(self, rows: int) -> pa.ListArray:
        """One list of flag names per row (empty when the row is clean), in flag order."""
        counts = pa.array([0] * rows, pa.int32())
        rows_of: list[pa.Array] = []
        names_of: list[pa.Array] = []
        for number, (name, mask) in enumerate(zip(self.names, self.masks, strict=True)):
            counts = pc.add(counts, pc.cast(mask, pa.int32()))
            where = pc.indices_nonzero(mask)
            rows_of.append(pc.add(pc.multiply(pc.cast(where, pa.int64()), len(self.names)), number))
            names_of.append(pa.array([name] * len(where), pa.string()))
        offsets = pa.concat_arrays([pa.array([0], pa.int32()), pc.cumulative_sum(counts)])
        if not rows_of:
            return pa.ListArray.from_arrays(offsets, pa.array([], pa.string()))
        # Ordered by row, then by flag: the position row * flags + flag sorts both at once.
        order = pc.sort_indices(pa.concat_arrays(rows_of))
        return pa.ListArray.from_arrays(offsets, pa.concat_arrays(names_of).take(order))


def build_table(
    extraction: Extraction,
    *,
    provider: str,
    raw_file: str,
    default_country: str,
) -> pa.Table:
    """The canonical rows of one mapping's extraction from one raw file."""
    mapping = extraction.mapping
    model = mapping.model
    rows = len(extraction)
    flags = Flags()
    columns: dict[str, pa.Array] = {}
    # Countries first: a phone number is read in its row's country.
    order = sorted(mapping.fields, key=lambda name: model.kind(name) != "country")
    for name in order:
        context = _Context(mapping.fields[name], columns, default_country)
        columns[name] = _normalize(name, model.kind(name), extraction.columns[name], context, flags)
    _derive(model, columns, flags, rows)
    lineage = {
        "_raw_file": pa.array([raw_file] * rows, pa.string()),
        "_line": pa.array(extraction.lines, pa.int64()),
        "_ingested_at": normalize.to_utc_timestamps(pa.array(extraction.received, pa.string()))[0],
    }
    schema = model.schema
    arrays = []
    for f in schema:
        if f.name == "provider":
            arrays.append(pa.array([provider] * rows, pa.string()))
        elif f.name == "_quality_flags":
            arrays.append(flags.to_arrow(rows))
        elif f.name in lineage:
            arrays.append(lineage[f.name])
        elif f.name in columns:
            arrays.append(columns[f.name].cast(f.type))
        else:
            arrays.append(pa.nulls(rows, f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


@dataclass(frozen=True)
class _Context:
    """What a column's normalizer may need besides its values."""

    spec: Field
    done: dict[str, pa.Array]  # the row's columns normalized so far
    default_country: str

    def column(self, name: str, rows: int) -> pa.Array:
        found = self.done.get(name)
        return found if found is not None else pa.nulls(rows, pa.string())


Normalized = tuple[pa.Array, pa.Array | None]  # values, and an "invalid" mask if checked


def _phones(text: pa.Array, c: _Context) -> Normalized:
    # A number is read in its row's country, else in the tenant's. One parse gives the
    # number's region and line type too (enrichment columns, kept for _derive).
    country = c.done.get("country")
    numbers = normalize.parse_phones(
        text,
        country if country is not None else c.default_country,
        fallback=c.default_country,
    )
    c.done["phone_country"] = numbers.country
    c.done["phone_line_type"] = numbers.line_type
    return numbers.e164, pc.and_(pc.is_valid(text), pc.is_null(numbers.e164))


def _amounts(text: pa.Array, c: _Context) -> Normalized:
    currency = c.column("currency", len(text))
    return normalize.to_amounts(text, currency, minor_units=c.spec.minor_units)


def _booleans(text: pa.Array, c: _Context) -> Normalized:
    lowered = pc.utf8_lower(text)
    result = pc.if_else(
        pc.is_in(lowered, pa.array(["true", "1", "yes"])),
        True,
        pc.if_else(pc.is_in(lowered, pa.array(["false", "0", "no"])), False, None),
    )
    return result, pc.and_(pc.is_valid(text), pc.is_null(result))


_NORMALIZERS: dict[str, Callable[[pa.Array, _Context], Normalized]] = {
    "name": lambda text, c: (normalize.normalize_names(text), None),
    "email": lambda text, c: normalize.normalize_emails(text),
    "phone": _phones,
    "country": lambda text, c: normalize.normalize_countries(text),
    "currency": lambda text, c: normalize.normalize_currencies(text),
    "amount": _amounts,
    "timestamp": lambda text, c: _times("timestamp", text, c.spec.date_format),
    "date": lambda text, c: _times("date", text, c.spec.date_format),
    "integer": lambda text, c: _integers(text),
    "boolean": _booleans,
}


def _normalize(
    name: str,
    kind: Kind,
    values: Sequence[Any],
    context: _Context,
    flags: Flags,
) -> pa.Array:
    if kind == "ids":
        return pa.array([list(d.items()) for d in values], ARROW_TYPES["ids"])
    text = pa.array(values, pa.string())
    if kind == "json":
        return text
    placeholder_kind = _PLACEHOLDER_KINDS.get(kind)
    if placeholder_kind is None:
        text = clean.clean_text(text)
    else:  # cleaned there first
        text, was_placeholder = clean.null_placeholders(text, placeholder_kind)
        flags.add(f"{name}_placeholder", was_placeholder)
    if context.spec.values is not None:
        text, unknown = _translate(text, context.spec.values)
        flags.add(f"{name}_invalid", unknown)
    normalizer = _NORMALIZERS.get(kind)
    if normalizer is None:
        return text
    result, invalid = normalizer(text, context)
    if invalid is not None:
        flags.add(f"{name}_invalid", invalid)
    return result


def _translate(text: pa.Array, values: Mapping[str, str | None]) -> Normalized:
    """A mapping's value translation (`values`, its keys lower-case): a value the map does
    not name is invalid, not silently null."""
    at = pc.index_in(pc.utf8_lower(text), value_set=pa.array(list(values), pa.string()))
    translated = pa.array(list(values.values()), pa.string()).take(at)
    return translated, pc.and_(pc.is_valid(text), pc.is_null(at))


def normalize_values(kind: Kind, values: Sequence[str | None], default_country: str) -> pa.Array:
    """`values` of one column kind cleaned and normalized exactly as the row stage does it
    (placeholders and invalid values become null), for identifiers given outside the
    pipeline: an API lookup must find what the pipeline stored."""
    context = _Context(spec=Field(), done={}, default_country=default_country)
    return _normalize(kind, kind, values, context, Flags())


def _times(kind: str, text: pa.Array, date_format: str | None) -> tuple[pa.Array, pa.Array]:
    if date_format is None:
        if kind == "date":
            return normalize.to_dates(text)
        return normalize.to_utc_timestamps(text)
    # Python's strptime, once per distinct value: Arrow's would read 31.02. as 03.03.
    parsed = normalize.per_distinct(
        text, partial(_strptime, date_format), pa.timestamp("us", tz="UTC")
    )
    invalid = pc.and_(pc.is_valid(text), pc.is_null(parsed))
    if kind == "date":
        return parsed.cast(pa.date32()), invalid
    return parsed, invalid


def _strptime(date_format: str, text: str) -> datetime | None:
    """`text` read with `date_format`; a time without a zone is UTC."""
    try:
        at = datetime.strptime(text, date_format)
    except ValueError:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _integers(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    numbers = pc.cast(
        pc.if_else(pc.match_substring_regex(text, r"^[+-]?\d{1,18}$"), text, None), pa.int64()
    )
    return numbers, pc.and_(pc.is_valid(text), pc.is_null(numbers))


def _derive(model: Table, columns: dict[str, pa.Array], flags: Flags, rows: int) -> None:
    """Enrichment that needs only the row: email and phone facts, time zone, names and
    the consent record."""
    if "email" in columns and model.name == "customers":
        domains = enrich.email_domains(columns["email"])
        columns["email_domain"] = domains
        columns["email_free"] = enrich.is_free_mail(domains)
        columns["email_disposable"] = enrich.is_disposable(domains)
        flags.add("email_disposable", columns["email_disposable"])
    if "phone_country" in columns and model.name == "customers":
        country = columns["phone_country"]  # found when the phone was parsed
        if "country" in columns:
            # An address without a country takes the phone's.
            columns["country"] = pc.coalesce(columns["country"], country)
        else:
            columns["country"] = country
    if model.name == "customers":
        country = columns.get("country", pa.nulls(rows, pa.string()))
        phone = columns.get("phone", pa.nulls(rows, pa.string()))
        columns["timezone"] = enrich.timezones(phone, country)
        _fill_names(columns, rows)
    if any(name.startswith(CONSENT_PREFIX) for name in model.columns):
        columns["consent"] = _consent(columns, rows)


def _fill_names(columns: dict[str, pa.Array], rows: int) -> None:
    """full_name from first and last names, or first and last from a full name."""
    none = pa.nulls(rows, pa.string())
    first = columns.get("first_name", none)
    last = columns.get("last_name", none)
    full = columns.get("full_name", none)
    # Not null_handling="skip": on all-null input it returns an empty array (pyarrow 26).
    both = pc.binary_join_element_wise(first, last, " ")
    joined = pc.coalesce(both, first, last)
    columns["full_name"] = pc.coalesce(full, joined)
    # "Ada Lovelace" -> first "Ada", last "Lovelace": the last word is the last name.
    split = pc.extract_regex(full, r"^(?P<first>.+?)\s+(?P<last>\S+)$")
    columns["first_name"] = pc.coalesce(first, pc.struct_field(split, "first"))
    columns["last_name"] = pc.coalesce(last, pc.struct_field(split, "last"))


def _consent(columns: dict[str, pa.Array], rows: int) -> pa.StructArray:
    none = pa.nulls(rows, pa.string())
    return pa.StructArray.from_arrays(
        [
            columns.get(f"{CONSENT_PREFIX}email", none),
            columns.get(f"{CONSENT_PREFIX}sms", none),
            columns.get(f"{CONSENT_PREFIX}ads", none),
            columns.get(f"{CONSENT_PREFIX}at", pa.nulls(rows, TIMESTAMP)),
        ],
        fields=list(CONSENT),
    )
