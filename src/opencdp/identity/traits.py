"""Survivorship and computed traits as SQL, written once in DuckDB's dialect (engines transpile it).

Pure: these functions build queries, `survivorship.build_profiles` runs them. The profiles
query reads these relations (only the columns named here):

- `members` (node, profile_id): every node of the identity graph;
- `customers` (`CUSTOMER_COLUMNS` and `ROW`, each record's position): curated customer
  records, node `c:{provider}:{source_id}`;
- `orders` (`ORDER_COLUMNS`) and `events` (`EVENT_COLUMNS`), attributed to a profile_id;
- `priority` (provider, rank): the order of `source_priority`, rank 0 first.

It answers one row per profile: for each trait group the position (`ROW`) of the record
its traits come from (`pick_column`), that of the record its consent comes from
(`CONSENT_PICK`), and the computed traits. The caller takes the chosen values from the
records by position: aggregating the values themselves (structs of text) cost more than
the rest of the query. Every choice is the first record by a ROW_NUMBER over a total order
ending with (provider, source_id), so both engines pick the same record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from opencdp.identity.model import RECORD_PREFIX, TRAITS
from opencdp.settings import IdentitySettings, SurvivorshipRule


@dataclass(frozen=True)
class TraitGroup:
    """Traits chosen together, from one record, by the rule of the first one, among the
    records where any of `present` is not null."""

    traits: tuple[str, ...]
    present: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.traits[0]


ADDRESS = ("address_line1", "address_line2", "city", "region", "postcode", "country")
_UNITS = (
    TraitGroup(("email", "email_domain"), ("email",)),
    TraitGroup(("phone", "phone_country"), ("phone",)),
    TraitGroup(ADDRESS, ("address_line1", "city", "postcode")),
)
_IN_UNITS = {trait for unit in _UNITS for trait in unit.traits}
GROUPS: tuple[TraitGroup, ...] = _UNITS + tuple(
    TraitGroup((name,), (name,)) for name, _ in TRAITS if name not in _IN_UNITS
)

CUSTOMER_COLUMNS = (
    "provider",
    "source_id",
    *(name for name, _ in TRAITS),
    "consent",
    "created_at",
    "updated_at",
    "_ingested_at",
)
ORDER_COLUMNS = ("profile_id", "currency", "total_amount", "created_at")
EVENT_COLUMNS = ("profile_id", "provider", "timestamp", "context")
# external_ids flattened, one row per entry: EXTERNAL_ID_COLUMNS.
EXTERNAL_ID_COLUMNS = (
    "provider",
    "source_id",
    "created_at",
    "updated_at",
    "_ingested_at",
    "id_provider",
    "id_value",
)

# An event's channel, from its `context` (JSON text, as the row stage writes it with orjson:
# valid, keys unescaped; DuckDB refuses malformed JSON where Spark reads NULL): "app"
# for a mobile app (an `app` object, or a mobile analytics library), "web" for a browser (a
# `page` object or a userAgent), "server" for the rest (server libraries, webhooks, no
# context). json_extract_string is GET_JSON_OBJECT on Spark: both give NULL for a missing
# key, a JSON null and a non-object document, and an object's JSON text otherwise.
MOBILE_LIBRARIES = ("ios", "android", "swift", "kotlin", "react-native", "flutter")


def rules_of(settings: IdentitySettings) -> dict[str, SurvivorshipRule]:
    """The rule of each trait group: its first trait's."""
    return {g.name: settings.trait_rules.get(g.name, settings.default_rule) for g in GROUPS}


ROW = "_row"
CONSENT_PICK = "_consent_row"


def pick_column(group: TraitGroup) -> str:
    """The column of the profiles query holding the `ROW` of the record a group's traits
    come from (NULL when no record has them)."""
    return f"_{group.name}_row"


_RECENT = "_recent DESC NULLS LAST, _ingested_at DESC NULLS LAST"
_TIE = "provider, source_id"


