"""The built-in mappings of the providers OpenCDP ingests, and a tenant's own ones."""

from __future__ import annotations

from collections.abc import Iterable

from opencdp.settings import FieldSettings, MappingSettings
from opencdp.transform.mapping import F, Field, SourceMapping
from opencdp.transform.mappings import crm, segment, shopify, stripe, webhook

BUILTIN: tuple[SourceMapping, ...] = (
    *shopify.MAPPINGS,
    *stripe.MAPPINGS,
    *crm.MAPPINGS,
    *segment.MAPPINGS,
    *webhook.MAPPINGS,
)


def combine(declared: Iterable[SourceMapping]) -> tuple[SourceMapping, ...]:
    """The built-in mappings plus the declared ones; a declared mapping replaces the
    built-in mapping of the same provider and table."""
    declared = tuple(declared)
    replaced = {(m.provider, m.table) for m in declared}
    return tuple(m for m in BUILTIN if (m.provider, m.table) not in replaced) + declared


def declared(mappings: Iterable[MappingSettings]) -> tuple[SourceMapping, ...]:
    """A tenant's mappings from opencdp.yaml (ConfigError names what is wrong)."""
    return tuple(
        SourceMapping(
            table=m.table,
            provider=m.provider,
            streams=tuple(m.streams),
            fields={name: _field(spec) for name, spec in m.fields.items()},
            explode=m.explode,
            require=tuple(m.require),
            name=f"declared {m.provider}/{','.join(m.streams)} -> {m.table}",
        )
        for m in mappings
    )


def _field(spec: str | list[str] | FieldSettings) -> Field:
    if isinstance(spec, str):
        return F(spec)
    if isinstance(spec, list):
        return F(*spec)
    paths = [spec.path] if isinstance(spec.path, str) else list(spec.path or [])
    return F(
        *paths,
        const=spec.const,
        values=spec.values,
        minor_units=spec.minor_units,
        date_format=spec.date_format,
        ids=spec.ids,
    )
