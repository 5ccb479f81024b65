"""Each built-in provider mapping on the generator's records, through the row stage: the
canonical values that come out."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from tests.support import data
from tests.support.raw import csv_records

from opencdp.transform.mapping import Extraction, SourceMapping
from opencdp.transform.mappings import crm, segment, shopify, stripe, webhook
from opencdp.transform.rows import build_table

pytestmark = pytest.mark.integration

RECEIVED = "2025-01-15T01:00:00.123Z"


def rows(
    mapping: SourceMapping, records: list[dict[str, Any]], meta: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    extraction = Extraction(mapping)
    for n, record in enumerate(records, start=1):
        extraction.add(n, {"received_at": RECEIVED, "stream": "s", **(meta or {})}, record)
    table = build_table(
        extraction, provider=mapping.provider, raw_file="raw/t/p/f.ndjson.gz", default_country="US"
    )
    assert table.schema == mapping.model.schema
    return table.to_pylist()


def test_shopify_customers() -> None:
    source = next(r for r in data.records("shopify", "customers") if r.get("default_address"))
    (row,) = rows(shopify.CUSTOMERS, [source])
    address = source["default_address"]
    assert row["source_id"] == str(source["id"])
    assert row["country"] == address["country_code"]
    assert row["city"] == address["city"]
    assert row["external_ids"] == [("shopify", str(source["id"]))]
    assert row["consent"]["email"] in ("granted", "denied")
    assert row["updated_at"] == datetime.fromisoformat(source["updated_at"]).astimezone(UTC)
    assert row["_ingested_at"] == datetime(2025, 1, 15, 1, 0, 0, 123000, tzinfo=UTC)
    assert row["timezone"] is not None


def test_shopify_orders_and_their_line_items() -> None:
    order = next(o for o in data.records("shopify", "orders") if len(o["line_items"]) >= 2)
    (row,) = rows(shopify.ORDERS, [order])
    assert row["total_amount"] == Decimal(order["total_price"])
    assert row["currency"] == order["currency"]
    assert row["source_customer_id"] == str(order["customer"]["id"])
    items = rows(shopify.ORDER_ITEMS, [order])
    assert [i["line_id"] for i in items] == [str(li["id"]) for li in order["line_items"]]
    assert {i["order_id"] for i in items} == {str(order["id"])}
    assert items[0]["quantity"] == order["line_items"][0]["quantity"]
    assert items[0]["unit_price"] == Decimal(order["line_items"][0]["price"])


def test_shopify_products() -> None:
    product = data.records("shopify", "products")[0]
    (row,) = rows(shopify.PRODUCTS, [product])
    assert row["sku"] == product["variants"][0]["sku"]
    assert row["price"] == Decimal(product["variants"][0]["price"])
    assert row["category"] == product["product_type"]


def test_stripe_customers_name_their_shopify_customer() -> None:
    linked = next(
        c for c in data.records("stripe", "customers") if c["metadata"].get("shopify_customer_id")
    )
    (row,) = rows(stripe.CUSTOMERS, [linked])
    ids = dict(row["external_ids"])
    assert ids == {"stripe": linked["id"], "shopify": linked["metadata"]["shopify_customer_id"]}
    assert row["created_at"] == datetime.fromtimestamp(linked["created"], UTC)
    # Stripe has one name field: first and last come from it.
    if linked.get("name") and " " in linked["name"]:
        assert row["last_name"] == linked["name"].rsplit(" ", 1)[1]


def test_stripe_charges_are_orders_in_minor_units() -> None:
    charge = data.records("stripe", "charges")[0]
    (row,) = rows(stripe.ORDERS, [charge])
    assert row["total_amount"] == Decimal(charge["amount"]) / 100
    assert row["currency"] == charge["currency"].upper()
    assert row["status"] == charge["status"]


def test_crm_contacts() -> None:
    contacts = csv_records(data.generated() / "crm" / "contacts.csv")
    contact = next(c for c in contacts if c["Email"] and c["MailingCountry"] and c["Birthdate"])
    (row,) = rows(crm.CUSTOMERS, [contact])
    assert row["source_id"] == contact["Id"]
    assert row["email"] == contact["Email"].strip().lower()
    assert row["birth_date"].isoformat() == contact["Birthdate"]
    assert len(row["country"]) == 2


def test_segment_messages_are_events_and_identify_calls_are_customers() -> None:
    events = data.records("events", "events")
    identify = next(e for e in events if e["type"] == "identify" and e.get("userId"))
    track = next(e for e in events if e["type"] == "track")
    got = rows(segment.EVENTS, [identify, track])
    assert [r["event_id"] for r in got] == [identify["messageId"], track["messageId"]]
    assert got[1]["name"] == track["event"]
    assert got[0]["email"] == identify["traits"]["email"].lower()
    assert got[1]["properties"] is not None
    customers = rows(segment.CUSTOMERS, [identify, track])  # a track call is no customer
    assert [c["source_id"] for c in customers] == [identify["userId"]]
    assert customers[0]["external_ids"] == [("segment", identify["userId"])]


def test_every_webhook_delivery_is_an_event() -> None:
    order = data.records("shopify", "orders")[0]
    meta = {"id": "wh-1", "event_type": "orders/create", "kind": "webhook"}
    (row,) = rows(webhook.EVENTS, [order], meta)
    assert (row["event_id"], row["type"], row["name"]) == ("wh-1", "webhook", "orders/create")
    assert row["timestamp"] == datetime(2025, 1, 15, 1, 0, 0, 123000, tzinfo=UTC)
    assert '"id":' in row["properties"]


def test_an_empty_extraction_builds_an_empty_table() -> None:
    table = build_table(
        Extraction(shopify.CUSTOMERS), provider="shopify", raw_file="k", default_country="US"
    )
    assert table.num_rows == 0
    assert isinstance(table, pa.Table)
