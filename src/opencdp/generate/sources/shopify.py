"""A Shopify store in the Admin REST API's shapes: customers, their orders, and products.

Money is a decimal string ("49.99"), ids are integers, times are shop-local ISO 8601 with
the shop's UTC offset. Orders are in the customer's currency (a shop selling in several
markets). Shopify would refuse two customers with one email; this store does not, so that
shared family emails and placeholders reach the pipeline the way merged exports bring them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, NamedTuple

from opencdp.generate import timefmt
from opencdp.generate.catalog import Product, Variant
from opencdp.generate.companies import company
from opencdp.generate.ids import Counters
from opencdp.generate.people import Address, Person
from opencdp.generate.profiles import Profile
from opencdp.generate.records import Record
from opencdp.generate.rng import below, between, geometric, random_hex, weighted_index
from opencdp.generate.timefmt import DAY
from opencdp.generate.world import World

SHOP_UTC_OFFSET = -300  # the shop's clock: US Eastern, standard time
_TAX_RATES = {"US": 0.0725, "GB": 0.2, "DE": 0.19, "FR": 0.2, "ES": 0.21, "NL": 0.21}
_FINANCIAL = ("paid", "refunded", "partially_refunded", "pending", "voided")
_FINANCIAL_CUM = tuple(accumulate((0.85, 0.04, 0.03, 0.05, 0.03)))
_CUSTOMER_TAGS = ("", "", "", "newsletter", "vip", "returning", "wholesale", "newsletter, vip")
_DISCOUNTS = (("WELCOME10", 10), ("SPRING15", 15), ("VIP20", 20))
_STATES = ("enabled", "disabled", "invited")
_STATES_CUM = (0.6, 0.96, 1.0)
_FREE_SHIPPING_FROM = 7500
MEAN_ORDERS = 1.6


@dataclass(frozen=True, slots=True)
class Shop:
    domain: str
    products: tuple[Product, ...]
    popularity: tuple[float, ...]  # cumulative weights: a few products sell most

    @classmethod
    def of(cls, tenant: str, products: tuple[Product, ...]) -> Shop:
        weights = accumulate(1.0 / (k + 1) for k in range(len(products)))
        return cls(f"{tenant.replace('_', '-')}.myshopify.com", products, tuple(weights))

    def pick(self, rng: random.Random) -> tuple[Product, Variant]:
        product = self.products[weighted_index(rng, self.popularity)]
        return product, product.variants[int(rng.random() * len(product.variants))]


class Order(NamedTuple):
    """An order as planned: the payment provider and the web events refer to it too."""

    id: int
    number: int
    created: int
    currency: str
    financial_status: str
    items: tuple[tuple[Product, Variant, int], ...]  # product, variant, quantity
    lines: int  # cents, before discounts
    discount: int
    discount_code: str | None
    shipping: int
    tax: int

    @property
    def name(self) -> str:
        return f"#{self.number}"

    @property
    def total(self) -> int:
        return self.lines - self.discount + self.shipping + self.tax


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _time(seconds: int) -> str:
    return timefmt.shopify(seconds, SHOP_UTC_OFFSET)


def product_json(product: Product) -> dict[str, Any]:
    created, updated = _time(product.created), _time(product.updated)
    return {
        "id": product.id,
        "title": product.title,
        "body_html": f"<p>{product.title} by {product.vendor}.</p>",
        "vendor": product.vendor,
        "product_type": product.product_type,
        "created_at": created,
        "handle": product.handle,
        "updated_at": updated,
        "published_at": created,
        "template_suffix": None,
        "published_scope": "global",
        "tags": product.tags,
        "status": "active",
        "admin_graphql_api_id": f"gid://shopify/Product/{product.id}",
        "variants": [
            {
                "id": v.id,
                "product_id": product.id,
                "title": v.title,
                "price": money(v.price),
                "sku": v.sku,
                "position": v.position,
                "inventory_policy": "deny",
                "compare_at_price": None,
                "option1": v.title,
                "option2": None,
                "option3": None,
                "created_at": created,
                "updated_at": updated,
                "taxable": True,
                "barcode": None,
                "requires_shipping": True,
                "admin_graphql_api_id": f"gid://shopify/ProductVariant/{v.id}",
            }
            for v in product.variants
        ],
        "options": [
            {
                "id": product.id + 1,
                "product_id": product.id,
                "name": product.option,
                "position": 1,
                "values": [v.title for v in product.variants],
            }
        ],
        "images": [],
    }


def render(
    person: Person,
    profile: Profile,
    rng: random.Random,
    world: World,
    counters: Counters,
    shop: Shop,
) -> tuple[list[Record], list[Order]]:
    """One customer account of the person and its orders."""
    customer_id = counters.shopify("customer", rng)
    created = min(world.end - 3600, person.first_seen + below(rng, 90 * DAY))
    times = sorted(between(rng, created, world.end) for _ in range(geometric(rng, MEAN_ORDERS)))
    orders = [_plan_order(person, rng, counters, shop, t) for t in times]
    updated = max([created + below(rng, 30 * DAY), *times])
    company_name = (
        company(world.seed, person.account, world.start, world.end).name
        if person.account is not None
        else None
    )
    addresses = _addresses(person, profile, rng, counters, customer_id, company_name)
    customer = _customer(profile, rng, customer_id, min(updated, world.end), created, orders)
    customer["addresses"] = addresses
    if addresses:
        customer["default_address"] = addresses[0]
    records = [
        Record(
            "shopify",
            "customers",
            str(customer_id),
            person.person_id,
            customer,
            profile.applied,
            profile.eligible,
        )
    ]
    embedded = _embedded_customer(customer)
    # Checkout asks for an address even when the customer record lacks one.
    address = _address_json(profile.address or person.address, profile, company_name)
    for order in orders:
        data = _order_json(person, profile, rng, order, embedded, address, world.end)
        records.append(Record("shopify", "orders", str(order.id), person.person_id, data))
    return records, orders


def _customer(
    profile: Profile,
    rng: random.Random,
    customer_id: int,
    updated: int,
    created: int,
    orders: list[Order],
) -> dict[str, Any]:
    accepts = rng.random() < 0.45 and profile.email is not None
    consent_at = _time(created + below(rng, DAY)) if accepts else None
    last = orders[-1] if orders else None
    spent = sum(o.total for o in orders if o.financial_status in ("paid", "partially_refunded"))
    return {
        "id": customer_id,
        "email": profile.email,
        "created_at": _time(created),
        "updated_at": _time(updated),
        "first_name": profile.first_name,
        "last_name": profile.last_name,
        "orders_count": len(orders),
        "state": _STATES[weighted_index(rng, _STATES_CUM)],
        "total_spent": money(spent),
        "last_order_id": last.id if last else None,
        "note": None,
        "verified_email": profile.email is not None and rng.random() < 0.9,
        "multipass_identifier": None,
        "tax_exempt": False,
        "tags": _CUSTOMER_TAGS[int(rng.random() * len(_CUSTOMER_TAGS))],
        "last_order_name": last.name if last else None,
        "currency": orders[-1].currency if orders else "USD",
        "phone": profile.phone_e164,
        "accepts_marketing": accepts,
        "accepts_marketing_updated_at": consent_at,
        "marketing_opt_in_level": "single_opt_in" if accepts else None,
        "tax_exemptions": [],
        "email_marketing_consent": None
        if profile.email is None
        else {
            "state": "subscribed" if accepts else "not_subscribed",
            "opt_in_level": "single_opt_in" if accepts else "unknown",
            "consent_updated_at": consent_at,
        },
        "sms_marketing_consent": None
        if profile.phone_e164 is None
        else {
            "state": "subscribed" if accepts and rng.random() < 0.3 else "not_subscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": None,
            "consent_collected_from": "OTHER",
        },
        "admin_graphql_api_id": f"gid://shopify/Customer/{customer_id}",
    }


def _embedded_customer(customer: dict[str, Any]) -> dict[str, Any]:
    # Orders embed the customer without its address list and marketing details.
    keys = (
        "id", "email", "created_at", "updated_at", "first_name", "last_name", "state", "note",
        "verified_email", "multipass_identifier", "tax_exempt", "phone", "currency", "tags",
        "admin_graphql_api_id", "default_address",
    )  # fmt: skip
    return {k: customer[k] for k in keys if k in customer}


def _address_json(address: Address, profile: Profile, company_name: str | None) -> dict[str, Any]:
    first, last = profile.first_name, profile.last_name
    return {
        "first_name": first,
        "last_name": last,
        "company": company_name,
        "address1": address.line1,
        "address2": address.line2,
        "city": address.city,
        "province": address.region,
        "country": address.country.name,
        "zip": address.postcode,
        "phone": profile.phone,
        "name": " ".join(n for n in (first, last) if n),
        "province_code": address.region_code,
        "country_code": address.country.code,
        "country_name": address.country.name,
    }


def _addresses(
    person: Person,
    profile: Profile,
    rng: random.Random,
    counters: Counters,
    customer_id: int,
    company_name: str | None,
) -> list[dict[str, Any]]:
    if profile.address is None:
        return []
    shown = [profile.address]
    # A customer who moved often keeps the old address in the book, below the new default.
    old = person.previous_address
    if old is not None and profile.address is person.address and rng.random() < 0.5:
        shown.append(old)
    result = []
    for i, address in enumerate(shown):
        entry = {"id": counters.shopify("address", rng), "customer_id": customer_id}
        entry.update(_address_json(address, profile, company_name))
        entry["default"] = i == 0
        result.append(entry)
    return result


def _plan_order(
    person: Person, rng: random.Random, counters: Counters, shop: Shop, created: int
) -> Order:
    items = []
    for _ in range(1 + geometric(rng, 0.6)):
        product, variant = shop.pick(rng)
        items.append((product, variant, 1 if rng.random() < 0.8 else between(rng, 2, 3)))
    lines = sum(v.price * q for _, v, q in items)
    code, discount = None, 0
    if rng.random() < 0.2:
        code, percent = _DISCOUNTS[int(rng.random() * len(_DISCOUNTS))]
        discount = lines * percent // 100
    shipping = (
        0 if lines - discount >= _FREE_SHIPPING_FROM else (599 if rng.random() < 0.7 else 899)
    )
    return Order(
        id=counters.shopify("order", rng),
        number=counters.order_number(),
        created=created,
        currency=person.country.currency,
        financial_status=_FINANCIAL[weighted_index(rng, _FINANCIAL_CUM)],
        items=tuple(items),
        lines=lines,
        discount=discount,
        discount_code=code,
        shipping=shipping,
        tax=round((lines - discount) * _TAX_RATES[person.country.code]),
    )


def _order_json(
    person: Person,
    profile: Profile,
    rng: random.Random,
    order: Order,
    customer: dict[str, Any],
    address: dict[str, Any],
    end: int,
) -> dict[str, Any]:
    status = order.financial_status
    created = _time(order.created)
    updated_at = min(end, order.created + between(rng, 1, 10 * DAY - 1))
    fulfilled = status in ("paid", "partially_refunded", "refunded") and updated_at < end
    # Checkout asks for an email even when the customer record lacks one.
    email = profile.email or person.email
    return {
        "id": order.id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order.id}",
        "name": order.name,
        "number": order.number - 1000,
        "order_number": order.number,
        "email": email,
        "contact_email": email,
        "phone": None,
        "created_at": created,
        "updated_at": _time(updated_at),
        "processed_at": created,
        "closed_at": _time(updated_at) if fulfilled else None,
        "cancelled_at": _time(updated_at) if status == "voided" else None,
        "cancel_reason": "customer" if status == "voided" else None,
        "currency": order.currency,
        "presentment_currency": order.currency,
        "total_line_items_price": money(order.lines),
        "total_discounts": money(order.discount),
        "subtotal_price": money(order.lines - order.discount),
        "total_tax": money(order.tax),
        "total_price": money(order.total),
        "taxes_included": False,
        "financial_status": status,
        "fulfillment_status": "fulfilled" if fulfilled else None,
        "confirmed": True,
        "test": False,
        "buyer_accepts_marketing": customer.get("accepts_marketing", False),
        "source_name": "web",
        "browser_ip": None,
        "customer_locale": person.country.locale,
        "token": random_hex(rng, 32),
        "tags": "",
        "note": None,
        "discount_codes": []
        if order.discount_code is None
        else [{"code": order.discount_code, "amount": money(order.discount), "type": "percentage"}],
        "shipping_lines": [
            {
                "id": order.id + 7,
                "title": "Standard Shipping" if order.shipping else "Free Shipping",
                "price": money(order.shipping),
                "code": "STANDARD" if order.shipping else "FREE",
                "source": "shopify",
            }
        ],
        "line_items": [
            {
                "id": order.id * 10 + i,
                "admin_graphql_api_id": f"gid://shopify/LineItem/{order.id * 10 + i}",
                "product_id": product.id,
                "variant_id": variant.id,
                "sku": variant.sku,
                "title": product.title,
                "variant_title": variant.title,
                "name": f"{product.title} - {variant.title}",
                "vendor": product.vendor,
                "quantity": quantity,
                "price": money(variant.price),
                "total_discount": "0.00",
                "taxable": True,
                "requires_shipping": True,
                "gift_card": False,
                "fulfillment_status": "fulfilled" if fulfilled else None,
            }
            for i, (product, variant, quantity) in enumerate(order.items, start=1)
        ],
        "billing_address": address,
        "shipping_address": address,
        "customer": customer,
    }
