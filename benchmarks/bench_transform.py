"""The transform on ~1,000,000 generated raw records: historic on DuckDB and on Spark
local[2], and incremental after 2% of the records change.

1. generates a tenant (`opencdp generate`, 106,000 people ≈ 1M records) and lands every
   stream in a raw zone through the Singer target (as `opencdp extract` does);
2. times `opencdp transform --historic --engine duckdb` as a process, start-up included;
3. changes 2% of the records: 2% of each customer, order and charge stream comes again
   with a new value and a later update time, and new events equal to 2% of the events
   arrive; times the incremental `opencdp transform`, then the same command once more with
   nothing left to do (the start both modes pay, mostly imports); records the time each
   run reports for itself and for each of its stages;
4. times `opencdp transform --historic --engine spark` (local[2]) in a copy of the root;
5. the pipeline as `opencdp scheduler` runs it, in one process that is already up: times
   the call of a historic run, then, after another 2% of the records change, of an
   incremental one (the run log, the catalog and the engine included; no process start);
6. measures the Parquet bytes of the curated tables against the raw NDJSON (gzip'd and not).

    uv run python benchmarks/bench_transform.py [--people 106000] [--skip-spark]

Targets (issue 5): historic on DuckDB <= 30 s; incremental >= 10x faster than historic
(the modes' work: the runs' own time and in one process; the commands' ratio, process start
included, is reported beside them, decision 0012); DuckDB >= 2x faster than Spark local[2];
Parquet <= 0.15x the raw NDJSON size.
Results: benchmarks/results/transform.json.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from _common import WORK, machine, write_result
from bench_ingest import rows

OPENCDP = Path(sys.executable).parent / "opencdp"
TENANT = "bench"
# (provider, stream, generated file, key property)
STREAMS = (
    ("crm", "contacts", "crm/contacts.csv", "Id"),
    ("crm", "accounts", "crm/accounts.csv", "Id"),
    ("shopify", "customers", "shopify/customers.jsonl", "id"),
    ("shopify", "orders", "shopify/orders.jsonl", "id"),
    ("shopify", "products", "shopify/products.jsonl", "id"),
    ("stripe", "customers", "stripe/customers.jsonl", "id"),
    ("stripe", "charges", "stripe/charges.jsonl", "id"),
    ("segment", "events", "events/events.jsonl", "messageId"),
)
CHANGED = 0.02


def singer(stream: str, key: str, rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    schema = {"type": "object", "required": [key], "properties": {key: {}}}
    yield orjson.dumps(
        {"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": [key]}
    )
    for row in rows:
        yield orjson.dumps({"type": "RECORD", "stream": stream, "record": row})


def land(root: Path, provider: str, stream: str, key: str, rows: Iterator[dict[str, Any]]) -> None:
    from opencdp.ingest.pipeline import ingest_lines
    from opencdp.settings import load_settings

    summary = ingest_lines(
        load_settings(root),
        tenant=TENANT,
        provider=provider,
        lines=singer(stream, key, rows),
        source=f"{provider}_{stream}",
    )
    assert not summary.dlq_files


def changed(
    provider: str, stream: str, rows: list[dict[str, Any]], rng: random.Random
) -> list[dict[str, Any]]:
    """2% of a stream with a new value; events: as many new events."""
    now = datetime.now(UTC)
    sample = rng.sample(rows, max(1, int(len(rows) * CHANGED)))
    out = []
    for original in sample:
        row = dict(original)
        if provider == "segment":
            row["messageId"] = str(uuid.uuid4())
        elif provider == "crm":
            row["Email"] = f"changed.{row['Id']}@example.org"
            row["LastModifiedDate"] = now.isoformat().replace("+00:00", "Z")
        elif stream == "charges":
            row["status"] = "refunded"
        else:
            row["updated_at"] = now.isoformat()
            if "email" in row:
                row["email"] = f"changed.{row['id']}@example.org"
        out.append(row)
    return out


def change(
    root: Path, loaded: dict[tuple[str, str], list[dict[str, Any]]], rng: random.Random
) -> int:
    """Lands 2% of the records again, changed (`changed`); returns how many."""
    changes = 0
    for provider, stream, _, key in STREAMS:
        if stream in ("accounts", "products"):
            continue
        delta = changed(provider, stream, loaded[(provider, stream)], rng)
        changes += len(delta)
        land(root, provider, stream, key, iter(delta))
    return changes


def in_one_process(
    root: Path, loaded: dict[tuple[str, str], list[dict[str, Any]]], rng: random.Random
) -> dict[str, Any]:
    """A historic run, then an incremental one after another 2% changed, each timed around
    `run_pipeline` in this process, as `opencdp scheduler` calls it."""
    from opencdp.pipeline import run_pipeline
    from opencdp.settings import load_settings

    settings = load_settings(root, log_level="warning")

    def seconds(historic: bool) -> tuple[float, int]:
        start = time.perf_counter()
        report = run_pipeline(settings, TENANT, historic=historic, identity=False, load=False)
        return round(time.perf_counter() - start, 2), report.transform.lines

    historic, lines = seconds(True)
    changes = change(root, loaded, rng)
    incremental, _ = seconds(False)
    print(
        f"in one process: historic {historic} s, incremental after {changes:,} changed "
        f"records {incremental} s",
        file=sys.stderr,
    )
    return {
        "historic_s": historic,
        "historic_lines": lines,
        "incremental_s": incremental,
        "changed_records": changes,
        "incremental_speedup": round(historic / incremental, 1),
    }


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    return timed_run(argv, env)[0]


def timed_run(
    argv: list[str], env: dict[str, str] | None = None
) -> tuple[float, float, dict[str, float]]:
    """The command's time, the run's and each of its stages' as the run reports them (its
    last line "time: stage 1.2 s, ...; the run 3.4 s"): the work, without starting the
    process."""
    wide = {**(env or os.environ), "COLUMNS": "1000"}  # no wrapped lines to parse
    start = time.perf_counter()
    done = subprocess.run(
        argv, check=True, env=wide, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    seconds = round(time.perf_counter() - start, 2)
    sys.stderr.write(done.stderr)
    run, stages = 0.0, {}
    for line in done.stderr.splitlines():
        if line.startswith("time: "):
            parts, _, whole = line.removeprefix("time: ").partition("; the run ")
            run = float(whole.removesuffix(" s"))
            for part in parts.split(", "):
                name, value, _ = part.rsplit(" ", 2)
                stages[name] = float(value)
    return seconds, run, stages


def transform(root: Path, *extra: str) -> list[str]:
    return [
        str(OPENCDP),
        "--root",
        str(root),
        "--log-level",
        "warning",
        "transform",
        "--tenant",
        TENANT,
        "--no-identity",  # the transform alone: identity and the load are measured by
        "--no-load",  # bench_identity and bench_load
        *extra,
    ]


def folder_bytes(folder: Path, suffix: str) -> int:
    return sum(p.stat().st_size for p in folder.rglob(f"*{suffix}"))


def raw_uncompressed(folder: Path) -> int:
    return sum(len(gzip.decompress(p.read_bytes())) for p in folder.rglob("*.ndjson.gz"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=106_000)
    parser.add_argument("--skip-spark", action="store_true")
    args = parser.parse_args()
    at_start = machine()  # before this run adds its own load

    work = WORK / "transform"
    generated = work / f"generated-{args.people}"
    if not (generated / "manifest.json").exists():
        subprocess.run(
            [
                str(OPENCDP),
                "generate",
                "--tenant",
                TENANT,
                "--people",
                str(args.people),
                "--seed",
                "7",
                "--out",
                str(generated),
                "--force",
            ],
            check=True,
        )
    root = work / "root"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    subprocess.run(
        [str(OPENCDP), "--root", str(root), "db", "stop"],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    loaded: dict[tuple[str, str], list[dict[str, Any]]] = {}
    total = 0
    started = time.perf_counter()
    for provider, stream, relative, key in STREAMS:
        records = list(rows(generated, relative))
        loaded[(provider, stream)] = records
        land(root, provider, stream, key, iter(records))
        total += len(records)
    land_s = round(time.perf_counter() - started, 1)
    print(f"landed {total:,} raw records in {land_s} s", file=sys.stderr)
    raw = root / "raw" / TENANT
    raw_gz = folder_bytes(raw, ".ndjson.gz")
    raw_plain = raw_uncompressed(raw)

    historic_duckdb, historic_run, historic_stages = timed_run(
        transform(root, "--historic", "--engine", "duckdb")
    )
    print(f"historic on DuckDB: {historic_duckdb} s (the run {historic_run} s)", file=sys.stderr)
    parquet = folder_bytes(root / "warehouse", ".parquet")

    rng = random.Random(11)
    changes = change(root, loaded, rng)
    incremental, incremental_run, incremental_stages = timed_run(transform(root))
    print(
        f"incremental after {changes:,} changed records: {incremental} s "
        f"(the run {incremental_run} s)",
        file=sys.stderr,
    )
    # The same command with nothing left to do: starting the process (mostly imports),
    # which both modes pay. Without it, the ratio of the modes' own work.
    start_up = timed(transform(root))
    print(f"a run with nothing to do: {start_up} s", file=sys.stderr)

    result: dict[str, Any] = {
        "people": args.people,
        "raw_records": total,
        "changed_records": changes,
        "land_s": land_s,
        "historic_duckdb_s": historic_duckdb,
        "incremental_duckdb_s": incremental,
        "incremental_speedup": round(historic_duckdb / incremental, 1),
        "nothing_to_do_s": start_up,
        # The runs as they time themselves: the work of each mode in a process already up
        # (as the scheduler runs them), without the start both commands pay.
        "historic_duckdb_run_s": historic_run,
        "incremental_duckdb_run_s": incremental_run,
        "incremental_speedup_in_process": round(historic_run / incremental_run, 1),
        "historic_stages_s": historic_stages,
        "incremental_stages_s": incremental_stages,
        "raw_ndjson_bytes": raw_plain,
        "raw_ndjson_gz_bytes": raw_gz,
        "parquet_bytes": parquet,
        "parquet_to_raw_ndjson": round(parquet / raw_plain, 3),
        "parquet_to_raw_gz": round(parquet / raw_gz, 3),
    }
    if not args.skip_spark:
        spark_root = work / "root-spark"
        shutil.rmtree(spark_root, ignore_errors=True)
        shutil.copytree(
            root,
            spark_root,
            ignore=shutil.ignore_patterns("warehouse", "catalog.db", "postgres", "transform"),
        )
        env = {**os.environ, "OPENCDP_TRANSFORM__SPARK_MASTER": "local[2]"}
        spark = timed(transform(spark_root, "--historic", "--engine", "spark"), env)
        print(f"historic on Spark local[2]: {spark} s", file=sys.stderr)
        result["historic_spark_local2_s"] = spark
        result["duckdb_speedup_over_spark"] = round(spark / historic_duckdb, 1)
        subprocess.run(
            [str(OPENCDP), "--root", str(spark_root), "db", "stop"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    # Timed around the pipeline call in one long-lived process, as the scheduler runs it:
    # the same modes without the process start, and not as the run times itself. Its
    # historic run reads the first 2% changed too.
    result["pipeline_in_one_process"] = in_one_process(root, loaded, rng)
    subprocess.run(
        [str(OPENCDP), "--root", str(root), "db", "stop"],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    result["machine"] = at_start
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    write_result("transform", result)


if __name__ == "__main__":
    main()
