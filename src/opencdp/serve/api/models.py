"""The shapes of the API's answers, for its OpenAPI document and clients. Answers are
rendered by PostgreSQL (opencdp.serve.api.queries) in exactly these shapes."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field


class Lineage(BaseModel):
    provider: str | None
    source_id: str | None
    rule: str | None = Field(description="the survivorship rule that chose the value")


class Identity(BaseModel):
    type: str = Field(description="email, phone, anonymous_id or {provider}_id")
    value: str
    rule: str | None = Field(description="the link rule that attached it, or `record`")
    confidence: float | None
    first_seen: datetime | None
    last_seen: datetime | None


class Rfm(BaseModel):
    recency: int | None
    frequency: int | None
    monetary: int | None
    segment: str | None


class Computed(BaseModel):
    order_count: int | None
    total_revenue: Decimal | None
    avg_order_value: Decimal | None
    currency: str | None
    first_order_at: datetime | None
    last_order_at: datetime | None
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    rfm: Rfm
    preferred_channel: str | None


class Traits(BaseModel):
    email: str | None
    email_domain: str | None
    phone: str | None
    phone_country: str | None
    first_name: str | None
    last_name: str | None
    full_name: str | None
    birth_date: date | None
    company: str | None
    address_line1: str | None
    address_line2: str | None
    city: str | None
    region: str | None
    postcode: str | None
    country: str | None
    timezone: str | None


class ProfileDocument(BaseModel):
    profile_id: str
    traits: Traits
    trait_lineage: dict[str, Lineage]
    consent: dict[str, Any] | None
    external_ids: dict[str, str]
    computed: Computed
    sources: list[str]
    records: int | None
    identified: bool | None
    identities: list[Identity]
    created_at: datetime | None
    updated_at: datetime | None


class Event(BaseModel):
    event_id: str
    type: str | None
    name: str | None
    timestamp: datetime | None
    received_at: datetime | None
    provider: str
    user_id: str | None
    anonymous_id: str | None
    properties: dict[str, Any] | None
    context: dict[str, Any] | None


class EventPage(BaseModel):
    data: list[Event]
    next_cursor: str | None = Field(description="pass it as `cursor` for the next page")


class OrderItem(BaseModel):
    line_id: str
    product_id: str | None
    sku: str | None
    name: str | None
    quantity: int | None
    unit_price: Decimal | None
    total: Decimal | None


class Order(BaseModel):
    provider: str
    order_id: str
    status: str | None
    currency: str | None
    total_amount: Decimal | None
    subtotal: Decimal | None
    tax: Decimal | None
    discount: Decimal | None
    created_at: datetime | None
    updated_at: datetime | None
    items: list[OrderItem]


class OrderPage(BaseModel):
    data: list[Order]
    next_cursor: str | None


class ProfileSummary(BaseModel):
    profile_id: str
    full_name: str | None
    email: str | None
    phone: str | None
    city: str | None
    postcode: str | None
    country: str | None
    sources: list[str] | None
    order_count: int | None
    last_seen_at: datetime | None
    score: float = Field(description="relevance: higher is better")


class SearchPage(BaseModel):
    data: list[ProfileSummary]
    next_offset: int | None = Field(description="pass it as `offset` for the next page")
    total: int = Field(description="profiles that match")


class EnrichRequest(BaseModel):
    """Any identifiers known about a person; the more, the surer the match."""

    model_config = {"extra": "forbid"}

    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=64)
    external_id: str | None = Field(default=None, max_length=256)
    source: str | None = Field(default=None, max_length=48, pattern=r"^[a-z][a-z0-9_]*$")
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    postcode: str | None = Field(default=None, max_length=20)
    city: str | None = Field(default=None, max_length=200)
    birth_date: date | None = None


class EnrichResponse(BaseModel):
    profile_id: str
    confidence: float = Field(description="probability that this profile is the person")
    matched_on: list[str] = Field(description="the identifiers or traits that matched")
    method: str = Field(description="identifier (a stored identity) or model (Fellegi-Sunter)")
    profile: ProfileDocument