def _order(rule: SurvivorshipRule, group: TraitGroup) -> str:
    """The order in which a profile's records are candidates (first wins)."""
    if rule == "source_priority":
        return f"_priority, {_RECENT}, {_TIE}"
    if rule == "most_frequent":
        return f"_freq_{group.name} DESC, {_RECENT}, {_TIE}"
    if rule == "first_non_null":
        return f"_oldest NULLS LAST, _ingested_at NULLS LAST, {_TIE}"
    return f"{_RECENT}, {_TIE}"


def _rank(rule: SurvivorshipRule, group: TraitGroup) -> str:
    """The column ranking records by `rule`: one per rule, one per group for most_frequent
    (its order depends on the group's values)."""
    return f"_by_{group.name}" if rule == "most_frequent" else f"_by_{rule}"


def _pick(group: TraitGroup, rule: SurvivorshipRule) -> str:
    """The position of the first record by `rule` that has any of `present`: all the
    group's traits come from it (a NULL trait stays with its unit)."""
    present = " OR ".join(f"{t} IS NOT NULL" for t in group.present)
    return f"arg_min({ROW}, {_rank(rule, group)}) FILTER (WHERE {present}) AS {pick_column(group)}"


def _survivors(rules: Mapping[str, SurvivorshipRule], unlisted_rank: int) -> str:
    """CTEs `linked` (the profiles' customer records) and `chosen` (one row per profile
    with records: the picked records' positions and the record facts)."""
    traits = ", ".join(f"c.{name}" for name, _ in TRAITS)
    frequent = [g for g in GROUPS if rules[g.name] == "most_frequent"]
    counts = "".join(
        f", COUNT(*) OVER (PARTITION BY profile_id, {', '.join(g.traits)}) AS _freq_{g.name}"
        for g in frequent
    )
    orders = {_rank(rules[g.name], g): _order(rules[g.name], g) for g in GROUPS}
    orders["_by_consent"] = f"_consent_at DESC NULLS LAST, {_RECENT}, {_TIE}"
    ranks = ",\n           ".join(
        f"ROW_NUMBER() OVER (PARTITION BY profile_id ORDER BY {order}) AS {name}"
        for name, order in orders.items()
    )
    picks = ",\n       ".join(_pick(g, rules[g.name]) for g in GROUPS)
    return f"""
linked AS (
    SELECT m.profile_id, c.{ROW}, c.provider, c.source_id, {traits},
           c.consent.updated_at AS _consent_at, c.created_at, c.updated_at, c._ingested_at,
           COALESCE(c.updated_at, c.created_at) AS _recent,
           COALESCE(c.created_at, c.updated_at) AS _oldest,
           COALESCE(pr.rank, {unlisted_rank}) AS _priority
    FROM customers AS c
    JOIN members AS m ON m.node = '{RECORD_PREFIX}:' || c.provider || ':' || c.source_id
    LEFT JOIN priority AS pr ON pr.provider = c.provider
    WHERE m.profile_id IS NOT NULL
),
ranks AS (  -- ranked apart from the wide rows: windows sort less
    SELECT profile_id AS _profile_id, provider AS _provider, source_id AS _source_id,
           {ranks}
    FROM (
        SELECT profile_id, provider, source_id, _recent, _oldest, _ingested_at, _priority,
               _consent_at{counts}
        FROM linked
    ) AS counted
),
ranked AS (
    SELECT * FROM linked AS l JOIN ranks AS r ON r._profile_id = l.profile_id
        AND r._provider = l.provider AND r._source_id = l.source_id
),
chosen AS (
    SELECT profile_id,
       {picks},
       arg_min({ROW}, _by_consent) FILTER (WHERE _consent_at IS NOT NULL) AS {CONSENT_PICK},
       COUNT(*) AS records, MIN(created_at) AS _records_created_at,
       MAX(updated_at) AS _records_updated_at,
       MIN(least(created_at, updated_at)) AS _records_first,
       MAX(greatest(created_at, updated_at)) AS _records_last
    FROM ranked GROUP BY profile_id
)"""


