"""Prometheus metrics of one worker, in a registry of their own (one per app).

Each uvicorn worker counts only what it served itself: a scrape reaches one worker. What
the whole service did (per-policy and per-cluster counts) is reported by
service.engine.bandit_metrics from Redis and the snapshot instead. docs/metrics.md lists both.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """The counters and histograms the service exports at /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "banditrec_http_requests_total",
            "HTTP requests by route template, method and status. This worker.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "banditrec_http_request_seconds",
            "HTTP request latency by route template. This worker.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.feedback_events = Counter(
            "banditrec_feedback_events_total",
            "Feedback events by type and outcome (accepted, or duplicate: a dedupe hit). "
            "This worker.",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.recommendations = Counter(
            "banditrec_recommendations_total",
            "Served lists, by whether they came from a stale snapshot. This worker.",
            ["stale"],
            registry=self.registry,
        )
        self.snapshot_age = Gauge(
            "banditrec_snapshot_age_seconds",
            "Seconds since the snapshot was last confirmed current. This worker.",
            registry=self.registry,
        )
        self.snapshot_refreshes = Counter(
            "banditrec_snapshot_refreshes_total",
            "Successful snapshot refreshes. This worker.",
            registry=self.registry,
        )
        self.snapshot_full_reloads = Counter(
            "banditrec_snapshot_full_reloads_total",
            "Refreshes that reloaded every count because deltas were missing or too many. "
            "This worker.",
            registry=self.registry,
        )
        self.snapshot_failures = Counter(
            "banditrec_snapshot_failures_total",
            "Failed snapshot refreshes. This worker.",
            registry=self.registry,
        )
        self.served_lists = Counter(
            "banditrec_served_lists_total",
            "Lists served by policy and by the heaviest cluster of the user they were ranked "
            "for (global: the population's arms). This worker.",
            ["policy", "cluster"],
            registry=self.registry,
        )
