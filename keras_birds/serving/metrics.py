"""Prometheus metrics of the server (prometheus_client), served at GET /metrics.

Each app has its own registry (tests run several in one process). With several workers (`--workers N`)
the server sets PROMETHEUS_MULTIPROC_DIR before they start, and /metrics sums every worker's files, so any
worker a scrape lands on reports the whole server.
"""
from __future__ import annotations

import os

LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

        disable_created_metrics()  # the *_created series double the page and say nothing a scraper needs
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("keras_birds_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=r)
        self.latency = Histogram("keras_birds_request_seconds", "time from request to answer", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.errors = Counter("keras_birds_errors", "requests refused or failed, by kind", ["kind"], registry=r)
        self.images = Counter("keras_birds_images", "images classified", registry=r)
        self.batch_size = Histogram("keras_birds_batch_size", "images per model call", buckets=BATCH_BUCKETS,
                                    registry=r)
        self.inference = Histogram("keras_birds_inference_seconds", "time of one model call (a batch)",
                                   buckets=LATENCY_BUCKETS, registry=r)
        self.queued = Gauge("keras_birds_queued_images", "images waiting for or in the model",
                            multiprocess_mode="livesum", registry=r)

    def on_batch(self, n: int, seconds: float):
        self.batch_size.observe(n)
        self.inference.observe(seconds)
        self.images.inc(n)

    def exposition(self) -> tuple[bytes, str]:
        """(body, content type) of /metrics: this process' metrics, or every worker's in multiprocess mode."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
