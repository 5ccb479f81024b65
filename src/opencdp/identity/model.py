"""The curated tables identity resolution writes (DESIGN.md §4), and its graph's names.

A *node* is what resolution groups into profiles: a customer record, named
`c:{provider}:{source_id}` after the key of `customers`, or a device that only ever browsed
anonymously, named `a:{provider}:{anonymous_id}`. Identifier types are `email`, `phone`,
`anonymous_id` and `{provider}_id` for every provider's customer ids (`shopify_id`,
`segment_id` for Segment userIds, ...).
"""

from __future__ import annotations

import pyarrow as pa

from opencdp.transform.model import AMOUNT, CONSENT, TIMESTAMP

RECORD_PREFIX = "c"
DEVICE_PREFIX = "a"

LINEAGE = pa.struct(
    [
        pa.field("provider", pa.string()),
        pa.field("source_id", pa.string()),
        pa.field("rule", pa.string()),
    ]
)

# identifier <-> profile (key: id_type, id_value).
IDENTITIES = pa.schema(
    [
        pa.field("id_type", pa.string(), nullable=False),
        pa.field("id_value", pa.string(), nullable=False),
        pa.field("profile_id", pa.string()),  # null while blocked on several profiles
        pa.field("rule", pa.string()),  # the link rule that attached it, or "record"
        pa.field("confidence", pa.float64()),
        pa.field("records", pa.int64()),  # nodes that carry it
        pa.field("first_seen", TIMESTAMP),
        pa.field("last_seen", TIMESTAMP),
        pa.field("blocked", pa.bool_()),
        pa.field("blocked_reason", pa.string()),
    ]
)

# The survivorship-chosen traits (the customers table's names), their lineage and the
# computed traits (key: profile_id).
TRAITS: tuple[tuple[str, pa.DataType], ...] = (
    ("email", pa.string()),
    ("email_domain", pa.string()),
    ("phone", pa.string()),
    ("phone_country", pa.string()),
    ("first_name", pa.string()),
    ("last_name", pa.string()),
    ("full_name", pa.string()),
    ("birth_date", pa.date32()),
    ("company", pa.string()),
    ("address_line1", pa.string()),
    ("address_line2", pa.string()),
    ("city", pa.string()),
    ("region", pa.string()),
    ("postcode", pa.string()),
    ("country", pa.string()),
    ("timezone", pa.string()),
)

PROFILES = pa.schema(
    [
        pa.field("profile_id", pa.string(), nullable=False),
        *(pa.field(name, kind) for name, kind in TRAITS),
        pa.field("consent", CONSENT),
        pa.field("external_ids", pa.map_(pa.string(), pa.string())),
        pa.field("trait_lineage", pa.map_(pa.string(), LINEAGE)),
        pa.field("records", pa.int64()),  # linked customer records
        pa.field("sources", pa.list_(pa.string())),  # providers, sorted
        pa.field("identified", pa.bool_()),  # has a customer record, not only devices
        pa.field("order_count", pa.int64()),
        pa.field("total_revenue", AMOUNT),
        pa.field("avg_order_value", AMOUNT),
        pa.field("currency", pa.string()),
        pa.field("first_order_at", TIMESTAMP),
        pa.field("last_order_at", TIMESTAMP),
        pa.field("first_seen_at", TIMESTAMP),
        pa.field("last_seen_at", TIMESTAMP),
        pa.field("rfm_recency", pa.int32()),  # 1..5, 5 = most recent buyers
        pa.field("rfm_frequency", pa.int32()),
        pa.field("rfm_monetary", pa.int32()),
        pa.field("rfm_segment", pa.string()),
        pa.field("preferred_channel", pa.string()),
        pa.field("created_at", TIMESTAMP),
        pa.field("updated_at", TIMESTAMP),
    ]
)

# Profile lineage: every merge and split, with its reason.
PROFILE_MERGES = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("changed_at", TIMESTAMP, nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # merge | split
        pa.field("profile_id", pa.string(), nullable=False),  # the one that lives on
        pa.field("other_profile_id", pa.string(), nullable=False),  # absorbed or split off
        pa.field("nodes", pa.int64()),  # nodes that moved
        pa.field("reason", pa.string()),
    ]
)

# Which profile every node belongs to (key: node): the state the next run keeps ids from.
PROFILE_MEMBERS = pa.schema(
    [
        pa.field("node", pa.string(), nullable=False),
        pa.field("profile_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # record | device
        pa.field("provider", pa.string()),
        pa.field("source_id", pa.string()),  # the record's key, or the device's anonymousId
    ]
)

# Links between nodes: those that joined a profile, and possible matches for review.
IDENTITY_LINKS = pa.schema(
    [
        pa.field("profile_id", pa.string()),
        pa.field("left_node", pa.string(), nullable=False),
        pa.field("right_node", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),  # linked | possible
        pa.field("rule", pa.string(), nullable=False),
        pa.field("id_type", pa.string()),
        pa.field("id_value", pa.string()),
        pa.field("probability", pa.float64()),
        pa.field("evidence", pa.string()),  # JSON: comparison -> level, for model links
    ]
)

TABLES: dict[str, pa.Schema] = {
    "identities": IDENTITIES,
    "profiles": PROFILES,
    "profile_members": PROFILE_MEMBERS,
    "profile_merges": PROFILE_MERGES,
    "identity_links": IDENTITY_LINKS,
}
