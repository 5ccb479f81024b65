"""Mappings: paths, fields, explode and require, and a tenant's declared mappings."""

from __future__ import annotations

import pytest

from opencdp.errors import ConfigError
from opencdp.settings import MappingSettings
from opencdp.transform import mappings
from opencdp.transform.mapping import Extraction, F, Path, SourceMapping

META = {
    "tenant": "t",
    "provider": "shop",
    "stream": "orders",
    "kind": "tap",
    "id": "k1",
    "received_at": "2025-01-15T01:00:00.123Z",
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("email", "a@b.co"),
        ("address.city", "Lyon"),
        ("items[1].sku", "B"),
        ("items[5].sku", None),
        ("address.missing.deeper", None),
        ("email.not_an_object", None),
        ("_meta.id", "k1"),
    ],
)
def test_paths_read_the_record_and_the_envelope(path: str, expected: object) -> None:
    record = {"email": "a@b.co", "address": {"city": "Lyon"}, "items": [{"sku": "A"}, {"sku": "B"}]}
    assert Path.parse(path).get(record, META, None) == expected


@pytest.mark.parametrize("bad", ["", "a..b", "a[x]", "[0]x", "a.[", "_meta."])
def test_a_malformed_path_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="invalid field path"):
        Path.parse(bad)


def values_of(field: F, *records: dict[str, object]) -> list[object]:
    mapping = SourceMapping(
        table="customers",
        provider="shop",
        streams=("s",),
        fields={"source_id": F("id"), "company": field},
    )
    extraction = Extraction(mapping)
    for n, record in enumerate(records):
        extraction.add(n, META, {"id": n, **record})
    return extraction.columns["company"]


def test_a_field_takes_the_first_non_empty_path_as_text() -> None:
    assert values_of(F("a", "b", "c"), {"a": None, "b": "", "c": 0}, {"a": "x"}, {}) == [
        "0",
        "x",
        None,
    ]
    assert values_of(F("a"), {"a": ""}, {"a": True}, {"a": 1.5}, {"a": {"k": 1}}) == [
        None,
        "true",
        "1.5",
        '{"k":1}',
    ]
    # Translated later, by the row stage (tests/unit/transform/test_rows.py): read as given.
    consent = F("state", values={"Subscribed": "granted"})
    assert values_of(consent, {"state": "SUBSCRIBED"}, {"state": True}) == ["SUBSCRIBED", "true"]
    assert values_of(F(const="webhook"), {}) == ["webhook"]
    assert values_of(F("a.b", "_meta.id"), {"a": {"b": 2}}, {"a": "flat"}) == ["2", "k1"]


def test_an_exploded_mapping_gives_one_row_per_element_with_the_parent_fields() -> None:
    items = SourceMapping(
        table="order_items",
        provider="shop",
        streams=("orders",),
        explode="lines",
        fields={"order_id": F("id"), "line_id": F("@.n"), "quantity": F("@.qty")},
    )
    extraction = Extraction(items)
    extraction.add(7, META, {"id": 1, "lines": [{"n": "a", "qty": 2}, {"n": "b", "qty": 1}]})
    extraction.add(8, META, {"id": 2, "lines": "not a list"})
    assert extraction.columns == {
        "order_id": ["1", "1"],
        "line_id": ["a", "b"],
        "quantity": ["2", "1"],
    }
    assert extraction.lines == [7, 7]


def test_required_paths_filter_records_and_json_and_ids_keep_their_shape() -> None:
    mapping = SourceMapping(
        table="customers",
        provider="seg",
        streams=("identify",),
        require=("userId",),
        fields={"source_id": F("userId"), "external_ids": F(ids={"seg": "userId", "x": "nope"})},
    )
    extraction = Extraction(mapping)
    extraction.add(1, META, {"userId": "u1"})
    extraction.add(2, META, {"anonymousId": "a"})
    assert extraction.columns == {"source_id": ["u1"], "external_ids": [{"seg": "u1"}]}
    events = SourceMapping(
        table="events",
        provider="seg",
        streams=("track",),
        fields={"event_id": F("id"), "properties": F("props")},
    )
    extraction = Extraction(events)
    extraction.add(1, META, {"id": "e", "props": {"b": 1.5, "a": [True]}})
    assert extraction.columns["properties"] == ['{"b":1.5,"a":[true]}']


def test_a_mapping_must_fill_its_table_key_and_only_known_columns() -> None:
    with pytest.raises(ConfigError, match="does not fill the key"):
        SourceMapping(table="orders", provider="p", streams=("s",), fields={"email": F("e")})
    with pytest.raises(ConfigError, match="unknown customers columns: shoe_size"):
        SourceMapping(
            table="customers",
            provider="p",
            streams=("s",),
            fields={"source_id": F("id"), "shoe_size": F("s")},
        )
    with pytest.raises(ConfigError, match="unknown canonical table"):
        SourceMapping(table="people", provider="p", streams=("s",), fields={})


def tables_for(provider: str, stream: str, kind: str) -> set[str]:
    return {m.table for m in mappings.BUILTIN if m.applies(provider, stream, kind)}


def test_builtin_mappings_cover_the_providers_we_ingest() -> None:
    assert tables_for("shopify", "orders", "tap") == {"orders", "order_items"}
    assert tables_for("shopify", "orders", "webhook") == {"orders", "order_items", "events"}
    assert tables_for("stripe", "charges", "tap") == {"orders"}
    assert tables_for("crm", "contacts", "tap") == {"customers"}
    assert tables_for("segment", "identify", "track") == {"events", "customers"}
    assert tables_for("crm", "accounts", "tap") == set()


def test_declared_mappings_replace_the_builtin_one_of_their_provider_and_table() -> None:
    declared = mappings.declared(
        [
            MappingSettings(
                table="customers",
                provider="shopify",
                streams=["customers"],
                fields={"source_id": "id", "email": {"path": ["mail", "email"]}},
            )
        ]
    )
    combined = mappings.combine(declared)
    shopify_customers = [m for m in combined if m.provider == "shopify" and m.table == "customers"]
    assert shopify_customers == list(declared)
    assert len(combined) == len(mappings.BUILTIN)
