"""Throughput and memory of the synthetic data generator (`opencdp generate`).

Generates one tenant to benchmarks/work/generator and reports records/s and people/s (by
wall clock and by CPU time: the CPU figure is the one to compare on a shared machine), peak
resident memory, and the output size. Results go to benchmarks/results/generator.json.

    uv run python benchmarks/bench_generator.py [--people 100000] [--seed 42]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
import timeit

from _common import WORK as COMMON_WORK
from _common import machine, write_result
from opencdp.generate import GenerateConfig, generate_tenant
from opencdp.generate.locales import countries

WORK = COMMON_WORK / "generator"


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def calibration_ns() -> float:
    """ns to build a small dict: a yardstick to compare this machine's Python speed."""
    return (
        min(timeit.repeat("{'a': 1, 'b': 2, 'c': 3, 'd': 4, 'e': 5}", number=200_000, repeat=5))
        / 200_000
        * 1e9
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    countries()  # Faker's lists are loaded once per process; keep that out of the timing
    rss_before = peak_rss_mb()
    shutil.rmtree(WORK, ignore_errors=True)
    config = GenerateConfig(tenant="bench", people=args.people, seed=args.seed)
    load = os.getloadavg()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    manifest = generate_tenant(config, WORK)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    records = manifest["records"]
    size = sum(p.stat().st_size for p in WORK.rglob("*") if p.is_file())

    result = {
        "people": args.people,
        "seed": args.seed,
        "records": records,
        "files": manifest["files"],
        "output_mb": round(size / 1e6, 1),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "records_per_s": round(records / wall),
        "records_per_cpu_s": round(records / cpu),
        "people_per_s": round(args.people / wall),
        "people_per_cpu_s": round(args.people / cpu),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_before_mb": round(rss_before, 1),
        "machine": {
            **machine(),
            "load_average_at_start": [round(x, 2) for x in load],
            "dict_literal_ns": round(calibration_ns(), 1),
        },
    }
    path = write_result("generator", result)
    shutil.rmtree(WORK, ignore_errors=True)

    print(f"generator: {args.people:,} people -> {records:,} records, {result['output_mb']} MB")
    for clock, seconds, suffix in (("wall", wall, ""), ("cpu ", cpu, "_cpu")):
        print(
            f"  {clock} {seconds:.1f} s: {result[f'records_per{suffix}_s']:,} records/s, "
            f"{result[f'people_per{suffix}_s']:,} people/s"
        )
    print(
        f"  peak RSS {result['peak_rss_mb']} MB (before generating: {result['rss_before_mb']} MB)"
    )
    print(f"  results: {path}")


if __name__ == "__main__":
    main()
