"""The REST API under load: lookups by email from a separate load generator, and search.

1. builds --profiles profiles from the generator's people (realistic names, emails, phones
   and places) and their email and phone identities as curated Iceberg tables, and loads
   them with `refresh_tenant` (the loader and the search index; timed, reported);
2. starts `opencdp serve --workers W` on the embedded PostgreSQL with an API key;
3. runs wrk (Debian's package, a separate process on the same 2 cores) for --duration
   seconds with --connections connections, each request a lookup of a random person's
   email (`GET /v1/profiles/lookup?email=...`: key check, normalization, one query that
   renders the whole profile with its identities), after a warm-up; reports requests/s,
   latency percentiles and non-2xx answers;
4. runs --queries searches of each kind one at a time over HTTP (`/v1/profiles/search`,
   the whole request: key, index search, the page's summaries from PostgreSQL).

Targets (issue 7): lookups p99 at most 20 ms and at least 2,000 requests/s; search p95 at
most 100 ms; with 1,000,000 profiles.

    uv run python benchmarks/bench_api.py [--profiles 1000000] [--workers 2]
        [--connections 32] [--duration 30] [--queries 200] [--reuse]

--reuse keeps the loaded data root of an earlier run (benchmarks/work/api/) and starts at 2.
Results: benchmarks/results/api.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pyarrow as pa
import requests
from pyiceberg.expressions import AlwaysTrue

from _common import RESULTS, WORK, machine, write_result
from _profiles import make_people, make_table
from opencdp.collect.probe import free_port, wait_healthy
from opencdp.db import Database
from opencdp.generate import mutations
from opencdp.identity.model import IDENTITIES, PROFILES
from opencdp.lake import ensure_namespace, open_catalog
from opencdp.lake.commit import commit, ensure_table
from opencdp.serve.keys import create_key
from opencdp.serve.refresh import refresh_tenant
from opencdp.settings import Settings, load_settings

TENANT = "bench"
ROOT = WORK / "api"
LUA = """
local emails = {}
for line in io.lines("%(emails)s") do emails[#emails + 1] = line end
local headers = {["Authorization"] = "Bearer %(token)s"}
math.randomseed(%(seed)d)
request = function()
  return wrk.format("GET", "/v1/profiles/lookup?email=" .. emails[math.random(#emails)], headers)
end
"""


def identities(profiles: pa.Table) -> pa.Table:
    """The email and phone identities of the profiles, as resolution records them."""
    rows = []
    for kind in ("email", "phone"):
        values = profiles[kind]
        rows.append(
            pa.table(
                {
                    "id_type": pa.array([kind] * profiles.num_rows),
                    "id_value": values,
                    "profile_id": profiles["profile_id"],
                }
            ).filter(values.is_valid())
        )
    # A value two people give (a family's email) is one identity: it keeps one profile.
    found = (
        pa.concat_tables(rows)
        .group_by(["id_type", "id_value"], use_threads=False)
        .aggregate([("profile_id", "min")])
        .rename_columns(["id_type", "id_value", "profile_id"])
    )
    n = found.num_rows
    extra = {
        "rule": pa.array(["record"] * n),
        "confidence": pa.array([1.0] * n),
        "records": pa.array([1] * n, pa.int64()),
        "blocked": pa.array([False] * n),
    }
    columns = [
        found[f.name] if f.name in found.column_names else extra.get(f.name, pa.nulls(n, f.type))
        for f in IDENTITIES
    ]
    return pa.table(columns, schema=IDENTITIES)


def write_curated(settings: Settings, name: str, schema: pa.Schema, data: pa.Table) -> None:
    with open_catalog(settings) as catalog:
        ensure_namespace(catalog, TENANT)
        table = ensure_table(catalog, TENANT, name, schema, (), {})
        commit(table, data.cast(schema), run_id="bench", replace=AlwaysTrue())


def build(settings: Settings, n: int, seed: int) -> dict[str, Any]:
    start = time.perf_counter()
    people = make_people(n, seed)
    profiles = make_table(people, seed)
    write_curated(settings, "profiles", PROFILES, profiles)
    write_curated(settings, "identities", IDENTITIES, identities(profiles))
    built = time.perf_counter() - start
    start = time.perf_counter()
    report = refresh_tenant(settings, TENANT, progress=lambda line: print(f"  {line}"))
    loaded = time.perf_counter() - start
    print(f"built {n:,} profiles in {built:.1f} s; loaded and indexed in {loaded:.1f} s")
    return {"build_seconds": round(built, 1), "load_and_index_seconds": round(loaded, 1),
            "search_index": report.search}  # fmt: skip


def sample(settings: Settings, count: int, seed: int) -> list[dict[str, Any]]:
    """`count` random profiles (email, phone, names) from the served table."""
    with Database.from_settings(settings).connect() as conn:
        rows = conn.execute(
            "SELECT profile_id, email, phone, first_name, last_name FROM t_bench.profiles "
            "WHERE email IS NOT NULL AND first_name IS NOT NULL "
            "ORDER BY md5(profile_id || %s::text) LIMIT %s",
            (str(seed), count),
        ).fetchall()
    return [dict(r) for r in rows]


def start_api(settings: Settings, port: int, workers: int) -> subprocess.Popen[bytes]:
    opencdp = Path(sys.executable).parent / "opencdp"
    process = subprocess.Popen(
        [str(opencdp), "--root", str(settings.root), "--log-level", "warning", "serve",
         "--port", str(port), "--workers", str(workers)],
        start_new_session=True,
    )  # fmt: skip
    if not wait_healthy(port, timeout=60):
        os.killpg(process.pid, signal.SIGKILL)
        raise RuntimeError("the API did not start")
    return process


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def run_wrk(url: str, script: Path, connections: int, seconds: int) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    percentiles = {
        f"p{p}_ms": round(_ms(v), 2) for p, v in re.findall(r"^\s+(\d+)%\s+(\S+)$", out, re.M)
    }
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)$", out, re.M)
    return {
        "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        **percentiles,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else None,
        "connections": connections,
        "seconds": seconds,
    }


def search_latency(
    url: str, token: str, people: list[dict[str, Any]], queries: int, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    kinds = {
        "misspelled_full_name": lambda p: (
            f"{mutations.typo(rng, p['first_name'])} {mutations.typo(rng, p['last_name'])}"
        ),
        "email_prefix": lambda p: p["email"][: rng.randint(4, 8)],
        "phone_last4": lambda p: (p["phone"] or "0000")[-4:],
    }
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    results: dict[str, Any] = {}
    for kind, make in kinds.items():
        took: list[float] = []
        found = 0
        for person in rng.sample(people, min(queries, len(people))):
            start = time.perf_counter()
            response = session.get(f"{url}/v1/profiles/search", params={"q": make(person)})
            took.append((time.perf_counter() - start) * 1000)
            response.raise_for_status()
            found += person["profile_id"] in {p["profile_id"] for p in response.json()["data"]}
        cuts = statistics.quantiles(took, n=100)
        results[kind] = {
            "p50_ms": round(cuts[49], 2),
            "p95_ms": round(cuts[94], 2),
            "p99_ms": round(cuts[98], 2),
            "person_on_first_page": round(found / len(took), 3),
        }
        print(f"search {kind}: {results[kind]}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed as the load generator: apt-get install wrk")
    result: dict[str, Any] = {"machine": machine(), "profiles": args.profiles}
    settings = load_settings(ROOT)
    if args.reuse and (RESULTS / "api.json").exists():  # the build's figures stay
        result["load"] = json.loads((RESULTS / "api.json").read_text()).get("load")
    if not args.reuse:
        shutil.rmtree(ROOT, ignore_errors=True)
        ROOT.mkdir(parents=True)
        settings = load_settings(ROOT)
        result["load"] = build(settings, args.profiles, args.seed)
    db = Database.from_settings(settings)
    _, token = create_key(db, TENANT, "bench", ["profiles:read"])
    people = sample(settings, 20_000, args.seed)
    emails = ROOT / "emails.txt"
    emails.write_text("".join(urllib.parse.quote(p["email"]) + "\n" for p in people))
    script = ROOT / "lookup.lua"
    script.write_text(LUA % {"emails": emails, "token": token, "seed": args.seed})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_api(settings, port, args.workers)
    try:
        run_wrk(url, script, args.connections, 5)  # warm-up: pools, prepared statements
        lookups = run_wrk(url, script, args.connections, args.duration)
        print(f"lookups by email: {lookups}")
        result["lookup"] = {**lookups, "workers": args.workers}
        result["search"] = search_latency(url, token, people, args.queries, args.seed)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    ok = lookups["p99_ms"] <= 20 and lookups["requests_per_second"] >= 2000
    search_ok = all(k["p95_ms"] <= 100 for k in result["search"].values())
    result["targets"] = {"lookup_p99_20ms_and_2000rps": ok, "search_p95_100ms": search_ok}
    print(f"targets: {result['targets']}")
    write_result("api", result)


if __name__ == "__main__":
    main()
