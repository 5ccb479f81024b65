"""Probabilistic matching: a Fellegi-Sunter model (Splink) over the customer records.

Records are compared on names, date of birth, email, phone and address within blocks (pairs
that share an email, a phone, a name and postcode, ...). The model is trained without
labels: u probabilities from random pairs, m probabilities by expectation-maximisation on
blocks that leave the trained comparisons free to vary. A trained model is kept per tenant
and passed back in by later runs, so that a link does not change because the model was
retrained on a slightly larger table; without one, the model is trained afresh.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from opencdp.engine.base import Engine
from opencdp.identity.identifiers import node_sql
from opencdp.identity.model import RECORD_PREFIX
from opencdp.storage import layout

# Splink's name for the record id column, and what links are read back as.
_UNIQUE_ID = "unique_id"
PAIRS = pa.schema(
    [
        pa.field("left_node", pa.string()),
        pa.field("right_node", pa.string()),
        pa.field("probability", pa.float64()),
        pa.field("evidence", pa.string()),
    ]
)
COMPARED = ("first_name", "last_name", "birth_date", "email", "phone", "postcode", "city",
            "address_line1")  # fmt: skip
# Records with fewer than this many of the compared traits carry too little to match on.
_INPUT_TYPES = {
    name: pa.field(name, pa.date32() if name == "birth_date" else pa.string()) for name in COMPARED
}
_MIN_TRAITS = 2
_RANDOM_PAIRS = 2_000_000
# Fewer records than this say too little about how often traits agree by chance.
MIN_TRAINING_RECORDS = 200
_SEED = 42

INPUT_SQL = f"""
SELECT {node_sql(RECORD_PREFIX, "provider", "source_id")} AS {_UNIQUE_ID},
       {", ".join(COMPARED)}
FROM customers
WHERE ({" + ".join(f"CAST({c} IS NOT NULL AS INTEGER)" for c in COMPARED)}) >= {_MIN_TRAITS}
"""


def model_key(tenant: str) -> str:
    """Where the tenant's trained model is kept in the object store."""
    return layout.state_key("identity", tenant, "model.json")


@dataclass(frozen=True)
class MatchResult:
    pairs: pa.Table  # PAIRS, probability >= the lower threshold asked for
    model: dict[str, Any]  # the trained Splink model
    compared: int  # records compared
    skipped: str | None = None  # why there was no model to match with
    trained: bool = False  # the model was trained on these records


def _settings() -> Any:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    # The address is one comparison: its parts agree together (a family shares all of
    # them), and as separate comparisons they would count the same evidence three times.
    address = cl.CustomComparison(
        output_column_name="address",
        comparison_levels=[
            cll.And(cll.NullLevel("address_line1"), cll.NullLevel("postcode")),
            cll.And(cll.ExactMatchLevel("address_line1"), cll.ExactMatchLevel("postcode")),
            cll.And(cll.JaroWinklerLevel("address_line1", 0.9), cll.ExactMatchLevel("postcode")),
            cll.ExactMatchLevel("postcode"),
            cll.ExactMatchLevel("city"),
            cll.ElseLevel(),
        ],
    )
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name=_UNIQUE_ID,
        blocking_rules_to_generate_predictions=[
            block_on("email"),
            block_on("phone"),
            block_on("last_name", "postcode"),
            block_on("first_name", "last_name"),
            block_on("first_name", "birth_date"),
            block_on("address_line1", "postcode"),
        ],
        comparisons=[
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("last_name").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("birth_date", input_is_string=False),
            # Exact, or one typo apart: similar-looking addresses (anna.smith12@ and
            # anna.smith1298@) are often different people.
            cl.CustomComparison(
                output_column_name="email",
                comparison_levels=[
                    cll.NullLevel("email"),
                    cll.ExactMatchLevel("email"),
                    cll.DamerauLevenshteinLevel("email", 1),
                    cll.ElseLevel(),
                ],
            ),
            cl.ExactMatch("phone"),
            address,
        ],
        # Each comparison's match weight (mw_*) is kept: it is a link's evidence.
        retain_intermediate_calculation_columns=True,
        retain_matching_columns=False,
    )


def _train(linker: Any) -> int:
    """Train `linker`'s model; the number of EM sessions that found pairs to learn from (a
    session whose block holds no pair is skipped: small tenants lack some kinds of pair)."""
    from splink import block_on
    from splink.internals.exceptions import EMTrainingException

    training = linker.training
    training.estimate_probability_two_random_records_match(
        [block_on("email"), block_on("phone")], recall=0.8
    )
    training.estimate_u_using_random_sampling(max_pairs=_RANDOM_PAIRS, seed=_SEED)
    sessions = 0
    # Each session fixes the blocked columns and learns the others' m probabilities. Not on
    # a shared email: families share one, and would teach the model that a person's birth
    # date and first name often differ.
    for rule in (
        block_on("phone"),
        block_on("first_name", "last_name"),
        block_on("postcode", "birth_date"),
    ):
        try:
            training.estimate_parameters_using_expectation_maximisation(rule)
        except EMTrainingException:
            continue
        sessions += 1
    return sessions


