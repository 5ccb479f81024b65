"""Reading identity resolution's results back: stats, one profile's explanation, and the
score against a generated tenant's ground truth. Read-only, over the curated tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from opencdp.engine import duckdb_query
from opencdp.errors import NotFoundError
from opencdp.identity import accuracy, truth
from opencdp.identity.model import (
    IDENTITIES,
    IDENTITY_LINKS,
    PROFILE_MEMBERS,
    PROFILE_MERGES,
    PROFILES,
)
from opencdp.lake import open_catalog
from opencdp.lake.tables import read_table
from opencdp.settings import Settings
from opencdp.transform.model import CUSTOMERS, EVENTS

_SCHEMAS = {
    "identities": IDENTITIES,
    "identity_links": IDENTITY_LINKS,
    "profile_members": PROFILE_MEMBERS,
    "profile_merges": PROFILE_MERGES,
    "profiles": PROFILES,
    "customers": CUSTOMERS.schema,
    "events": EVENTS.schema,
}
_TOP_BLOCKED = 10


def _tables(
    settings: Settings, tenant: str, names: dict[str, tuple[str, ...] | None]
) -> dict[str, pa.Table]:
    """The named tables (with only the given columns), empty for one not yet written."""
    with open_catalog(settings) as catalog:
        return {
            name: read_table(catalog, tenant, name, _SCHEMAS[name], columns)
            for name, columns in names.items()
        }


def _rows(sql: str, tables: dict[str, pa.Table]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = duckdb_query.execute(sql, tables).to_pylist()
    return rows


def identity_stats(settings: Settings, tenant: str) -> dict[str, Any]:
    t = _tables(
        settings,
        tenant,
        {
            "profile_members": ("node", "profile_id", "kind"),
            "identities": ("id_type", "id_value", "records", "blocked", "blocked_reason"),
            "identity_links": ("status",),
            "profile_merges": ("run_id", "kind"),
        },
    )
    if t["profile_members"].num_rows == 0:
        raise NotFoundError(
            f"tenant {tenant!r} has no resolved profiles yet",
            hint=f"run `opencdp identity resolve --tenant {tenant}`",
        )
    (counts,) = _rows(
        """
        SELECT count(*) FILTER (WHERE kind = 'record') AS records,
               count(DISTINCT profile_id) FILTER (WHERE kind = 'record') AS identified,
               count(DISTINCT profile_id) AS profiles
        FROM profile_members
        """,
        t,
    )
    sizes = _rows(
        """
        SELECT CASE WHEN n >= 5 THEN '5+' ELSE CAST(n AS VARCHAR) END AS size,
               count(*) AS profiles
        FROM (SELECT profile_id, count(*) AS n FROM profile_members WHERE kind = 'record'
              GROUP BY profile_id) AS p
        GROUP BY size ORDER BY size
        """,
        t,
    )
    (links,) = _rows(
        "SELECT count(*) FILTER (WHERE status = 'possible') AS possible, "
        "count(*) FILTER (WHERE status = 'refused') AS refused FROM identity_links",
        t,
    )
    (history,) = _rows(
        """
        SELECT count(*) FILTER (WHERE kind = 'merge') AS merges,
               count(*) FILTER (WHERE kind = 'split') AS splits
        FROM profile_merges WHERE run_id = (SELECT max(run_id) FROM profile_merges)
        """,
        t,
    )
    top = _rows(
        f"""
        SELECT id_type, id_value, records, blocked_reason AS reason FROM identities
        WHERE blocked ORDER BY records DESC, id_type, id_value LIMIT {_TOP_BLOCKED}
        """,
        t,
    )
    (blocked,) = _rows("SELECT count(*) AS n FROM identities WHERE blocked", t)
    records, identified = counts["records"], counts["identified"]
    return {
        "records": records,
        "profiles": counts["profiles"],
        "identified_profiles": identified,
        "device_profiles": counts["profiles"] - identified,
        # The share of records that joined another: 0 when every record stands alone.
        "merge_rate": (records - identified) / records if records else 0.0,
        "profile_sizes": {row["size"]: row["profiles"] for row in sizes},
        "possible_matches": links["possible"],
        "refused_matches": links["refused"],
        "merges": history["merges"],
        "splits": history["splits"],
        "blocked": blocked["n"],
        "top_blocked": top,
    }


def explain(settings: Settings, tenant: str, profile_id: str) -> dict[str, Any]:
    t = _tables(
        settings,
        tenant,
        {
            "profile_members": None,
            "identity_links": None,
            "identities": None,
            "profile_merges": None,
            "customers": ("provider", "source_id", "email", "phone"),
        },
    )
    members = duckdb_query.execute(
        "SELECT node, kind FROM profile_members WHERE profile_id = $profile ORDER BY node",
        t,
        parameters={"profile": profile_id},
    ).to_pylist()
    if not members:
        raise NotFoundError(
            f"no profile {profile_id!r} in tenant {tenant!r}",
            hint=f'find ids with: opencdp query --tenant {tenant} "select profile_id from '
            'profiles limit 5"',
        )
    params = {"profile": profile_id}
    links = duckdb_query.execute(
        """
        SELECT left_node, right_node, rule,
               CASE WHEN id_type IS NOT NULL THEN id_type || ' = ' || id_value
                    ELSE 'match probability ' || CAST(round(probability, 4) AS VARCHAR)
                         || ' ' || coalesce(evidence, '') END AS why
        FROM identity_links WHERE profile_id = $profile AND status = 'linked'
        ORDER BY rule, left_node, right_node
        """,
        t,
        parameters=params,
    ).to_pylist()
    possible = duckdb_query.execute(
        """
        SELECT l.status, l.left_node, l.right_node, round(l.probability, 4) AS probability
        FROM identity_links AS l
        WHERE l.status <> 'linked' AND (
            l.left_node IN (SELECT node FROM profile_members WHERE profile_id = $profile)
            OR l.right_node IN (SELECT node FROM profile_members WHERE profile_id = $profile))
        ORDER BY l.probability DESC
        """,
        t,
        parameters=params,
    ).to_pylist()
    # Refused values of the profile's own records: often why it was not merged further.
    blocked = duckdb_query.execute(
        """
        WITH own AS (
            SELECT 'email' AS id_type, c.email AS id_value FROM customers AS c
            JOIN profile_members AS m ON m.provider = c.provider AND m.source_id = c.source_id
            WHERE m.profile_id = $profile AND m.kind = 'record'
            UNION
            SELECT 'phone' AS id_type, c.phone AS id_value FROM customers AS c
            JOIN profile_members AS m ON m.provider = c.provider AND m.source_id = c.source_id
            WHERE m.profile_id = $profile AND m.kind = 'record'
        )
        SELECT i.id_type, i.id_value, i.blocked_reason AS reason
        FROM identities AS i JOIN own AS o ON o.id_type = i.id_type AND o.id_value = i.id_value
        WHERE i.blocked ORDER BY i.id_type, i.id_value
        """,
        t,
        parameters=params,
    ).to_pylist()
    history = duckdb_query.execute(
        """
        SELECT run_id, kind, profile_id, other_profile_id, nodes, reason FROM profile_merges
        WHERE profile_id = $profile OR other_profile_id = $profile ORDER BY changed_at, kind
        """,
        t,
        parameters=params,
    ).to_pylist()
    return {
        "members": members,
        "links": links,
        "possible": possible,
        "blocked": blocked,
        "history": history,
    }


def score_tenant(settings: Settings, tenant: str, truth_path: Path) -> dict[str, Any]:
    """The tenant's profiles scored against the ground truth at `truth_path`."""
    known = truth.read_truth(truth_path)
    t = _tables(
        settings,
        tenant,
        {
            "customers": ("provider", "source_id", "profile_id"),
            "events": ("event_id", "type", "user_id", "provider"),
        },
    )
    records = truth.record_truth(known, t["events"])
    table, unassigned = truth.assignments(records, t["customers"])
    return {
        **accuracy.score(table).to_dict(),
        "records_without_curated_profile": unassigned,
        "segment_user_conflicts": truth.user_conflicts(known, t["events"]),
    }
