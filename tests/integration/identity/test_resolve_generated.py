"""Identity resolution end to end on the session's generated tenant: raw zone, transform,
every link rule including the trained model, and the score against the ground truth."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from tests.support import data
from tests.support.curated import read
from tests.support.raw import land_generated
from typer.testing import CliRunner

from opencdp.cli import main as cli
from opencdp.engine.duckdb_engine import DuckDBEngine
from opencdp.identity.inspect import explain, identity_stats, score_tenant
from opencdp.identity.resolve import ResolveReport, resolve
from opencdp.settings import Settings, load_settings
from opencdp.transform import mappings
from opencdp.transform.run import transform

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TENANT = "acme"


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, ResolveReport]]:
    root = tmp_path_factory.mktemp("generated") / "cdp-data"
    root.mkdir()
    settings = load_settings(root, tenants={TENANT: {"identity": {"user_id_provider": "shopify"}}})
    land_generated(settings, TENANT)
    with DuckDBEngine(workers=2) as engine:
        transform(settings, TENANT, engine, mappings.combine(()))
        yield settings, resolve(settings, TENANT, engine)


def test_every_rule_links_records(resolved: tuple[Settings, ResolveReport]) -> None:
    settings, report = resolved
    assert report.model_trained
    assert report.records == read(settings, TENANT, "customers").num_rows
    for rule in ("external_id", "phone", "email", "anonymous_id", "probabilistic"):
        assert report.links[rule] > 0, rule
    assert report.identified_profiles < report.records
    model_links = [
        r for r in read(settings, TENANT, "identity_links").to_pylist()
        if r["rule"] == "probabilistic" and r["status"] == "linked"
    ]  # fmt: skip
    assert all(r["probability"] >= 0.99 for r in model_links)
    # Identifiers of records only the model joined are as sure as its link.
    confidence = read(settings, TENANT, "identities").column("confidence").to_pylist()
    assert min(confidence) >= 0.99
    assert any(c < 1.0 for c in confidence)
    evidence = json.loads(model_links[0]["evidence"])
    assert set(evidence) >= {"first_name", "last_name", "email", "phone"}


def test_the_profiles_match_the_ground_truth(resolved: tuple[Settings, ResolveReport]) -> None:
    settings, _ = resolved
    score = score_tenant(settings, TENANT, data.generated() / "ground_truth.csv")
    assert score["records_without_curated_profile"] == 0
    # A wrong merge costs more than a missed one: precision first.
    assert score["precision"] >= 0.99
    assert score["recall"] >= 0.9
    assert score["over_merged_profiles"] <= score["profiles"] * 0.01


def test_every_customer_event_and_order_has_a_profile(
    resolved: tuple[Settings, ResolveReport],
) -> None:
    settings, _ = resolved
    for name in ("customers", "events"):
        assert read(settings, TENANT, name).column("profile_id").null_count == 0, name
    orders = read(settings, TENANT, "orders")
    assert orders.column("profile_id").null_count < orders.num_rows * 0.01


def test_stats_and_explain_tell_why(resolved: tuple[Settings, ResolveReport]) -> None:
    settings, report = resolved
    stats = identity_stats(settings, TENANT)
    assert stats["identified_profiles"] == report.identified_profiles
    assert 0 < stats["merge_rate"] < 1
    assert stats["blocked"] == report.blocked
    biggest = max(
        read(settings, TENANT, "profiles").to_pylist(),
        key=lambda p: (p["records"], p["profile_id"]),
    )
    doc = explain(settings, TENANT, biggest["profile_id"])
    records = [m for m in doc["members"] if m["kind"] == "record"]
    assert len(records) == biggest["records"]
    # The links join every record of the profile.
    linked = {n for link in doc["links"] for n in (link["left_node"], link["right_node"])}
    assert {m["node"] for m in doc["members"]} <= linked


def test_the_cli_resolves_and_reports(resolved: tuple[Settings, ResolveReport]) -> None:
    settings, report = resolved
    if not any(group.name == "identity" for group in cli.app.registered_groups):
        cli._register()

    def opencdp(*args: str) -> Any:
        return CliRunner().invoke(
            cli.app, ["--root", str(settings.root), *args], env={"COLUMNS": "200"}
        )

    stats = opencdp("identity", "stats", "--tenant", TENANT, "--json")
    assert stats.exit_code == 0, stats.output
    assert json.loads(stats.output)["identified_profiles"] == report.identified_profiles
    truth = str(data.generated() / "ground_truth.csv")
    score = opencdp("identity", "score", "--tenant", TENANT, "--truth", truth, "--json")
    assert score.exit_code == 0, score.output
    assert json.loads(score.output)["precision"] >= 0.99
    missing = opencdp("identity", "explain", "--tenant", TENANT, "--profile", "p_nope")
    assert missing.exit_code != 0
    assert "no profile 'p_nope'" in missing.output
