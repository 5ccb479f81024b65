"""How close identity resolution came to the truth: pairwise and cluster-level scores.

Every record is in one true group (its person) and one predicted group (its profile). Pairs
are never enumerated: a group of n records holds C(n, 2) pairs, so the true, predicted and
correct pairs are sums of C(n, 2) over the people, the profiles and their intersections (a
pair is correct when its two records share both person and profile). A record without a
profile (null) counts as a profile of its own.

    accuracy = score(pa.table({"record": [...], "person": [...], "profile": [...]}))
    print(accuracy.f1, accuracy.to_dict())
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pyarrow as pa
import pyarrow.compute as pc

COLUMNS = ("record", "person", "profile")


@dataclass(frozen=True, slots=True)
class Accuracy:
    """The scores of one set of assignments. Where a ratio has nothing to count (no pairs,
    no profiles) it takes the value of a perfect result: nothing was got wrong."""

    records: int
    people: int  # true groups
    profiles: int  # predicted groups; each record without a profile is one
    unassigned_records: int  # records without a profile
    true_pairs: int  # record pairs of one person
    predicted_pairs: int  # record pairs of one profile
    correct_pairs: int  # record pairs of one person and one profile
    precision: float  # correct / predicted pairs; 1.0 when no pairs were predicted
    recall: float  # correct / true pairs; 1.0 when there are no true pairs
    f1: float  # harmonic mean of precision and recall; 0.0 when both are 0
    exact_profiles: int  # profiles holding all the records of one person and nothing else
    over_merged_profiles: int  # profiles holding records of more than one person
    under_merged_people: int  # people whose records are spread over several profiles
    exact_profiles_share: float  # of profiles; 1.0 when there are none
    over_merged_profiles_share: float  # of profiles; 0.0 when there are none
    under_merged_people_share: float  # of people; 0.0 when there are none

    def to_dict(self) -> dict[str, int | float]:
        return asdict(self)


def score(assignments: pa.Table) -> Accuracy:
    """Score `assignments` (columns record, person, profile; one row per record)."""
    _check(assignments)
    data = pa.table({c: assignments[c].cast(pa.string()) for c in ("person", "profile")})
    # One row per (person, profile) intersection with its size n. A person's records
    # without a profile share one row (profile null) but are n profiles of one record.
    cells = data.group_by(["person", "profile"]).aggregate([([], "count_all")])
    cells = cells.rename_columns({"count_all": "n"})
    assigned = pc.is_valid(cells["profile"])
    cells = cells.append_column("profiles", pc.if_else(assigned, 1, cells["n"]))
    # Per person: records and profiles; per profile: records and people.
    people = cells.group_by("person").aggregate([("n", "sum"), ("profiles", "sum")])
    profiles = (
        cells.filter(assigned).group_by("profile").aggregate([("n", "sum"), ([], "count_all")])
    )
    unassigned = data["profile"].null_count

    true_pairs = _pairs(people["n_sum"])
    predicted_pairs = _pairs(profiles["n_sum"])
    correct_pairs = _pairs(cells.filter(assigned)["n"])
    precision = correct_pairs / predicted_pairs if predicted_pairs else 1.0
    recall = correct_pairs / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    over_merged = _true(pc.greater(profiles["count_all"], 1))
    under_merged = _true(pc.greater(people["profiles_sum"], 1))
    # A cell is an exact profile when it is a whole person (who has no other profile) and
    # a whole profile (that holds no other person; a record without a profile always is).
    one_profile = people.filter(pc.equal(people["profiles_sum"], 1))["person"]
    one_person = profiles.filter(pc.equal(profiles["count_all"], 1))["profile"]
    whole_person = pc.is_in(cells["person"], value_set=one_profile.combine_chunks())
    whole_profile = pc.or_kleene(
        pc.invert(assigned), pc.is_in(cells["profile"], value_set=one_person.combine_chunks())
    )
    exact = _true(pc.and_kleene(whole_person, whole_profile))

    n_people, n_profiles = people.num_rows, profiles.num_rows + unassigned
    return Accuracy(
        records=assignments.num_rows,
        people=n_people,
        profiles=n_profiles,
        unassigned_records=unassigned,
        true_pairs=true_pairs,
        predicted_pairs=predicted_pairs,
        correct_pairs=correct_pairs,
        precision=precision,
        recall=recall,
        f1=f1,
        exact_profiles=exact,
        over_merged_profiles=over_merged,
        under_merged_people=under_merged,
        exact_profiles_share=exact / n_profiles if n_profiles else 1.0,
        over_merged_profiles_share=over_merged / n_profiles if n_profiles else 0.0,
        under_merged_people_share=under_merged / n_people if n_people else 0.0,
    )


def _check(assignments: pa.Table) -> None:
    missing = [c for c in COLUMNS if c not in assignments.column_names]
    if missing:
        raise ValueError(
            f"assignments lack the columns {', '.join(missing)} (they need {', '.join(COLUMNS)})"
        )
    records = assignments.column("record")
    # pc.unique is a few times faster than pc.count_distinct on a million strings.
    if records.null_count or len(pc.unique(records)) != assignments.num_rows:
        raise ValueError("assignments must have one row per record (unique, non-null `record`)")
    if assignments.column("person").null_count:
        raise ValueError("every record of the assignments needs a person (`person` is null)")


def _pairs(sizes: pa.ChunkedArray) -> int:
    """Sum of C(n, 2) over group sizes."""
    total = pc.sum(pc.multiply(sizes, pc.subtract(sizes, 1))).as_py()
    return int(total or 0) // 2


def _true(mask: pa.ChunkedArray | pa.Array) -> int:
    return int(pc.sum(mask).as_py() or 0)
