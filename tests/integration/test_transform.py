"""The transform on DuckDB, end to end: a generated tenant's raw zone (landed through the
real Singer target and in the batcher's format) into curated Iceberg tables."""

from __future__ import annotations

import gzip
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from tests.support import data
from tests.support.raw import land_generated, land_live, land_tap

from opencdp.engine.duckdb_engine import DuckDBEngine
from opencdp.lake import load_table, open_catalog
from opencdp.settings import Settings, load_settings
from opencdp.storage import store_for
from opencdp.transform import mappings
from opencdp.transform.ledger import Ledger, Plan
from opencdp.transform.mapping import SourceMapping
from opencdp.transform.run import RunReport, transform

pytestmark = pytest.mark.integration

TENANT = "acme"


def run(
    settings: Settings,
    *,
    historic: bool = False,
    extra: tuple[SourceMapping, ...] = (),
    **options: Any,
) -> RunReport:
    with DuckDBEngine(workers=2) as engine:
        return transform(
            settings, TENANT, engine, mappings.combine(extra), historic=historic, **options
        )


def rows(settings: Settings, name: str) -> list[dict[str, Any]]:
    with open_catalog(settings) as catalog:
        return load_table(catalog, TENANT, name).scan().to_arrow().to_pylist()


def table(settings: Settings, name: str) -> pa.Table:
    with open_catalog(settings) as catalog:
        return load_table(catalog, TENANT, name).scan().to_arrow()


def snapshots(settings: Settings, name: str) -> int:
    with open_catalog(settings) as catalog:
        return len(load_table(catalog, TENANT, name).snapshots())


@pytest.fixture
def landed(settings: Settings) -> Settings:
    """The generated tenant in the raw zone, as the extract commands land it."""
    land_generated(settings, TENANT)
    return settings


def test_a_first_run_builds_every_canonical_table(landed: Settings) -> None:
    report = run(landed)

    shopify_customers = data.records("shopify", "customers")
    orders = data.records("shopify", "orders")
    charges = data.records("stripe", "charges")
    events = data.records("events", "events")
    assert report.rejected == 0
    customers = rows(landed, "customers")
    by_provider = Counter(r["provider"] for r in customers)
    assert by_provider["shopify"] == len({r["id"] for r in shopify_customers})
    assert by_provider["stripe"] == len({r["id"] for r in data.records("stripe", "customers")})
    identified = {e["userId"] for e in events if e["type"] == "identify" and e.get("userId")}
    assert by_provider["segment"] == len(identified)
    assert len(rows(landed, "orders")) == len(orders) + len(charges)
    assert len(rows(landed, "order_items")) == sum(len(o["line_items"]) for o in orders)
    assert len(rows(landed, "events")) == len({e["messageId"] for e in events})
    assert len(rows(landed, "products")) == len(data.records("shopify", "products"))


def test_values_are_cleaned_normalized_and_enriched(landed: Settings) -> None:
    run(landed)
    customers = table(landed, "customers")
    emails = customers.column("email").drop_null()
    assert emails.to_pylist() == pc.utf8_lower(emails).to_pylist()
    assert pc.all(
        pc.match_substring_regex(customers.column("phone").drop_null(), r"^\+[1-9]\d{6,14}$")
    ).as_py()
    assert pc.all(
        pc.match_substring_regex(customers.column("country").drop_null(), r"^[A-Z]{2}$")
    ).as_py()
    assert customers.schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert pc.all(
        pc.equal(
            customers.column("email_domain").drop_null(),
            customers.column("email_domain").drop_null(),
        )
    ).as_py()
    assert pc.sum(customers.column("email_free")).as_py() > 0

    # A Shopify customer, value by value.
    source = next(
        r for r in data.records("shopify", "customers") if r.get("email") and r.get("phone")
    )
    mine = next(
        r
        for r in customers.to_pylist()
        if r["provider"] == "shopify" and r["source_id"] == str(source["id"])
    )
    assert mine["email"] == source["email"].strip().lower()
    assert mine["email_domain"] == mine["email"].split("@")[1]
    assert mine["external_ids"] == [("shopify", str(source["id"]))]
    created = datetime.fromisoformat(source["created_at"])
    assert mine["created_at"] == created.astimezone(UTC)

    # Stripe amounts are in cents: 11099 eur is 110.99.
    charge = data.records("stripe", "charges")[0]
    order = next(r for r in rows(landed, "orders") if r["order_id"] == charge["id"])
    assert order["total_amount"] == Decimal(charge["amount"]) / 100
    assert order["currency"] == charge["currency"].upper()
    assert order["created_at"] == datetime.fromtimestamp(charge["created"], UTC)


