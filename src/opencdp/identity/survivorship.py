"""Survivorship and computed traits: the `profiles` table.

Each trait is chosen among a profile's customer records by its rule (settings.identity:
`trait_rules`, `default_rule`), always among the records that have a value, so a gap in
one record is filled from a linked one; traits that belong together (the address, email
and its domain, phone and its country) come from one record. `trait_lineage` names the
record and rule behind every non-null trait.

Computed traits:
- `total_revenue` and `avg_order_value` (rounded half away from zero to 4 places) count
  only the orders in the profile's `currency`: its most frequent order currency (ties: the
  one of the latest order, then alphabetical). Amounts in other currencies are left out,
  never added up across currencies; `order_count` counts every order, whatever its
  currency or status. A profile without orders has order_count 0, total_revenue 0, and no
  average, currency or RFM scores.
- RFM scores are quintiles (NTILE(5), 5 best) among the tenant's profiles with orders, by
  last_order_at, order_count and total_revenue (the number, whatever its currency); equal
  values are split by profile_id, so a score depends on the rest of the tenant.
- `preferred_channel`: app, web or server (see traits.MOBILE_LIBRARIES for how an event's
  `context` decides), the one of most of the profile's events, ties alphabetically.

The set-based work is SQL (traits.py) run by the engine. It answers which record each
trait group comes from, by position; the values are taken from the records and the two map
columns assembled here with vectorized Arrow kernels.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from opencdp.engine.base import Engine
from opencdp.identity import traits
from opencdp.identity.model import LINEAGE, PROFILES, TRAITS
from opencdp.settings import IdentitySettings
from opencdp.transform.model import TIMESTAMP

_IDS = PROFILES.field("external_ids").type
_LINEAGE_MAP = PROFILES.field("trait_lineage").type
_ENTRIES = pa.list_(
    pa.struct([pa.field("key", pa.string(), nullable=False), pa.field("value", pa.string())])
)


def build_profiles(
    engine: Engine,
    members: pa.Table,
    customers: pa.Table,
    orders: pa.Table,
    events: pa.Table,
    settings: IdentitySettings,
    now: datetime,
) -> pa.Table:
    """The profiles table (identity.model.PROFILES) of the profiles in `members` (node,
    profile_id), sorted by profile_id. `orders` and `events` carry their profile_id;
    `now` only stands in for created_at and updated_at when nothing has a time."""
    rules = traits.rules_of(settings)
    priority = list(dict.fromkeys(settings.source_priority))
    graph = members.select(["node", "profile_id"])
    records = customers.select(list(traits.CUSTOMER_COLUMNS))
    records = records.append_column(traits.ROW, pa.array(np.arange(records.num_rows), pa.int64()))
    wide = engine.query(
        traits.profiles_sql(rules, len(priority)),
        {
            "members": graph,
            "customers": records,
            "orders": orders.select(list(traits.ORDER_COLUMNS)),
            "events": events.select(list(traits.EVENT_COLUMNS)),
            "priority": pa.table(
                {
                    "provider": pa.array(priority, pa.string()),
                    "rank": pa.array(range(len(priority)), pa.int64()),
                }
            ),
        },
    )
    ids = engine.query(
        traits.external_ids_sql(),
        {"members": graph, "external_ids": _external_id_entries(customers)},
    )
    return _assemble(wide, records, ids, rules, now)


def _assemble(
    wide: pa.Table, records: pa.Table, ids: pa.Table, rules: Mapping[str, str], now: datetime
) -> pa.Table:
    profile_ids = _column(wide, "profile_id", pa.string())
    columns: dict[str, pa.Array] = {}
    for field in PROFILES:
        if field.name in wide.column_names:
            columns[field.name] = _column(wide, field.name, field.type)
    # The chosen records' values, by position.
    picks = [_column(wide, traits.pick_column(group), pa.int64()) for group in traits.GROUPS]
    for group, rows in zip(traits.GROUPS, picks, strict=True):
        for trait in group.traits:
            columns[trait] = _taken(records, trait, rows).cast(PROFILES.field(trait).type)
    consent = _taken(records, "consent", _column(wide, traits.CONSENT_PICK, pa.int64()))
    columns["consent"] = consent.cast(PROFILES.field("consent").type)
    columns["external_ids"] = _external_ids(profile_ids, ids)
    columns["trait_lineage"] = _lineage(columns, picks, records, rules)
    empty = pa.scalar([], PROFILES.field("sources").type)
    columns["sources"] = pc.fill_null(columns["sources"], empty)
    moment = pa.scalar(now, TIMESTAMP)
    for name in ("created_at", "updated_at"):
        columns[name] = pc.fill_null(columns[name], moment)
    return pa.Table.from_arrays([columns[f.name] for f in PROFILES], schema=PROFILES)


def _column(table: pa.Table, name: str, kind: pa.DataType) -> pa.Array:
    """One column as a single array of `kind` (a safe cast: Spark's types differ)."""
    return table.column(name).combine_chunks().cast(kind)


def _taken(records: pa.Table, name: str, rows: pa.Array) -> pa.Array:
    """A column of the records at `rows` (null where a row is null)."""
    return records.column(name).combine_chunks().take(rows)


def _external_id_entries(customers: pa.Table) -> pa.Table:
    """customers' external_ids, one row per entry, with the record's key and times."""
    # As a list of entries: list kernels do not take map arrays.
    ids = customers.column("external_ids").combine_chunks().cast(_ENTRIES)
    parents = pc.list_parent_indices(ids)
    entries = pc.list_flatten(ids)
    records = customers.select(list(traits.EXTERNAL_ID_COLUMNS[:5])).take(parents)
    return records.append_column("id_provider", entries.field("key")).append_column(
        "id_value", entries.field("value")
    )


def _external_ids(profile_ids: pa.Array, ids: pa.Table) -> pa.Array:
    rows = pc.index_in(ids.column("profile_id"), value_set=profile_ids)
    keys = _column(ids, "id_provider", pa.string())
    values = _column(ids, "id_value", pa.string())
    return _maps(len(profile_ids), rows, keys, keys, values, _IDS)


def _lineage(
    columns: Mapping[str, pa.Array],
    picks: list[pa.Array],
    records: pa.Table,
    rules: Mapping[str, str],
) -> pa.Array:
    """trait -> {provider, source_id, rule} for each non-null trait, in TRAITS order;
    `picks` holds each group's chosen record (its position in `records`), per profile."""
    names = [name for name, _ in TRAITS]
    group_of = {trait: i for i, group in enumerate(traits.GROUPS) for trait in group.traits}
    present = np.column_stack(
        [columns[name].is_valid().to_numpy(zero_copy_only=False) for name in names]
    )
    # Row-major: the entries come by profile, and within one in TRAITS order, as the map
    # lays them out (no sort).
    rows, trait_index = np.nonzero(present)
    groups = np.array([group_of[name] for name in names])[trait_index]
    profiles = len(picks[0])
    record = pa.concat_arrays(picks).take(pa.array(groups * profiles + rows))
    rule_names = pa.array([rules[group.name] for group in traits.GROUPS], pa.string())
    items = pa.StructArray.from_arrays(
        [
            _taken(records, "provider", record),
            _taken(records, "source_id", record),
            rule_names.take(pa.array(groups)),
        ],
        fields=list(LINEAGE),
    )
    offsets = np.concatenate([[0], np.cumsum(present.sum(axis=1))]).astype(np.int32)
    keys = pa.array(names, pa.string()).take(pa.array(trait_index))
    return pa.MapArray.from_arrays(pa.array(offsets), keys, items, type=_LINEAGE_MAP)


def _maps(
    n: int,
    rows: pa.Array,
    order: pa.Array,
    keys: pa.Array,
    items: pa.Array,
    kind: pa.DataType,
) -> pa.Array:
    """n maps (an empty one for a row without entries) from entries (row, key, item),
    placed in each map by `order`."""
    entries = pa.table({"row": rows.cast(pa.int64()), "order": order})
    sort = pc.sort_indices(entries, [("row", "ascending"), ("order", "ascending")])
    counts = entries.group_by("row").aggregate([("row", "count")])
    every_row = pa.table({"row": pa.array(range(n), pa.int64())})
    lengths = every_row.join(counts, "row", join_type="left outer").sort_by("row")
    sizes = pc.fill_null(lengths.column("row_count"), 0).combine_chunks()
    offsets = pa.concat_arrays(
        [pa.array([0], pa.int64()), pc.cumulative_sum(sizes).cast(pa.int64())]
    ).cast(pa.int32())
    return pa.MapArray.from_arrays(offsets, keys.take(sort), items.take(sort), type=kind)
