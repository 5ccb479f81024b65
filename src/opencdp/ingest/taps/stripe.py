"""Stripe tap: customers and charges from the Stripe API's list endpoints.

Lists come newest first, at most 100 objects a page, and are paged with
`starting_after=<last id>` while `has_more` is true. Runs are incremental on `created`
(Unix seconds) through `created[gte]`/`created[lte]`; Stripe objects do not change their
creation time, so a customer's later edits are not seen (Stripe's events API would be).
A 429 or 5xx backs off, honouring Retry-After when Stripe sends one.

    python -m opencdp.ingest.taps.stripe --config config.json [--state state.json]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.helpers.types import Context
from singer_sdk.pagination import BaseAPIPaginator

from opencdp.ingest.taps._http import ApiStream, parse_time, window

MAX_PAGE_SIZE = 100
DEFAULT_BASE_URL = "https://api.stripe.com"


def next_cursor(page: dict[str, Any]) -> str | None:
    """The `starting_after` of the next page: the last object's id while `has_more`."""
    data = page.get("data") or []
    return str(data[-1]["id"]) if page.get("has_more") and data else None


class CursorPaginator(BaseAPIPaginator[str | None]):
    def __init__(self) -> None:
        super().__init__(None)

    def get_next(self, response: requests.Response) -> str | None:
        return next_cursor(response.json())


@dataclass(frozen=True)
class Resource:
    name: str
    schema: th.PropertiesList


class StripeStream(ApiStream[str | None]):
    provider = "Stripe"
    credentials = "api_key"

    def __init__(self, tap: Tap, resource: Resource, started: datetime) -> None:
        super().__init__(tap, name=resource.name, schema=resource.schema.to_dict())
        self.path = f"/v1/{resource.name}"
        self.primary_keys = ("id",)
        self.replication_key = "created"
        self.started = started

    @property
    def url_base(self) -> str:
        return str(self.config["base_url"]).rstrip("/")

    @property
    def records_jsonpath(self) -> str:
        return "$.data[*]"

    @property
    def authenticator(self) -> BearerTokenAuthenticator:
        return BearerTokenAuthenticator(token=self.config["api_key"])

    def get_new_paginator(self) -> CursorPaginator:
        return CursorPaginator()

    def get_url_params(
        self, context: Context | None, next_page_token: str | None
    ) -> dict[str, Any]:
        bookmark = self.get_context_state(context).get("replication_key_value")
        start = self.config.get("start_date")
        since, until = window(
            datetime.fromtimestamp(int(bookmark), UTC) if bookmark is not None else None,
            parse_time(start) if start else None,
            self.started,
        )
        # Every page repeats the filters: Stripe pages a list, not a query.
        params: dict[str, Any] = {
            "limit": self.config["page_size"],
            "created[lte]": int(until.timestamp()),
        }
        if since is not None:
            params["created[gte]"] = int(since.timestamp())
        if next_page_token:
            params["starting_after"] = next_page_token
        return params


_ADDRESS = th.ObjectType(
    *(
        th.Property(name, th.StringType)
        for name in ("line1", "line2", "city", "state", "postal_code", "country")
    ),
    additional_properties=True,
)
_METADATA = th.ObjectType(additional_properties=th.StringType)


def _strings(*names: str) -> list[th.Property[Any]]:
    return [th.Property(name, th.StringType) for name in names]


CUSTOMERS = th.PropertiesList(
    th.Property("id", th.StringType, required=True),
    *_strings("object", "email", "name", "phone", "description", "currency"),
    *_strings("invoice_prefix", "tax_exempt"),
    th.Property("created", th.IntegerType, required=True),
    th.Property("balance", th.IntegerType),
    th.Property("delinquent", th.BooleanType),
    th.Property("livemode", th.BooleanType),
    th.Property("address", _ADDRESS),
    th.Property(
        "shipping",
        th.ObjectType(
            *_strings("name", "phone"),
            th.Property("address", _ADDRESS),
            additional_properties=True,
        ),
    ),
    th.Property("metadata", _METADATA),
    th.Property("preferred_locales", th.ArrayType(th.StringType)),
)
CHARGES = th.PropertiesList(
    th.Property("id", th.StringType, required=True),
    *_strings("object", "currency", "customer", "status", "description", "receipt_email"),
    *_strings("failure_code", "failure_message", "payment_intent", "payment_method"),
    th.Property("created", th.IntegerType, required=True),
    th.Property("amount", th.IntegerType),
    th.Property("amount_captured", th.IntegerType),
    th.Property("amount_refunded", th.IntegerType),
    *(
        th.Property(name, th.BooleanType)
        for name in ("paid", "captured", "refunded", "disputed", "livemode")
    ),
    th.Property(
        "billing_details",
        th.ObjectType(
            *_strings("email", "name", "phone"),
            th.Property("address", _ADDRESS),
            additional_properties=True,
        ),
    ),
    th.Property("metadata", _METADATA),
    th.Property("outcome", th.ObjectType(additional_properties=True)),
    th.Property("payment_method_details", th.ObjectType(additional_properties=True)),
)
RESOURCES = (Resource("customers", CUSTOMERS), Resource("charges", CHARGES))


class TapStripe(Tap):
    name = "tap-stripe-opencdp"
    config_jsonschema = th.PropertiesList(
        th.Property("api_key", th.StringType, required=True, secret=True),
        th.Property("base_url", th.StringType, default=DEFAULT_BASE_URL),
        th.Property("start_date", th.DateTimeType, description="Skip objects created before"),
        th.Property(
            "page_size", th.IntegerType(minimum=1, maximum=MAX_PAGE_SIZE), default=MAX_PAGE_SIZE
        ),
    ).to_dict()

    def discover_streams(self) -> Sequence[StripeStream]:
        started = datetime.now(UTC)
        return [StripeStream(self, resource, started) for resource in RESOURCES]


if __name__ == "__main__":
    TapStripe.cli()