def test_customers_carry_their_order_facts(landed: Settings) -> None:
    run(landed)
    orders = [o for o in data.records("shopify", "orders") if o.get("customer")]
    counts = Counter(str(o["customer"]["id"]) for o in orders)
    customers = {r["source_id"]: r for r in rows(landed, "customers") if r["provider"] == "shopify"}
    for customer_id, count in counts.most_common(5):
        assert customers[customer_id]["order_count"] == count
        mine = [o for o in orders if str(o["customer"]["id"]) == customer_id]
        assert customers[customer_id]["total_revenue"] == sum(
            Decimal(o["total_price"]) for o in mine
        )


def test_a_rerun_with_no_new_raw_files_changes_nothing(landed: Settings) -> None:
    run(landed)
    before = snapshots(landed, "customers")
    report = run(landed)
    assert report.files == 0
    assert snapshots(landed, "customers") == before


def test_an_incremental_run_merges_changes_by_key_and_appends_new_rows(landed: Settings) -> None:
    run(landed)
    customers_before = len(rows(landed, "customers"))
    orders_before = len(rows(landed, "orders"))
    events_before = table(landed, "events").num_rows
    source = data.records("shopify", "customers")
    changed = dict(
        source[0], email="Changed.Person@Fastmail.com ", updated_at=(datetime.now(UTC)).isoformat()
    )
    stale = dict(source[1], email="stale@fastmail.com", updated_at="2001-01-01T00:00:00Z")
    land_tap(landed, TENANT, "shopify", "customers", [changed, stale])
    new_order = dict(data.records("shopify", "orders")[0], id=999_000_001, line_items=[])
    land_live(
        landed, TENANT, "shopify", "orders", [("wh-1", "orders/create", new_order)], kind="webhook"
    )

    report = run(landed)

    assert report.files == 2
    customers = {(r["provider"], r["source_id"]): r for r in rows(landed, "customers")}
    assert len(customers) == customers_before
    assert customers[("shopify", str(source[0]["id"]))]["email"] == "changed.person@fastmail.com"
    # An older version never replaces a newer one.
    assert customers[("shopify", str(source[1]["id"]))]["email"] != "stale@fastmail.com"
    assert len(rows(landed, "orders")) == orders_before + 1
    # The webhook delivery is an event too; the rest of the events table is untouched.
    assert table(landed, "events").num_rows == events_before + 1
    assert report.tables["customers"].replaced >= 2
    # Merge-on-read: the changed customer's live row deleted by position, and the rows of
    # customers whose orders changed (their facts); a new order deletes nothing.
    assert report.tables["customers"].deletes >= 1
    assert report.tables["orders"].deletes == 0
    # The new order counts in its customer's facts.
    customer_id = str(new_order["customer"]["id"])
    facts = customers[("shopify", customer_id)]
    expected = (
        sum(
            1
            for o in data.records("shopify", "orders")
            if o.get("customer") and str(o["customer"]["id"]) == customer_id
        )
        + 1
    )
    assert facts["order_count"] == expected


def test_a_crash_between_commits_is_resumed_exactly_once(landed: Settings, tmp_path: Any) -> None:
    def crash(name: str) -> None:
        if name == "order_items":
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        run(landed, after_commit=crash)
    assert Ledger(store_for(landed), TENANT).pending() is not None

    report = run(landed)

    assert report.resumed
    assert report.tables["orders"].skipped
    assert report.tables["products"].skipped
    # The crash was in the other lane: customers were merged before it was raised.
    assert report.tables["customers"].skipped
    assert report.tables["order_items"].skipped
    assert not report.tables["events"].skipped
    assert Ledger(store_for(landed), TENANT).pending() is None
    orders = rows(landed, "orders")
    assert len(orders) == len({(o["provider"], o["order_id"]) for o in orders})
    assert len(orders) == len(data.records("shopify", "orders")) + len(
        data.records("stripe", "charges")
    )
    assert run(landed).files == 0


