"""Synthetic profiles for the serving benchmarks: wide rows straight as Arrow (`profiles`),
and the generator's people as profiles, with realistic names, emails, phones and places
(`make_people`, `make_table`)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from opencdp.generate.config import GenerateConfig
from opencdp.generate.people import Person, plan_households
from opencdp.generate.phones import e164
from opencdp.generate.world import build_world
from opencdp.identity.model import PROFILES, TRAITS

FIRST = ("Ann", "Bob", "Chloé", "Dmitri", "Eve", "Farid", "Grace", "Hiro", "Inés", "Jamal")
LAST = ("Smith", "García", "Nguyen", "Müller", "O'Brien", "Kowalski", "Rossi", "Tanaka")
CITIES = ("San Francisco", "Paris", "Berlin", "São Paulo", "Tokyo", "Lagos", "Toronto")
PROVIDERS = ("crm", "shopify", "stripe", "segment")
RULES = ("record", "email", "phone", "external_id", "model")
SEGMENTS = ("champions", "loyal", "at_risk", "hibernating", "new")


def _pick(rng: np.random.Generator, values: tuple[str, ...], n: int) -> pa.Array:
    return pa.array(values).take(pa.array(rng.integers(0, len(values), n)))


def _sometimes_null(rng: np.random.Generator, values: pa.Array, rate: float) -> pa.Array:
    return pc.if_else(
        pa.array(rng.random(len(values)) < rate), pa.nulls(len(values), values.type), values
    )


def _ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pa.array([f"{prefix}{n:024x}" for n in numbers.tolist()])


def profiles(n: int, seed: int = 7) -> pa.Table:
    """`n` synthetic profiles in the profiles schema."""
    rng = np.random.default_rng(seed)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    seconds = rng.integers(0, 365 * 86400, n)
    times = pa.array([base + timedelta(seconds=int(s)) for s in seconds], pa.timestamp("us", "UTC"))
    first, last = _pick(rng, FIRST, n), _pick(rng, LAST, n)
    numbers = np.arange(n)
    email = pa.array([f"person{i}@example{i % 97}.com" for i in numbers.tolist()])
    columns: dict[str, Any] = {
        "profile_id": _ids("p_", rng.permutation(n) * 7919 + 1),
        "email": email,
        "email_domain": pa.array([f"example{i % 97}.com" for i in numbers.tolist()]),
        "phone": pa.array([f"+1415{i:07d}" for i in numbers.tolist()]),
        "phone_country": pa.array(["US"] * n),
        "first_name": first,
        "last_name": last,
        "full_name": pc.binary_join_element_wise(first, last, " "),
        "birth_date": _sometimes_null(
            rng,
            pa.array(rng.integers(-5000, 15000, n).astype("int32"), pa.int32()).cast(pa.date32()),
            0.3,
        ),
        "company": _sometimes_null(rng, _pick(rng, ("Acme Inc", "Globex", "Initech", ""), n), 0.5),
        "address_line1": pa.array([f"{i % 999 + 1} Market Street" for i in numbers.tolist()]),
        "address_line2": _sometimes_null(
            rng, _pick(rng, ("Apt 1", "Suite 200", "Floor 3"), n), 0.8
        ),
        "city": _pick(rng, CITIES, n),
        "region": _pick(rng, ("CA", "IDF", "BE", "SP", "13"), n),
        "postcode": pa.array([f"{i % 99999:05d}" for i in numbers.tolist()]),
        "country": _pick(rng, ("US", "FR", "DE", "BR", "JP"), n),
        "timezone": _pick(rng, ("America/Los_Angeles", "Europe/Paris", "Asia/Tokyo"), n),
    }
    consent_type = PROFILES.field("consent").type
    columns["consent"] = pa.StructArray.from_arrays(
        [_pick(rng, ("granted", "denied"), n), _pick(rng, ("granted", "denied"), n),
         _sometimes_null(rng, _pick(rng, ("granted", "denied"), n), 0.5), times],
        fields=list(consent_type),
    )  # fmt: skip
    ids_per = 2
    offsets = pa.array(np.arange(0, (n + 1) * ids_per, ids_per, dtype=np.int32))
    columns["external_ids"] = pa.MapArray.from_arrays(
        offsets,
        pa.array(["shopify", "stripe"] * n),
        _ids("cus_", np.arange(n * ids_per)),
        type=PROFILES.field("external_ids").type,
    )
    traits = [name for name, _ in TRAITS][:12]
    lineage_type = PROFILES.field("trait_lineage").type
    entries = n * len(traits)
    lineage = pa.StructArray.from_arrays(
        [_pick(rng, PROVIDERS, entries),
         pa.array([str(i // len(traits)) for i in range(entries)]),
         _pick(rng, RULES, entries)],
        fields=list(lineage_type.item_type),
    )  # fmt: skip
    columns["trait_lineage"] = pa.MapArray.from_arrays(
        pa.array(np.arange(0, (n + 1) * len(traits), len(traits), dtype=np.int32)),
        pa.array(traits * n),
        lineage,
        type=lineage_type,
    )
    orders = rng.integers(0, 20, n)
    cents = rng.integers(0, 10_000_000, n).tolist()
    columns |= {
        "records": pa.array(rng.integers(1, 4, n)),
        "sources": pa.array([["crm", "shopify"]] * n, pa.list_(pa.string())),
        "identified": pa.array(rng.random(n) < 0.9),
        "order_count": pa.array(orders),
        "total_revenue": pa.array([Decimal(c).scaleb(-2) for c in cents], pa.decimal128(18, 4)),
        "avg_order_value": pa.nulls(n, pa.decimal128(18, 4)),
        "currency": pa.array(["USD"] * n),
        "first_order_at": times,
        "last_order_at": times,
        "first_seen_at": times,
        "last_seen_at": times,
        "rfm_recency": pa.array(rng.integers(1, 6, n).astype("int32")),
        "rfm_frequency": pa.array(rng.integers(1, 6, n).astype("int32")),
        "rfm_monetary": pa.array(rng.integers(1, 6, n).astype("int32")),
        "rfm_segment": _pick(rng, SEGMENTS, n),
        "preferred_channel": _pick(rng, ("email", "sms", "ads"), n),
        "created_at": times,
        "updated_at": times,
    }
    return pa.table([columns[f.name] for f in PROFILES], schema=PROFILES)


# --- the generator's people as profiles (realistic names, emails, phones, places) ---

RFM = ("champions", "loyal", "potential", "new", "at_risk", "hibernating", "lost")
CHANNELS = ("email", "sms", "web", "app")


def make_people(rows: int, seed: int) -> list[Person]:
    world = build_world(GenerateConfig(tenant="bench", people=rows, seed=seed))
    return [p for household in plan_households(world) for p in household.members]


def make_table(people: list[Person], seed: int) -> pa.Table:
    rng = random.Random(seed)
    return pa.Table.from_pylist(
        [
            {
                "profile_id": p.person_id,
                "email": p.email,
                "email_domain": p.email.rpartition("@")[2],
                "phone": e164(p.country.phone, p.phone),
                "phone_country": p.country.code,
                "first_name": p.first_name,
                "last_name": p.last_name,
                "full_name": f"{p.first_name} {p.last_name}",
                "address_line1": p.address.line1,
                "city": p.address.city,
                "region": p.address.region,
                "postcode": p.address.postcode,
                "country": p.country.code,
                "external_ids": [(s, f"{s[:2]}-{p.ordinal}") for s in p.sources],
                "records": len(p.sources),
                "sources": sorted(p.sources),
                "identified": p.sources != ("events",),
                "order_count": rng.randrange(20),
                "rfm_segment": rng.choice(RFM),
                "preferred_channel": rng.choice(CHANNELS),
            }
            for p in people
        ],
        schema=PROFILES,
    )
