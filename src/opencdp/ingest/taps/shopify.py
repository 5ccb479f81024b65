"""Shopify tap: customers, orders (line items inside) and products from the REST Admin API.

Pages follow the `Link` header (`page_info` cursors, at most 250 records a page); runs are
incremental on `updated_at` through `updated_at_min`/`updated_at_max`. A 429 waits as long
as its Retry-After says, a 5xx backs off, and the tap slows down by itself when the
`X-Shopify-Shop-Api-Call-Limit` header shows the shop's request bucket nearly full.

    python -m opencdp.ingest.taps.shopify --config config.json [--state state.json]
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.authenticators import APIKeyAuthenticator
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.types import Context
from singer_sdk.pagination import BaseAPIPaginator

from opencdp.ingest.taps._http import ApiStream, parse_time, window

CALL_LIMIT_HEADER = "X-Shopify-Shop-Api-Call-Limit"
MAX_PAGE_SIZE = 250
# Calls kept free in the shop's bucket, for the merchant's other apps.
BUCKET_RESERVE = 2
# Shopify's plans scale a bucket and its leak rate together (40 calls leaking 2 a second
# on the standard plan): a full bucket drains in this many seconds.
BUCKET_DRAIN_SECONDS = 20.0

Page = dict[str, str]


def next_page(link: str | None) -> Page | None:
    """The query of the `rel="next"` URL of a Link header, which Shopify requires to be
    sent back unchanged; None on the last page."""
    for entry in requests.utils.parse_header_links(link or ""):
        if entry.get("rel") == "next" and entry.get("url"):
            return dict(parse_qsl(urlsplit(entry["url"]).query))
    return None


def parse_call_limit(value: str | None) -> tuple[int, int] | None:
    """`X-Shopify-Shop-Api-Call-Limit: 39/40` -> (calls in the bucket, bucket size)."""
    used, _, size = (value or "").partition("/")
    try:
        pair = int(used), int(size)
    except ValueError:
        return None
    return pair if pair[1] > 0 else None


def throttle_pause(used: int, size: int, reserve: int = BUCKET_RESERVE) -> float:
    """Seconds to wait before the next call so that it leaves `reserve` calls free."""
    over = used + 1 + reserve - size
    return over * BUCKET_DRAIN_SECONDS / size if over > 0 else 0.0


def shop_root(config: dict[str, Any]) -> str:
    """https://<shop domain>, or `base_url` when set (a proxy, or a local server)."""
    if config.get("base_url"):
        return str(config["base_url"]).rstrip("/")
    shop = str(config.get("shop") or "").removeprefix("https://").strip("/")
    if not shop:
        raise ConfigValidationError(
            "the Shopify tap needs `shop` (e.g. acme.myshopify.com) or `base_url`",
            errors=["set shop or base_url"],
        )
    return f"https://{shop if '.' in shop else shop + '.myshopify.com'}"


class LinkPaginator(BaseAPIPaginator[Page | None]):
    def __init__(self) -> None:
        super().__init__(None)

    def get_next(self, response: requests.Response) -> Page | None:
        return next_page(response.headers.get("Link"))


@dataclass(frozen=True)
class Resource:
    name: str
    schema: th.PropertiesList
    # Filters of the first request: orders default to status=open, a CDP wants them all.
    filters: dict[str, str] = field(default_factory=dict)


class ShopifyStream(ApiStream[Page | None]):
    provider = "Shopify"
    credentials = "access_token"

    def __init__(self, tap: Tap, resource: Resource, started: datetime) -> None:
        super().__init__(tap, name=resource.name, schema=resource.schema.to_dict())
        self.path = f"/{resource.name}.json"
        self.primary_keys = ("id",)
        self.replication_key = "updated_at"
        self.filters = resource.filters
        self.started = started

    @property
    def url_base(self) -> str:
        return f"{shop_root(dict(self.config))}/admin/api/{self.config['api_version']}"

    @property
    def records_jsonpath(self) -> str:
        return f"$.{self.name}[*]"

    @property
    def authenticator(self) -> APIKeyAuthenticator:
        return APIKeyAuthenticator(key="X-Shopify-Access-Token", value=self.config["access_token"])

    def get_new_paginator(self) -> LinkPaginator:
        return LinkPaginator()

    def get_url_params(self, context: Context | None, next_page_token: Page | None) -> Page:
        if next_page_token:
            return next_page_token  # Shopify refuses filters next to page_info
        state = self.get_context_state(context)
        bookmark = state.get("replication_key_value")
        start = self.config.get("start_date")
        since, until = window(
            parse_time(bookmark) if bookmark else None,
            parse_time(start) if start else None,
            self.started,
        )
        params = {
            "limit": str(self.config["page_size"]),
            **self.filters,
            "updated_at_max": until.isoformat(),
        }
        if since is not None:
            params["updated_at_min"] = since.isoformat()
        return params

    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        # The request's updated_at_max already bounds the bookmark; the SDK's signpost
        # would compare shop-local and UTC times as strings.
        return None

    def validate_response(self, response: requests.Response) -> None:
        super().validate_response(response)
        bucket = parse_call_limit(response.headers.get(CALL_LIMIT_HEADER))
        if bucket is None:
            return
        pause = throttle_pause(*bucket)
        if pause:
            self.logger.info("Shopify call limit at %d/%d: waiting %.2fs", *bucket, pause)
            time.sleep(pause)