def test_a_run_resumed_after_its_orders_commit_still_updates_order_facts(
    landed: Settings,
) -> None:
    """The crash comes after the orders commit of an incremental run: the resumed run no
    longer knows whose orders changed, so every customer's facts are recomputed."""
    run(landed)
    new_order = dict(data.records("shopify", "orders")[0], id=999_000_002, line_items=[])
    land_live(
        landed, TENANT, "shopify", "orders", [("wh-2", "orders/create", new_order)], kind="webhook"
    )
    customer_id = str(new_order["customer"]["id"])
    before = {(r["provider"], r["source_id"]): r for r in rows(landed, "customers")}
    count = before[("shopify", customer_id)]["order_count"]

    def crash(name: str) -> None:
        if name == "orders":
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        run(landed, after_commit=crash)
    report = run(landed)

    assert report.resumed
    assert report.tables["orders"].skipped
    after = {(r["provider"], r["source_id"]): r for r in rows(landed, "customers")}
    assert after[("shopify", customer_id)]["order_count"] == count + 1
    assert len(after) == len(before)


def test_a_historic_run_rebuilds_atomically_and_can_be_rolled_back(landed: Settings) -> None:
    from opencdp.lake.maintain import rollback

    run(landed)
    first = table(landed, "customers").sort_by(
        [("provider", "ascending"), ("source_id", "ascending")]
    )
    report = run(landed, historic=True)
    assert report.historic
    rebuilt = table(landed, "customers").sort_by(
        [("provider", "ascending"), ("source_id", "ascending")]
    )
    assert rebuilt.drop_columns(["_ingested_at"]).equals(first.drop_columns(["_ingested_at"]))

    with open_catalog(landed) as catalog:
        before = load_table(catalog, TENANT, "customers").current_snapshot()
        assert before is not None
        rolled = rollback(catalog, TENANT, ["customers"])
        after = load_table(catalog, TENANT, "customers").current_snapshot()
    assert after is not None
    assert after.snapshot_id != before.snapshot_id
    assert rolled == {"customers": after.snapshot_id}


def test_a_tenant_brings_its_own_csv_with_a_declared_mapping(settings: Settings) -> None:
    (settings.root / "opencdp.yaml").write_text(
        f"""
tenants:
  {TENANT}:
    default_country: DE
    mappings:
      - table: customers
        provider: loyalty
        streams: [members]
        fields:
          source_id: member_no
          email: e_mail
          phone: [mobile, tel]
          first_name: vorname
          last_name: nachname
          birth_date: {{path: geburtstag, date_format: "%d.%m.%Y"}}
          created_at: {{path: seit, date_format: "%d.%m.%Y %H:%M"}}
          consent_email: {{path: newsletter, values: {{ja: granted, nein: denied, offen: null}}}}
""",
        encoding="utf-8",
    )
    configured = load_settings(settings.root)
    members = [
        {
            "member_no": "M-1",
            "e_mail": " Anna.Schmidt@Web.DE",
            "tel": "0151 23456789",
            "vorname": "ANNA",
            "nachname": "SCHMIDT",
            "geburtstag": "03.04.1990",
            "seit": "01.02.2023 14:30",
            "newsletter": "Ja",
        },
        {
            "member_no": "M-2",
            "e_mail": "n/a",
            "tel": "",
            "vorname": "Jörg",
            "nachname": "Meier",
            "geburtstag": "31.02.1990",
            "seit": "",
            "newsletter": "nein",
        },
        {"member_no": "M-3", "e_mail": "m3@web.de", "newsletter": "vielleicht"},
        {"member_no": "M-4", "e_mail": "m4@web.de", "newsletter": "Offen"},
    ]
    land_tap(configured, TENANT, "loyalty", "members", members, key="member_no")
    declared = mappings.declared(configured.tenant(TENANT).mappings)

    report = run(configured, extra=declared)

    assert report.tables["customers"].written == 4
    got = {r["source_id"]: r for r in rows(configured, "customers")}
    anna, joerg = got["M-1"], got["M-2"]
    assert anna["email"] == "anna.schmidt@web.de"
    assert anna["phone"] == "+4915123456789"  # read in the tenant's default country
    assert (anna["first_name"], anna["last_name"]) == ("Anna", "Schmidt")
    assert anna["birth_date"].isoformat() == "1990-04-03"
    assert anna["created_at"] == datetime(2023, 2, 1, 14, 30, tzinfo=UTC)
    assert anna["consent"]["email"] == "granted"
    assert joerg["email"] is None
    assert "email_placeholder" in joerg["_quality_flags"]
    assert joerg["birth_date"] is None
    assert "birth_date_invalid" in joerg["_quality_flags"]
    assert joerg["consent"]["email"] == "denied"
    # A value the translation does not name is nulled and flagged; one it names as null
    # is not.
    assert got["M-3"]["consent"]["email"] is None
    assert got["M-3"]["_quality_flags"] == ["consent_email_invalid"]
    assert got["M-4"]["consent"]["email"] is None
    assert got["M-4"]["_quality_flags"] == []


