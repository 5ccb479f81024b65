"""Real, unmodified taps from PyPI, each installed into its own environment by
`opencdp extract` and run end to end into the raw zone."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from opencdp.ingest.extract import extract
from opencdp.settings import Settings, load_settings
from opencdp.storage.ndjson import read_lines

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PEOPLE = [
    {"id": i, "email": f"person{i}@example.com", "name": f"Person {i}", "score": i * 1.5}
    for i in range(1, 41)
]


def configure(root: Path, source: dict[str, Any]) -> Settings:
    config = {"tenants": {"acme": {"sources": {"export": source}}}}
    (root / "opencdp.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_settings(root)


def landed(root: Path) -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted((root / "raw" / "acme").rglob("*.ndjson.gz"))
        for doc in read_lines(path.read_bytes())
    ]


def test_tap_jsonl_with_batch_messages(data_root: Path, clean_env: None, tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "people.jsonl").write_bytes(b"\n".join(orjson.dumps(p) for p in PEOPLE))
    settings = configure(
        data_root,
        {
            "provider": "crm",
            "tap": "tap-jsonl==0.3.1",
            "config": {
                "path": str(exports / "*.jsonl"),
                "stream_name": "people",
                "primary_keys": ["id"],
                # The tap writes its records as gzip JSONL files and sends BATCH messages.
                "batch_config": {
                    "encoding": {"format": "jsonl", "compression": "gzip"},
                    "storage": {"root": (tmp_path / "batches").as_uri(), "prefix": "b-"},
                },
            },
        },
    )
    result = extract(settings, "acme", "export")
    assert result.status == "success", result.error
    docs = landed(data_root)
    assert sorted(d["record"]["id"] for d in docs) == [p["id"] for p in PEOPLE]
    assert {d["_meta"]["stream"] for d in docs} == {"people"}
    assert all(d["_meta"]["id"] == str(d["record"]["id"]) for d in docs)
    assert (data_root / "state" / "singer" / "acme" / "export.json").exists()
    assert list((tmp_path / "batches").glob("b-*.json*.gz")), "the tap sent no BATCH files"


def test_tap_spreadsheets_csv(data_root: Path, clean_env: None, tmp_path: Path) -> None:
    sheet = tmp_path / "contacts.csv"
    with sheet.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "email", "name"])
        writer.writeheader()
        for p in PEOPLE:
            writer.writerow({k: p[k] for k in ("id", "email", "name")})
    settings = configure(
        data_root,
        {
            "provider": "crm",
            "tap": "tap-spreadsheets==1.1.2",
            "config": {
                "files": [
                    {
                        "path": str(sheet),
                        "format": "csv",
                        "table_name": "contacts",
                        "primary_keys": ["id"],
                    }
                ]
            },
        },
    )
    result = extract(settings, "acme", "export")
    assert result.status == "success", result.error
    docs = landed(data_root)
    assert {d["_meta"]["stream"] for d in docs} == {"contacts"}
    assert sorted(d["record"]["email"] for d in docs) == sorted(p["email"] for p in PEOPLE)
    assert result.rejected == 0
