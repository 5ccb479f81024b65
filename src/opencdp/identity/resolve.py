"""One identity resolution run over a tenant's curated tables.

Read the customers, orders and events; extract identifiers; link nodes round by round in
the priority order (identifier rules, then the probabilistic model), under the
guardrails; keep profile ids stable; choose each profile's traits; write `identities`,
`profiles`, `profile_members`, `identity_links` and `profile_merges`, and stamp the
profile ids on customers, orders and events.

The graph is resolved whole every run (linking is not local: one new record can join two
old profiles); what stays from run to run is each node's profile id and the trained model.
The model needs only the customer records, so it trains and scores them in a thread while
the rest is read and the identifier rules link (its pairs join the last, probabilistic
round). It is the longer path: meanwhile the rules' queries run on one thread. Nothing else
runs beside the rest: the traits' queries and the restamp's Parquet writing each use every
core, and together they took longer than one after the other (measured).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import AlwaysTrue

from opencdp.engine.base import Engine
from opencdp.errors import NotFoundError
from opencdp.identity import attribute, links
from opencdp.identity.identifiers import extract_identifiers, node_sql
from opencdp.identity.matching import PAIRS, match_records, model_key
from opencdp.identity.model import (
    IDENTITIES,
    IDENTITY_LINKS,
    PROFILE_MEMBERS,
    PROFILE_MERGES,
    PROFILES,
    RECORD_PREFIX,
)
from opencdp.identity.rules import RuleBook
from opencdp.identity.stable import assign_ids
from opencdp.identity.survivorship import build_profiles
from opencdp.lake import ensure_namespace, open_catalog
from opencdp.lake.commit import FOLLOW_UP_PREFIX, commit, ensure_table
from opencdp.lake.tables import read_table
from opencdp.settings import IdentitySettings, Settings
from opencdp.storage.objectstore import ObjectStore, store_for
from opencdp.transform.model import CUSTOMERS, EVENTS, ORDERS
from opencdp.transform.model import TABLES as TABLES_BY_NAME

Say = Callable[[str], None]
# Stages that run in a thread of their own, alongside the others (ResolveReport.seconds):
# the model trains and scores while the identifier rules link.
MODEL_STAGE = "model"
BACKGROUND_STAGES = (MODEL_STAGE,)


@dataclass
class ResolveReport:
    run_id: str
    records: int = 0
    devices: int = 0
    identifiers: int = 0
    profiles: int = 0
    identified_profiles: int = 0
    links: dict[str, int] = field(default_factory=dict)  # rule -> links accepted
    blocked: int = 0
    possible_matches: int = 0
    merges: int = 0
    splits: int = 0
    model_trained: bool = False
    model_skipped: str | None = None  # why no model linked anything
    restamped: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return dict(self.__dict__.items())


class Resolver:
    def __init__(
        self,
        catalog: Catalog,
        store: ObjectStore,
        engine: Engine,
        tenant: str,
        settings: IdentitySettings,
        say: Say,
    ) -> None:
        self.catalog, self.store, self.engine = catalog, store, engine
        self.tenant, self.settings, self.say = tenant, settings, say
        self.model_key = model_key(tenant)
        self.now = datetime.now(UTC)
        self.report = ResolveReport(run_id=f"{FOLLOW_UP_PREFIX}{self.now:%Y%m%dT%H%M%S%f}")

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.report.seconds[stage] = round(time.perf_counter() - start, 3)

    def run(self, *, retrain: bool = False) -> ResolveReport:
        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="identity") as background,
            ExitStack() as model_running,
        ):
            with self.timed("read"):
                customers = self._scan("customers", CUSTOMERS.schema)
                matched = None
                if "probabilistic" in self.settings.priority:
                    # Splink leaves part of the cores idle between its many small queries;
                    # the reads and the rounds fill them, on one thread until it is done.
                    matched = background.submit(self._match, customers, retrain)
                    model_running.enter_context(self.engine.leave_cores_to_linkage())
                tables = {
                    "customers": customers,
                    "orders": self._scan("orders", ORDERS.schema),
                    "events": self._scan("events", EVENTS.schema),
                }
                previous = self._scan("profile_members", PROFILE_MEMBERS, ("node", "profile_id"))
                history = self._scan("profile_merges", PROFILE_MERGES, ("kind", "other_profile_id"))
                retired = pc.filter(
                    history.column("other_profile_id"), pc.equal(history.column("kind"), "merge")
                ).combine_chunks()
            rules = RuleBook(self.store, self.tenant).load()
            guard = links.Guardrails(
                limits=self.settings.limits,
                max_people=self.settings.max_people,
                blocked_values=rules.blocked_table(),
                apart=rules.apart_table(),
            )
            with self.timed("identifiers"):
                ids, nodes = self._identifiers(tables["customers"], tables["events"])
            state, pairs = self._link(ids, nodes, guard, matched, model_running.close)
            with self.timed("profile_ids"):
                accepted = self._links(state, pairs)
                assignment = assign_ids(
                    self.engine, state.groups, previous, retired, accepted, guard.apart
                )
                members = assignment.members
                identities = self._identities(ids, members, state, accepted, guard.blocked_values)
            with self.timed("stamp"):
                stamped = {
                    name: attribute.stamp(
                        self.engine, TABLES_BY_NAME[name], rows, members, identities
                    )
                    for name, rows in tables.items()
                }
            with self.timed("traits"):
                final = {name: rows.drop_columns(["_previous"]) for name, rows in stamped.items()}
                profiles = build_profiles(
                    self.engine,
                    members,
                    final["customers"],
                    final["orders"],
                    final["events"],
                    self.settings,
                    self.now,
                )
                link_rows = self._link_rows(accepted, pairs, members)
            self._count(profiles, identities, link_rows, assignment.changes)
            with self.timed("restamp"):
                self._restamp(stamped)
            with self.timed("write"):
                self._replace("identities", identities, IDENTITIES)
                self._replace("profiles", profiles, PROFILES)
                self._replace("identity_links", link_rows, IDENTITY_LINKS)
                self._append_merges(assignment.changes)
                # Last: the state the next run keeps its ids from.
                self._replace("profile_members", self._members(members), PROFILE_MEMBERS)
        return self.report

    def _identifiers(self, customers: pa.Table, events: pa.Table) -> tuple[pa.Table, pa.Table]:
        ids = extract_identifiers(self.engine, customers, events, self.settings)
        nodes = self.engine.query(
            f"SELECT DISTINCT node FROM ids UNION "
            f"SELECT {node_sql(RECORD_PREFIX, 'provider', 'source_id')} AS node FROM customers",
            {"ids": ids, "customers": customers},
        )
        report = self.report
        report.identifiers, report.records = ids.num_rows, customers.num_rows
        report.devices = (
            nodes.num_rows
            - self.engine.query(
                f"SELECT node FROM nodes WHERE node LIKE '{RECORD_PREFIX}:%'", {"nodes": nodes}
            ).num_rows
        )
        self.say(
            f"{customers.num_rows:,} customer records, {report.devices:,} devices, "
            f"{ids.num_rows:,} identifiers"
        )
        return ids, nodes

    def _link(
        self,
        ids: pa.Table,
        nodes: pa.Table,
        guard: links.Guardrails,
        matched: Future[pa.Table] | None,
        model_done: Callable[[], None],
    ) -> tuple[links.Linking, pa.Table | None]:
        """One round per link rule, in priority order; the model's scored pairs too
        (`matched`: the model's pairs, being scored, when a rule is probabilistic;
        `model_done` is called once they are in)."""
        engine, threshold = self.engine, float(self.settings.match_threshold)
        state = links.Linking.start(engine, nodes, ids, self.settings.limits)
        pairs = None
        for rule in self.settings.priority:
            with self.timed(f"link_{rule}"):
                if rule == "probabilistic":
                    assert matched is not None, "the model runs when a rule needs it"
                    pairs = matched.result()
                    model_done()
                    candidates = engine.query(
                        _PAIR_CANDIDATES + f" WHERE probability >= {threshold!r}",
                        {"pairs": pairs},
                    )
                else:
                    candidates = links.identifier_candidates(engine, ids, rule)
                before = sum(t.num_rows for t in state.links)
                links.run_round(engine, state, rule, candidates, guard)
                self.report.links[rule] = sum(t.num_rows for t in state.links) - before
            self.say(f"{rule}: {self.report.links[rule]:,} links")
        return state, pairs

    def _count(
        self, profiles: pa.Table, identities: pa.Table, link_rows: pa.Table, changes: pa.Table
    ) -> None:
        report = self.report
        report.profiles = profiles.num_rows
        report.identified_profiles = pc.sum(profiles.column("identified")).as_py() or 0
        report.blocked = pc.sum(identities.column("blocked")).as_py() or 0
        report.possible_matches = (
            pc.sum(pc.equal(link_rows.column("status"), "possible")).as_py() or 0
        )
        report.merges = pc.sum(pc.equal(changes.column("kind"), "merge")).as_py() or 0
        report.splits = pc.sum(pc.equal(changes.column("kind"), "split")).as_py() or 0

    # --- steps ------------------------------------------------------------------------

    def _match(self, customers: pa.Table, retrain: bool) -> pa.Table:
        with self.timed(MODEL_STAGE):
            return self._scored_pairs(customers, retrain)

    def _restamp(self, stamped: dict[str, pa.Table]) -> None:
        """Commit the partitions of customers, orders and events whose profile ids changed."""
        for name, rows in stamped.items():
            model = TABLES_BY_NAME[name]
            lake = self._table(name, model.schema, model.partition)
            self.report.restamped[name] = attribute.rewrite(
                self.engine, model, lake, rows, self.report.run_id
            )

    def _scored_pairs(self, customers: pa.Table, retrain: bool) -> pa.Table:
        model: dict[str, Any] | None = None
        if not retrain:
            try:
                model = orjson.loads(self.store.read(self.model_key))
            except NotFoundError:
                model = None
        result = match_records(
            self.engine, customers, threshold=self.settings.possible_threshold, model=model
        )
        if result.skipped:
            self.report.model_skipped = result.skipped
            self.say(f"no probabilistic links: {result.skipped}")
        elif result.trained:
            self.store.write(self.model_key, orjson.dumps(result.model), overwrite=True)
            self.report.model_trained = True
            self.say(f"probabilistic model trained on {result.compared:,} records")
        return result.pairs

    def _links(self, state: links.Linking, pairs: pa.Table | None) -> pa.Table:
        """Accepted links with the probability of model links."""
        accepted = pa.concat_tables(state.links) if state.links else links.LINKS.empty_table()
        return self.engine.query(
            """
            SELECT l.left_node, l.right_node, l.rule,
                   CASE WHEN l.rule = 'probabilistic' THEN NULL ELSE l.id_type END AS id_type,
                   CASE WHEN l.rule = 'probabilistic' THEN NULL ELSE l.id_value END AS id_value,
                   p.probability, p.evidence
            FROM accepted AS l
            LEFT JOIN pairs AS p ON l.rule = 'probabilistic'
             AND p.left_node = least(l.left_node, l.right_node)
             AND p.right_node = greatest(l.left_node, l.right_node)
            """,
            {"accepted": accepted, "pairs": pairs if pairs is not None else PAIRS.empty_table()},
        )

    def _link_rows(self, linked: pa.Table, pairs: pa.Table | None, members: pa.Table) -> pa.Table:
        """IDENTITY_LINKS: the links that joined profiles, and the model's possible
        matches (and refused matches) between different profiles, for review."""
        review = self.engine.query(
            f"""
            SELECT ml.profile_id, p.left_node, p.right_node,
                   CASE WHEN p.probability >= {float(self.settings.match_threshold)!r}
                        THEN 'refused' ELSE 'possible' END AS status,
                   'probabilistic' AS rule, CAST(NULL AS VARCHAR) AS id_type,
                   CAST(NULL AS VARCHAR) AS id_value, p.probability, p.evidence
            FROM pairs AS p
            JOIN members AS ml ON ml.node = p.left_node
            JOIN members AS mr ON mr.node = p.right_node
            WHERE ml.profile_id <> mr.profile_id
            """,
            {"pairs": pairs if pairs is not None else PAIRS.empty_table(), "members": members},
        )
        joined = self.engine.query(
            "SELECT m.profile_id, l.left_node, l.right_node, 'linked' AS status, l.rule, "
            "l.id_type, l.id_value, l.probability, l.evidence "
            "FROM linked AS l JOIN members AS m ON m.node = l.left_node",
            {"linked": linked, "members": members},
        )
        return pa.concat_tables([joined.cast(IDENTITY_LINKS), review.cast(IDENTITY_LINKS)])

    def _identities(
        self,
        ids: pa.Table,
        members: pa.Table,
        state: links.Linking,
        accepted: pa.Table,
        manual: pa.Table,
    ) -> pa.Table:
        refused = pa.concat_tables(state.blocked) if state.blocked else links.BLOCKED.empty_table()
        return self.engine.query(
            _IDENTITIES,
            {
                "ids": ids,
                "members": members,
                "accepted": accepted,
                "refused": refused,
                "manual": manual,
            },
        ).cast(IDENTITIES)

    def _members(self, members: pa.Table) -> pa.Table:
        return self.engine.query(
            """
            SELECT node, profile_id,
                   CASE WHEN node LIKE 'a:%' THEN 'device' ELSE 'record' END AS kind,
                   split_part(node, ':', 2) AS provider,
                   substr(node, length(split_part(node, ':', 2)) + 4) AS source_id
            FROM members
            """,
            {"members": members},
        ).cast(PROFILE_MEMBERS)

    # --- lake -------------------------------------------------------------------------

    def _scan(
        self, name: str, schema: pa.Schema, columns: tuple[str, ...] | None = None
    ) -> pa.Table:
        return read_table(self.catalog, self.tenant, name, schema, columns)

    def _table(self, name: str, schema: pa.Schema, partition: Any = ()) -> Any:
        return ensure_table(self.catalog, self.tenant, name, schema, partition, {})

    def _replace(self, name: str, data: pa.Table, schema: pa.Schema) -> None:
        commit(
            self._table(name, schema),
            data.cast(schema),
            run_id=self.report.run_id,
            replace=AlwaysTrue(),
        )

    def _append_merges(self, changes: pa.Table) -> None:
        table = self._table("profile_merges", PROFILE_MERGES)  # there, even while empty
        if changes.num_rows == 0:
            return
        rows = changes.append_column(
            "run_id", pa.array([self.report.run_id] * changes.num_rows, pa.string())
        ).append_column(
            "changed_at",
            pa.array([self.now] * changes.num_rows, PROFILE_MERGES.field("changed_at").type),
        )
        commit(
            table,
            rows.select(PROFILE_MERGES.names).cast(PROFILE_MERGES),
            run_id=self.report.run_id,
            replace=None,
        )


# A model link is a "value" carried by its two records.
_PAIR_CANDIDATES = """
SELECT node, 'match' AS id_type, left_node || ' ' || right_node AS id_value,
       probability AS weight
