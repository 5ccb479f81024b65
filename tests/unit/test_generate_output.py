"""A generated tenant on disk: layout, ground truth, manifest, reproducibility and the
variations, checked from the files alone."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from opencdp.generate import (
    GROUND_TRUTH,
    KINDS,
    MANIFEST,
    STREAMS,
    UNITS,
    GenerateConfig,
    generate_tenant,
)
from opencdp.generate.mutations import PLACEHOLDER_EMAILS, PLACEHOLDER_PHONES
from opencdp.generate.nicknames import NICKNAMES

PEOPLE = 4_000
PROFILE_STREAMS = {
    ("crm", "contacts"),
    ("shopify", "customers"),
    ("stripe", "customers"),
    ("events", "events"),
}


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tenant")
    generate_tenant(GenerateConfig(tenant="acme", people=PEOPLE, seed=3), out)
    return out


def read_records(out: Path) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(source, stream, record) for every record of every stream file."""
    for stream in STREAMS:
        path = out / stream.path
        if stream.columns:
            with path.open(encoding="utf-8", newline="") as f:
                for row in csv.DictReader(f):
                    yield stream.source, stream.stream, row
        else:
            with path.open(encoding="utf-8") as f:
                for line in f:
                    yield stream.source, stream.stream, json.loads(line)


def record_id(source: str, stream: str, record: dict[str, Any]) -> str:
    if source == "crm":
        return str(record["Id"])
    if source == "events":
        return str(record["messageId"])
    return str(record["id"])


@pytest.fixture(scope="module")
def truth(tenant: Path) -> list[dict[str, str]]:
    with (tenant / GROUND_TRUTH).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def manifest(tenant: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tenant / MANIFEST).read_text("utf-8"))
    return data


