"""Stripe's API objects: customers and charges (amounts in the currency's minor unit,
times in Unix seconds)."""

from opencdp.transform.mapping import F, SourceMapping

CUSTOMERS = SourceMapping(
    table="customers",
    provider="stripe",
    streams=("customers",),
    fields={
        "source_id": F("id"),
        "email": F("email"),
        "phone": F("phone", "shipping.phone"),
        "full_name": F("name", "shipping.name"),
        "address_line1": F("address.line1", "shipping.address.line1"),
        "address_line2": F("address.line2", "shipping.address.line2"),
        "city": F("address.city", "shipping.address.city"),
        "region": F("address.state", "shipping.address.state"),
        "postcode": F("address.postal_code", "shipping.address.postal_code"),
        "country": F("address.country", "shipping.address.country"),
        # Stripe customers created by a Shopify checkout name the Shopify customer.
        "external_ids": F(ids={"stripe": "id", "shopify": "metadata.shopify_customer_id"}),
        "created_at": F("created"),
    },
)

ORDERS = SourceMapping(
    table="orders",
    provider="stripe",
    streams=("charges",),
    fields={
        "order_id": F("id"),
        "source_customer_id": F("customer"),
        "email": F("billing_details.email", "receipt_email"),
        "status": F("status"),
        "currency": F("currency"),
        "total_amount": F("amount", minor_units=True),
        "created_at": F("created"),
    },
)

MAPPINGS = (CUSTOMERS, ORDERS)
