"""`opencdp demo` end to end on embedded defaults, as `make demo ARGS=--no-serve` runs it."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from opencdp.storage.ndjson import read_lines

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def run_demo(root: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCDP_")}
    env["COLUMNS"] = "200"
    opencdp = Path(sys.executable).parent / "opencdp"
    return subprocess.run(
        [str(opencdp), "--root", str(root), "demo", "--no-serve", "--people", "150"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )


def test_demo_lands_every_source_and_is_safe_to_rerun(tmp_path: Path) -> None:
    root = tmp_path / "cdp-data"
    try:
        first = run_demo(root)
        assert first.returncode == 0, first.stderr + first.stdout
        assert "generated: 150 synthetic people" in first.stdout
        for provider in ("crm", "shopify", "stripe", "segment"):
            files = list((root / "raw" / "demo" / provider).rglob("*.ndjson.gz"))
            assert files, f"nothing landed for {provider}"
        contacts = [
            doc
            for path in (root / "raw" / "demo" / "crm").rglob("contacts_batch_*.ndjson.gz")
            for doc in read_lines(path.read_bytes())
        ]
        with (root / "generated" / "demo" / "crm" / "contacts.csv").open(newline="") as f:
            generated_ids = sorted(row["Id"] for row in csv.DictReader(f))
        assert sorted(doc["record"]["Id"] for doc in contacts) == generated_ids
        assert (root / "catalog.db").exists()
        landed = sorted((root / "raw" / "demo").rglob("*.ndjson.gz"))

        second = run_demo(root)
        assert second.returncode == 0, second.stderr
        assert "already generated (kept)" in second.stdout
        assert sorted((root / "raw" / "demo").rglob("*.ndjson.gz")) == landed  # nothing new
    finally:
        stop = Path(sys.executable).parent / "opencdp"
        subprocess.run(
            [str(stop), "--root", str(root), "db", "stop"], check=False, capture_output=True
        )
