"""Survivorship and computed traits: the profiles table, on DuckDB and (identical) on Spark.

Each test builds a small tenant by hand: customer records (each names the profile it is
linked to), anonymous devices, orders and events with their profile_id.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from opencdp.engine.base import Engine
from opencdp.engine.duckdb_engine import DuckDBEngine
from opencdp.identity.model import PROFILES, TRAITS
from opencdp.identity.survivorship import build_profiles
from opencdp.settings import IdentitySettings, SurvivorshipRule
from opencdp.transform.model import CUSTOMERS, EVENTS, ORDERS

pytestmark = pytest.mark.integration

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
RULES: tuple[SurvivorshipRule, ...] = (
    "source_priority",
    "most_recent",
    "most_frequent",
    "first_non_null",
)


def t(year: int, month: int = 1, day: int = 1) -> dt.datetime:
    return dt.datetime(year, month, day, tzinfo=dt.UTC)


@dataclass
class Tenant:
    """Rows as dicts; a customer's "profile" key links its record to a profile."""

    customers: list[dict[str, Any]] = field(default_factory=list)
    devices: list[tuple[str, str]] = field(default_factory=list)  # (node, profile_id)
    orders: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def tables(self) -> tuple[pa.Table, pa.Table, pa.Table, pa.Table]:
        nodes = [(f"c:{c['provider']}:{c['source_id']}", c["profile"]) for c in self.customers]
        nodes += self.devices
        members = pa.table(
            {"node": [n for n, _ in nodes], "profile_id": [p for _, p in nodes]},
            schema=pa.schema([("node", pa.string()), ("profile_id", pa.string())]),
        )
        orders = [
            {"provider": "shopify", "order_id": f"o{i}"} | o for i, o in enumerate(self.orders)
        ]
        events = [
            {"provider": "segment", "event_id": f"e{i}"} | e for i, e in enumerate(self.events)
        ]
        return (
            members,
            rows(CUSTOMERS.schema, self.customers),
            rows(ORDERS.schema, orders),
            rows(EVENTS.schema, events),
        )


def rows(schema: pa.Schema, dicts: list[dict[str, Any]]) -> pa.Table:
    """A table of `schema` from dicts (missing columns are NULL, other keys ignored)."""
    return pa.Table.from_pylist([{n: d.get(n) for n in schema.names} for d in dicts], schema)


def customer(profile: str, provider: str, source_id: str, **values: Any) -> dict[str, Any]:
    return {"profile": profile, "provider": provider, "source_id": source_id} | values


def order(
    profile: str | None, amount: str | None, currency: str | None, at: dt.datetime | None
) -> dict[str, Any]:
    total = None if amount is None else Decimal(amount)
    return {"profile_id": profile, "total_amount": total, "currency": currency, "created_at": at}


def event(profile: str, at: dt.datetime, context: str | None = None) -> dict[str, Any]:
    return {"profile_id": profile, "type": "track", "timestamp": at, "context": context}


@pytest.fixture(scope="module")
def duckdb_engine() -> Iterator[Engine]:
    with DuckDBEngine(workers=2) as engine:
        yield engine


def build(
    engine: Engine,
    tenant: Tenant,
    settings: IdentitySettings | None = None,
    now: dt.datetime = NOW,
) -> pa.Table:
    members, customers, orders, events = tenant.tables()
    return build_profiles(
        engine, members, customers, orders, events, settings or IdentitySettings(), now
    )


def by_id(table: pa.Table) -> dict[str, dict[str, Any]]:
    return {row["profile_id"]: row for row in table.to_pylist()}


