"""The collection service's metrics: counted on the request path, exposed at a scrape,
with the batcher's counters read from the file it publishes."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from opencdp.collect.metrics import CollectMetrics, publish_batcher_metrics

Labels = tuple[tuple[str, str], ...]


def samples(metrics: CollectMetrics) -> dict[tuple[str, Labels], float]:
    text = metrics.render().decode()
    return {
        (s.name, labels(**s.labels)): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def labels(**values: str) -> Labels:
    return tuple(sorted(values.items()))


def test_requests_events_dlq_and_queue_depth() -> None:
    metrics = CollectMetrics()
    metrics.count_request("acme", "shop", 200)
    metrics.count_request("acme", "shop", 200)
    metrics.count_request("acme", "shop", 401)
    metrics.count_events("acme", "site", 3)
    metrics.count_dlq_write("acme", "shop", "invalid_json")
    metrics.queue_depth = 7
    got = samples(metrics)
    requests = "opencdp_collect_requests_total"
    assert got[requests, labels(tenant="acme", source="shop", status="200")] == 2
    assert got[requests, labels(tenant="acme", source="shop", status="401")] == 1
    assert got["opencdp_collect_events_total", labels(tenant="acme", source="site")] == 3
    dlq = labels(tenant="acme", source="shop", error_type="invalid_json")
    assert got["opencdp_collect_dlq_writes_total", dlq] == 1
    assert got["opencdp_collect_queue_depth", ()] == 7


def test_latency_histogram_is_cumulative_by_upper_bound() -> None:
    metrics = CollectMetrics()
    for seconds in (0.0005, 0.001, 0.003, 0.3, 9.0):
        metrics.observe_latency("webhook", seconds)
    got = samples(metrics)

    def bucket(le: str) -> float:
        return got["opencdp_collect_request_seconds_bucket", labels(endpoint="webhook", le=le)]

    assert bucket("0.001") == 2  # a bound includes the values equal to it
    assert bucket("0.0025") == 2
    assert bucket("0.005") == 3
    assert bucket("0.5") == 4
    assert bucket("2.5") == 4
    assert bucket("+Inf") == 5
    assert got["opencdp_collect_request_seconds_count", labels(endpoint="webhook")] == 5
    assert got["opencdp_collect_request_seconds_sum", labels(endpoint="webhook")] == 9.3045


def test_batcher_counters_come_from_the_published_file(tmp_path: Path) -> None:
    path = tmp_path / "state" / "batcher.json"
    metrics = CollectMetrics(batcher_file=path)
    assert not any(name.startswith("opencdp_collect_batcher") for name, _ in samples(metrics))
    publish_batcher_metrics(path, {"batches_flushed": 4, "events_written": 80_000})
    got = samples(metrics)
    assert got["opencdp_collect_batcher_batches_flushed_total", ()] == 4
    assert got["opencdp_collect_batcher_events_written_total", ()] == 80_000
    path.write_text("{torn", encoding="utf-8")  # never written so, but never fatal either
    assert not any(name.startswith("opencdp_collect_batcher") for name, _ in samples(metrics))
