"""Throughput of `opencdp ingest` (the Singer target) beside `gzip -6` on the same bytes.

1. generates a tenant (`opencdp generate`) and turns its Shopify, Stripe, CRM and event
   records into Singer messages: --records RECORD lines (~1 KB each), a SCHEMA per stream
   and a STATE every 10,000 records;
2. times `opencdp ingest --input` pinned to one core (taskset -c 0: the compression
   thread shares that core) and unpinned, as separate processes, start-up included;
3. times `gzip -6` compressing the same input bytes, pinned to the same core.

    uv run python benchmarks/bench_ingest.py [--records 1000000]

Targets (issue 3): >= 50,000 records/s on one core, >= 0.5x the gzip-only rate, and gzip
saving >= 80% of the raw bytes. Results: benchmarks/results/ingest.json.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from _common import WORK, machine, write_result

OPENCDP = Path(sys.executable).parent / "opencdp"
SOURCES = {
    "shopify_customers": ("shopify/customers.jsonl", "id"),
    "shopify_orders": ("shopify/orders.jsonl", "id"),
    "stripe_customers": ("stripe/customers.jsonl", "id"),
    "stripe_charges": ("stripe/charges.jsonl", "id"),
    "events": ("events/events.jsonl", "messageId"),
    "crm_contacts": ("crm/contacts.csv", "Id"),
}


def generate(people: int, out: Path) -> None:
    if (out / "manifest.json").exists():
        return
    subprocess.run(
        [
            str(OPENCDP),
            "generate",
            "--tenant",
            "bench",
            "--people",
            str(people),
            "--seed",
            "7",
            "--out",
            str(out),
            "--force",
        ],
        check=True,
    )


def rows(folder: Path, relative: str) -> Iterator[dict[str, Any]]:
    path = folder / relative
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            yield from csv.DictReader(f)
    else:
        with path.open("rb") as f:
            for line in f:
                yield orjson.loads(line)


def write_singer(folder: Path, records: int, target: Path) -> dict[str, int]:
    """Singer messages for `records` records, cycling the sources; returns per-stream counts."""
    counts = dict.fromkeys(SOURCES, 0)
    with target.open("wb") as out:
        for stream, (_, key) in SOURCES.items():
            schema = {"type": "object", "required": [key], "properties": {key: {}}}
            out.write(
                orjson.dumps(
                    {"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": [key]}
                )
                + b"\n"
            )
        sources = {s: rows(folder, rel) for s, (rel, _) in SOURCES.items()}
        written = 0
        while written < records and sources:
            for stream in list(sources):  # 100 records of each stream in turn
                taken = 0
                for row in itertools.islice(sources[stream], 100):
                    line = {"type": "RECORD", "stream": stream, "record": row}
                    out.write(orjson.dumps(line) + b"\n")
                    taken += 1
                    written += 1
                    if written % 10_000 == 0:
                        out.write(b'{"type":"STATE","value":{"at":%d}}\n' % written)
                    if written >= records:
                        break
                counts[stream] += taken
                if taken < 100:
                    del sources[stream]
                if written >= records:
                    break
    return counts


def timed(argv: list[str], **kwargs: Any) -> tuple[float, float]:
    """Wall and CPU seconds (user + sys of the child) of one command."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, **kwargs)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def ingest(singer: Path, root: Path, pin: bool) -> dict[str, Any]:
    shutil.rmtree(root, ignore_errors=True)
    argv = [
        str(OPENCDP),
        "--root",
        str(root),
        "--log-level",
        "warning",
        "ingest",
        "--tenant",
        "bench",
        "--provider",
        "mixed",
        "--input",
        str(singer),
    ]
    if pin:
        argv = ["taskset", "-c", "0", *argv]
    wall, cpu = timed(argv, stderr=subprocess.DEVNULL)
    files = list((root / "raw").rglob("*.ndjson.gz"))
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "files": len(files),
        "bytes": sum(f.stat().st_size for f in files),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    work = WORK / "ingest"
    work.mkdir(parents=True, exist_ok=True)
    people = max(1000, args.records // 9)  # the generator's default mix: ~9.6 records a person
    generated = work / f"generated-{people}"
    generate(people, generated)
    singer = work / f"input-{args.records}.singer"
    counts = write_singer(generated, args.records, singer)
    records = sum(counts.values())
    input_bytes = singer.stat().st_size
    print(
        f"{records:,} records, {input_bytes / records:,.0f} bytes each as Singer messages",
        file=sys.stderr,
    )

    pinned = ingest(singer, work / "root", pin=True)
    both = ingest(singer, work / "root", pin=False)
    raw_bytes = sum(len(line) for line in _envelope_sizes(work / "root"))
    gzip_wall, gzip_cpu = timed(
        ["taskset", "-c", "0", "gzip", "-6", "-c", str(singer)], stdout=subprocess.DEVNULL
    )
    gzip_size = len(
        subprocess.run(["gzip", "-6", "-c", str(singer)], check=True, capture_output=True).stdout
    )
    result = {
        "records": records,
        "per_stream": counts,
        "input_bytes": input_bytes,
        "bytes_per_record": round(input_bytes / records),
        "ingest_one_core": {**pinned, "records_per_s": round(records / pinned["wall_s"])},
        "ingest_two_cores": {**both, "records_per_s": round(records / both["wall_s"])},
        "raw_zone_saving": round(1 - both["bytes"] / raw_bytes, 3),
        "gzip6_one_core": {
            "wall_s": round(gzip_wall, 2),
            "cpu_s": round(gzip_cpu, 2),
            "records_per_s": round(records / gzip_wall),
            "saving": round(1 - gzip_size / input_bytes, 3),
        },
        "ratio_ingest_to_gzip_one_core": round(gzip_wall / pinned["wall_s"], 2),
        "machine": machine(),
    }
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    write_result("ingest", result)


def _envelope_sizes(root: Path) -> Iterator[bytes]:
    import gzip

    for path in (root / "raw").rglob("*.ndjson.gz"):
        yield from gzip.decompress(path.read_bytes()).splitlines(keepends=True)


if __name__ == "__main__":
    main()
