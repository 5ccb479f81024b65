"""Every webhook delivery is also an event (type "webhook", named by its event type), so the
timeline shows it whatever table its payload maps to."""

from opencdp.transform.mapping import F, SourceMapping

EVENTS = SourceMapping(
    table="events",
    provider="*",
    streams=("*",),
    kinds=("webhook",),
    name="webhook deliveries -> events",
    fields={
        "event_id": F("_meta.id"),
        "type": F(const="webhook"),
        "name": F("_meta.event_type", "_meta.stream"),
        "email": F("email", "customer.email", "data.object.email"),
        "timestamp": F("_meta.received_at"),
        "received_at": F("_meta.received_at"),
        "properties": F("$"),
    },
)

MAPPINGS = (EVENTS,)
