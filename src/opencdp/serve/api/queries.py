"""The SQL the API runs: fixed text, values only as parameters. Connections run as the
tenant's role with the tenant's schema as search_path, so names here are unqualified.

PostgreSQL builds the JSON documents itself (`…::text`): the API passes them through
without decoding and encoding them again.
"""

from __future__ import annotations

from typing import LiteralString

from opencdp.identity.model import TRAITS

_TRAITS = ", ".join(f"'{name}', p.{name}" for name, _ in TRAITS)

# One profile as the API shows it, from `profiles p`.
PROFILE_DOCUMENT: LiteralString = f"""
jsonb_build_object(
    'profile_id', p.profile_id,
    'traits', jsonb_build_object({_TRAITS}),
    'trait_lineage', COALESCE(p.trait_lineage, '{{}}'::jsonb),
    'consent', p.consent,
    'external_ids', COALESCE(p.external_ids, '{{}}'::jsonb),
    'computed', jsonb_build_object(
        'order_count', p.order_count,
        'total_revenue', p.total_revenue,
        'avg_order_value', p.avg_order_value,
        'currency', p.currency,
        'first_order_at', p.first_order_at,
        'last_order_at', p.last_order_at,
        'first_seen_at', p.first_seen_at,
        'last_seen_at', p.last_seen_at,
        'rfm', jsonb_build_object(
            'recency', p.rfm_recency,
            'frequency', p.rfm_frequency,
            'monetary', p.rfm_monetary,
            'segment', p.rfm_segment),
        'preferred_channel', p.preferred_channel),
    'sources', COALESCE(p.sources, '[]'::jsonb),
    'records', p.records,
    'identified', p.identified,
    'identities', COALESCE((
        SELECT jsonb_agg(jsonb_build_object(
                   'type', i.id_type, 'value', i.id_value, 'rule', i.rule,
                   'confidence', i.confidence, 'first_seen', i.first_seen,
                   'last_seen', i.last_seen)
               ORDER BY i.id_type, i.id_value)
        FROM identities i WHERE i.profile_id = p.profile_id), '[]'::jsonb),
    'created_at', p.created_at,
    'updated_at', p.updated_at)::text
"""

PROFILE: LiteralString = f"SELECT {PROFILE_DOCUMENT} AS doc FROM profiles p WHERE p.profile_id = %s"

# By identifier: the identity (blocked or not) and its profile's document, if any.
LOOKUP: LiteralString = f"""
SELECT i.profile_id, i.blocked, i.blocked_reason, i.confidence, i.rule,
       CASE WHEN p.profile_id IS NULL THEN NULL ELSE {PROFILE_DOCUMENT} END AS doc
FROM identities i LEFT JOIN profiles p ON p.profile_id = i.profile_id
WHERE i.id_type = %s AND i.id_value = %s
"""

PROFILE_EXISTS: LiteralString = "SELECT 1 FROM profiles WHERE profile_id = %s"

# The profile a merged-away id went into: the latest merge that absorbed it.
MERGED_INTO: LiteralString = """
SELECT profile_id FROM profile_merges
WHERE kind = 'merge' AND other_profile_id = %s
ORDER BY changed_at DESC LIMIT 1
"""

# A page of a profile's events, newest first; the filters are optional (NULL: any).
EVENTS: LiteralString = """
SELECT e.timestamp, e.event_id, jsonb_build_object(
    'event_id', e.event_id, 'type', e.type, 'name', e.name, 'timestamp', e.timestamp,
    'received_at', e.received_at, 'provider', e.provider, 'user_id', e.user_id,
    'anonymous_id', e.anonymous_id, 'properties', e.properties, 'context', e.context)::text
    AS doc
FROM events e
WHERE e.profile_id = %(profile_id)s
  AND (%(types)s::text[] IS NULL OR e.type = ANY(%(types)s::text[]))
  AND (%(name)s::text IS NULL OR e.name = %(name)s::text)
  AND (%(since)s::timestamptz IS NULL OR e.timestamp >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR e.timestamp < %(until)s::timestamptz)
  AND (%(after_at)s::timestamptz IS NULL
       OR (e.timestamp, e.event_id) < (%(after_at)s::timestamptz, %(after_id)s::text))
ORDER BY e.timestamp DESC, e.event_id DESC
LIMIT %(limit)s
"""

# A page of a profile's orders with their items, newest first.
ORDERS: LiteralString = """
SELECT o.created_at, o.provider, o.order_id, jsonb_build_object(
    'provider', o.provider, 'order_id', o.order_id, 'status', o.status,
    'currency', o.currency, 'total_amount', o.total_amount, 'subtotal', o.subtotal,
    'tax', o.tax, 'discount', o.discount, 'created_at', o.created_at,
    'updated_at', o.updated_at,
    'items', COALESCE((
        SELECT jsonb_agg(jsonb_build_object(
                   'line_id', li.line_id, 'product_id', li.product_id, 'sku', li.sku,
                   'name', li.name, 'quantity', li.quantity, 'unit_price', li.unit_price,
                   'total', li.total)
               ORDER BY li.line_id)
        FROM order_items li
        WHERE li.provider = o.provider AND li.order_id = o.order_id), '[]'::jsonb))::text
    AS doc
FROM orders o
WHERE o.profile_id = %(profile_id)s
  AND (%(status)s::text IS NULL OR o.status = %(status)s::text)
  AND (%(since)s::timestamptz IS NULL OR o.created_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR o.created_at < %(until)s::timestamptz)
  AND (%(after_at)s::timestamptz IS NULL
       OR (o.created_at, o.provider, o.order_id)
          < (%(after_at)s::timestamptz, %(after_provider)s::text, %(after_id)s::text))
ORDER BY o.created_at DESC, o.provider DESC, o.order_id DESC
LIMIT %(limit)s
"""

# Short documents of the profiles a search found, in any order.
SUMMARIES: LiteralString = """
SELECT p.profile_id, jsonb_build_object(
    'profile_id', p.profile_id, 'full_name', p.full_name, 'email', p.email,
    'phone', p.phone, 'city', p.city, 'postcode', p.postcode, 'country', p.country,
    'sources', p.sources, 'order_count', p.order_count,
    'last_seen_at', p.last_seen_at)::text AS doc
FROM profiles p WHERE p.profile_id = ANY(%s)
"""