@pytest.fixture(scope="module")
def profiles(tenant: Path, truth: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Each profile record's person fields, with its person and variations."""
    by_id = {(t["source"], t["stream"], t["record_id"]): t for t in truth}
    result = []
    for source, stream, record in read_records(tenant):
        if (source, stream) not in PROFILE_STREAMS:
            continue
        if source == "events" and record["type"] != "identify":
            continue
        row = by_id[source, stream, record_id(source, stream, record)]
        result.append(
            {
                **person_fields(source, record),
                "person": row["person_id"],
                "kinds": set(filter(None, row["variations"].split(";"))),
                "stream": f"{source}/{stream}",
            }
        )
    return result


def person_fields(source: str, record: dict[str, Any]) -> dict[str, Any]:
    if source == "crm":
        return {
            "first": record["FirstName"] or None,
            "email": record["Email"] or None,
            "phone": record["Phone"] or record["MobilePhone"] or None,
        }
    if source == "shopify":
        address = record.get("default_address") or {}
        return {
            "first": record["first_name"],
            "email": record["email"],
            "phone": address.get("phone", record["phone"]),
        }
    if source == "stripe":
        name = record["name"] or ""
        return {
            "first": name.split(" ")[0] or None,
            "email": record["email"],
            "phone": record["phone"],
        }
    traits = record["traits"]
    return {
        "first": traits.get("firstName"),
        "email": traits.get("email"),
        "phone": traits.get("phone"),
    }


def test_layout(tenant: Path) -> None:
    names = sorted(str(p.relative_to(tenant)) for p in tenant.rglob("*") if p.is_file())
    assert names == sorted([*(s.path for s in STREAMS), GROUND_TRUTH, MANIFEST])


def test_ground_truth_lists_every_record_exactly_once(
    tenant: Path, truth: list[dict[str, str]]
) -> None:
    written = Counter(
        (source, stream, record_id(source, stream, record))
        for source, stream, record in read_records(tenant)
    )
    listed = Counter((t["source"], t["stream"], t["record_id"]) for t in truth)
    assert max(written.values()) == 1, "record ids are unique within a stream"
    assert listed == written
    about_nobody = {("shopify", "products"), ("crm", "accounts")}
    for row in truth:
        assert (row["person_id"] == "") == ((row["source"], row["stream"]) in about_nobody)
    assert len({t["person_id"] for t in truth} - {""}) == PEOPLE


def test_manifest_matches_the_files(
    tenant: Path, truth: list[dict[str, str]], manifest: dict[str, Any]
) -> None:
    assert manifest["tenant"] == "acme"
    assert manifest["seed"] == 3
    assert manifest["people"] == PEOPLE
    lines = {s.path: sum(1 for _ in (tenant / s.path).open(encoding="utf-8")) for s in STREAMS}
    csv_rows = Counter((t["source"], t["stream"]) for t in truth)
    for stream in STREAMS:
        assert manifest["files"][stream.path] == csv_rows[stream.source, stream.stream]
        if not stream.columns:  # CSV rows may span lines (multi-line streets)
            assert manifest["files"][stream.path] == lines[stream.path]
    assert manifest["records"] == len(truth)
    people_in: defaultdict[str, set[str]] = defaultdict(set)
    for row in truth:
        if row["person_id"]:
            people_in[row["source"]].add(row["person_id"])
    for source, info in manifest["sources"].items():
        assert info["people"] == len(people_in[source])
    for a, b in combinations(manifest["sources"], 2):
        assert manifest["overlaps"][f"{a}&{b}"]["people"] == len(people_in[a] & people_in[b])


def test_per_source_people_and_overlaps_match_the_mix(manifest: dict[str, Any]) -> None:
    for entry in [*manifest["sources"].values(), *manifest["overlaps"].values()]:
        share = entry["expected_people"] / PEOPLE
        sd = math.sqrt(PEOPLE * share * (1 - share))
        assert abs(entry["people"] - entry["expected_people"]) <= 5 * sd + 1, entry


def test_every_variation_kind_appears_at_its_rate(
    manifest: dict[str, Any], truth: list[dict[str, str]]
) -> None:
    in_truth = Counter(k for t in truth for k in t["variations"].split(";") if k)
    for kind in KINDS:
        stats = manifest["variations"][kind]
        assert stats["unit"] == UNITS[kind]
        n, applied, rate = stats["eligible"], stats["applied"], stats["rate"]
        assert n > 0, kind
        assert applied > 0, kind
        assert abs(applied - n * rate) <= 5 * math.sqrt(n * rate * (1 - rate)) + 1, kind
        if UNITS[kind] == "record":
            assert in_truth[kind] == applied, kind
        else:
            assert kind not in in_truth


def test_duplicates_are_second_records_in_one_source(
    truth: list[dict[str, str]], manifest: dict[str, Any]
) -> None:
    per_person = Counter(
        (t["source"], t["person_id"])
        for t in truth
        if (t["source"], t["stream"]) in PROFILE_STREAMS - {("events", "events")}
    )
    assert set(per_person.values()) == {1, 2}
    assert (
        sum(c == 2 for c in per_person.values()) == manifest["variations"]["duplicate"]["applied"]
    )


def test_nicknames_and_phone_formats_show_in_the_data(profiles: list[dict[str, Any]]) -> None:
    short_forms = {n for names in NICKNAMES.values() for n in names}
    touched = {
        "name_typo",
        "name_swap",
        "case",
        "whitespace",
        "placeholder",
        "missing",
        "ascii_fold",
    }
    nicknamed = [p for p in profiles if "nickname" in p["kinds"] and not p["kinds"] & touched]
    assert nicknamed
    assert all(p["first"] in short_forms for p in nicknamed)
    plain = [p for p in profiles if not p["kinds"] & {"placeholder", "missing"}]
    for p in plain:
        e164 = p["phone"].startswith("+") and p["phone"][1:].isdigit()
        assert e164 != ("phone_format" in p["kinds"]), p


def test_placeholders_and_shared_emails(profiles: list[dict[str, Any]]) -> None:
    placeholder_values = set(PLACEHOLDER_EMAILS) | set(PLACEHOLDER_PHONES)
    with_placeholder = [p for p in profiles if {p["email"], p["phone"]} & placeholder_values]
    assert with_placeholder
    assert all("placeholder" in p["kinds"] for p in with_placeholder)
    owners: defaultdict[str, set[str]] = defaultdict(set)
    for p in profiles:
        if p["email"] and p["email"] not in placeholder_values:
            owners[p["email"].strip().lower()].add(p["person"])
    shared = [email for email, people in owners.items() if len(people) > 1]
    assert shared, "family members with one email address reach the sources"


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    def digest(out: Path) -> dict[str, str]:
        return {
            str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*"))
            if p.is_file()
        }

    config = GenerateConfig(tenant="acme", people=1_500, seed=9)
    generate_tenant(config, tmp_path / "a")
    generate_tenant(config, tmp_path / "b")
    generate_tenant(GenerateConfig(tenant="acme", people=1_500, seed=10), tmp_path / "c")
    a, b, c = digest(tmp_path / "a"), digest(tmp_path / "b"), digest(tmp_path / "c")
    assert a == b
    assert set(a) == set(c)
    assert all(a[name] != c[name] for name in a)


@pytest.mark.slow
def test_memory_does_not_grow_with_people(tmp_path: Path) -> None:
    def peak(people: int) -> int:
        tracemalloc.start()
        generate_tenant(GenerateConfig(tenant="acme", people=people), tmp_path / str(people))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    peak(200)  # warm the process-wide tables (Faker lists) before measuring
    small, large = peak(500), peak(2_500)
    assert large < small + 3_000_000, (small, large)
