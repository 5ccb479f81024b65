"""Throughput of the row-local transform functions (clean, normalize, enrich).

Each function runs on arrays of realistic values drawn with the synthetic generator's own
building blocks (its names, email domains, phone formats, country spellings, timestamp
formats, typos, case and white-space variants, placeholders), mostly distinct as in real
exports. Reports values/s by wall clock and by CPU time (the figure to compare on a shared
machine). Results go to benchmarks/results/normalize.json.

    uv run python benchmarks/bench_normalize.py [--rows 1000000] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from _common import machine, write_result
from opencdp.generate import mutations, timefmt
from opencdp.generate.locales import Country, countries
from opencdp.generate.phones import e164, written
from opencdp.transform import clean, enrich, normalize

_START, _SPAN = 1_500_000_000, 250_000_000  # 2017 to 2025, Unix seconds


def _pick_country(rng: random.Random, every: tuple[Country, ...]) -> Country:
    return rng.choices(every, [c.weight for c in every])[0]


def _vary(rng: random.Random, value: str) -> str:
    roll = rng.random()
    if roll < 0.1:
        return mutations.change_case(rng, value)
    if roll < 0.15:
        return mutations.add_whitespace(rng, value)
    return value


def make_inputs(rows: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    every = countries()
    people = [_pick_country(rng, every) for _ in range(rows)]
    first = [(c.female if rng.random() < 0.5 else c.male)(rng) for c in people]
    last = [c.last(rng) for c in people]
    emails = []
    for i, (c, f, surname) in enumerate(zip(people, first, last, strict=True)):
        email = f"{mutations.ascii_only(f).lower()}.{mutations.ascii_only(surname).lower()}{i}"
        email = f"{email.replace(' ', '')}@{c.email_domains(rng)}"
        if rng.random() < 0.03:
            email = mutations.email_typo(rng, email)
        if rng.random() < 0.02:
            email = rng.choice(mutations.PLACEHOLDER_EMAILS)
        emails.append(_vary(rng, email))
    phones = []
    for i, c in enumerate(people):
        nsn = c.phone.nsn(rng, i, 12_345)
        phones.append(written(c.phone, nsn, rng) if rng.random() < 0.6 else e164(c.phone, nsn))
    seconds = [_START + rng.randrange(_SPAN) for _ in range(rows)]
    stamps = [
        timefmt.salesforce(s)
        if k == 0
        else timefmt.shopify(s, -300)
        if k == 1
        else timefmt.segment(s * 1000 + rng.randrange(1000))
        if k == 2
        else str(s)
        for s, k in ((s, rng.randrange(4)) for s in seconds)
    ]
    amounts = [f"{rng.randrange(100, 50_000) / 100:.2f}" for _ in range(rows)]
    currencies = [rng.choice((c.currency, c.currency.lower())) for c in people]
    return {
        "text": pa.array([_vary(rng, f"{f} {s}") for f, s in zip(first, last, strict=True)]),
        "names": pa.array([_vary(rng, s) for s in last]),
        "emails": pa.array(emails),
        "phones": pa.array(phones),
        "regions": pa.array([c.code for c in people]),
        "countries": pa.array([rng.choice(c.aliases) for c in people]),
        "currencies": pa.array(currencies),
        "amounts": pa.array(amounts),
        "minor": pa.array([rng.randrange(100, 50_000) for _ in range(rows)]),
        "timestamps": pa.array(stamps),
        "dates": pa.array([timefmt.iso_date(s - 40 * 365 * 86_400) for s in seconds]),
    }


def measure(name: str, rows: int, run: Callable[[], object]) -> dict[str, Any]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    run()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    figures = {
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "values_per_s": round(rows / wall),
        "values_per_cpu_s": round(rows / cpu),
    }
    print(f"{name:32s} {wall:7.3f} s wall {cpu:7.3f} s cpu {rows / cpu / 1e6:7.2f} M values/cpu-s")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rows = args.rows
    print(f"drawing {rows:,} values of each kind ...")
    data = make_inputs(rows, args.seed)
    # Warm the lazily built tables (metadata, country index, lists) outside the timings.
    small = {k: v.slice(0, 1000) for k, v in data.items()}
    normalize.normalize_phones(small["phones"], small["regions"])
    normalize.normalize_countries(small["countries"])
    enrich.timezones(small["phones"], small["regions"])
    enrich.is_free_mail(small["emails"])
    enrich.is_disposable(small["emails"])

    emails = normalize.normalize_emails(data["emails"])[0]
    domains = enrich.email_domains(emails)
    e164s = normalize.normalize_phones(data["phones"], data["regions"])[0]
    regions = data["regions"]
    cases: dict[str, Callable[[], object]] = {
        "clean_text": lambda: clean.clean_text(data["text"]),
        "null_placeholders(email)": lambda: clean.null_placeholders(data["emails"], "email"),
        "null_placeholders(phone)": lambda: clean.null_placeholders(data["phones"], "phone"),
        "normalize_emails": lambda: normalize.normalize_emails(data["emails"]),
        "normalize_phones": lambda: normalize.normalize_phones(data["phones"], regions),
        "normalize_names": lambda: normalize.normalize_names(data["names"]),
        "normalize_countries": lambda: normalize.normalize_countries(data["countries"]),
        "normalize_currencies": lambda: normalize.normalize_currencies(data["currencies"]),
        "to_amounts": lambda: normalize.to_amounts(data["amounts"], data["currencies"]),
        "to_amounts(minor_units)": lambda: normalize.to_amounts(
            data["minor"], data["currencies"], minor_units=True
        ),
        "to_utc_timestamps": lambda: normalize.to_utc_timestamps(data["timestamps"]),
        "to_dates": lambda: normalize.to_dates(data["dates"]),
        "email_domains": lambda: enrich.email_domains(emails),
        "is_free_mail": lambda: enrich.is_free_mail(domains),
        "is_disposable": lambda: enrich.is_disposable(domains),
        "phone_facts": lambda: enrich.phone_facts(e164s),
        "timezones": lambda: enrich.timezones(e164s, regions),
    }
    results = {name: measure(name, rows, run) for name, run in cases.items()}
    # The yardstick: phonenumbers itself, one value at a time (what the fast path replaces).
    sample = list(
        zip(data["phones"][:20_000].to_pylist(), regions[:20_000].to_pylist(), strict=True)
    )
    cpu0 = time.process_time()
    for text, region in sample:
        normalize._parse_phone.__wrapped__(text, region)
    per_value_us = (time.process_time() - cpu0) / len(sample) * 1e6
    print(f"{'phonenumbers, per value':32s} {per_value_us:7.1f} us cpu")
    normalizers = [n for n in results if n.startswith(("normalize_", "to_"))]
    total = sum(results[n]["cpu_s"] for n in normalizers)
    print(f"{'all normalize_* and to_*':32s} {total:7.3f} s cpu for {rows:,} values each")
    write_result(
        "normalize",
        {
            "rows": rows,
            "seed": args.seed,
            "functions": results,
            "normalizers_cpu_s": round(total, 3),
            "phonenumbers_per_value_cpu_us": round(per_value_us, 1),
            "machine": machine(),
        },
    )


if __name__ == "__main__":
    main()
