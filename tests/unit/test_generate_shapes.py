"""Generated records have the shapes of the APIs they imitate, and refer to each other
consistently: Salesforce CSV exports, the Shopify Admin REST API, Stripe, the Segment spec."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from opencdp.generate import GROUND_TRUTH, GenerateConfig, generate_tenant
from opencdp.generate.sources.crm import ACCOUNT_COLUMNS, CONTACT_COLUMNS

SHOPIFY_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d$")
SEGMENT_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SALESFORCE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$")
MONEY = re.compile(r"^\d+\.\d\d$")
ADDRESS_KEYS = {
    "first_name", "last_name", "company", "address1", "address2", "city", "province",
    "country", "zip", "phone", "name", "province_code", "country_code", "country_name",
}  # fmt: skip
STRIPE_ADDRESS_KEYS = {"line1", "line2", "city", "state", "postal_code", "country"}


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("shapes")
    generate_tenant(GenerateConfig(tenant="acme", people=1_500, seed=21), target)
    return target


def jsonl(out: Path, path: str) -> list[dict[str, Any]]:
    with (out / path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def rows(out: Path, path: str) -> tuple[list[str], list[dict[str, str]]]:
    with (out / path).open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def owner(out: Path) -> dict[tuple[str, str], str]:
    """(source/stream, record id) -> person id."""
    _, truth = rows(out, GROUND_TRUTH)
    return {(f"{t['source']}/{t['stream']}", t["record_id"]): t["person_id"] for t in truth}


def cents(money: str) -> int:
    assert MONEY.match(money), money
    return int(Decimal(money) * 100)


def test_crm_export(out: Path) -> None:
    header, accounts = rows(out, "crm/accounts.csv")
    assert tuple(header) == ACCOUNT_COLUMNS
    account_ids = {a["Id"] for a in accounts}
    assert all(re.fullmatch(r"001\w{15}", i) for i in account_ids)
    header, contacts = rows(out, "crm/contacts.csv")
    assert tuple(header) == CONTACT_COLUMNS
    for c in contacts:
        assert re.fullmatch(r"003\w{15}", c["Id"])
        assert c["AccountId"] == "" or c["AccountId"] in account_ids
        assert c["Birthdate"] == "" or re.fullmatch(r"\d{4}-\d\d-\d\d", c["Birthdate"])
        assert SALESFORCE_TIME.match(c["CreatedDate"])
        assert c["CreatedDate"] <= c["LastModifiedDate"]
    assert any("\n" in c["MailingStreet"] for c in contacts), "two-line streets, as exported"
    assert sum(bool(c["AccountId"]) for c in contacts) > len(contacts) / 5


def test_shopify_products(out: Path) -> None:
    products = jsonl(out, "shopify/products.jsonl")
    assert len(products) >= 25
    for p in products:
        assert isinstance(p["id"], int)
        assert p["admin_graphql_api_id"] == f"gid://shopify/Product/{p['id']}"
        assert {"title", "vendor", "product_type", "handle", "tags", "status"} <= set(p)
        assert SHOPIFY_TIME.match(p["created_at"])
        assert p["variants"]
        for v in p["variants"]:
            assert isinstance(v["id"], int)
            assert v["product_id"] == p["id"]
            assert v["sku"]
            cents(v["price"])


def test_shopify_customers_and_orders(out: Path, owner: dict[tuple[str, str], str]) -> None:
    products = {p["id"]: p for p in jsonl(out, "shopify/products.jsonl")}
    variants = {v["id"]: v for p in products.values() for v in p["variants"]}
    customers = {c["id"]: c for c in jsonl(out, "shopify/customers.jsonl")}
    orders = jsonl(out, "shopify/orders.jsonl")
    per_customer: defaultdict[int, list[dict[str, Any]]] = defaultdict(list)
    for o in orders:
        assert re.fullmatch(r"#\d{4,}", o["name"])
        assert o["order_number"] == int(o["name"][1:])
        assert SHOPIFY_TIME.match(o["created_at"])
        assert re.fullmatch(r"[A-Z]{3}", o["currency"])
        assert o["financial_status"] in {
            "paid", "refunded", "partially_refunded", "pending", "voided"
        }  # fmt: skip
        lines = sum(cents(i["price"]) * i["quantity"] for i in o["line_items"])
        assert cents(o["total_line_items_price"]) == lines
        assert cents(o["subtotal_price"]) == lines - cents(o["total_discounts"])
        shipping = sum(cents(s["price"]) for s in o["shipping_lines"])
        assert (
            cents(o["total_price"]) == cents(o["subtotal_price"]) + cents(o["total_tax"]) + shipping
        )
        for item in o["line_items"]:
            assert item["product_id"] in products
            assert variants[item["variant_id"]]["sku"] == item["sku"]
            assert isinstance(item["quantity"], int)
        assert set(o["shipping_address"]) >= ADDRESS_KEYS
        assert o["email"]
        customer = customers[o["customer"]["id"]]
        assert o["customer"]["email"] == customer["email"]
        assert (
            owner["shopify/orders", str(o["id"])] == owner["shopify/customers", str(customer["id"])]
        )
        per_customer[customer["id"]].append(o)
    for c in customers.values():
        assert c["admin_graphql_api_id"] == f"gid://shopify/Customer/{c['id']}"
        assert SHOPIFY_TIME.match(c["created_at"])
        assert c["phone"] is None or re.fullmatch(r"\+\d{8,15}", c["phone"])
        assert c["orders_count"] == len(per_customer[c["id"]])
        paid = [
            o
            for o in per_customer[c["id"]]
            if o["financial_status"] in ("paid", "partially_refunded")
        ]
        assert cents(c["total_spent"]) == sum(cents(o["total_price"]) for o in paid)
        if c["addresses"]:
            assert c["default_address"] == c["addresses"][0]
            assert all(
                ADDRESS_KEYS | {"id", "customer_id", "default"} <= set(a) for a in c["addresses"]
            )
        else:
            assert "default_address" not in c
        consent = c["email_marketing_consent"]
        assert consent is None or {"state", "opt_in_level", "consent_updated_at"} == set(consent)
        assert isinstance(c["accepts_marketing"], bool)


def test_stripe_customers_and_charges(out: Path, owner: dict[tuple[str, str], str]) -> None:
    orders = {str(o["id"]): o for o in jsonl(out, "shopify/orders.jsonl")}
    customers = {c["id"]: c for c in jsonl(out, "stripe/customers.jsonl")}
    linked = 0
    for c in customers.values():
        assert re.fullmatch(r"cus_[0-9A-Za-z]{14}", c["id"])
        assert c["object"] == "customer"
        assert isinstance(c["created"], int)
        assert c["address"] is None or set(c["address"]) == STRIPE_ADDRESS_KEYS
        assert all(isinstance(v, str) for v in c["metadata"].values())
        if "shopify_customer_id" in c["metadata"]:
            linked += 1
            person = owner["shopify/customers", c["metadata"]["shopify_customer_id"]]
            assert person == owner["stripe/customers", c["id"]]
    assert linked
    charged_orders = 0
    for ch in jsonl(out, "stripe/charges.jsonl"):
        assert re.fullmatch(r"ch_[0-9A-Za-z]{24}", ch["id"])
        assert ch["object"] == "charge"
        assert isinstance(ch["amount"], int)
        assert ch["amount"] > 0
        assert re.fullmatch(r"[a-z]{3}", ch["currency"])
        assert ch["customer"] in customers
        assert ch["status"] in {"succeeded", "failed", "pending"}
        assert ch["paid"] == (ch["status"] == "succeeded")
        assert set(ch["billing_details"]) == {"address", "email", "name", "phone"}
        assert ch["created"] >= customers[ch["customer"]]["created"]
        if "shopify_order_id" in ch["metadata"]:
            charged_orders += 1
            order = orders[ch["metadata"]["shopify_order_id"]]
            assert ch["amount"] == cents(order["total_price"])
            assert ch["currency"] == order["currency"].lower()
    assert charged_orders


def test_segment_events(out: Path, owner: dict[tuple[str, str], str]) -> None:
    events = jsonl(out, "events/events.jsonl")
    orders = {str(o["id"]) for o in jsonl(out, "shopify/orders.jsonl")}
    by_device: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        assert e["type"] in {"identify", "track", "page", "screen"}
        assert SEGMENT_TIME.match(e["timestamp"])
        assert e["sentAt"] >= e["timestamp"]
        context = e["context"]
        assert {"ip", "userAgent", "library", "locale"} <= set(context)
        assert set(context["library"]) == {"name", "version"}
        if e["type"] == "track":
            assert isinstance(e["event"], str)
            assert isinstance(e["properties"], dict)
            if e["event"] == "Order Completed":
                assert e["properties"]["order_id"] in orders
        elif e["type"] == "page":
            assert e["name"]
            assert {"path", "referrer", "search", "title", "url"} == set(e["properties"])
            assert context["page"] == e["properties"]
        elif e["type"] == "screen":
            assert e["name"]
            assert "app" in context
        else:
            assert isinstance(e["traits"], dict)
        by_device[e["anonymousId"]].append(e)
    never = 0
    for device in by_device.values():
        people = {owner["events/events", e["messageId"]] for e in device}
        assert len(people) == 1, "an anonymousId belongs to one person"
        assert [e["timestamp"] for e in device] == sorted(e["timestamp"] for e in device)
        identified = None
        for e in device:
            if e["type"] == "identify":
                identified = e["userId"]
                assert identified
            assert e["userId"] == identified, "userId appears from the identify call on"
        never += identified is None
    assert 0 < never < len(by_device), "some people browse anonymously and never identify"
