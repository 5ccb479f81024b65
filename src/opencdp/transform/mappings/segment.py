"""Segment-spec messages (the tracking API, or a tap replaying them): every message is an
event; an identify call with a userId is also a customer record of that user."""

from opencdp.transform.mapping import F, SourceMapping

EVENTS = SourceMapping(
    table="events",
    provider="segment",
    streams=("events", "track", "page", "screen", "identify", "group", "alias"),
    fields={
        "event_id": F("messageId", "_meta.id"),
        "type": F("type", "_meta.stream"),
        "name": F("event", "name"),
        "user_id": F("userId"),
        "anonymous_id": F("anonymousId"),
        "previous_id": F("previousId"),  # alias calls: the id the user had before
        "email": F("traits.email", "context.traits.email", "properties.email"),
        "timestamp": F("timestamp", "originalTimestamp", "_meta.received_at"),
        "received_at": F("receivedAt", "_meta.received_at"),
        "properties": F("properties"),
        "traits": F("traits", "context.traits"),
        "context": F("context"),
    },
)

# Segment's reserved identify traits, camelCase as the spec writes them (snake_case too,
# as some libraries send).
CUSTOMERS = SourceMapping(
    table="customers",
    provider="segment",
    streams=("events", "identify"),
    require=("userId", "traits"),
    fields={
        "source_id": F("userId"),
        "email": F("traits.email"),
        "phone": F("traits.phone"),
        "first_name": F("traits.firstName", "traits.first_name"),
        "last_name": F("traits.lastName", "traits.last_name"),
        "full_name": F("traits.name"),
        "birth_date": F("traits.birthday"),
        "company": F("traits.company.name", "traits.company"),
        "address_line1": F("traits.address.street"),
        "city": F("traits.address.city"),
        "region": F("traits.address.state"),
        "postcode": F("traits.address.postalCode", "traits.address.postal_code"),
        "country": F("traits.address.country"),
        "external_ids": F(ids={"segment": "userId"}),
        "created_at": F("traits.createdAt", "traits.created_at"),
        "updated_at": F("timestamp", "_meta.received_at"),
    },
)

MAPPINGS = (EVENTS, CUSTOMERS)
