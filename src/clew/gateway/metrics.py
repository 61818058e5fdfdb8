"""``clew serve``'s Prometheus metrics (``GET /metrics``), by route, provider, model and key.

Counters of requests (by status), errors (by code), tokens, cost in USD and cache hits, and
histograms of request latency and of upstream latency (each request to a provider, retries and
fallbacks included; a stream until its end). A key is its name (``clew keys``), or the hash of a
``CLEW_GATEWAY_KEYS`` key: never the key. With several workers,
set ``PROMETHEUS_MULTIPROC_DIR`` to a folder they share (prometheus_client's multiprocess
mode) so that one scrape sees them all.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from clew.errors import CompletionError
from clew.gateway.schemas import CompletionResponse

__all__ = ["CONTENT_TYPE_LATEST", "GatewayMetrics"]

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class GatewayMetrics:
    """The metrics of one app (its own registry, so several apps in one process stay apart)."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        labels = ("route", "provider", "model", "key")
        self.requests = Counter(
            "clew_gateway_requests",
            "Requests answered, by status.",
            (*labels, "status"),
            registry=self.registry,
        )
        self.errors = Counter(
            "clew_gateway_errors",
            "Requests that failed, by error code.",
            (*labels, "code"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "clew_gateway_request_seconds",
            "Time to answer a request (a stream: to its end).",
            labels,
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.upstream_latency = Histogram(
            "clew_gateway_upstream_seconds",
            "Time of each request to a provider (a stream: to its end).",
            ("provider", "model"),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "clew_gateway_tokens",
            "Tokens, by kind (input, output).",
            (*labels, "kind"),
            registry=self.registry,
        )
        self.cost = Counter(
            "clew_gateway_cost_usd",
            "Cost of the answers in USD (cache hits cost 0).",
            labels,
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "clew_gateway_cache_hits",
            "Requests answered from the cache.",
            labels,
            registry=self.registry,
        )

    def answered(self, route: str, key: str, seconds: float, response: CompletionResponse) -> None:
        """Count a request answered with ``response``."""
        labels = (route, response.provider, response.model, key)
        self.requests.labels(*labels, "200").inc()
        self.latency.labels(*labels).observe(seconds)
        self.tokens.labels(*labels, "input").inc(response.input_tokens)
        self.tokens.labels(*labels, "output").inc(response.output_tokens)
        if response.cost:
            self.cost.labels(*labels).inc(response.cost)
        if response.cache_hit:
            self.cache_hits.labels(*labels).inc()

    def upstream(self, provider: str, model: str, seconds: float) -> None:
        """Count one request to a provider that took ``seconds``."""
        self.upstream_latency.labels(provider, model).observe(seconds)

    def failed(
        self, route: str, key: str, seconds: float, error: CompletionError, model: str = ""
    ) -> None:
        """Count a request that failed with ``error``."""
        labels = (route, error.provider or "", model, key)
        self.requests.labels(*labels, str(error.status_code)).inc()
        self.errors.labels(*labels, error.code).inc()
        self.latency.labels(*labels).observe(seconds)

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        if self.multiprocess_dir:
            from prometheus_client import multiprocess

            registry: Any = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return bytes(generate_latest(registry))
        return bytes(generate_latest(self.registry))