# avg_order_value = revenue / priced orders, rounded half away from zero to 4 places, in
# whole ten-thousandths (BIGINT: exact on both engines; decimal division is not).
_UNITS_SQL = "CAST(CAST(revenue AS DECIMAL(38, 4)) * 10000 AS BIGINT)"
_AVG = f"""CASE WHEN priced > 0 THEN CAST(
        CAST(CASE WHEN {_UNITS_SQL} < 0
                  THEN -((2 * -{_UNITS_SQL} + priced) // (2 * priced))
                  ELSE (2 * {_UNITS_SQL} + priced) // (2 * priced) END AS DECIMAL(18, 0))
        * CAST(0.0001 AS DECIMAL(18, 4)) AS DECIMAL(18, 4)) END"""

_ORDERS = f"""
order_rows AS (
    SELECT o.profile_id, o.currency, o.total_amount, o.created_at
    FROM orders AS o JOIN profiles AS p ON p.profile_id = o.profile_id
),
main_currency AS (
    SELECT profile_id, currency FROM (
        SELECT profile_id, currency, ROW_NUMBER() OVER (PARTITION BY profile_id
                   ORDER BY n DESC, latest DESC NULLS LAST, currency) AS rn
        FROM (SELECT profile_id, currency, COUNT(*) AS n, MAX(created_at) AS latest
              FROM order_rows WHERE currency IS NOT NULL
              GROUP BY profile_id, currency) AS per_currency
    ) AS ranked_currencies WHERE rn = 1
),
order_sums AS (
    SELECT o.profile_id, COUNT(*) AS order_count, MAX(mc.currency) AS currency,
           MIN(o.created_at) AS first_order_at, MAX(o.created_at) AS last_order_at,
           CAST(SUM(CASE WHEN o.currency IS NOT DISTINCT FROM mc.currency
                         THEN o.total_amount END) AS DECIMAL(18, 4)) AS revenue,
           COUNT(CASE WHEN o.currency IS NOT DISTINCT FROM mc.currency
                      THEN o.total_amount END) AS priced
    FROM order_rows AS o LEFT JOIN main_currency AS mc ON mc.profile_id = o.profile_id
    GROUP BY o.profile_id
),
order_facts AS (
    SELECT profile_id, order_count, currency, first_order_at, last_order_at,
           COALESCE(revenue, CAST(0 AS DECIMAL(18, 4))) AS total_revenue,
           {_AVG} AS avg_order_value,
           CAST(NTILE(5) OVER (ORDER BY last_order_at NULLS FIRST, profile_id) AS INTEGER)
               AS rfm_recency,
           CAST(NTILE(5) OVER (ORDER BY order_count, profile_id) AS INTEGER) AS rfm_frequency,
           CAST(NTILE(5) OVER (ORDER BY COALESCE(revenue, CAST(0 AS DECIMAL(18, 4))),
                               profile_id) AS INTEGER) AS rfm_monetary
    FROM order_sums
)"""


def _has(key: str) -> str:
    """The JSON text `e.context` has a value at `$.{key}` (a cheap text test first: the
    key's name is in the text of any document that has it)."""
    return (
        f"(contains(e.context, '\"{key}\"') "
        f"AND json_extract_string(e.context, '$.{key}') IS NOT NULL)"
    )


def _channel() -> str:
    library = "lower(json_extract_string(e.context, '$.library.name'))"
    mobile = f"(contains(e.context, '\"library\"') AND regexp_matches({library}, " + (
        f"'{'|'.join(MOBILE_LIBRARIES)}'))"
    )
    agent = "nullif(json_extract_string(e.context, '$.userAgent'), '')"
    return f"""CASE
        WHEN {_has("app")} OR {mobile} THEN 'app'
        WHEN {_has("page")} OR (contains(e.context, '"userAgent"') AND {agent} IS NOT NULL)
            THEN 'web'
        ELSE 'server' END"""