def _strings(*names: str) -> list[th.Property[Any]]:
    return [th.Property(name, th.StringType) for name in names]


def _times(*names: str) -> list[th.Property[Any]]:
    return [th.Property(name, th.DateTimeType) for name in names]


_ADDRESS = th.ObjectType(
    *_strings("first_name", "last_name", "name", "company", "phone"),
    *_strings("address1", "address2", "city", "province", "province_code", "zip"),
    *_strings("country", "country_code", "country_name"),
    th.Property("id", th.IntegerType),
    th.Property("customer_id", th.IntegerType),
    th.Property("default", th.BooleanType),
    additional_properties=True,
)
_CONSENT = th.ObjectType(
    th.Property("state", th.StringType),
    th.Property("opt_in_level", th.StringType),
    th.Property("consent_updated_at", th.DateTimeType),
    additional_properties=True,
)


CUSTOMERS = th.PropertiesList(
    th.Property("id", th.IntegerType, required=True),
    *_strings("email", "first_name", "last_name", "phone", "state", "tags", "currency"),
    *_strings("note", "total_spent", "last_order_name", "admin_graphql_api_id"),
    *_times("created_at", "updated_at"),
    th.Property("orders_count", th.IntegerType),
    th.Property("last_order_id", th.IntegerType),
    th.Property("verified_email", th.BooleanType),
    th.Property("tax_exempt", th.BooleanType),
    th.Property("email_marketing_consent", _CONSENT),
    th.Property("sms_marketing_consent", _CONSENT),
    th.Property("addresses", th.ArrayType(_ADDRESS)),
    th.Property("default_address", _ADDRESS),
)
_LINE_ITEM = th.ObjectType(
    th.Property("id", th.IntegerType),
    th.Property("product_id", th.IntegerType),
    th.Property("variant_id", th.IntegerType),
    th.Property("quantity", th.IntegerType),
    *_strings("sku", "title", "variant_title", "name", "vendor", "price", "total_discount"),
    th.Property("fulfillment_status", th.StringType),
    additional_properties=True,
)
ORDERS = th.PropertiesList(
    th.Property("id", th.IntegerType, required=True),
    th.Property("number", th.IntegerType),
    th.Property("order_number", th.IntegerType),
    *_strings("name", "email", "contact_email", "phone", "currency", "presentment_currency"),
    *_strings("total_price", "subtotal_price", "total_tax", "total_discounts"),
    *_strings("total_line_items_price", "financial_status", "fulfillment_status"),
    *_strings("cancel_reason", "customer_locale", "source_name", "tags", "note"),
    *_times("created_at", "updated_at", "processed_at", "closed_at", "cancelled_at"),
    th.Property("test", th.BooleanType),
    th.Property("buyer_accepts_marketing", th.BooleanType),
    th.Property("line_items", th.ArrayType(_LINE_ITEM)),
    th.Property("billing_address", _ADDRESS),
    th.Property("shipping_address", _ADDRESS),
    th.Property(
        "customer",
        th.ObjectType(
            th.Property("id", th.IntegerType),
            *_strings("email", "first_name", "last_name", "phone"),
            additional_properties=True,
        ),
    ),
)
_VARIANT = th.ObjectType(
    th.Property("id", th.IntegerType),
    th.Property("product_id", th.IntegerType),
    th.Property("position", th.IntegerType),
    *_strings("title", "price", "compare_at_price", "sku", "barcode"),
    *_times("created_at", "updated_at"),
    additional_properties=True,
)
PRODUCTS = th.PropertiesList(
    th.Property("id", th.IntegerType, required=True),
    *_strings("title", "body_html", "vendor", "product_type", "handle", "status", "tags"),
    *_times("created_at", "updated_at", "published_at"),
    th.Property("variants", th.ArrayType(_VARIANT)),
)
RESOURCES = (
    Resource("customers", CUSTOMERS),
    Resource("orders", ORDERS, {"status": "any"}),
    Resource("products", PRODUCTS),
)


class TapShopify(Tap):
    name = "tap-shopify-opencdp"
    config_jsonschema = th.PropertiesList(
        th.Property("shop", th.StringType, description="The shop, e.g. acme.myshopify.com"),
        th.Property(
            "base_url",
            th.StringType,
            description="Instead of shop: the API's root URL (a proxy, or a local server)",
        ),
        th.Property("access_token", th.StringType, required=True, secret=True),
        th.Property("api_version", th.StringType, default="2024-10"),
        th.Property("start_date", th.DateTimeType, description="Skip records updated before"),
        th.Property(
            "page_size", th.IntegerType(minimum=1, maximum=MAX_PAGE_SIZE), default=MAX_PAGE_SIZE
        ),
    ).to_dict()

    def discover_streams(self) -> Sequence[ShopifyStream]:
        shop_root(dict(self.config))  # a missing shop fails here, before any request
        started = datetime.now(UTC)
        return [ShopifyStream(self, resource, started) for resource in RESOURCES]


if __name__ == "__main__":
    TapShopify.cli()
