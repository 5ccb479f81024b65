"""The built-in files tap through `opencdp extract`: generated CRM CSVs and Shopify JSON
lines in a folder, and CSVs in S3 (a moto server on 127.0.0.1)."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from tests.support.data import generated
from tests.support.s3 import s3_client

from opencdp.ingest.extract import extract
from opencdp.settings import Settings, load_settings
from opencdp.storage.ndjson import read_lines

pytestmark = pytest.mark.integration


def configure(root: Path, streams: list[dict[str, Any]], **source: Any) -> Settings:
    config = {"streams": streams, **source.pop("config", {})}
    files = {"provider": "crm", "tap": "builtin:files", "config": config, **source}
    settings = {"tenants": {"acme": {"sources": {"exports": files}}}}
    (root / "opencdp.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    return load_settings(root)


def landed(root: Path, stream: str, key: str, skip: frozenset[Path] = frozenset()) -> list[Any]:
    files = (root / "raw" / "acme" / "crm").rglob(f"{stream}_batch_*.ndjson.gz")
    return [
        doc["record"][key]
        for path in files
        if path not in skip
        for doc in read_lines(path.read_bytes())
    ]


def csv_ids(*paths: Path) -> list[str]:
    ids = []
    for path in paths:
        with path.open(encoding="utf-8", newline="") as f:
            ids += [row["Id"] for row in csv.DictReader(f)]
    return ids


def schema_versions(root: Path, stream: str) -> list[Path]:
    return sorted((root / "state" / "schemas" / "acme" / "crm" / stream).glob("*.json"))


@pytest.fixture
def exports(tmp_path: Path) -> Path:
    """The generated CRM export and the Shopify customers split in two JSON-lines files."""
    folder = tmp_path / "exports"
    shutil.copytree(generated() / "crm", folder / "crm")
    lines = (generated() / "shopify" / "customers.jsonl").read_bytes().splitlines(keepends=True)
    (folder / "shop").mkdir()
    (folder / "shop" / "customers-1.jsonl").write_bytes(b"".join(lines[:100]))
    (folder / "shop" / "customers-2.jsonl").write_bytes(b"".join(lines[100:]))
    return folder


def test_csv_and_jsonl_land_once_and_a_rerun_reads_only_new_or_changed_files(
    data_root: Path, clean_env: None, exports: Path
) -> None:
    crm, shop = exports / "crm", exports / "shop"
    streams = [
        {"name": "contacts", "path": str(crm / "contacts*.csv"), "key_properties": ["Id"]},
        {"name": "accounts", "path": str(crm / "accounts.csv"), "key_properties": ["Id"]},
        {"name": "customers", "path": str(shop), "key_properties": ["id"]},  # a folder
    ]
    settings = configure(data_root, streams)
    result = extract(settings, "acme", "exports")
    assert result.status == "success", result.error
    assert result.rejected == 0  # every record valid against the inferred schemas
    contacts = crm / "contacts.csv"
    assert Counter(landed(data_root, "contacts", "Id")) == Counter(csv_ids(contacts))
    assert Counter(landed(data_root, "accounts", "Id")) == Counter(csv_ids(crm / "accounts.csv"))
    customers = (generated() / "shopify" / "customers.jsonl").read_bytes().splitlines()
    expected = Counter(orjson.loads(line)["id"] for line in customers)
    assert Counter(landed(data_root, "customers", "id")) == expected
    with contacts.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    [raw] = (data_root / "raw").rglob("contacts_*.gz")
    assert [doc["record"] for doc in read_lines(raw.read_bytes())] == rows  # exactly as in the file
    state = orjson.loads((data_root / "state" / "singer" / "acme" / "exports.json").read_bytes())
    assert set(state["bookmarks"]["customers"]["files"]) == {
        (shop / name).as_uri() for name in ("customers-1.jsonl", "customers-2.jsonl")
    }

    before = frozenset((data_root / "raw").rglob("*.gz"))
    # A new file for the glob, one changed file, the others untouched.
    header = contacts.read_text(encoding="utf-8").splitlines()[0]
    new_row = "003NEW0000000001AAA,Ada,Lovelace,ada@example.com" + "," * (header.count(",") - 3)
    (crm / "contacts-2025-07.csv").write_text(f"{header}\n{new_row}\n", "utf-8")
    changed = shop / "customers-2.jsonl"
    changed.write_bytes(changed.read_bytes() + changed.read_bytes().splitlines(keepends=True)[0])
    again = extract(settings, "acme", "exports")
    assert again.status == "success", again.error
    assert landed(data_root, "contacts", "Id", before) == ["003NEW0000000001AAA"]
    assert landed(data_root, "accounts", "Id", before) == []
    second_file = [orjson.loads(line) for line in changed.open("rb")]
    assert landed(data_root, "customers", "id", before) == [c["id"] for c in second_file]
    for stream in ("contacts", "accounts", "customers"):
        assert len(schema_versions(data_root, stream)) == 1, stream  # same columns, same schema

    third = extract(settings, "acme", "exports")
    assert third.status == "success"
    assert third.records == 0


def test_a_missing_path_is_a_clear_error(data_root: Path, clean_env: None, tmp_path: Path) -> None:
    streams = [{"name": "contacts", "path": str(tmp_path / "nowhere" / "*.csv")}]
    result = extract(configure(data_root, streams, max_retries=0), "acme", "exports")
    assert result.status == "failed"
    assert "stream 'contacts': no file matches" in (result.error or "")
    assert str(tmp_path / "nowhere") in (result.error or "")


S3_OPTIONS = {"key": "testing", "secret": "testing", "client_kwargs": {"region_name": "us-east-1"}}


def test_files_in_s3(data_root: Path, clean_env: None, s3_endpoint: str) -> None:
    s3 = s3_client(s3_endpoint)
    s3.create_bucket(Bucket="exports")
    accounts = generated() / "crm" / "accounts.csv"
    for key in ("crm/accounts-1.csv", "crm/accounts-2.csv"):
        s3.put_object(Bucket="exports", Key=key, Body=accounts.read_bytes())
    streams = [{"name": "accounts", "path": "s3://exports/crm/*.csv", "key_properties": ["Id"]}]
    options = {**S3_OPTIONS, "endpoint_url": s3_endpoint}
    settings = configure(data_root, streams, config={"storage_options": options})
    result = extract(settings, "acme", "exports")
    assert result.status == "success", result.error
    assert Counter(landed(data_root, "accounts", "Id")) == Counter(csv_ids(accounts, accounts))
    state = orjson.loads((data_root / "state" / "singer" / "acme" / "exports.json").read_bytes())
    files = state["bookmarks"]["accounts"]["files"]
    assert set(files) == {"s3://exports/crm/accounts-1.csv", "s3://exports/crm/accounts-2.csv"}
    assert all(stamp["modified"] and stamp["size"] for stamp in files.values())
