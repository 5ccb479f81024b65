"""Durable puts/s of the embedded event queue beside an fsync probe, in the same run.

1. fsync probe: 1 KB append + fsync in a loop, one writer (the disk's physical limit,
   which moves by 10x and more on shared virtual disks: compare ratios, not absolutes);
2. for each producer count N: N asyncio producers on one event loop, each awaiting
   `DiskQueue.put([one ~1 KB envelope line])` in a loop (what N concurrent requests
   of one server worker do): puts/s, data fsyncs/s, puts per fsync, put latency p50/p99;
   the same with fsync replaced by a no-op gives the non-durable ceiling of the code path;
3. draining: the reader (read + ack) and the batcher (parse, gzip, raw-zone file, ack)
   over what step 2 queued.

    uv run python benchmarks/bench_queue.py [--seconds 5] [--producers 1,64,256]

Goals (reference/performance.md, G2): the durable rate >= 0.6x the non-durable one, and
never one fsync per put. Results: benchmarks/results/queue.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import orjson

from _common import WORK as COMMON_WORK
from _common import machine, write_result
from opencdp.collect.batcher import Batcher, BatcherConfig
from opencdp.collect.queue.disk import DiskQueue
from opencdp.logs import configure_logging
from opencdp.storage import open_object_store

WORK = COMMON_WORK / "queue"


_ID = "{ID:012}"


def envelope(n: int) -> bytes:
    """A ~1 KB tracking event, as the collection service queues it; its id is `_ID`."""
    record = {
        "type": "track",
        "event": "Order Completed",
        "messageId": _ID,
        "userId": f"user-{n % 5000}",
        "timestamp": "2025-01-15T01:00:00.123Z",
        "properties": {"order_id": f"o-{n}", "total": 99.5, "currency": "USD", "pad": "x" * 640},
        "context": {"ip": "203.0.113.7", "library": {"name": "analytics-python", "version": "2"}},
    }
    meta = {
        "tenant": "bench",
        "provider": "web",
        "stream": ("tracks", "pages", "identifies")[n % 3],
        "kind": "track",
        "id": record["messageId"],
        "received_at": "2025-01-15T01:00:00.123Z",
        "extracted_at": None,
        "batch_id": None,
        "schema_version": None,
        "event_type": None,
    }
    return orjson.dumps({"_meta": meta, "record": record})


class Events:
    """Distinct events cheaply: a few templates with a fresh id spliced in."""

    def __init__(self) -> None:
        self._parts = [envelope(n).split(_ID.encode()) for n in range(3)]

    def __call__(self, n: int) -> bytes:
        return f"{n:012d}".encode().join(self._parts[n % 3])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def fsync_probe(folder: Path, seconds: float) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "probe.bin"
    block = b"p" * 1024
    latencies: list[float] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
    try:
        end = time.perf_counter() + seconds
        while (start := time.perf_counter()) < end:
            os.write(fd, block)
            os.fsync(fd)
            latencies.append(time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()
    total = sum(latencies)
    return {
        "fsyncs": len(latencies),
        "fsyncs_per_s": round(len(latencies) / total),
        "p50_ms": round(pct(latencies, 0.5) * 1e3, 3),
        "p99_ms": round(pct(latencies, 0.99) * 1e3, 3),
    }


def put_load(folder: Path, producers: int, seconds: float, durable: bool) -> dict[str, Any]:
    shutil.rmtree(folder, ignore_errors=True)
    queue = DiskQueue(folder, fsync=os.fsync if durable else (lambda fd: None))
    event = Events()
    latencies: list[float] = []

    async def producer(k: int) -> None:
        n = k
        while time.perf_counter() < end:
            item = event(n)
            start = time.perf_counter()
            await queue.put([item])
            latencies.append(time.perf_counter() - start)
            n += producers

    async def main() -> None:
        await asyncio.gather(*(producer(k) for k in range(producers)))

    start = time.perf_counter()
    end = start + seconds
    cpu = time.process_time()
    asyncio.run(main())
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu
    fsyncs = queue.fsyncs
    queue.close()
    puts = len(latencies)
    return {
        "puts": puts,
        "puts_per_s": round(puts / wall),
        "fsyncs_per_s": round(fsyncs / wall) if durable else None,
        "puts_per_fsync": round(puts / fsyncs, 1) if durable and fsyncs else None,
        "p50_ms": round(pct(latencies, 0.5) * 1e3, 3),
        "p99_ms": round(pct(latencies, 0.99) * 1e3, 3),
        "mean_ms": round(statistics.fmean(latencies) * 1e3, 3),
        "cpu_s_per_1k_puts": round(cpu / puts * 1e3, 4),
        "bytes_on_disk": sum(p.stat().st_size for p in (folder / "segments").glob("*.seg")),
    }


def drain_reader(folder: Path) -> dict[str, Any]:
    queue = DiskQueue(folder)
    total = 0
    start = time.perf_counter()
    while batch := queue.read(1000, 0):
        total += len(batch)
        queue.ack(batch)
    wall = time.perf_counter() - start
    queue.close()
    return {"items": total, "items_per_s": round(total / wall)}


def drain_batcher(folder: Path, root: Path) -> dict[str, Any]:
    shutil.rmtree(root, ignore_errors=True)
    queue = DiskQueue(folder)
    batcher = Batcher(queue, open_object_store(str(root)), BatcherConfig(max_events=20_000))
    start = time.perf_counter()
    cpu = time.process_time()
    while batcher.run_once():
        pass
    batcher.flush()
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu
    left = queue.depth()
    queue.close()
    m = batcher.metrics
    return {
        "events": m.events_written,
        "files": m.batches_flushed,
        "events_per_s": round(m.events_written / wall),
        "cpu_s": round(cpu, 2),
        "duplicates_dropped": m.duplicates_dropped,
        "left_in_queue": left,
        "compressed_bytes_per_event": round(m.bytes_written / max(1, m.events_written), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--producers", default="1,64,256")
    args = parser.parse_args()
    configure_logging("warning")
    producer_counts = [int(p) for p in args.producers.split(",")]
    WORK.mkdir(parents=True, exist_ok=True)

    result: dict[str, Any] = {"machine": machine(), "seconds_per_run": args.seconds}
    result["fsync_probe_before"] = probe = fsync_probe(WORK, min(args.seconds, 3.0))
    print(f"fsync probe: {probe['fsyncs_per_s']:,} fsync/s (p50 {probe['p50_ms']} ms)")

    runs = []
    for n in producer_counts:
        durable = put_load(WORK / f"durable-{n}", n, args.seconds, durable=True)
        loose = put_load(WORK / f"loose-{n}", n, args.seconds, durable=False)
        ratio = round(durable["puts_per_s"] / loose["puts_per_s"], 2)
        runs.append({"producers": n, "durable": durable, "non_durable": loose, "ratio": ratio})
        print(
            f"{n:>4} producers: {durable['puts_per_s']:>7,} durable puts/s "
            f"({durable['fsyncs_per_s']:,} fsync/s, {durable['puts_per_fsync']} puts/fsync, "
            f"p50 {durable['p50_ms']} ms, p99 {durable['p99_ms']} ms); "
            f"non-durable {loose['puts_per_s']:,}/s; ratio {ratio}"
        )
    result["runs"] = runs
    result["fsync_probe_after"] = probe = fsync_probe(WORK, min(args.seconds, 3.0))
    print(f"fsync probe: {probe['fsyncs_per_s']:,} fsync/s (p50 {probe['p50_ms']} ms)")

    biggest = max(producer_counts)
    result["reader_drain"] = drained = drain_reader(WORK / f"durable-{biggest}")
    print(f"reader (read + ack): {drained['items_per_s']:,} items/s over {drained['items']:,}")
    result["batcher_drain"] = batched = drain_batcher(WORK / f"loose-{biggest}", WORK / "root")
    print(
        f"batcher: {batched['events_per_s']:,} events/s into {batched['files']} raw files "
        f"({batched['compressed_bytes_per_event']} B/event)"
    )
    write_result("queue", result)


if __name__ == "__main__":
    main()