_EVENTS = f"""
event_rows AS (
    SELECT e.profile_id, e.provider, e."timestamp" AS event_at, {_channel()} AS channel
    FROM events AS e JOIN profiles AS p ON p.profile_id = e.profile_id
),
channels AS (
    SELECT profile_id, channel, COUNT(*) AS n, MIN(event_at) AS first_at, MAX(event_at) AS last_at
    FROM event_rows GROUP BY profile_id, channel
),
event_facts AS (
    SELECT profile_id, MIN(first_at) AS first_event_at, MAX(last_at) AS last_event_at,
           MAX(CASE WHEN rn = 1 THEN channel END) AS preferred_channel
    FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY profile_id ORDER BY n DESC, channel)
              AS rn FROM channels) AS ranked_channels
    GROUP BY profile_id
),
sources AS (
    SELECT profile_id,
           COALESCE(list_sort(list(provider) FILTER (WHERE provider IS NOT NULL)), [])
               AS sources
    FROM (SELECT DISTINCT profile_id, provider FROM (
              SELECT profile_id, provider FROM linked
              UNION ALL SELECT profile_id, provider FROM event_rows) AS both_sources
         ) AS distinct_sources
    GROUP BY profile_id
)"""

_FIRST_SEEN = "least(c._records_first, f.first_order_at, e.first_event_at)"
_LAST_SEEN = "greatest(c._records_last, f.last_order_at, e.last_event_at)"


def profiles_sql(rules: Mapping[str, SurvivorshipRule], unlisted_rank: int) -> str:
    """One row per profile of `members`, by profile_id. `rules` maps each trait group's
    name to its rule; providers missing from `priority` rank `unlisted_rank`."""
    chosen = ", ".join(f"c.{pick_column(g)}" for g in GROUPS)
    return f"""
WITH profiles AS (
    SELECT DISTINCT profile_id FROM members WHERE profile_id IS NOT NULL
),
{_survivors(rules, unlisted_rank)},
{_ORDERS},
{_EVENTS}
SELECT p.profile_id, {chosen}, c.{CONSENT_PICK},
       COALESCE(c.records, 0) AS records, s.sources, COALESCE(c.records, 0) > 0 AS identified,
       COALESCE(f.order_count, 0) AS order_count,
       COALESCE(f.total_revenue, CAST(0 AS DECIMAL(18, 4))) AS total_revenue,
       f.avg_order_value, f.currency, f.first_order_at, f.last_order_at,
       {_FIRST_SEEN} AS first_seen_at, {_LAST_SEEN} AS last_seen_at,
       f.rfm_recency, f.rfm_frequency, f.rfm_monetary,
       CAST(f.rfm_recency AS VARCHAR) || CAST(f.rfm_frequency AS VARCHAR)
           || CAST(f.rfm_monetary AS VARCHAR) AS rfm_segment,
       e.preferred_channel,
       COALESCE(c._records_created_at, {_FIRST_SEEN}) AS created_at,
       COALESCE(c._records_updated_at, {_LAST_SEEN}) AS updated_at
FROM profiles AS p
LEFT JOIN chosen AS c ON c.profile_id = p.profile_id
LEFT JOIN order_facts AS f ON f.profile_id = p.profile_id
LEFT JOIN event_facts AS e ON e.profile_id = p.profile_id
LEFT JOIN sources AS s ON s.profile_id = p.profile_id
ORDER BY p.profile_id"""


def external_ids_sql() -> str:
    """(profile_id, id_provider, id_value): the union of a profile's records' external ids,
    for a provider with several, the id of its most recent record. Reads `members` and
    `external_ids` (EXTERNAL_ID_COLUMNS)."""
    return f"""
SELECT profile_id, id_provider, id_value FROM (
    SELECT m.profile_id, x.id_provider, x.id_value,
           ROW_NUMBER() OVER (PARTITION BY m.profile_id, x.id_provider ORDER BY
               COALESCE(x.updated_at, x.created_at) DESC NULLS LAST,
               x._ingested_at DESC NULLS LAST, x.provider, x.source_id, x.id_value) AS rn
    FROM external_ids AS x
    JOIN members AS m ON m.node = '{RECORD_PREFIX}:' || x.provider || ':' || x.source_id
    WHERE m.profile_id IS NOT NULL AND x.id_provider IS NOT NULL AND x.id_value IS NOT NULL
) AS ranked WHERE rn = 1"""
