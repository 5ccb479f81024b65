"""The built-in Stripe tap through `opencdp extract`, against a local Stripe API."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from tests.support.data import records
from tests.support.server import Faults
from tests.support.stripe import RESOURCES, StripeServer

from opencdp.ingest.extract import extract
from opencdp.settings import Settings, load_settings
from opencdp.storage.ndjson import read_lines

pytestmark = pytest.mark.integration

API_KEY = "sk_test_51HqLyjWDarjtT1zd"


def configure(root: Path, base_url: str, **source: Any) -> Settings:
    config = {"base_url": base_url, "api_key": "env:STRIPE_KEY", "page_size": 50}
    stripe = {"provider": "stripe", "tap": "builtin:stripe", "config": config, **source}
    settings = {"tenants": {"acme": {"sources": {"payments": stripe}}}}
    (root / "opencdp.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    return load_settings(root)


def landed(root: Path, stream: str, skip: frozenset[Path] = frozenset()) -> list[str]:
    files = (root / "raw" / "acme" / "stripe").rglob(f"{stream}_batch_*.ndjson.gz")
    return [
        doc["record"]["id"]
        for path in files
        if path not in skip
        for doc in read_lines(path.read_bytes())
    ]


def account() -> dict[str, list[dict[str, Any]]]:
    return {resource: records("stripe", resource) for resource in RESOURCES}


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("STRIPE_KEY", API_KEY)
    return API_KEY


def test_every_object_lands_once_and_the_next_run_reads_only_new_ones(
    data_root: Path, clean_env: None, api_key: str
) -> None:
    faults = Faults(rate_limit_every=6, retry_after=None, fail_every=8)
    with StripeServer(API_KEY, account(), faults=faults) as stripe:
        settings = configure(data_root, stripe.url)
        result = extract(settings, "acme", "payments")
        assert result.status == "success", result.error
        assert result.rejected == 0  # valid against the tap's schemas
        for resource in RESOURCES:
            assert Counter(landed(data_root, resource)) == Counter(list(stripe.records[resource]))
        assert {429, 503} <= set(stripe.statuses())  # both retried
        pages = [e for e in stripe.log if "starting_after" in e.params]
        assert pages
        assert all(e.params["created[lte]"] and e.params["limit"] == ["50"] for e in pages)
        assert all(e.headers["authorization"] == f"Bearer {API_KEY}" for e in stripe.log)

        state = orjson.loads(
            (data_root / "state" / "singer" / "acme" / "payments.json").read_bytes()
        )
        newest = max(c["created"] for c in stripe.records["charges"].values())
        assert state["bookmarks"]["charges"]["replication_key_value"] == newest

        before = frozenset((data_root / "raw").rglob("*.gz"))
        charge = next(iter(stripe.records["charges"].values()))
        stripe.put("charges", dict(charge, id="ch_new0000000001", created=newest + 60))
        customer = next(iter(stripe.records["customers"].values()))
        stripe.put("customers", dict(customer, email="edited@example.com"))  # not re-read
        again = extract(settings, "acme", "payments")
    assert again.status == "success", again.error
    assert landed(data_root, "charges", before) == ["ch_new0000000001"]
    assert landed(data_root, "customers", before) == []


def test_a_wrong_key_fails_the_run_with_a_clear_error(
    data_root: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRIPE_KEY", "sk_test_wrongwrongwrong")
    with StripeServer(API_KEY, account()) as stripe:
        result = extract(configure(data_root, stripe.url, max_retries=0), "acme", "payments")
    assert result.status == "failed"
    assert "401" in (result.error or "")
    assert "authentication failed: check api_key" in (result.error or "")
    assert "sk_test_wrongwrongwrong" not in (result.error or "")
