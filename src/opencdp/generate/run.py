"""Plan, render and stream a tenant to disk, person by person, in constant memory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from opencdp.generate.config import GenerateConfig
from opencdp.generate.manifest import build_manifest
from opencdp.generate.stats import Tally
from opencdp.generate.tenant import Tenant
from opencdp.generate.writer import TenantWriter, prepare_output

PROGRESS_EVERY = 1_000  # people


def generate_tenant(
    config: GenerateConfig,
    out: Path,
    *,
    force: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write the tenant described by `config` under `out`; return its manifest.

    `on_progress` is called with the number of people written so far, every
    PROGRESS_EVERY people and once at the end.
    """
    prepare_output(out, force=force)
    tenant = Tenant(config)
    tally = Tally()
    with TenantWriter(out) as writer:
        for record in tenant.reference_records():
            writer.write(record)
        done = reported = 0
        for household in tenant.households():
            tally.household(household)
            for person in household.members:
                for record in tenant.person_records(person, household.rng):
                    writer.write(record)
                    if record.eligible:
                        tally.variations(record)
            done += len(household.members)
            if on_progress is not None and done - reported >= PROGRESS_EVERY:
                on_progress(done)
                reported = done
        manifest = build_manifest(tenant.world, tally, writer.counts)
        writer.commit(manifest)
    if on_progress is not None:
        on_progress(done)
    return manifest
