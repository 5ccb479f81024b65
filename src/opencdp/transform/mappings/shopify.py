"""Shopify's Admin API resources (tap streams and `orders/*`, `customers/*` webhooks)."""

from opencdp.transform.mapping import F, SourceMapping

# Shopify's marketing-consent states (email_marketing_consent.state, sms_...). Pending (a
# double opt-in not yet confirmed) and invalid (Shopify's own verdict on the state) grant
# nothing and refuse nothing.
_CONSENT: dict[str, str | None] = {
    "subscribed": "granted",
    "not_subscribed": "denied",
    "unsubscribed": "denied",
    "redacted": "denied",
    "pending": None,
    "invalid": None,
}

CUSTOMERS = SourceMapping(
    table="customers",
    provider="shopify",
    streams=("customers",),
    fields={
        "source_id": F("id"),
        "email": F("email"),
        "phone": F("phone", "default_address.phone"),
        "first_name": F("first_name", "default_address.first_name"),
        "last_name": F("last_name", "default_address.last_name"),
        "full_name": F("default_address.name"),
        "company": F("default_address.company"),
        "address_line1": F("default_address.address1"),
        "address_line2": F("default_address.address2"),
        "city": F("default_address.city"),
        "region": F("default_address.province_code", "default_address.province"),
        "postcode": F("default_address.zip"),
        "country": F("default_address.country_code", "default_address.country"),
        "external_ids": F(ids={"shopify": "id"}),
        "consent_email": F("email_marketing_consent.state", values=_CONSENT),
        "consent_sms": F("sms_marketing_consent.state", values=_CONSENT),
        "consent_at": F(
            "email_marketing_consent.consent_updated_at",
            "sms_marketing_consent.consent_updated_at",
        ),
        "created_at": F("created_at"),
        "updated_at": F("updated_at"),
    },
)

ORDERS = SourceMapping(
    table="orders",
    provider="shopify",
    streams=("orders",),
    fields={
        "order_id": F("id"),
        "source_customer_id": F("customer.id"),
        "email": F("email", "contact_email", "customer.email"),
        "status": F("financial_status"),
        "currency": F("currency"),
        "total_amount": F("total_price"),
        "subtotal": F("subtotal_price"),
        "tax": F("total_tax"),
        "discount": F("total_discounts"),
        "created_at": F("created_at"),
        "updated_at": F("updated_at"),
    },
)

ORDER_ITEMS = SourceMapping(
    table="order_items",
    provider="shopify",
    streams=("orders",),
    explode="line_items",
    fields={
        "order_id": F("id"),
        "line_id": F("@.id"),
        "product_id": F("@.product_id"),
        "sku": F("@.sku"),
        "name": F("@.name", "@.title"),
        "quantity": F("@.quantity"),
        "unit_price": F("@.price"),
        "currency": F("currency"),
        "created_at": F("created_at"),
        "updated_at": F("updated_at"),
    },
)

PRODUCTS = SourceMapping(
    table="products",
    provider="shopify",
    streams=("products",),
    fields={
        "product_id": F("id"),
        "sku": F("variants[0].sku"),
        "title": F("title"),
        "category": F("product_type"),
        "vendor": F("vendor"),
        "price": F("variants[0].price"),
        "created_at": F("created_at"),
        "updated_at": F("updated_at"),
    },
)

MAPPINGS = (CUSTOMERS, ORDERS, ORDER_ITEMS, PRODUCTS)
