"""Identifiers: what each node of the graph is known by, extracted from the curated tables.

A customer record carries its email, its phone (E.164) and its `external_ids` (its own
provider id and any cross-reference, such as a Stripe customer's Shopify id). Events add
the nodes and links of Segment's spec: every userId is a node (the same node as the
customers row its identify calls made) carrying the anonymousIds it was seen with; every
anonymousId is a device node of its own; an alias call ties its previousId to its
userId. Values come normalized by the transform, so equal values mean the same identifier.
"""

from __future__ import annotations

import pyarrow as pa

from opencdp.engine.base import Engine
from opencdp.identity.model import DEVICE_PREFIX, RECORD_PREFIX
from opencdp.settings import IdentitySettings

# Which link rule an identifier type belongs to; every other `*_id` type is an external id.
RULE_OF_TYPE = {"email": "email", "phone": "phone", "anonymous_id": "anonymous_id"}


def node_sql(prefix: str, provider: str, key: str) -> str:
    return f"'{prefix}:' || {provider} || ':' || {key}"


_RECORD = node_sql(RECORD_PREFIX, "provider", "source_id")
_SEEN = "coalesce(updated_at, created_at, _ingested_at)"

# customers: (node, id_type, id_value, first_seen, last_seen); its own id is among the
# external ids.
_CUSTOMER_IDS = f"""
SELECT node, id_type, id_value, seen AS first_seen, seen AS last_seen FROM (
    SELECT {_RECORD} AS node, 'email' AS id_type, email AS id_value, {_SEEN} AS seen
    FROM customers WHERE email IS NOT NULL
    UNION ALL
    SELECT {_RECORD} AS node, 'phone' AS id_type, phone AS id_value, {_SEEN} AS seen
    FROM customers WHERE phone IS NOT NULL
    UNION ALL
    SELECT node, entry.key || '_id' AS id_type, entry.value AS id_value, seen
    FROM (
        SELECT {_RECORD} AS node, {_SEEN} AS seen, unnest(map_entries(external_ids)) AS entry
        FROM customers WHERE external_ids IS NOT NULL
    ) AS x
    WHERE entry.value IS NOT NULL
) AS record_ids
"""

_USER = node_sql(RECORD_PREFIX, "provider", "user_id")
_DEVICE = node_sql(DEVICE_PREFIX, "provider", "anonymous_id")

# events: users carry their userId and the anonymousIds seen with it; devices carry their
# anonymousId. From `event_keys`: the events' distinct (provider, user_id, anonymous_id),
# when first and last seen (a user's many events make one row before any text is built).
_EVENT_KEYS = """
SELECT provider, user_id, anonymous_id, min(timestamp) AS first_seen,
       max(timestamp) AS last_seen
FROM events WHERE user_id IS NOT NULL OR anonymous_id IS NOT NULL
GROUP BY provider, user_id, anonymous_id
"""
_EVENT_IDS = f"""
SELECT {_USER} AS node, provider || '_id' AS id_type, user_id AS id_value,
       first_seen, last_seen
FROM event_keys WHERE user_id IS NOT NULL
UNION ALL
SELECT {_USER} AS node, 'anonymous_id' AS id_type, anonymous_id AS id_value,
       first_seen, last_seen
FROM event_keys WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL
UNION ALL
SELECT {_DEVICE} AS node, 'anonymous_id' AS id_type, anonymous_id AS id_value,
       first_seen, last_seen
FROM event_keys WHERE anonymous_id IS NOT NULL
"""

# An alias call says that its previousId (an anonymousId or an older userId) and its userId
# are one person: both ends carry an `alias` identifier (an external id: the strongest rule).
# Only ends that exist as nodes take part.
_PREVIOUS = node_sql(RECORD_PREFIX, "provider", "previous_id")
_PREVIOUS_DEVICE = node_sql(DEVICE_PREFIX, "provider", "previous_id")
_ALIAS_IDS = f"""
SELECT node, 'alias' AS id_type, id_value, seen AS first_seen, seen AS last_seen FROM (
    SELECT {_USER} AS node, previous_id AS id_value, timestamp AS seen FROM aliases
    UNION ALL
    SELECT {_PREVIOUS} AS node, previous_id AS id_value, timestamp AS seen FROM aliases
    UNION ALL
    SELECT {_PREVIOUS_DEVICE} AS node, previous_id AS id_value, timestamp AS seen FROM aliases
) AS ends
WHERE node IN (SELECT node FROM raw_ids)
"""


def identifiers_sql(settings: IdentitySettings) -> str:
    """(node, id_type, id_value, first_seen, last_seen), one row per node and identifier."""
    alias = ""
    if settings.user_id_provider:
        # Segment userIds that are this provider's customer ids are cross-references too.
        alias = f"""
        UNION ALL
        SELECT node, '{_quoted(settings.user_id_provider)}_id' AS id_type, id_value,
               first_seen, last_seen
        FROM raw_ids WHERE id_type = 'segment_id'
        """
    return f"""
    WITH event_keys AS ({_EVENT_KEYS}),
    raw_ids AS ({_CUSTOMER_IDS} UNION ALL {_EVENT_IDS}),
    aliases AS (
        SELECT provider, user_id, previous_id, timestamp FROM events
        WHERE user_id IS NOT NULL AND previous_id IS NOT NULL
    ),
    all_ids AS (SELECT * FROM raw_ids {alias} UNION ALL {_ALIAS_IDS})
    SELECT node, id_type, id_value, min(first_seen) AS first_seen, max(last_seen) AS last_seen
    FROM all_ids
    GROUP BY node, id_type, id_value
    """


def extract_identifiers(
    engine: Engine, customers: pa.Table, events: pa.Table, settings: IdentitySettings
) -> pa.Table:
    return engine.query(identifiers_sql(settings), {"customers": customers, "events": events})


def _quoted(name: str) -> str:
    # Provider names are checked names (a-z, 0-9, _); refuse anything else outright.
    if not name.replace("_", "").isalnum() or not name.isascii():
        raise ValueError(f"not a provider name: {name!r}")
    return name