def lineage(row: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {k: (v["provider"], v["source_id"], v["rule"]) for k, v in row["trait_lineage"]}


# --- survivorship rules ----------------------------------------------------------------------


def names_tenant() -> Tenant:
    """first_name: every rule picks another record of profile "p"."""
    return Tenant(
        customers=[
            # The newest, oldest and highest-priority record has no first name: never chosen.
            customer("p", "crm", "0", created_at=t(2018), updated_at=t(2026)),
            customer("p", "crm", "1", first_name="Ann", created_at=t(2021), updated_at=t(2021, 6)),
            customer(
                "p", "shopify", "2", first_name="Anne", created_at=t(2022), updated_at=t(2025)
            ),
            customer(
                "p", "stripe", "3", first_name="Annie", created_at=t(2019), updated_at=t(2020)
            ),
            customer(
                "p", "hubspot", "4", first_name="Anna", created_at=t(2023), updated_at=t(2023, 6)
            ),
            customer(
                "p", "hubspot", "5", first_name="Anna", created_at=t(2023), updated_at=t(2023, 7)
            ),
        ]
    )


@pytest.mark.parametrize(
    ("rule", "value", "record"),
    [
        ("source_priority", "Ann", ("crm", "1")),
        ("most_recent", "Anne", ("shopify", "2")),
        ("most_frequent", "Anna", ("hubspot", "5")),
        ("first_non_null", "Annie", ("stripe", "3")),
    ],
)
def test_each_rule_chooses_its_record(
    duckdb_engine: Engine, rule: SurvivorshipRule, value: str, record: tuple[str, str]
) -> None:
    settings = IdentitySettings(trait_rules={"first_name": rule})
    row = by_id(build(duckdb_engine, names_tenant(), settings))["p"]
    assert row["first_name"] == value
    assert lineage(row)["first_name"] == (*record, rule)


@pytest.mark.parametrize(
    ("rule", "value"),
    [
        ("source_priority", "Ann"),
        ("most_recent", "Anne"),
        ("most_frequent", "Anna"),
        ("first_non_null", "Annie"),
    ],
)
def test_default_rule_applies_to_unnamed_traits(
    duckdb_engine: Engine, rule: SurvivorshipRule, value: str
) -> None:
    settings = IdentitySettings(default_rule=rule, trait_rules={"email": "most_recent"})
    row = by_id(build(duckdb_engine, names_tenant(), settings))["p"]
    assert row["first_name"] == value
    assert lineage(row)["first_name"][2] == rule


def test_source_priority_ties_by_most_recent_and_ranks_unlisted_providers_last(
    duckdb_engine: Engine,
) -> None:
    tenant = Tenant(
        customers=[
            customer("p", "hubspot", "1", company="H", updated_at=t(2025)),
            customer("p", "stripe", "1", company="S-old", updated_at=t(2020)),
            customer("p", "stripe", "2", company="S-new", updated_at=t(2021)),
            customer("q", "zendesk", "1", company="Z", updated_at=t(2021)),
            customer("q", "hubspot", "2", company="H", updated_at=t(2020)),
        ]
    )
    settings = IdentitySettings(trait_rules={"company": "source_priority"})
    profiles = by_id(build(duckdb_engine, tenant, settings))
    assert profiles["p"]["company"] == "S-new"
    assert profiles["q"]["company"] == "Z"
    reordered = IdentitySettings(
        trait_rules={"company": "source_priority"}, source_priority=["hubspot", "stripe"]
    )
    assert by_id(build(duckdb_engine, tenant, reordered))["q"]["company"] == "H"
    unordered = IdentitySettings(trait_rules={"company": "source_priority"}, source_priority=[])
    assert by_id(build(duckdb_engine, tenant, unordered))["p"]["company"] == "H"


def test_most_recent_uses_updated_else_created_then_ingestion_then_key(
    duckdb_engine: Engine,
) -> None:
    tenant = Tenant(
        customers=[
            # created_at stands in for a missing updated_at.
            customer("p", "crm", "1", company="updated", updated_at=t(2024)),
            customer("p", "crm", "2", company="created", created_at=t(2025)),
            # Same time: the later ingestion wins, then the smaller (provider, source_id).
            customer("q", "crm", "3", company="early", updated_at=t(2024), _ingested_at=t(2024)),
            customer("q", "crm", "4", company="late", updated_at=t(2024), _ingested_at=t(2025)),
            customer("r", "shopify", "5", company="shopify", updated_at=t(2024)),
            customer("r", "crm", "9", company="crm-9", updated_at=t(2024)),
            customer("r", "crm", "10", company="crm-10", updated_at=t(2024)),
        ]
    )
    profiles = by_id(build(duckdb_engine, tenant))
    assert profiles["p"]["company"] == "created"
    assert profiles["q"]["company"] == "late"
    assert profiles["r"]["company"] == "crm-10"


def test_most_frequent_ties_go_to_the_most_recent(duckdb_engine: Engine) -> None:
    tenant = Tenant(
        customers=[
            customer("p", "crm", "1", last_name="Old", updated_at=t(2024)),
            customer("p", "crm", "2", last_name="New", updated_at=t(2025)),
            customer("p", "crm", "3", updated_at=t(2026)),
            customer("p", "crm", "4", updated_at=t(2026)),
        ]
    )
    settings = IdentitySettings(trait_rules={"last_name": "most_frequent"})
    row = by_id(build(duckdb_engine, tenant, settings))["p"]
    assert row["last_name"] == "New"
    assert lineage(row)["last_name"] == ("crm", "2", "most_frequent")


def test_first_non_null_uses_created_else_updated(duckdb_engine: Engine) -> None:
    tenant = Tenant(
        customers=[
            customer("p", "crm", "1", company="created", created_at=t(2021), updated_at=t(2019)),
            customer("p", "crm", "2", company="updated", updated_at=t(2020)),
        ]
    )
    settings = IdentitySettings(default_rule="first_non_null")
    assert by_id(build(duckdb_engine, tenant, settings))["p"]["company"] == "updated"


@pytest.mark.parametrize("rule", RULES)
def test_gaps_are_filled_from_linked_records(duckdb_engine: Engine, rule: SurvivorshipRule) -> None:
    tenant = Tenant(
        customers=[
            customer("p", "crm", "1", email="a@x.com", email_domain="x.com", updated_at=t(2025)),
            customer(
                "p",
                "shopify",
                "2",
                phone="+4512345678",
                phone_country="DK",
                birth_date=dt.date(1990, 5, 1),
                updated_at=t(2020),
            ),
        ]
    )
    settings = IdentitySettings(default_rule=rule)
    row = by_id(build(duckdb_engine, tenant, settings))["p"]
    assert (row["email"], row["phone"], row["phone_country"]) == ("a@x.com", "+4512345678", "DK")
    assert row["birth_date"] == dt.date(1990, 5, 1)
    assert lineage(row)["email"] == ("crm", "1", rule)
    assert lineage(row)["phone"] == ("shopify", "2", rule)


# --- traits that belong together --------------------------------------------------------------

FULL_ADDRESS = {
    "address_line1": "1 Main St",
    "address_line2": "Apt 2",
    "city": "Paris",
    "region": "IDF",
    "postcode": "75001",
    "country": "FR",
}
ADDRESS = tuple(FULL_ADDRESS)


def address_tenant() -> Tenant:
    return Tenant(
        customers=[
            customer("p", "crm", "1", **FULL_ADDRESS, created_at=t(2019), updated_at=t(2020)),
            customer("p", "shopify", "2", city="Oslo", created_at=t(2021), updated_at=t(2025)),
            # Region and country alone do not make an address: not a candidate.
            customer("p", "stripe", "3", region="CA", country="US", updated_at=t(2026)),
        ]
    )


def test_the_address_is_chosen_as_one_unit(duckdb_engine: Engine) -> None:
    row = by_id(build(duckdb_engine, address_tenant()))["p"]
    assert {k: row[k] for k in ADDRESS} == dict.fromkeys(ADDRESS) | {"city": "Oslo"}
    assert {k: v for k, v in lineage(row).items() if k in ADDRESS} == {
        "city": ("shopify", "2", "most_recent")
    }


def test_the_address_follows_the_rule_of_address_line1(duckdb_engine: Engine) -> None:
    oldest = IdentitySettings(trait_rules={"address_line1": "first_non_null"})
    row = by_id(build(duckdb_engine, address_tenant(), oldest))["p"]
    assert {k: row[k] for k in ADDRESS} == FULL_ADDRESS
    assert {lineage(row)[k] for k in ADDRESS} == {("crm", "1", "first_non_null")}
    # A rule for another part of the address does not split it.
    city_only = IdentitySettings(trait_rules={"city": "first_non_null"})
    assert by_id(build(duckdb_engine, address_tenant(), city_only))["p"]["city"] == "Oslo"


def test_most_frequent_address_counts_whole_addresses(duckdb_engine: Engine) -> None:
    other = FULL_ADDRESS | {"address_line2": None}
    tenant = Tenant(
        customers=[
            customer("p", "crm", "1", **other, updated_at=t(2020)),
            customer("p", "crm", "2", **other, updated_at=t(2021)),
            customer("p", "crm", "3", **FULL_ADDRESS, updated_at=t(2025)),
            customer("p", "crm", "4", city="Paris", updated_at=t(2026)),
        ]
    )
    settings = IdentitySettings(trait_rules={"address_line1": "most_frequent"})
    row = by_id(build(duckdb_engine, tenant, settings))["p"]
    assert {k: row[k] for k in ADDRESS} == other
    assert lineage(row)["city"] == ("crm", "2", "most_frequent")


def test_email_and_phone_keep_their_companions_names_do_not(duckdb_engine: Engine) -> None:
    tenant = Tenant(
        customers=[
            customer(
                "p",
                "crm",
                "1",
                email="new@b.com",
                phone="+4512345678",
                last_name="Lee",
                updated_at=t(2025),
            ),
            customer(
                "p",
                "shopify",
                "2",
                email="old@a.com",
                email_domain="a.com",
                phone="+12025550123",
                phone_country="US",
                first_name="Ann",
                last_name="Li",
                updated_at=t(2020),
            ),
        ]
    )
    row = by_id(build(duckdb_engine, tenant))["p"]
    assert (row["email"], row["email_domain"]) == ("new@b.com", None)
    assert (row["phone"], row["phone_country"]) == ("+4512345678", None)
    assert (row["first_name"], row["last_name"]) == ("Ann", "Lee")


def test_trait_lineage_names_the_record_of_every_non_null_trait(duckdb_engine: Engine) -> None:
    tenant = Tenant(
        customers=[
            customer(
                "p",
                "crm",
                "1",
                email="a@x.com",
                email_domain="x.com",
                first_name="Ann",
                full_name="Ann Lee",
                timezone="Europe/Paris",
                updated_at=t(2025),
            ),
            customer(
                "p",
                "shopify",
                "2",
                email="b@y.com",
                email_domain="y.com",
                phone="+4512345678",
                phone_country="DK",
                first_name="Anne",
                last_name="Lee",
                company="ACME",
                **FULL_ADDRESS,
                updated_at=t(2020),
            ),
        ]
    )
    settings = IdentitySettings(
        trait_rules={"first_name": "source_priority", "email": "first_non_null"}
    )
    row = by_id(build(duckdb_engine, tenant, settings))["p"]
    crm, shopify = ("crm", "1"), ("shopify", "2")
    expected = {
        "email": (*shopify, "first_non_null"),
        "email_domain": (*shopify, "first_non_null"),
        "phone": (*shopify, "most_recent"),
        "phone_country": (*shopify, "most_recent"),
        "first_name": (*crm, "source_priority"),
        "last_name": (*shopify, "most_recent"),
        "full_name": (*crm, "most_recent"),
        "company": (*shopify, "most_recent"),
        **dict.fromkeys(ADDRESS, (*shopify, "most_recent")),
        "timezone": (*crm, "most_recent"),
    }
    assert lineage(row) == expected
    # In the order of the model's traits; birth_date, null, is absent.
    assert [k for k, _ in row["trait_lineage"]] == [n for n, _ in TRAITS if n != "birth_date"]


# --- external ids and consent ------------------------------------------------------------------


def test_external_ids_are_united_the_latest_record_winning(duckdb_engine: Engine) -> None:
    tenant = Tenant(
        customers=[
            customer(
                "p",
                "crm",
                "1",
                external_ids=[("crm", "c1"), ("shopify", "s-old")],
                updated_at=t(2020),
            ),
            customer(
                "p",
                "shopify",
                "2",
                external_ids=[("shopify", "s-new"), ("stripe", None)],
                updated_at=t(2024),
            ),
            customer("p", "stripe", "3", updated_at=t(2025)),
            customer("q", "stripe", "4", external_ids=[], updated_at=t(2025)),
        ]
    )
    profiles = by_id(build(duckdb_engine, tenant))
    assert profiles["p"]["external_ids"] == [("crm", "c1"), ("shopify", "s-new")]
    assert profiles["q"]["external_ids"] == []


def consent(email: str, at: dt.datetime | None) -> dict[str, Any]:
    return {"email": email, "sms": "denied", "ads": None, "updated_at": at}


def test_consent_comes_from_the_latest_consent_change(duckdb_engine: Engine) -> None:
    tenant = Tenant(
        customers=[
            customer("p", "crm", "1", consent=consent("denied", t(2020)), updated_at=t(2026)),
            customer("p", "crm", "2", consent=consent("granted", t(2024)), updated_at=t(2021)),
            customer("p", "crm", "3", consent=consent("denied", None), updated_at=t(2027)),
            customer("p", "crm", "4", updated_at=t(2028)),
            customer("q", "crm", "5", consent=consent("granted", None), updated_at=t(2027)),
        ]
    )
    profiles = by_id(build(duckdb_engine, tenant))
    assert profiles["p"]["consent"] == consent("granted", t(2024))
    assert profiles["q"]["consent"] is None


# --- profiles without records --------------------------------------------------------------------


def test_anonymous_profiles_have_no_traits_but_computed_ones(duckdb_engine: Engine) -> None:
    tenant = Tenant(
        devices=[("a:segment:x", "anon"), ("a:segment:y", "anon"), ("a:segment:z", "empty")],
        events=[
            event("anon", t(2024, 3), '{"page":{"path":"/"}}'),
            event("anon", t(2024, 1), '{"page":{"path":"/cart"}}'),
        ],
        orders=[order("anon", "12.5", "EUR", t(2024, 2))],
    )
    profiles = by_id(build(duckdb_engine, tenant))
    anon = profiles["anon"]
    assert all(anon[name] is None for name, _ in TRAITS)
    assert (anon["records"], anon["identified"], anon["consent"]) == (0, False, None)
    assert (anon["trait_lineage"], anon["external_ids"], anon["sources"]) == ([], [], ["segment"])
    assert (anon["order_count"], anon["total_revenue"]) == (1, Decimal("12.5000"))
    assert anon["preferred_channel"] == "web"
    assert (anon["first_seen_at"], anon["last_seen_at"]) == (t(2024, 1), t(2024, 3))
    assert (anon["created_at"], anon["updated_at"]) == (t(2024, 1), t(2024, 3))
    # Nothing known at all: `now` stands in for the bookkeeping times.
    empty = profiles["empty"]
    assert (empty["created_at"], empty["updated_at"], empty["sources"]) == (NOW, NOW, [])
    assert (empty["order_count"], empty["total_revenue"], empty["rfm_segment"]) == (
        0,
        Decimal(0),
        None,
    )


def test_one_row_per_profile_of_the_graph_sorted(duckdb_engine: Engine) -> None:
    tenant = Tenant(
        customers=[customer("b", "crm", "1"), customer("b", "crm", "2"), customer("a", "crm", "3")],
        devices=[("a:segment:1", "c"), ("a:segment:2", "b")],
        # Rows of profiles outside the graph are left out.
        orders=[order("zz", "1", "EUR", t(2024)), order(None, "1", "EUR", t(2024))],
        events=[event("zz", t(2024))],
    )
    members, customers, orders, events = tenant.tables()
    stray = rows(CUSTOMERS.schema, [customer("zz", "crm", "99", email="x@y.z")])
    result = build_profiles(
        duckdb_engine,
        members,
        pa.concat_tables([customers, stray]),
        orders,
        events,
        IdentitySettings(),
        NOW,
    )
    assert result.schema.equals(PROFILES)
    assert result.column("profile_id").to_pylist() == ["a", "b", "c"]
    assert result.column("records").to_pylist() == [1, 2, 0]
    assert result.column("order_count").to_pylist() == [0, 0, 0]


def test_empty_input_gives_an_empty_table(duckdb_engine: Engine) -> None:
    result = build(duckdb_engine, Tenant())
    assert result.num_rows == 0
    assert result.schema.equals(PROFILES)


# --- computed traits ------------------------------------------------------------------------------


def test_order_traits_count_the_main_currency_only(duckdb_engine: Engine) -> None:
    tenant = Tenant(
        customers=[customer("p", "shopify", "1", created_at=t(2023), updated_at=t(2023, 2))],
        orders=[
            order("p", "10.00", "EUR", t(2024, 1)),
            order("p", "20.00", "EUR", t(2024, 2)),
            order("p", "0.01", "EUR", t(2024, 3)),
            order("p", None, "EUR", t(2024, 4)),  # counted, but not in the average
            order("p", "1000", "USD", t(2025, 1)),
        ],
    )
    row = by_id(build(duckdb_engine, tenant))["p"]
    assert row["order_count"] == 5
    assert row["currency"] == "EUR"
    assert row["total_revenue"] == Decimal("30.0100")
    assert row["avg_order_value"] == Decimal("10.0033")  # 30.01 / 3
    assert (row["first_order_at"], row["last_order_at"]) == (t(2024, 1), t(2025, 1))
    assert row["sources"] == ["shopify"]  # providers of records and events, not of orders


@pytest.mark.parametrize(
    ("amounts", "total", "average"),
    [
        (["1", "2"], "3", "1.5"),
        (["10", "10", "10.0001"], "30.0001", "10.0000"),
        (["0.0001", "0.0002"], "0.0003", "0.0002"),  # half away from zero
        (["-0.0001", "-0.0002"], "-0.0003", "-0.0002"),
        (["0.0001", "0.0001", "0.0000"], "0.0002", "0.0001"),
        (["99999999999999.9999", "0"], "99999999999999.9999", "50000000000000.0000"),
        (["33333333333333.3333"] * 3, "99999999999999.9999", "33333333333333.3333"),
        ([None], "0", None),
    ],
)
def test_average_order_value_is_exact(
    duckdb_engine: Engine, amounts: list[str | None], total: str, average: str | None
) -> None:
    tenant = Tenant(orders=[order("p", a, "EUR", t(2024)) for a in amounts])
    tenant.devices.append(("a:segment:1", "p"))
    row = by_id(build(duckdb_engine, tenant))["p"]
    assert row["total_revenue"] == Decimal(total)
    assert row["avg_order_value"] == (None if average is None else Decimal(average))


def test_currency_ties_go_to_the_latest_order_and_no_currency_is_one(
    duckdb_engine: Engine,
) -> None:
    tenant = Tenant(
        devices=[("a:segment:1", "p"), ("a:segment:2", "q")],
        orders=[
            order("p", "5", "EUR", t(2024)),
            order("p", "7", "USD", t(2025)),
            order("p", "9", None, t(2026)),
            order("q", "5", None, t(2024)),
            order("q", "6", None, t(2025)),
        ],
    )
    profiles = by_id(build(duckdb_engine, tenant))
    assert (profiles["p"]["currency"], profiles["p"]["total_revenue"]) == ("USD", Decimal(7))
    assert (profiles["q"]["currency"], profiles["q"]["total_revenue"]) == (None, Decimal(11))
    assert profiles["q"]["avg_order_value"] == Decimal("5.5")


def test_seen_and_bookkeeping_times_span_records_orders_and_events(
    duckdb_engine: Engine,
) -> None:
    tenant = Tenant(
        customers=[
            customer("p", "crm", "1", created_at=t(2021, 3), updated_at=t(2022)),
            customer("p", "crm", "2", updated_at=t(2021, 6)),
            # Only updated: that is when it was first and last seen, and made.
            customer("q", "crm", "3", updated_at=t(2019)),
            customer("q", "crm", "4", created_at=t(2019, 6), updated_at=t(2020)),
        ],
        devices=[("a:segment:1", "p")],
        events=[event("p", t(2020, 5)), event("p", t(2021))],
        orders=[order("p", "1", "EUR", t(2023)), order("p", "1", "EUR", None)],
    )
    profiles = by_id(build(duckdb_engine, tenant))
    p, q = profiles["p"], profiles["q"]
    assert (p["first_seen_at"], p["last_seen_at"]) == (t(2020, 5), t(2023))
    assert (p["created_at"], p["updated_at"]) == (t(2021, 3), t(2022))
    assert (p["records"], p["identified"], p["sources"]) == (2, True, ["crm", "segment"])
    assert (q["first_seen_at"], q["last_seen_at"]) == (t(2019), t(2020))
    assert (q["created_at"], q["updated_at"]) == (t(2019, 6), t(2020))


def rfm_tenant() -> Tenant:
    # profile: (orders, amount of each, year of the orders)
    buyers = {
        "b1": (3, "10", 2020),
        "b2": (1, "500", 2021),
        "b3": (2, "100", 2022),
        "b4": (5, "1", 2023),
        "b5": (4, "50", 2024),
        "b6": (6, "20", 2025),
    }
    tenant = Tenant(devices=[("a:segment:0", "n1")])
    for profile, (count, amount, year) in buyers.items():
        tenant.devices.append((f"a:segment:{profile}", profile))
        tenant.orders += [order(profile, amount, "EUR", t(year, 1, 1 + i)) for i in range(count)]
    return tenant


def test_rfm_scores_are_quintiles_of_buying_profiles(duckdb_engine: Engine) -> None:
    profiles = by_id(build(duckdb_engine, rfm_tenant()))
    # NTILE(5) of six buyers: tiles of 2, 1, 1, 1, 1. Recency by last order: b1..b6;
    # frequency: b2 b3 b1 b5 b4 b6; monetary: b4 (5) b1 (30) b6 (120) b3 = b5 (200, by
    # profile_id) b2 (500).
    expected = {"b1": "121", "b2": "115", "b3": "213", "b4": "341", "b5": "434", "b6": "552"}
    assert {p: profiles[p]["rfm_segment"] for p in expected} == expected
    assert (profiles["b3"]["rfm_recency"], profiles["b3"]["rfm_frequency"]) == (2, 1)
    assert profiles["b3"]["rfm_monetary"] == 3
    n1 = profiles["n1"]
    assert [n1[k] for k in ("rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_segment")] == [
        None
    ] * 4


APP = '{"app":{"name":"Shop"},"userAgent":"Shop/3.12.0","library":{"name":"analytics-ios"}}'
WEB = '{"library":{"name":"analytics.js"},"page":{"path":"/"},"userAgent":"Mozilla/5.0"}'
SERVER = '{"library":{"name":"analytics-python"}}'


@pytest.mark.parametrize(
    ("context", "channel"),
    [
        (APP, "app"),
        ('{"library":{"name":"analytics-android","version":"4"}}', "app"),
        ('{"library":{"name":"@segment/analytics-react-native"}}', "app"),
        ('{"app":{}}', "app"),
        (WEB, "web"),
        ('{"userAgent":"Mozilla/5.0"}', "web"),
        ('{"app":null,"page":{"url":"https://x"}}', "web"),
        (SERVER, "server"),
        ('{"userAgent":"","library":{"name":"analytics-node"}}', "server"),
        ('{"note":"app","text":"\\"page\\""}', "server"),  # names in values, not keys
        ('{"properties":{"app":{}}}', "server"),  # only the top level counts
        ('"a string"', "server"),
        ("{}", "server"),
        (None, "server"),
    ],
)
def test_channel_of_an_event(duckdb_engine: Engine, context: str | None, channel: str) -> None:
    tenant = Tenant(devices=[("a:segment:1", "p")], events=[event("p", t(2024), context)])
    assert by_id(build(duckdb_engine, tenant))["p"]["preferred_channel"] == channel


def test_preferred_channel_is_the_most_used_ties_alphabetical(duckdb_engine: Engine) -> None:
    tenant = Tenant(
        devices=[("a:segment:1", "p"), ("a:segment:2", "q"), ("a:segment:3", "r")],
        events=[
            event("p", t(2024), WEB),
            event("p", t(2024), WEB),
            event("p", t(2024), APP),
            event("p", t(2024), APP),
            event("p", t(2024), SERVER),
            event("p", t(2024), None),
            event("p", t(2024), None),
            event("q", t(2024), WEB),
            event("q", t(2024), SERVER),
        ],
    )
    profiles = by_id(build(duckdb_engine, tenant))
    assert profiles["p"]["preferred_channel"] == "server"
    assert profiles["q"]["preferred_channel"] == "server"
    assert profiles["r"]["preferred_channel"] is None


# --- the whole: determinism and parity ------------------------------------------------------------


def whole_tenant() -> Tenant:
    """The tenants above in one (profile ids made distinct), with some events."""
    tenant = Tenant()
    parts = [names_tenant(), address_tenant(), rfm_tenant()]
    for i, part in enumerate(parts):
        for c in part.customers:
            tenant.customers.append(
                c | {"profile": f"{c['profile']}{i}", "source_id": f"{c['source_id']}-{i}"}
            )
        tenant.devices += [(f"{node}-{i}", f"{p}{i}") for node, p in part.devices]
        tenant.orders += [o | {"profile_id": f"{o['profile_id']}{i}"} for o in part.orders]
    tenant.orders.append(order("p0", "12.3456", "GBP", t(2024, 5)))
    tenant.events += [event("p0", t(2024, 6), APP), event("b12", t(2026), WEB)]
    tenant.customers[1]["external_ids"] = [("crm", "x"), ("stripe", "y")]
    tenant.customers[2]["consent"] = consent("granted", t(2024))
    # Ties everywhere: only the last key of each order decides.
    for source_id in ("7", "8", "9"):
        same = {
            "updated_at": t(2024),
            "_ingested_at": t(2024),
            "consent": consent(source_id, t(2024)),
        }
        tenant.customers.append(
            customer(
                "tie",
                "crm",
                source_id,
                company=source_id,
                external_ids=[("crm", source_id)],
                **same,
            )
        )
    tenant.orders += [order("tie", "1", currency, t(2024)) for currency in ("USD", "EUR")]
    tenant.events += [event("tie", t(2024), context) for context in (WEB, APP, SERVER)]
    return tenant


MIXED = IdentitySettings(
    trait_rules={
        "first_name": "most_frequent",
        "address_line1": "first_non_null",
        "email": "source_priority",
        "last_name": "most_recent",
    },
    default_rule="source_priority",
)


def shuffled(table: pa.Table, seed: int) -> pa.Table:
    order = list(range(table.num_rows))
    random.Random(seed).shuffle(order)
    shuffled = table.take(order)
    # In several chunks, as scans give them.
    return pa.concat_tables([shuffled.slice(0, 3), shuffled.slice(3)])


@pytest.mark.parametrize("settings", [IdentitySettings(), MIXED], ids=["default", "mixed"])
def test_shuffled_input_gives_the_same_profiles(
    duckdb_engine: Engine, settings: IdentitySettings
) -> None:
    tables = whole_tenant().tables()
    expected = build_profiles(duckdb_engine, *tables, settings, NOW)
    assert expected.num_rows == 10
    for seed in range(3):
        again = [shuffled(table, seed) for table in tables]
        assert build_profiles(duckdb_engine, *again, settings, NOW).equals(expected)


def test_now_only_stands_in_for_missing_times(duckdb_engine: Engine) -> None:
    tenant = whole_tenant()
    now, later = (
        by_id(build(duckdb_engine, tenant)),
        by_id(build(duckdb_engine, tenant, now=t(2040))),
    )
    # n12 (a device, nothing else) has no time of its own.
    assert (now["n12"]["created_at"], later["n12"]["updated_at"]) == (NOW, t(2040))
    for row in (now["n12"], later["n12"]):
        row["created_at"] = row["updated_at"] = None
    assert now == later


@pytest.mark.slow
@pytest.mark.parametrize("settings", [IdentitySettings(), MIXED], ids=["default", "mixed"])
def test_spark_builds_the_same_profiles(
    duckdb_engine: Engine, spark_engine: Engine, settings: IdentitySettings
) -> None:
    tenant = whole_tenant()
    tenant.devices.append(("a:segment:empty", "empty"))
    for context in (None, SERVER, '{"app":null,"page":{"url":"https://x"}}', '"a string"'):
        tenant.events.append(event("b12", t(2025), context))
    for amounts in (["0.0001", "0.0002"], ["-0.0001", "-0.0002"], ["99999999999999.9999", "0"]):
        profile = f"avg{len(tenant.devices)}"
        tenant.devices.append((f"a:segment:{profile}", profile))
        tenant.orders += [order(profile, a, "EUR", t(2024)) for a in amounts]
    expected = build(duckdb_engine, tenant, settings)
    actual = build(spark_engine, tenant, settings)
    assert actual.to_pylist() == expected.to_pylist()
    assert actual.equals(expected)