def test_rows_without_a_key_are_quarantined_and_bad_lines_go_to_the_dlq(
    settings: Settings,
) -> None:
    from opencdp.ingest import dlq

    now = datetime.now(UTC)
    track = {"type": "track", "event": "A", "anonymousId": "a", "timestamp": now.isoformat()}
    events = [
        ("m1", "track", {**track, "messageId": "m1"}),
        ("m2", "track", track),  # no messageId: the envelope's id stands in
        (None, "track", track),  # no id at all: quarantined
    ]
    key = land_live(settings, TENANT, "segment", "track", events, at=now - timedelta(seconds=5))
    # A line of another tenant in this tenant's raw zone, and a line that is not JSON.
    store = store_for(settings)
    lines = gzip.decompress(store.read(key)).splitlines()
    lines.append(lines[0].replace(b'"tenant":"acme"', b'"tenant":"other"'))
    lines.append(b"{not json")
    bad_key = key.replace(".ndjson.gz", "_x.ndjson.gz")
    store.write(bad_key, gzip.compress(b"\n".join(lines)))

    report = run(settings)

    # Each file gave m1 and m2 once: duplicates by key are written once.
    assert sorted(r["event_id"] for r in rows(settings, "events")) == ["m1", "m2"]
    assert report.tables["events"].quarantined == 2
    quarantined = rows(settings, "quarantine")
    assert {(q["table"], q["rule"]) for q in quarantined} == {("events", "key_not_null")}
    assert {q["_raw_file"] for q in quarantined} == {key, bad_key}
    assert report.rejected == 2
    groups = {g.error_type: g.records for g in dlq.summarize(store, TENANT)}
    assert groups == {"invalid_envelope": 2}
    entries = list(dlq.entries(store, TENANT, "segment"))
    assert {e.doc["error"]["stage"] for e in entries} == {"transform"}
    assert {e.doc["error"]["raw_file"] for e in entries} == {bad_key}
    reasons = sorted(e.doc["error"]["reason"] for e in entries)
    assert reasons[0].startswith("not JSON")
    assert "belongs to other/segment" in reasons[1]