def match_records(
    engine: Engine,
    customers: pa.Table,
    *,
    threshold: float,
    model: dict[str, Any] | None = None,
) -> MatchResult:
    """Scored pairs of customer records with a match probability of at least `threshold`,
    by the probabilities of `model` (a trained model, from either engine), or by a model
    trained on these records when there is none or it no longer fits the comparisons. With
    too few records to train on, no pairs and the reason."""
    from splink import Linker

    records = engine.query(INPUT_SQL, {"customers": customers})
    with _quiet_splink(), engine.linkage_api() as api:
        parameters = _with_parameters(api.sql_dialect.sql_dialect_str, model) if model else None
        if parameters is None and records.num_rows < MIN_TRAINING_RECORDS:
            return MatchResult(
                PAIRS.empty_table(),
                {},
                records.num_rows,
                skipped=f"{records.num_rows:,} records to compare: too few to train the "
                f"model (at least {MIN_TRAINING_RECORDS:,})",
            )
        frame = api.register(records)
        if parameters is not None:
            linker = Linker(frame, parameters, log_level=logging.ERROR)
        else:
            linker = Linker(frame, _settings(), log_level=logging.ERROR)
            if _train(linker) == 0:
                return MatchResult(
                    PAIRS.empty_table(),
                    {},
                    records.num_rows,
                    skipped="no block held record pairs to train the model on",
                )
        predictions = linker.inference.predict(threshold_match_probability=threshold)
        scored: pa.Table = predictions.as_pyarrow_table()  # type: ignore[no-untyped-call]
        result = linker.misc.save_model_to_json()
    return MatchResult(_pairs(engine, scored), result, records.num_rows, trained=parameters is None)


def score_candidates(
    engine: Engine, model: dict[str, Any], record: dict[str, Any], candidates: list[dict[str, Any]]
) -> list[tuple[float, dict[str, float]]]:
    """The match probability of `record` with each of `candidates` (dicts of the COMPARED
    traits, with a `unique_id` each) and the evidence (each comparison's match weight), by
    a trained model. Outside a resolution run there are no term frequency tables, so the
    names weigh as their average value, not as common or rare; [] when the model no longer
    fits the comparisons."""
    from splink import Linker

    parameters = _with_parameters("duckdb", model)
    if parameters is None or not candidates:
        return []
    for comparison in parameters["comparisons"]:
        for level in comparison["comparison_levels"]:
            level.pop("tf_adjustment_column", None)
            level.pop("tf_adjustment_weight", None)
    left = [{_UNIQUE_ID: "query", **{c: record.get(c) for c in COMPARED}}]
    right = [
        {_UNIQUE_ID: str(c[_UNIQUE_ID]), **{k: c.get(k) for k in COMPARED}} for c in candidates
    ]
    schema = pa.schema([pa.field(_UNIQUE_ID, pa.string())] + [_INPUT_TYPES[c] for c in COMPARED])
    with _quiet_splink(), engine.linkage_api() as api:
        table = pa.Table.from_pylist(left + right, schema=schema)
        linker = Linker(api.register(table), parameters, log_level=logging.ERROR)
        scored: pa.Table = linker.inference.score_pairs(
            pa.Table.from_pylist(left, schema=schema).to_pylist(),
            pa.Table.from_pylist(right, schema=schema).to_pylist(),
        ).as_pyarrow_table()  # type: ignore[no-untyped-call]
    weights = [c for c in scored.column_names if c.startswith("mw_")]
    by_id = {
        row[f"{_UNIQUE_ID}_r"]: (
            float(row["match_probability"]),
            {w.removeprefix("mw_"): round(float(row[w] or 0.0), 2) for w in weights},
        )
        for row in scored.to_pylist()
    }
    return [by_id[str(c[_UNIQUE_ID])] for c in candidates]


def _with_parameters(dialect: str, model: dict[str, Any]) -> dict[str, Any] | None:
    """Today's comparisons in `dialect` with the trained probabilities of `model` (which
    may come from the other engine); None when the model no longer fits the comparisons."""
    settings: dict[str, Any] = _settings().get_settings(dialect).as_dict()
    comparisons = model.get("comparisons", [])
    if [c["output_column_name"] for c in settings["comparisons"]] != [
        c.get("output_column_name") for c in comparisons
    ]:
        return None
    for fresh, trained in zip(settings["comparisons"], comparisons, strict=True):
        levels, trained_levels = fresh["comparison_levels"], trained["comparison_levels"]
        if len(levels) != len(trained_levels):
            return None
        for level, learned in zip(levels, trained_levels, strict=True):
            for name in ("m_probability", "u_probability"):
                if name in learned:
                    level[name] = learned[name]
    settings["probability_two_random_records_match"] = model["probability_two_random_records_match"]
    return settings


def _pairs(engine: Engine, scored: pa.Table) -> pa.Table:
    """Splink's predictions as PAIRS; the evidence is each comparison's match weight (its
    log2 Bayes factor: above 0 for agreement, below for disagreement)."""
    weights = [
        c for c in scored.column_names if c.startswith("mw_") and not c.startswith("mw_tf_adj_")
    ]
    fields = ", ".join(f"{c.removeprefix('mw_')} := round({c}, 2)" for c in weights)
    evidence = f"to_json(struct_pack({fields}))" if weights else "NULL"
    return engine.query(
        f"SELECT least({_UNIQUE_ID}_l, {_UNIQUE_ID}_r) AS left_node, "
        f"greatest({_UNIQUE_ID}_l, {_UNIQUE_ID}_r) AS right_node, "
        f"CAST(match_probability AS DOUBLE) AS probability, "
        f"CAST({evidence} AS VARCHAR) AS evidence FROM scored",
        {"scored": scored},
    ).cast(PAIRS)


@contextmanager
def _quiet_splink() -> Iterator[None]:
    """Splink narrates every step at INFO; a resolution run reports its own progress."""
    logger = logging.getLogger("splink")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
