"""The row stage's pure parts: quality flags, name filling and value translations."""

from __future__ import annotations

import pyarrow as pa

from opencdp.transform.mapping import Extraction, F, SourceMapping
from opencdp.transform.rows import Flags, _fill_names, build_table

META = {"stream": "members", "kind": "tap", "received_at": "2025-01-15T01:00:00Z"}


def test_flags_list_each_rows_problems_in_the_order_they_were_found() -> None:
    flags = Flags()
    flags.add("email_invalid", pa.array([True, False, None, True]))
    flags.add("phone_placeholder", pa.array([True, True, False, False]))
    flags.add("never", pa.array([False, False, False, False]))
    assert flags.names == ["email_invalid", "phone_placeholder"]
    assert flags.to_arrow(4).to_pylist() == [
        ["email_invalid", "phone_placeholder"],
        ["phone_placeholder"],
        [],
        ["email_invalid"],
    ]
    assert Flags().to_arrow(2).to_pylist() == [[], []]
    assert Flags().to_arrow(0).to_pylist() == []


def test_names_fill_each_other() -> None:
    columns = {
        "first_name": pa.array(["Ada", None, None, None]),
        "last_name": pa.array(["Lovelace", None, "Hopper", None]),
        "full_name": pa.array([None, "Mary Ann Evans", None, None]),
    }
    _fill_names(columns, 4)
    assert columns["full_name"].to_pylist() == ["Ada Lovelace", "Mary Ann Evans", "Hopper", None]
    assert columns["first_name"].to_pylist() == ["Ada", "Mary Ann", None, None]
    assert columns["last_name"].to_pylist() == ["Lovelace", "Evans", "Hopper", None]


def test_names_fill_on_rows_that_have_none() -> None:
    none = pa.nulls(3, pa.string())
    columns = {"first_name": none, "last_name": none}
    _fill_names(columns, 3)
    assert columns["full_name"].to_pylist() == [None, None, None]


def test_a_value_translation_nulls_and_flags_the_values_it_does_not_name() -> None:
    mapping = SourceMapping(
        table="customers",
        provider="loyalty",
        streams=("members",),
        fields={
            "source_id": F("id"),
            # Keys case-insensitive; "später" is known, with no value of ours.
            "consent_email": F("news", values={"JA": "granted", "nein": "denied", "später": None}),
        },
    )
    extraction = Extraction(mapping)
    given = [" ja ", "Nein", "später", "vielleicht", None, "N/A", 1]
    for line, news in enumerate(given, start=1):
        extraction.add(line, META, {"id": str(line), "news": news})

    rows = build_table(extraction, provider="loyalty", raw_file="f", default_country="DE")

    consent = [r["consent"]["email"] for r in rows.to_pylist()]
    assert consent == ["granted", "denied", None, None, None, None, None]
    assert rows.column("_quality_flags").to_pylist() == [
        [],
        [],
        [],
        ["consent_email_invalid"],
        [],
        ["consent_email_placeholder"],
        ["consent_email_invalid"],
    ]
