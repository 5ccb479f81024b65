"""Composition of the Singer target from settings: one call per tap run."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from opencdp.ingest.schemas import DriftPolicy, SchemaRegistry
from opencdp.ingest.singer.state import StateStore
from opencdp.ingest.singer.target import IngestSummary, SingerTarget
from opencdp.names import check_name
from opencdp.settings import Settings
from opencdp.storage import store_for
from opencdp.storage.rawzone import DeadLetterWriter, RawZoneWriter


def ingest_lines(
    settings: Settings,
    *,
    tenant: str,
    provider: str,
    lines: Iterable[bytes],
    source: str | None = None,
    batch_size: int | None = None,
    drift_policy: DriftPolicy = "warn",
    progress: Callable[[IngestSummary, float], None] | None = None,
) -> IngestSummary:
    """Land one tap run's Singer messages for `tenant`/`provider` in the raw zone.

    State is kept per source (default: the provider), so two sources of one provider
    keep separate bookmarks.
    """
    check_name(tenant)
    check_name(provider, "provider")
    store = store_for(settings)
    target = SingerTarget(
        tenant=tenant,
        provider=provider,
        raw=RawZoneWriter(store, tenant, provider),
        dead_letters=DeadLetterWriter(store, tenant, provider),
        registry=SchemaRegistry(store, tenant, provider),
        state=StateStore(store, tenant, check_name(source or provider, "source")),
        batch_size=batch_size or settings.batch_size,
        drift_policy=drift_policy,
        progress=progress,
    )
    return target.consume(lines)
