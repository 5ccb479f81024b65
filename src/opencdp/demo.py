"""`opencdp demo`: every pipeline stage that exists, end to end, on embedded defaults.

It initialises the data root, generates the demo tenant's exports, starts the embedded
PostgreSQL and gives the tenant its schema and Iceberg namespace, extracts every declared
source of the tenant into the raw zone (recorded as runs), and reports what it did.
Running it again is safe: generation is skipped when its exports exist, and extraction is
incremental, so nothing is landed twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from opencdp.settings import Settings, load_settings

if TYPE_CHECKING:
    from opencdp.ingest.extract import ExtractResult

TENANT = "demo"


@dataclass
class DemoReport:
    root: Path
    exports: Path
    generated: bool
    manifest: dict[str, object]
    database: str
    extractions: list[ExtractResult] = field(default_factory=list)


def run_demo(settings: Settings, people: int = 2_000, seed: int = 42) -> DemoReport:
    # Imported here: the CLI imports this module for its constants on every start.
    from opencdp.cli.init import init_root
    from opencdp.db import Database, ensure_tenant
    from opencdp.generate import GenerateConfig, generate_tenant
    from opencdp.ingest.scheduler import run_recorded
    from opencdp.lake import ensure_namespace, open_catalog

    init_root(settings.root)
    settings = load_settings(settings.root)  # the example config may have just been written
    exports = settings.root / "generated" / TENANT
    manifest_file = exports / "manifest.json"
    generated = not _same_generation(manifest_file, people, seed)
    if generated:
        generate_tenant(
            GenerateConfig(tenant=TENANT, people=people, seed=seed), exports, force=True
        )
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))

    db = Database.from_settings(settings)
    ensure_tenant(db, TENANT)
    with open_catalog(settings) as catalog:
        ensure_namespace(catalog, TENANT)

    report = DemoReport(settings.root, exports, generated, manifest, db.location)
    for source in sorted(settings.tenant(TENANT).sources):
        if settings.tenant(TENANT).sources[source].kind == "tap":
            report.extractions.append(run_recorded(settings, db, TENANT, source))
    return report


def _same_generation(manifest: Path, people: int, seed: int) -> bool:
    if not manifest.exists():
        return False
    doc = json.loads(manifest.read_text(encoding="utf-8"))
    return bool(doc.get("people") == people and doc.get("seed") == seed)
