"""The ground truth as scored records: reading ground_truth.csv, naming the customer records
the way the identity graph does, and joining the profiles resolution gave them."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from opencdp.errors import ConfigError, NotFoundError
from opencdp.identity.accuracy import score
from opencdp.identity.truth import assignments, read_truth, record_truth, user_conflicts

HEADER = "source,stream,record_id,person_id,variations\n"

# (source, stream, record_id, person_id) as the generator writes them.
TRUTH = [
    ("shopify", "products", "8100000274", ""),
    ("crm", "accounts", "0018d0000000001AAA", ""),
    ("crm", "contacts", "0038d0000000001AAA", "P1"),
    ("shopify", "customers", "7100000001", "P1"),
    ("shopify", "orders", "5500000001", "P1"),
    ("stripe", "customers", "cus_A", "P1"),
    ("stripe", "charges", "ch_A", "P1"),
    ("crm", "contacts", "0038d0000000002AAA", "P2"),
    # Segment messages, by messageId.
    ("events", "events", "m1", "P1"),  # identify, userId 7100000001
    ("events", "events", "m2", "P1"),  # identify, the same user again
    ("events", "events", "m3", "P9"),  # a track call of that user: no customer record
    ("events", "events", "m4", "P2"),  # identify, userId usr_2
    ("events", "events", "m5", "P3"),  # identify, userId usr_x: P3 twice, P4 once
    ("events", "events", "m6", "P3"),
    ("events", "events", "m7", "P4"),
    ("events", "events", "m8", "P6"),  # identify, userId usr_t: P6 once, P5 once
    ("events", "events", "m9", "P5"),
    ("events", "events", "m10", "P2"),  # identify without userId
    ("events", "events", "m11", "P2"),  # not in the curated events
]

# (event_id, type, user_id) of the curated events, all from provider "segment".
EVENT_ROWS = [
    ("m1", "identify", "7100000001"),
    ("m2", "identify", "7100000001"),
    ("m3", "track", "7100000001"),
    ("m4", "identify", "usr_2"),
    ("m5", "identify", "usr_x"),
    ("m6", "identify", "usr_x"),
    ("m7", "identify", "usr_x"),
    ("m8", "identify", "usr_t"),
    ("m9", "identify", "usr_t"),
    ("m10", "identify", None),
    ("m12", "identify", "usr_other"),  # not in the truth
]
EVENTS = pa.table(
    {
        "event_id": [row[0] for row in EVENT_ROWS],
        "type": [row[1] for row in EVENT_ROWS],
        "user_id": [row[2] for row in EVENT_ROWS],
        "provider": ["segment"] * len(EVENT_ROWS),
    }
)


def _truth() -> pa.Table:
    names = ("source", "stream", "record_id", "person_id")
    return pa.Table.from_pylist([dict(zip(names, row, strict=True)) for row in TRUTH])


def test_read_truth_keeps_every_column_a_string(tmp_path: Path) -> None:
    path = tmp_path / "ground_truth.csv"
    path.write_text(
        HEADER
        + "shopify,products,8100000274,,\n"
        + "crm,contacts,007,P00000004,alt_email;case\n"
        + "stripe,customers,cus_1,P00000005,\n"
    )
    truth = read_truth(path)
    assert truth.schema == pa.schema(
        [
            (name, pa.string())
            for name in ("source", "stream", "record_id", "person_id", "variations")
        ]
    )
    # Ids are not numbers (leading zeros stay), and a record about no person has "".
    assert truth["record_id"].to_pylist() == ["8100000274", "007", "cus_1"]
    assert truth["person_id"].to_pylist() == ["", "P00000004", "P00000005"]


def test_read_truth_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no ground truth at") as raised:
        read_truth(tmp_path / "ground_truth.csv")
    assert raised.value.hint is not None
    assert "opencdp generate" in raised.value.hint


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("source,stream,record_id\ncrm,contacts,1\n", "person_id"),
        ("", "source, stream, record_id, person_id"),
    ],
)
def test_read_truth_without_its_columns(tmp_path: Path, text: str, missing: str) -> None:
    path = tmp_path / "ground_truth.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"lacks the columns {missing}"):
        read_truth(path)


def test_record_truth_names_customer_records() -> None:
    got = sorted(record_truth(_truth(), EVENTS).to_pylist(), key=lambda row: row["record"])
    assert got == [
        {"record": "c:crm:0038d0000000001AAA", "person": "P1"},
        {"record": "c:crm:0038d0000000002AAA", "person": "P2"},
        {"record": "c:segment:7100000001", "person": "P1"},
        {"record": "c:segment:usr_2", "person": "P2"},
        {"record": "c:segment:usr_t", "person": "P5"},  # a tie: the smaller person id
        {"record": "c:segment:usr_x", "person": "P3"},  # the most frequent person
        {"record": "c:shopify:7100000001", "person": "P1"},
        {"record": "c:stripe:cus_A", "person": "P1"},
    ]


def test_record_truth_provider_of_users_comes_from_events() -> None:
    events = EVENTS.set_column(3, "provider", pa.array(["rudderstack"] * 11))
    records = record_truth(_truth(), events)["record"].to_pylist()
    assert "c:rudderstack:usr_2" in records
    assert not any(r.startswith("c:segment:") for r in records)


def test_user_conflicts_counts_users_of_several_people() -> None:
    # usr_x (P3, P4) and usr_t (P5, P6); the track call m3 of P9 is no identify call.
    assert user_conflicts(_truth(), EVENTS) == 2
    agreeing = _truth().filter(pa.array([row[2] not in {"m7", "m8"} for row in TRUTH]))
    assert user_conflicts(agreeing, EVENTS) == 0


def test_record_truth_needs_event_types() -> None:
    with pytest.raises(ValueError, match="events lacks the columns type"):
        record_truth(_truth(), EVENTS.drop_columns(["type"]))


def test_assignments_join_profiles_and_count_the_missing() -> None:
    truth = record_truth(_truth(), EVENTS)
    rows = [
        ("crm", "0038d0000000001AAA", "pr1"),
        ("crm", "0038d0000000002AAA", "pr2"),
        ("shopify", "7100000001", "pr1"),
        ("stripe", "cus_A", "pr1"),
        ("segment", "7100000001", "pr1"),
        ("segment", "usr_2", None),
        ("segment", "usr_unknown", "pr9"),
    ]
    customers = pa.Table.from_pylist(
        [{"provider": p, "source_id": s, "profile_id": q} for p, s, q in rows],
        schema=pa.schema([(c, pa.string()) for c in ("provider", "source_id", "profile_id")]),
    )
    table, unassigned = assignments(truth, customers)
    assert table.column_names == ["record", "person", "profile"]
    # usr_2 has no profile_id, usr_t and usr_x no curated row; usr_unknown is not in the
    # truth and is left out.
    assert unassigned == 3
    assert table.to_pylist() == [
        {"record": "c:crm:0038d0000000001AAA", "person": "P1", "profile": "pr1"},
        {"record": "c:crm:0038d0000000002AAA", "person": "P2", "profile": "pr2"},
        {"record": "c:segment:7100000001", "person": "P1", "profile": "pr1"},
        {"record": "c:segment:usr_2", "person": "P2", "profile": None},
        {"record": "c:segment:usr_t", "person": "P5", "profile": None},
        {"record": "c:segment:usr_x", "person": "P3", "profile": None},
        {"record": "c:shopify:7100000001", "person": "P1", "profile": "pr1"},
        {"record": "c:stripe:cus_A", "person": "P1", "profile": "pr1"},
    ]
    # The missing ones are scored as profiles of their own, not dropped: pr1 (P1's four
    # records) and pr2 plus three singletons.
    accuracy = score(table)
    assert (accuracy.records, accuracy.profiles, accuracy.unassigned_records) == (8, 5, 3)
    assert (accuracy.true_pairs, accuracy.correct_pairs, accuracy.predicted_pairs) == (7, 6, 6)


def test_assignments_refuse_duplicate_customer_keys() -> None:
    customers = pa.table(
        {"provider": ["crm", "crm"], "source_id": ["1", "1"], "profile_id": ["a", "b"]}
    )
    truth = pa.table({"record": ["c:crm:1"], "person": ["P1"]})
    with pytest.raises(ValueError, match="one row per"):
        assignments(truth, customers)
