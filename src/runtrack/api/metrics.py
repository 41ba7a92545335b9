"""Prometheus metrics, one registry per app instance (no global state at import time)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "runtrack_http_requests_total",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "runtrack_http_request_seconds",
            "HTTP request latency by route template",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.transitions = Counter(
            "runtrack_transition_decisions_total",
            "Executor reports by write path and outcome (applied, ignored, rejected)",
            ["path", "outcome", "reason"],
            registry=self.registry,
        )
