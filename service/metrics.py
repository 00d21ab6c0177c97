"""Prometheus metrics of one worker, in a registry of their own (one per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """The counters and histograms the service exports at /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "banditrec_http_requests_total",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "banditrec_http_request_seconds",
            "HTTP request latency by route template.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.feedback_events = Counter(
            "banditrec_feedback_events_total",
            "Feedback events by type and outcome (accepted or duplicate).",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.recommendations = Counter(
            "banditrec_recommendations_total",
            "Served lists, by whether they came from a stale snapshot.",
            ["stale"],
            registry=self.registry,
        )
        self.snapshot_age = Gauge(
            "banditrec_snapshot_age_seconds",
            "Seconds since the in-process snapshot was last confirmed current.",
            registry=self.registry,
        )
        self.snapshot_refreshes = Counter(
            "banditrec_snapshot_refreshes_total", "Successful refreshes.", registry=self.registry
        )
        self.snapshot_full_reloads = Counter(
            "banditrec_snapshot_full_reloads_total",
            "Refreshes that reloaded every count because deltas were missing or too many.",
            registry=self.registry,
        )
        self.snapshot_failures = Counter(
            "banditrec_snapshot_failures_total", "Failed refreshes.", registry=self.registry
        )
