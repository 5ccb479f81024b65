"""A generated record and the file it goes to: the output layout in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from opencdp.generate.sources.crm import ACCOUNT_COLUMNS, CONTACT_COLUMNS

GROUND_TRUTH = "ground_truth.csv"
GROUND_TRUTH_COLUMNS = ("source", "stream", "record_id", "person_id", "variations")
MANIFEST = "manifest.json"


class Record(NamedTuple):
    source: str
    stream: str
    record_id: str
    person_id: str  # "" for records about no person (accounts, products)
    data: dict[str, Any] | list[str]  # a JSON object, or a CSV row in the stream's columns
    variations: tuple[str, ...] = ()  # record-level kinds applied (ground truth)
    eligible: tuple[str, ...] = ()  # record-level kinds that could have applied (manifest)


@dataclass(frozen=True, slots=True)
class StreamFile:
    source: str
    stream: str
    path: str  # relative to the output folder
    columns: tuple[str, ...] | None = None  # CSV header; None for JSON lines


STREAMS: tuple[StreamFile, ...] = (
    StreamFile("crm", "accounts", "crm/accounts.csv", ACCOUNT_COLUMNS),
    StreamFile("crm", "contacts", "crm/contacts.csv", CONTACT_COLUMNS),
    StreamFile("shopify", "products", "shopify/products.jsonl"),
    StreamFile("shopify", "customers", "shopify/customers.jsonl"),
    StreamFile("shopify", "orders", "shopify/orders.jsonl"),
    StreamFile("stripe", "customers", "stripe/customers.jsonl"),
    StreamFile("stripe", "charges", "stripe/charges.jsonl"),
    StreamFile("events", "events", "events/events.jsonl"),
)
