"""Profile search (Tantivy): index build time and size, and search latency by query kind.

Profiles are the synthetic generator's people (its names, email patterns, phones, towns and
postcodes of six countries), as the curated `profiles` table holds them. The benchmark

1. builds the table of --rows profiles (not timed) and a full index of it (timed: the
   analysis into documents, then the whole sync), and reports the index's size;
2. runs --queries searches of each kind, one at a time in this process, each for a random
   person, and reports p50/p95/p99 latency of the whole `search()` call (query plan,
   Tantivy search with the exact total, and reading the page's 20 profile ids), and how
   often that person is in the page;
3. times an incremental sync of 1,000 changed and 100 deleted profiles;
4. times what a reader pays per search to notice a new commit (two stat calls) beside
   reloading the index on every search.

Target (issue 7): search p95 at most 100 ms with 1,000,000 profiles indexed.

    uv run python benchmarks/bench_search.py [--rows 1000000] [--queries 300] [--seed 42]

Results: benchmarks/results/search.json. The index is kept under benchmarks/work/search/.
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import tantivy

from _common import WORK, machine, write_result
from _profiles import make_people, make_table
from opencdp.generate import mutations
from opencdp.generate.people import Person
from opencdp.generate.phones import e164, written
from opencdp.serve.search.documents import profile_documents
from opencdp.serve.search.tantivy_index import TantivyProfileSearch

Query = tuple[str, dict[str, str]]


def query_kinds(people: list[Person], rng: random.Random) -> dict[str, Callable[[Person], Query]]:
    def phone(p: Person) -> str:
        return e164(p.country.phone, p.phone)

    return {
        "misspelled_full_name": lambda p: (
            f"{mutations.typo(rng, p.first_name)} {mutations.typo(rng, p.last_name)}",
            {},
        ),
        "exact_full_name": lambda p: (f"{p.first_name} {p.last_name}", {}),
        "email_prefix": lambda p: (p.email[: rng.randint(4, 8)], {}),
        "misspelled_email": lambda p: (mutations.email_typo(rng, p.email), {}),
        "phone_last4": lambda p: (phone(p)[-4:], {}),
        "phone_written": lambda p: (written(p.country.phone, p.phone, rng), {}),
        "name_and_country": lambda p: (
            f"{p.first_name} {p.last_name}",
            {"country": p.country.code},
        ),
    }


def percentiles(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49] * 1000, 2),
        "p95_ms": round(cuts[94] * 1000, 2),
        "p99_ms": round(cuts[98] * 1000, 2),
        "max_ms": round(max(values) * 1000, 2),
        "mean_ms": round(statistics.fmean(values) * 1000, 2),
    }


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def build(table: pa.Table, folder: Path, heap_mb: int) -> dict[str, Any]:
    """A full index of `table` in `folder`: its build time and size."""
    shutil.rmtree(folder, ignore_errors=True)
    index = TantivyProfileSearch(folder, writer_heap_bytes=heap_mb * 1_000_000)
    t0 = time.perf_counter()
    documents = sum(1 for _ in profile_documents(table))
    analysis_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index.sync(table, [], full=True, snapshot_id=1)
    build_s = time.perf_counter() - t0
    pointer = index.pointer()
    assert pointer is not None
    assert pointer.documents == documents == table.num_rows
    size = folder_bytes(folder / f"gen-{pointer.generation:06d}")
    print(f"indexed in {build_s:.1f} s (analysis alone {analysis_s:.1f} s), {size / 1e6:.0f} MB")
    return {
        "build_s": round(build_s, 2),
        "analysis_s": round(analysis_s, 2),
        "profiles_per_s": round(table.num_rows / build_s),
        "size_mb": round(size / 1e6, 1),
        "bytes_per_profile": round(size / table.num_rows, 1),
    }


def run_queries(
    reader: TantivyProfileSearch, people: list[Person], per_kind: int, rng: random.Random
) -> dict[str, Any]:
    kinds = query_kinds(people, rng)
    for make in list(kinds.values())[:2]:  # warm the page cache and the reader
        for p in rng.sample(people, 20):
            q, filters = make(p)
            reader.search(q, filters=filters)
    results: dict[str, Any] = {}
    for name, make in kinds.items():
        latencies, found, totals = [], 0, []
        for p in rng.sample(people, min(per_kind, len(people))):
            q, filters = make(p)
            t0 = time.perf_counter()
            page = reader.search(q, filters=filters, limit=20)
            latencies.append(time.perf_counter() - t0)
            found += any(hit.profile_id == p.person_id for hit in page.hits)
            totals.append(page.total)
        results[name] = {
            **percentiles(latencies),
            "queries": len(latencies),
            "person_in_first_page": round(found / len(latencies), 3),
            "median_total": statistics.median(totals),
            "example": make(people[0])[0],
        }
        print(f"{name:>22}: {results[name]}")
    return results


def incremental(
    folder: Path, reader: TantivyProfileSearch, people: list[Person], rng: random.Random
) -> dict[str, Any]:
    """An incremental sync of 1,000 changed and 100 deleted profiles, and the first search
    after it (the reader notices the commit and reloads once)."""
    changed = make_table(rng.sample(people, 1_000), rng.randrange(1 << 30))
    deleted = [p.person_id for p in rng.sample(people, 100)]
    t0 = time.perf_counter()
    TantivyProfileSearch(folder).sync(changed, deleted, full=False, snapshot_id=2)
    sync_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    reader.search("x")
    first_s = time.perf_counter() - t0
    print(f"incremental sync {sync_s:.2f} s, first search after it {first_s * 1000:.1f} ms")
    return {
        "upserted": changed.num_rows,
        "deleted": len(deleted),
        "s": round(sync_s, 3),
        "first_search_after_commit_ms": round(first_s * 1000, 2),
    }


def noticing_commits(folder: Path, reader: TantivyProfileSearch) -> dict[str, Any]:
    """What a reader pays per search to notice commits: a check, or a reload every time."""
    checks = 20_000
    t0 = time.perf_counter()
    for _ in range(checks):
        reader._current()  # the two stat calls of every search (private: measured only)
    check_us = (time.perf_counter() - t0) / checks * 1e6
    pointer = reader.pointer()
    assert pointer is not None
    raw = tantivy.Index.open(str(folder / f"gen-{pointer.generation:06d}"))
    raw.config_reader(reload_policy="manual")
    reloads = 500
    t0 = time.perf_counter()
    for _ in range(reloads):
        raw.reload()
        raw.searcher()
    reload_us = (time.perf_counter() - t0) / reloads * 1e6
    print(f"per search: check {check_us:.1f} us, reload {reload_us:.0f} us")
    return {
        "stat_check_per_search_us": round(check_us, 2),
        "reload_per_search_us": round(reload_us, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300, help="per query kind")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--heap-mb", type=int, default=256, help="Tantivy writer heap")
    args = parser.parse_args()

    started = time.perf_counter()
    people = make_people(args.rows, args.seed)
    table = make_table(people, args.seed)
    print(f"{len(people):,} profiles made in {time.perf_counter() - started:.1f} s")
    folder = WORK / "search" / str(args.rows)
    index = build(table, folder, args.heap_mb)
    del table
    reader = TantivyProfileSearch(folder)
    rng = random.Random(args.seed + 1)
    queries = run_queries(reader, people, args.queries, rng)
    write_result(
        "search",
        {
            "rows": args.rows,
            "seed": args.seed,
            "writer_heap_mb": args.heap_mb,
            "index": index,
            "queries": queries,
            "total": "exact (Tantivy counts every match)",
            "incremental_sync": incremental(folder, reader, people, rng),
            "noticing_commits": noticing_commits(folder, reader),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "machine": machine(),
        },
    )


if __name__ == "__main__":
    main()
