"""The built-in Shopify tap through `opencdp extract`, against a local Shopify API."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from tests.support.data import records
from tests.support.server import Faults
from tests.support.shopify import RESOURCES, Bucket, ShopifyServer

from opencdp.ingest.extract import extract
from opencdp.settings import Settings, load_settings
from opencdp.storage.ndjson import read_lines

pytestmark = pytest.mark.integration

TOKEN = "shpat_0123456789abcdef"


def configure(root: Path, base_url: str, page_size: int = 25, **source: Any) -> Settings:
    config = {"base_url": base_url, "access_token": "env:SHOPIFY_TOKEN", "page_size": page_size}
    shop = {"provider": "shopify", "tap": "builtin:shopify", "config": config, **source}
    settings = {"tenants": {"acme": {"sources": {"shop": shop}}}}
    (root / "opencdp.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    return load_settings(root)


def landed(root: Path, stream: str, skip: frozenset[Path] = frozenset()) -> list[int]:
    files = (root / "raw" / "acme" / "shopify").rglob(f"{stream}_batch_*.ndjson.gz")
    return [
        doc["record"]["id"]
        for path in files
        if path not in skip
        for doc in read_lines(path.read_bytes())
    ]


def shop_data() -> dict[str, list[dict[str, Any]]]:
    return {resource: records("shopify", resource) for resource in RESOURCES}


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SHOPIFY_TOKEN", TOKEN)
    return TOKEN


@pytest.fixture
def shop() -> Iterator[ShopifyServer]:
    faults = Faults(rate_limit_every=7, retry_after="0.2", fail_every=11)
    with ShopifyServer(TOKEN, shop_data(), faults=faults) as server:
        yield server


def test_every_record_lands_once_and_the_next_run_reads_only_changes(
    data_root: Path, clean_env: None, token: str, shop: ShopifyServer
) -> None:
    settings = configure(data_root, shop.url)
    result = extract(settings, "acme", "shop")
    assert result.status == "success", result.error
    assert result.rejected == 0  # valid against the tap's schemas
    for resource in RESOURCES:
        ids = landed(data_root, resource)
        assert Counter(ids) == Counter(list(shop.records[resource])), resource  # each once
    orders = shop.records["orders"].values()
    assert any(o["cancelled_at"] for o in orders)  # status=any: not only open orders

    # The API's contract was kept: a cursor alone on later pages, limit <= 250, token sent.
    assert {429, 503} <= set(shop.statuses())  # and both were retried
    pages = [e for e in shop.log if "page_info" in e.params]
    assert pages
    assert all(set(e.params) <= {"page_info", "limit"} for e in pages)
    assert all(int(e.params["limit"][0]) <= 250 for e in shop.log)
    assert all(e.headers["x-shopify-access-token"] == TOKEN for e in shop.log)

    state = orjson.loads((data_root / "state" / "singer" / "acme" / "shop.json").read_bytes())
    customers = shop.records["customers"].values()
    latest = max(customers, key=lambda c: c["updated_at"])["updated_at"]
    assert state["bookmarks"]["customers"]["replication_key_value"] == latest

    before = frozenset((data_root / "raw").rglob("*.gz"))
    calls = len(shop.log)
    later = (datetime.fromisoformat(latest) + timedelta(days=2)).isoformat()  # shop time
    changed = dict(next(iter(customers)), email="changed@example.com", updated_at=later)
    shop.put("customers", changed)
    new_order = dict(next(iter(orders)), id=99_000_000_001, created_at=later, updated_at=later)
    shop.put("orders", new_order)
    again = extract(settings, "acme", "shop")
    assert again.status == "success", again.error
    assert landed(data_root, "customers", before) == [changed["id"]]
    assert landed(data_root, "orders", before) == [new_order["id"]]
    assert landed(data_root, "products", before) == []
    # The second run asked from one second after the bookmark.
    asked = next(e for e in shop.log[calls:] if e.path.endswith("/customers.json"))
    since = datetime.fromisoformat(asked.params["updated_at_min"][0])
    assert since == datetime.fromisoformat(latest) + timedelta(seconds=1)


def test_slows_down_when_the_call_bucket_is_nearly_full(
    data_root: Path, clean_env: None, token: str
) -> None:
    # A Plus-sized bucket (400 calls leaking 20 a second) that another app nearly filled:
    # sent back to back, the tap's calls would overflow it.
    bucket = Bucket(400, 20.0, level=398)
    with ShopifyServer(TOKEN, shop_data(), bucket=bucket) as server:
        result = extract(configure(data_root, server.url, page_size=50), "acme", "shop")
    assert result.status == "success", result.error
    assert server.overflows == 0
    assert len(landed(data_root, "orders")) == len(server.records["orders"])


def test_selected_streams_only_and_rate_limits_waited_out(
    data_root: Path, clean_env: None, token: str
) -> None:
    faults = Faults(rate_limit_every=2, retry_after="0.1")
    with ShopifyServer(TOKEN, shop_data(), faults=faults) as server:
        result = extract(
            configure(data_root, server.url, page_size=10, select=["products"]), "acme", "shop"
        )
    assert result.status == "success", result.error
    assert server.statuses().count(429) >= 1
    assert Counter(landed(data_root, "products")) == Counter(list(server.records["products"]))
    assert landed(data_root, "customers") == []


def test_a_wrong_token_fails_the_run_with_a_clear_error(
    data_root: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPIFY_TOKEN", "shpat_wrong")
    with ShopifyServer(TOKEN, shop_data()) as server:
        result = extract(configure(data_root, server.url, max_retries=0), "acme", "shop")
    assert result.status == "failed"
    assert "401" in (result.error or "")
    assert "authentication failed: check access_token" in (result.error or "")
    assert "shpat_wrong" not in (result.error or "")
