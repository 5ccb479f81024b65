"""Prometheus metrics of the collection service (one registry per process)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


@dataclass
class CollectMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "opencdp_collect_requests",
            "Requests by tenant, source and status.",
            ["tenant", "source", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "opencdp_collect_request_seconds",
            "Time from request to answer (including the durable write).",
            ["endpoint"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.events = Counter(
            "opencdp_collect_events",
            "Events accepted into the queue.",
            ["tenant", "source"],
            registry=self.registry,
        )
        self.dlq_writes = Counter(
            "opencdp_collect_dlq_writes",
            "Events kept in the dead letter queue.",
            ["tenant", "source", "error_type"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "opencdp_collect_queue_depth", "Events waiting in the queue.", registry=self.registry
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
