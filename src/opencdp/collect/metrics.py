"""Prometheus metrics of the collection service (one set per worker process).

The request path only adds to plain counters, on the worker's event-loop thread; they
become Prometheus metrics when /metrics is scraped. (prometheus_client's own metric
objects take a lock and resolve their labels on every update: several times the cost,
at thousands of requests per second.)

The batcher runs in another process (the server's parent, or `opencdp collect batcher`):
it publishes its counters to a small JSON file (`publish_batcher_metrics`), which every
worker reads when it is scraped.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import accumulate
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

# Under the data root; the workers and the batcher of one service share the root.
BATCHER_METRICS_FILE = Path("state") / "collect" / "batcher-metrics.json"

# The batcher's counters as published (BatcherMetrics field -> help text).
BATCHER_COUNTERS = {
    "items_read": "Queue items read by the batcher.",
    "batches_flushed": "Raw-zone files written by the batcher.",
    "events_written": "Events written to the raw zone by the batcher.",
    "bytes_written": "Compressed bytes written to the raw zone by the batcher.",
    "duplicates_dropped": "Duplicate events dropped by the batcher.",
    "invalid_items": "Queue items the batcher sent to the dead letter queue.",
    "write_failures": "Failed attempts of the batcher to write a file (retried).",
}

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one: above every bound
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(LATENCY_BUCKETS, value)] += 1  # the first bound >= value
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative counts by upper bound, as Prometheus exposes them."""
        bounds = [*map(str, LATENCY_BUCKETS), "+Inf"]
        return [(bound, n) for bound, n in zip(bounds, accumulate(self.counts), strict=True)]


class CollectMetrics:
    """The counters of one worker process (see the module's docstring)."""

    def __init__(self, batcher_file: Path | None = None) -> None:
        self.requests: Counter[tuple[str, str, str]] = Counter()  # tenant, source, status
        self.events: Counter[tuple[str, str]] = Counter()  # tenant, source
        self.dlq_writes: Counter[tuple[str, str, str]] = Counter()  # ..., error type
        self.latency: dict[str, _Histogram] = {}  # endpoint -> its histogram
        self.queue_depth = 0
        # Where the batcher publishes its counters (None: not shown).
        self.batcher_file = batcher_file

    def count_request(self, tenant: str, source: str, status: int) -> None:
        self.requests[tenant, source, str(status)] += 1

    def count_events(self, tenant: str, source: str, events: int = 1) -> None:
        self.events[tenant, source] += events

    def count_dlq_write(self, tenant: str, source: str, error_type: str) -> None:
        self.dlq_writes[tenant, source, error_type] += 1

    def observe_latency(self, endpoint: str, seconds: float) -> None:
        histogram = self.latency.get(endpoint)
        if histogram is None:
            histogram = self.latency[endpoint] = _Histogram()
        histogram.observe(seconds)

    def render(self) -> bytes:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        return generate_latest(registry)

    def collect(self) -> Iterator[Metric]:
        yield _counter(
            "opencdp_collect_requests",
            "Requests by tenant, source and status.",
            ["tenant", "source", "status"],
            self.requests.items(),
        )
        latency = HistogramMetricFamily(
            "opencdp_collect_request_seconds",
            "Time from request to answer (including the durable write).",
            labels=["endpoint"],
        )
        for endpoint, histogram in self.latency.items():
            latency.add_metric([endpoint], histogram.buckets(), histogram.total)
        yield latency
        yield _counter(
            "opencdp_collect_events",
            "Events accepted into the queue.",
            ["tenant", "source"],
            self.events.items(),
        )
        yield _counter(
            "opencdp_collect_dlq_writes",
            "Events kept in the dead letter queue.",
            ["tenant", "source", "error_type"],
            self.dlq_writes.items(),
        )
        yield GaugeMetricFamily(
            "opencdp_collect_queue_depth", "Events waiting in the queue.", self.queue_depth
        )
        if self.batcher_file is not None:
            yield from _batcher_metrics(self.batcher_file)


def _counter(
    name: str,
    documentation: str,
    label_names: list[str],
    counts: Iterable[tuple[Sequence[str], int]],
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=label_names)
    for labels, count in counts:
        family.add_metric(labels, count)
    return family


def publish_batcher_metrics(path: Path, values: Mapping[str, Any]) -> None:
    """Replace `path` with `values` as JSON, atomically (a reader never sees half a file).
    No fsync: the file is a view of counters, not data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    hidden = path.with_name(f".{path.name}.{os.getpid()}")
    hidden.write_bytes(orjson.dumps(values))
    hidden.replace(path)


def _batcher_metrics(path: Path) -> Iterator[Metric]:
    """The batcher's published counters, as they were at its last round."""
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return  # no batcher has published yet (or none runs beside this service)
    for name, documentation in BATCHER_COUNTERS.items():
        value = doc.get(name)
        if isinstance(value, int | float):
            yield CounterMetricFamily(f"opencdp_collect_batcher_{name}", documentation, value)
    last = doc.get("last_flush_at")
    if isinstance(last, int | float):
        yield GaugeMetricFamily(
            "opencdp_collect_batcher_last_flush_timestamp_seconds",
            "When the batcher last wrote a raw-zone file (unix seconds).",
            last,
        )