FROM (SELECT left_node AS node, left_node, right_node, probability FROM pairs
      UNION ALL
      SELECT right_node AS node, left_node, right_node, probability FROM pairs) AS ends
"""

# One row per identifier value: its profile (when all its nodes are in one), the rule that
# linked through it (else "record": it came with a record and joined nothing), how sure the
# link to the profile is, whether it is blocked and why. A node that only the model joined
# to its profile is as sure as its likeliest model link; any other node, certain.
_IDENTITIES = """
WITH model_only AS (
    SELECT node, max(probability) AS confidence FROM (
        SELECT left_node AS node, probability FROM accepted WHERE rule = 'probabilistic'
        UNION ALL
        SELECT right_node AS node, probability FROM accepted WHERE rule = 'probabilistic'
    ) AS ends
    WHERE node NOT IN (
        SELECT left_node FROM accepted WHERE rule <> 'probabilistic'
        UNION ALL
        SELECT right_node FROM accepted WHERE rule <> 'probabilistic'
    )
    GROUP BY node
),
carried AS (
    SELECT i.id_type, i.id_value, m.profile_id, i.first_seen, i.last_seen,
           coalesce(c.confidence, 1.0) AS confidence
    FROM ids AS i JOIN members AS m ON m.node = i.node
    LEFT JOIN model_only AS c ON c.node = i.node
),
agg AS (
    SELECT id_type, id_value, count(DISTINCT profile_id) AS profiles,
           min(profile_id) AS profile_id, count(*) AS records,
           min(first_seen) AS first_seen, max(last_seen) AS last_seen,
           max(confidence) AS confidence
    FROM carried GROUP BY id_type, id_value
),
linked AS (
    SELECT id_type, id_value, min(rule) AS rule FROM accepted
    WHERE rule <> 'probabilistic' GROUP BY id_type, id_value
),
why AS (
    SELECT id_type, id_value, min(reason) AS reason FROM (
        SELECT id_type, id_value, reason FROM refused WHERE id_type <> 'match'
        UNION ALL
        SELECT id_type, id_value, 'blocked by an unlink rule' AS reason FROM manual
    ) AS r GROUP BY id_type, id_value
)
SELECT a.id_type, a.id_value,
       CASE WHEN a.profiles = 1 THEN a.profile_id END AS profile_id,
       coalesce(l.rule, 'record') AS rule,
       CAST(a.confidence AS DOUBLE) AS confidence,
       CAST(a.records AS BIGINT) AS records, a.first_seen, a.last_seen,
       w.reason IS NOT NULL AS blocked, w.reason AS blocked_reason
FROM agg AS a
LEFT JOIN linked AS l ON l.id_type = a.id_type AND l.id_value = a.id_value
LEFT JOIN why AS w ON w.id_type = a.id_type AND w.id_value = a.id_value
"""


def resolve(
    settings: Settings,
    tenant: str,
    engine: Engine,
    *,
    retrain: bool = False,
    say: Say = lambda _: None,
) -> ResolveReport:
    """Resolve the tenant's identities from its curated tables (see the module doc)."""
    with open_catalog(settings) as catalog:
        ensure_namespace(catalog, tenant)
        resolver = Resolver(
            catalog, store_for(settings), engine, tenant, settings.tenant(tenant).identity, say
        )
        return resolver.run(retrain=retrain)
