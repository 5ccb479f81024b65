"""A payment provider in Stripe's API shapes: customers and charges.

Amounts are integers in the currency's minor unit, currencies lower case, times Unix
seconds. When the person also shops on the Shopify store, most paid orders have a charge
(metadata shopify_order_id) and some customers carry metadata shopify_customer_id.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from opencdp.generate.ids import stripe_id
from opencdp.generate.people import Address, Person
from opencdp.generate.profiles import Profile
from opencdp.generate.records import Record
from opencdp.generate.rng import below, between, geometric, random_hex
from opencdp.generate.sources.shopify import Order
from opencdp.generate.timefmt import DAY
from opencdp.generate.world import World

_PAID = ("paid", "refunded", "partially_refunded")
_DESCRIPTIONS = ("Subscription update", "Invoice payment", "Gift card", "Membership", None)
_BRANDS = (("visa", "credit"), ("visa", "debit"), ("mastercard", "credit"), ("amex", "credit"))
# Share of orders paid through this Stripe account, and of customers linked to Shopify.
ORDER_CHARGE_RATE = 0.8
SHOPIFY_LINK_RATE = 0.6


@dataclass(frozen=True, slots=True)
class _Charge:
    created: int
    amount: int
    currency: str
    status: str
    refunded: int
    description: str | None
    metadata: dict[str, str]


def render(
    person: Person,
    profile: Profile,
    rng: random.Random,
    world: World,
    orders: list[Order],
    shopify_customer_id: int | None,
) -> list[Record]:
    """One Stripe customer of the person and its charges."""
    plans = _charges_for_orders(rng, orders) or _other_charges(person, rng, world)
    first_charge = min((c.created for c in plans), default=world.end)
    created = max(
        world.start, min(first_charge - below(rng, 3600), person.first_seen + below(rng, 60 * DAY))
    )
    customer_id = stripe_id(rng, "cus", 14)
    metadata = {}
    if shopify_customer_id is not None and rng.random() < SHOPIFY_LINK_RATE:
        metadata["shopify_customer_id"] = str(shopify_customer_id)
    customer = {
        "id": customer_id,
        "object": "customer",
        "address": _address(profile.address),
        "balance": 0,
        "created": created,
        "currency": plans[0].currency if plans else None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "email": profile.email,
        "invoice_prefix": random_hex(rng, 8).upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": True,
        "metadata": metadata,
        "name": _name(profile),
        "next_invoice_sequence": 1,
        "phone": profile.phone,
        "preferred_locales": [person.country.locale] if rng.random() < 0.5 else [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }
    records = [
        Record(
            "stripe",
            "customers",
            customer_id,
            person.person_id,
            customer,
            profile.applied,
            profile.eligible,
        )
    ]
    card = _card(person, rng)
    for plan in plans:
        charge = _charge_json(profile, rng, plan, customer_id, card)
        records.append(Record("stripe", "charges", charge["id"], person.person_id, charge))
    return records


def _charges_for_orders(rng: random.Random, orders: list[Order]) -> list[_Charge]:
    charges = []
    for order in orders:
        if order.financial_status not in _PAID or rng.random() >= ORDER_CHARGE_RATE:
            continue
        total = order.total
        refunded = {"refunded": total, "partially_refunded": total // 4}.get(
            order.financial_status, 0
        )
        charges.append(
            _Charge(
                created=order.created + between(rng, 1, 60 - 1),
                amount=total,
                currency=order.currency.lower(),
                status="succeeded",
                refunded=refunded,
                description=f"Shopify order {order.name}",
                metadata={"shopify_order_id": str(order.id), "shopify_order_name": order.name},
            )
        )
    return charges


def _other_charges(person: Person, rng: random.Random, world: World) -> list[_Charge]:
    currency = person.country.currency.lower()
    start = min(world.end - DAY, person.first_seen + below(rng, 60 * DAY))
    times = sorted(between(rng, start, world.end) for _ in range(geometric(rng, 1.5)))
    charges = []
    for created in times:
        roll = rng.random()
        charges.append(
            _Charge(
                created=created,
                amount=between(rng, 5, 400) * 100 - (1 if rng.random() < 0.5 else 0),
                currency=currency,
                status="succeeded" if roll < 0.92 else ("failed" if roll < 0.98 else "pending"),
                refunded=0,
                description=_DESCRIPTIONS[int(rng.random() * len(_DESCRIPTIONS))],
                metadata={},
            )
        )
    return charges


def _name(profile: Profile) -> str | None:
    return " ".join(n for n in (profile.first_name, profile.last_name) if n) or None


def _address(address: Address | None) -> dict[str, Any] | None:
    if address is None:
        return None
    return {
        "city": address.city,
        "country": address.country.code,
        "line1": address.line1,
        "line2": address.line2,
        "postal_code": address.postcode,
        "state": address.region_code or address.region,
    }


def _card(person: Person, rng: random.Random) -> dict[str, Any]:
    brand, funding = _BRANDS[int(rng.random() * len(_BRANDS))]
    return {
        "brand": brand,
        "country": person.country.code,
        "exp_month": between(rng, 1, 12),
        "exp_year": 2025 + between(rng, 0, 5),
        "fingerprint": random_hex(rng, 16),
        "funding": funding,
        "last4": f"{below(rng, 10_000):04d}",
        "network": brand,
    }


def _charge_json(
    profile: Profile,
    rng: random.Random,
    plan: _Charge,
    customer_id: str,
    card: dict[str, Any],
) -> dict[str, Any]:
    succeeded = plan.status == "succeeded"
    failed = plan.status == "failed"
    return {
        "id": stripe_id(rng, "ch"),
        "object": "charge",
        "amount": plan.amount,
        "amount_captured": plan.amount if succeeded else 0,
        "amount_refunded": plan.refunded,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": stripe_id(rng, "txn") if succeeded else None,
        "billing_details": {
            "address": _address(profile.address),
            "email": profile.email,
            "name": _name(profile),
            "phone": profile.phone,
        },
        "calculated_statement_descriptor": "OPENCDP SHOP",
        "captured": succeeded,
        "created": plan.created,
        "currency": plan.currency,
        "customer": customer_id,
        "description": plan.description,
        "disputed": False,
        "failure_code": "card_declined" if failed else None,
        "failure_message": "Your card was declined." if failed else None,
        "fraud_details": {},
        "livemode": True,
        "metadata": plan.metadata,
        "outcome": {
            "network_status": "declined_by_network" if failed else "approved_by_network",
            "reason": "generic_decline" if failed else None,
            "risk_level": "normal",
            "risk_score": between(rng, 0, 60),
            "seller_message": "The bank did not return any further details with this decline."
            if failed
            else "Payment complete.",
            "type": "issuer_declined" if failed else "authorized",
        },
        "paid": succeeded,
        "payment_intent": stripe_id(rng, "pi"),
        "payment_method": stripe_id(rng, "pm"),
        "payment_method_details": {"card": card, "type": "card"},
        "receipt_email": profile.email if rng.random() < 0.7 else None,
        "receipt_number": None,
        "refunded": plan.refunded == plan.amount and plan.amount > 0,
        "shipping": None,
        "statement_descriptor": None,
        "status": plan.status,
    }
