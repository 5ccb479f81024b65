"""`opencdp demo` end to end on embedded defaults, as `make demo ARGS=--no-serve` runs it."""

from __future__ import annotations

import csv
import os
import signal
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
        assert "5. live collection at http://127.0.0.1:" in first.stdout
        tracked = list((root / "raw" / "demo" / "segment").rglob("track_*.ndjson.gz"))
        hooks = list((root / "raw" / "demo" / "shopify").rglob("orders_2*.ndjson.gz"))
        assert tracked, "no tracking-API events landed"
        assert len([d for p in hooks for d in read_lines(p.read_bytes())]) == 20
        landed = sorted(
            p
            for p in (root / "raw" / "demo").rglob("*.ndjson.gz")
            if "_batch_" in p.name  # the extracted files; the live ones are timestamped
        )

        second = run_demo(root)
        assert second.returncode == 0, second.stderr
        assert "already generated (kept)" in second.stdout
        again = sorted(
            p for p in (root / "raw" / "demo").rglob("*.ndjson.gz") if "_batch_" in p.name
        )
        assert again == landed  # extraction is incremental: nothing new
        # The same events again through the tracking API: all duplicates, none lands twice.
        ids = [
            doc["_meta"]["id"]
            for p in (root / "raw" / "demo" / "segment").rglob("*_2*.ndjson.gz")
            for doc in read_lines(p.read_bytes())
        ]
        assert len(ids) == len(set(ids))
    finally:
        stop = Path(sys.executable).parent / "opencdp"
        subprocess.run(
            [str(stop), "--root", str(root), "db", "stop"], check=False, capture_output=True
        )


def test_demo_keeps_serving_until_interrupted(tmp_path: Path) -> None:
    root = tmp_path / "cdp-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCDP_")}
    opencdp = Path(sys.executable).parent / "opencdp"
    process = subprocess.Popen(
        [str(opencdp), "--root", str(root), "demo", "--people", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    try:
        # A demo that never gets to serving ends its output (exits) or hits pytest's timeout.
        serving = any("serving until Ctrl-C" in line for line in process.stdout)
        assert serving, "the demo never said it was serving"
        assert process.poll() is None, "the demo exited instead of serving"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
        subprocess.run(
            [str(opencdp), "--root", str(root), "db", "stop"], check=False, capture_output=True
        )
