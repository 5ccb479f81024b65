"""Scoring resolved profiles against the true people: hand-worked cases, then random ones
checked against a brute-force enumeration of every record pair."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from itertools import combinations

import pyarrow as pa
import pytest

from opencdp.identity.accuracy import Accuracy, score

# The hand-worked cases share these people: A has r1, r2, r3; B has r4, r5; C has r6.
# True pairs: C(3,2) + C(2,2) + C(1,2) = 3 + 1 + 0 = 4.
PEOPLE = {"r1": "A", "r2": "A", "r3": "A", "r4": "B", "r5": "B", "r6": "C"}


def _table(profiles: dict[str, str | None]) -> pa.Table:
    return pa.table(
        {
            "record": list(profiles),
            "person": [PEOPLE[r] for r in profiles],
            "profile": list(profiles.values()),
        }
    )


def test_perfect() -> None:
    got = score(_table({"r1": "p", "r2": "p", "r3": "p", "r4": "q", "r5": "q", "r6": "s"}))
    # Profiles are the people: 4 predicted pairs, all correct; every profile is exact.
    assert got == Accuracy(
        records=6,
        people=3,
        profiles=3,
        unassigned_records=0,
        true_pairs=4,
        predicted_pairs=4,
        correct_pairs=4,
        precision=1.0,
        recall=1.0,
        f1=1.0,
        exact_profiles=3,
        over_merged_profiles=0,
        under_merged_people=0,
        exact_profiles_share=1.0,
        over_merged_profiles_share=0.0,
        under_merged_people_share=0.0,
    )


def test_all_merged_into_one() -> None:
    got = score(_table(dict.fromkeys(PEOPLE, "p")))
    # Predicted pairs C(6,2) = 15; correct are the 4 true ones. P = 4/15, R = 1,
    # F1 = 2 * (4/15) / (4/15 + 1) = 8/19. The one profile holds three people.
    assert (got.profiles, got.predicted_pairs, got.correct_pairs) == (1, 15, 4)
    assert got.precision == pytest.approx(4 / 15)
    assert got.recall == 1.0
    assert got.f1 == pytest.approx(8 / 19)
    assert (got.exact_profiles, got.over_merged_profiles, got.under_merged_people) == (0, 1, 0)
    assert (got.exact_profiles_share, got.over_merged_profiles_share) == (0.0, 1.0)
    assert got.under_merged_people_share == 0.0


def test_all_singletons() -> None:
    got = score(_table({r: f"p{r}" for r in PEOPLE}))
    # No predicted pairs: precision is 1 by definition; recall 0/4 = 0, so F1 = 0.
    # Only C (one record) is exact; A and B are each split over several profiles.
    assert (got.profiles, got.predicted_pairs, got.correct_pairs) == (6, 0, 0)
    assert (got.precision, got.recall, got.f1) == (1.0, 0.0, 0.0)
    assert (got.exact_profiles, got.over_merged_profiles, got.under_merged_people) == (1, 0, 2)
    assert got.exact_profiles_share == pytest.approx(1 / 6)
    assert got.under_merged_people_share == pytest.approx(2 / 3)


def test_one_wrong_merge() -> None:
    # C's r6 joins B's profile: p = {r1, r2, r3}, q = {r4, r5, r6}.
    got = score(_table({"r1": "p", "r2": "p", "r3": "p", "r4": "q", "r5": "q", "r6": "q"}))
    # Predicted 3 + 3 = 6; correct 3 + 1 = 4 (r4-r6, r5-r6 are wrong). P = 2/3, R = 1,
    # F1 = 2 * (2/3) / (5/3) = 4/5. p is exact, q is over-merged, nobody is split.
    assert (got.predicted_pairs, got.correct_pairs, got.true_pairs) == (6, 4, 4)
    assert got.precision == pytest.approx(2 / 3)
    assert got.recall == 1.0
    assert got.f1 == pytest.approx(4 / 5)
    assert (got.exact_profiles, got.over_merged_profiles, got.under_merged_people) == (1, 1, 0)
    assert (got.exact_profiles_share, got.over_merged_profiles_share) == (0.5, 0.5)


def test_one_split() -> None:
    # A is split: p = {r1, r2}, p2 = {r3}; B and C are right.
    got = score(_table({"r1": "p", "r2": "p", "r3": "p2", "r4": "q", "r5": "q", "r6": "s"}))
    # Predicted 1 + 0 + 1 + 0 = 2, all correct; R = 2/4, F1 = 2 * 0.5 / 1.5 = 2/3.
    # q and s are exact (2 of 4 profiles); A (1 of 3 people) is under-merged.
    assert (got.profiles, got.predicted_pairs, got.correct_pairs) == (4, 2, 2)
    assert (got.precision, got.recall) == (1.0, 0.5)
    assert got.f1 == pytest.approx(2 / 3)
    assert (got.exact_profiles, got.over_merged_profiles, got.under_merged_people) == (2, 0, 1)
    assert got.exact_profiles_share == 0.5
    assert got.under_merged_people_share == pytest.approx(1 / 3)


def test_records_without_profile_are_profiles_of_their_own() -> None:
    # r3 and r6 have no profile: p = {r1, r2}, {r3}, q = {r4, r5}, {r6}: 4 profiles.
    got = score(_table({"r1": "p", "r2": "p", "r3": None, "r4": "q", "r5": "q", "r6": None}))
    # Predicted 1 + 1 = 2, all correct; A is split (p and r3 alone); q and {r6} are exact.
    assert (got.profiles, got.unassigned_records) == (4, 2)
    assert (got.predicted_pairs, got.correct_pairs) == (2, 2)
    assert (got.exact_profiles, got.over_merged_profiles, got.under_merged_people) == (2, 0, 1)
    # Two records of one person without a profile are still two profiles, not a pair.
    nobody = score(_table(dict.fromkeys(PEOPLE)))
    singletons = score(_table({r: f"p{r}" for r in PEOPLE}))
    assert nobody == replace(singletons, unassigned_records=6)


def test_empty() -> None:
    got = score(pa.table({c: pa.array([], pa.string()) for c in ("record", "person", "profile")}))
    # Nothing to get wrong: the ratios take their perfect values.
    assert (got.records, got.people, got.profiles, got.true_pairs, got.predicted_pairs) == (
        0,
        0,
        0,
        0,
        0,
    )
    assert (got.precision, got.recall, got.f1) == (1.0, 1.0, 1.0)
    assert got.exact_profiles_share == 1.0
    assert (got.over_merged_profiles_share, got.under_merged_people_share) == (0.0, 0.0)


def test_to_dict_is_json() -> None:
    got = score(_table({"r1": "p", "r2": "p", "r3": "p", "r4": "q", "r5": "q", "r6": "q"}))
    data = json.loads(json.dumps(got.to_dict()))
    assert data["correct_pairs"] == 4
    assert data["over_merged_profiles"] == 1
    assert set(data) == set(Accuracy.__dataclass_fields__)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (pa.table({"record": ["r1"], "person": ["A"]}), "lack the columns profile"),
        (
            pa.table({"record": ["r1", "r1"], "person": ["A", "A"], "profile": ["p", "p"]}),
            "one row per record",
        ),
        (
            pa.table({"record": ["r1", None], "person": ["A", "A"], "profile": ["p", "p"]}),
            "one row per record",
        ),
        (
            pa.table({"record": ["r1"], "person": pa.array([None], pa.string()), "profile": ["p"]}),
            "needs a person",
        ),
    ],
)
def test_bad_input(table: pa.Table, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        score(table)


def _brute_force(rows: list[tuple[str, str, str | None]]) -> Accuracy:
    """The same scores from every record pair and explicit sets of records."""
    true = predicted = correct = 0
    for (_, person1, profile1), (_, person2, profile2) in combinations(rows, 2):
        same_person = person1 == person2
        same_profile = profile1 is not None and profile1 == profile2
        true += same_person
        predicted += same_profile
        correct += same_person and same_profile
    people: dict[str, set[str]] = {}
    profiles: dict[str, set[str]] = {}
    for record, person, profile in rows:
        people.setdefault(person, set()).add(record)
        profiles.setdefault(profile if profile is not None else f"own:{record}", set()).add(record)
    person_of = {record: person for record, person, _ in rows}
    exact = sum(records in people.values() for records in profiles.values())
    over = sum(len({person_of[r] for r in records}) > 1 for records in profiles.values())
    under = sum(
        sum(bool(records & other) for other in profiles.values()) > 1 for records in people.values()
    )
    precision = correct / predicted if predicted else 1.0
    recall = correct / true if true else 1.0
    return Accuracy(
        records=len(rows),
        people=len(people),
        profiles=len(profiles),
        unassigned_records=sum(profile is None for _, _, profile in rows),
        true_pairs=true,
        predicted_pairs=predicted,
        correct_pairs=correct,
        precision=precision,
        recall=recall,
        f1=2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        exact_profiles=exact,
        over_merged_profiles=over,
        under_merged_people=under,
        exact_profiles_share=exact / len(profiles) if profiles else 1.0,
        over_merged_profiles_share=over / len(profiles) if profiles else 0.0,
        under_merged_people_share=under / len(people) if people else 0.0,
    )


@pytest.mark.parametrize("seed", range(40))
def test_matches_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randrange(0, 80)
    people = [f"P{i}" for i in range(rng.randrange(1, 30))]
    profiles = [f"q{i}" for i in range(rng.randrange(1, 30))]
    rows = []
    for i in range(n):
        person = rng.choice(people)
        roll = rng.random()
        # Mostly the person's own profile, sometimes a random one, sometimes none.
        profile = None if roll < 0.1 else rng.choice(profiles) if roll < 0.4 else f"own-{person}"
        rows.append((f"r{i}", person, profile))
    table = pa.Table.from_pylist(
        [{"record": r, "person": p, "profile": q} for r, p, q in rows],
        schema=pa.schema(
            [("record", pa.string()), ("person", pa.string()), ("profile", pa.string())]
        ),
    )
    # Several chunks, as tables read from files or joined usually are.
    cut = n // 3
    table = pa.concat_tables([table.slice(0, cut), table.slice(cut)])
    got, want = score(table).to_dict(), _brute_force(rows).to_dict()
    assert got == pytest.approx(want)