def test_damaged_raw_files_are_read_as_far_as_they_go_and_named_in_the_dlq(
    settings: Settings,
) -> None:
    from opencdp.ingest import dlq

    land_tap(settings, TENANT, "crm", "contacts", [{"Id": f"c{n}"} for n in range(25)], key="Id")
    store = store_for(settings)
    (key,) = [i.key for i in store.list(f"raw/{TENANT}/crm")]
    lines = gzip.decompress(store.read(key)).splitlines()
    store.write(key, gzip.compress(b"\n".join(lines[:10])), overwrite=True)  # c0-c9, whole
    # Two gzip members, the second cut short after c15-c17 were flushed: c10-c17 are whole.
    member = zlib.compressobj(wbits=31)
    flushed = member.compress(b"\n".join(lines[15:18]) + b"\n") + member.flush(zlib.Z_FULL_FLUSH)
    rest = member.compress(b"\n".join(lines[18:20])) + member.flush()
    truncated = gzip.compress(b"\n".join(lines[10:15]) + b"\n") + flushed + rest[: len(rest) // 2]
    truncated_key = key.replace("_001.", "_901.")
    store.write(truncated_key, truncated)
    not_gzip_key = key.replace("_001.", "_902.")
    store.write(not_gzip_key, b"\n".join(lines[20:25]))  # c20-c24, never compressed

    report = run(settings)

    assert report.files == 3
    ids = {r["source_id"] for r in rows(settings, "customers")}
    assert {f"c{n}" for n in range(18)} <= ids
    assert ids <= {f"c{n}" for n in range(20)}  # nothing from the file that is not gzip
    damaged = [e.doc["error"] for e in dlq.entries(store, TENANT, "crm", "damaged_file")]
    assert sorted(e["raw_file"] for e in damaged) == [truncated_key, not_gzip_key]
    assert all(e["reason"].startswith("the raw file is damaged") for e in damaged)
    # A line the cut split in two is rejected as a line, with what was left of it.
    cut_lines = list(dlq.entries(store, TENANT, "crm", "invalid_envelope"))
    assert {e.doc["error"]["raw_file"] for e in cut_lines} <= {truncated_key}
    assert len(ids) + len(cut_lines) <= 20
    # The run is done with them: the next has nothing to do, and the raw zone is as it was.
    assert run(settings).files == 0
    assert store.read(truncated_key) == truncated


def test_a_raw_file_gone_since_its_run_was_planned_is_named_in_the_dlq(
    settings: Settings,
) -> None:
    from opencdp.ingest import dlq

    land_tap(settings, TENANT, "crm", "contacts", [{"Id": "c1"}], key="Id")
    store = store_for(settings)
    (key,) = [i.key for i in store.list(f"raw/{TENANT}/crm")]
    gone = key.replace("_001.", "_002.")
    # A run planned both files and stopped; the second was deleted by hand since.
    Ledger(store, TENANT).begin(Plan("20250101T000000-0000abcd", False, (key, gone)))

    report = run(settings)

    assert (report.resumed, report.files) == (True, 2)
    assert [r["source_id"] for r in rows(settings, "customers")] == ["c1"]
    (entry,) = dlq.entries(store, TENANT, "crm", "missing_file")
    assert entry.doc["error"]["raw_file"] == gone
    assert run(settings).files == 0  # the plan is done: nothing stops on the file again


def test_lines_of_a_schema_version_registered_since_the_last_run_are_read(
    settings: Settings,
) -> None:
    from opencdp.ingest import dlq
    from opencdp.ingest.schemas import SchemaRegistry

    land_tap(settings, TENANT, "crm", "contacts", [{"Id": "c1"}], key="Id")
    store = store_for(settings)
    (key,) = [i.key for i in store.list(f"raw/{TENANT}/crm")]
    assert run(settings).files == 1
    (line,) = gzip.decompress(store.read(key)).splitlines()
    assert b'"schema_version":1' in line

    def land_version_2(number: int, contact: str) -> None:
        ahead = line.replace(b'"schema_version":1', b'"schema_version":2')
        ahead = ahead.replace(b'"c1"', f'"{contact}"'.encode())
        store.write(key.replace("_001.", f"_00{number}."), gzip.compress(ahead))

    # One file at a time: each run stages it in this process, or on workers another test
    # left running; the caches of either outlive a run.
    land_version_2(2, "c2")
    assert run(settings).rejected == 1  # version 2 is not registered yet
    SchemaRegistry(store, TENANT, "crm").register(
        "contacts", {"type": "object", "properties": {"Id": {"type": "string"}}}, ("Id",)
    )
    land_version_2(3, "c3")
    assert run(settings).rejected == 0

    assert sorted(r["source_id"] for r in rows(settings, "customers")) == ["c1", "c3"]
    (entry,) = dlq.entries(store, TENANT, "crm", "unknown_schema")
    assert entry.doc["record"] == {"Id": "c2"}
    assert "schema version 2 of stream 'contacts' is not registered" in entry.doc["error"]["reason"]


def test_quality_rules_measure_valid_values_against_the_threshold(settings: Settings) -> None:
    contacts = [
        {
            "Id": f"c{n}",
            "Email": "broken-at-example" if n < 3 else f"ok{n}@fastmail.com",
            "MobilePhone": "+1 415 555 0100",
            "LastModifiedDate": "2024-01-01T00:00:00Z",
        }
        for n in range(10)
    ]
    land_tap(settings, TENANT, "crm", "contacts", contacts, key="Id")

    report = run(settings)

    reports = {(r["table"], r["provider"], r["rule"]): r for r in rows(settings, "quality_reports")}
    email = reports[("customers", "crm", "valid_email")]
    assert (email["checked"], email["failed"]) == (10, 3)
    assert email["rate"] == pytest.approx(0.7)
    assert email["passed"] is False
    assert reports[("customers", "crm", "valid_phone")]["passed"] is True
    assert reports[("customers", "*", "key_not_null")]["passed"] is True
    assert {r["run_id"] for r in reports.values()} == {report.run_id}
    assert report.summary()["quality_failures"] == ["customers/crm valid_email 0.700 < 0.9"]
    invalid = [r for r in rows(settings, "customers") if "email_invalid" in r["_quality_flags"]]
    assert sorted(r["source_id"] for r in invalid) == ["c0", "c1", "c2"]
