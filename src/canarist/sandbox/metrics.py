"""Knative queue-proxy request metrics, recorded by the ingress per revision.

Two families, named and labelled as Knative's queue-proxy exports them (and as KServe's
serverless mode exposes them to Prometheus):

* `revision_app_request_count` (counter): requests, by response code;
* `revision_app_request_latencies` (histogram, milliseconds): `_bucket`, `_sum`, `_count`.

Labels: `service_name`, `configuration_name` (both `<isvc>-predictor-default`),
`revision_name`, `namespace_name`, `response_code`, `response_code_class` (`2xx`...).

The counter keeps Knative's name without the `_total` suffix (as Knative's exporter writes it),
so the families come from a collector on a private `CollectorRegistry`, exposed in the
Prometheus text format (0.0.4) whatever the scraper asks for.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from canarist.sandbox.routes import Backend

COUNT = "revision_app_request_count"
LATENCIES = "revision_app_request_latencies"
LABELS = ("configuration_name", "namespace_name", "response_code", "response_code_class",
          "revision_name", "service_name")
# Knative's default latency distribution, in milliseconds.
BUCKETS_MS = (5.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 150.0, 200.0, 250.0, 300.0, 350.0, 400.0,
              450.0, 500.0, 600.0, 700.0, 800.0, 900.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0,
              50000.0, 100000.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LabelValues = tuple[str, ...]


class _Series:
    __slots__ = ("buckets", "count", "total_ms")

    def __init__(self) -> None:
        self.count = 0
        self.total_ms = 0.0
        self.buckets = [0] * (len(BUCKETS_MS) + 1)


class RequestMetrics(Collector):
    """Thread-safe per-revision request counts and latencies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[LabelValues, _Series] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def observe(self, backend: Backend, code: int, latency_ms: float) -> None:
        labels = (backend.service, backend.namespace, str(code), f"{code // 100}xx",
                  backend.revision, backend.service)
        slot = bisect.bisect_left(BUCKETS_MS, latency_ms)
        with self._lock:
            series = self._series.get(labels)
            if series is None:
                series = self._series[labels] = _Series()
            series.count += 1
            series.total_ms += latency_ms
            series.buckets[slot] += 1

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            snapshot = [(labels, s.count, s.total_ms, list(s.buckets))
                        for labels, s in sorted(self._series.items())]
        count = Metric(COUNT, "The number of requests that are routed to user-container", "counter")
        latencies = HistogramMetricFamily(
            LATENCIES, "The response time in millisecond", labels=LABELS)
        for labels, total, sum_ms, buckets in snapshot:
            count.add_sample(COUNT, dict(zip(LABELS, labels, strict=True)), float(total))
            cumulative, running = [], 0
            for bound, hits in zip((*BUCKETS_MS, float("inf")), buckets, strict=True):
                running += hits
                cumulative.append((_bound(bound), float(running)))
            latencies.add_metric(list(labels), cumulative, sum_ms)
        yield count
        yield latencies

    def exposition(self) -> bytes:
        """The text format; the counter's HELP/TYPE lines keep Knative's name (no `_total`)."""
        text = generate_latest(self.registry)
        for kind in (b"HELP", b"TYPE"):
            text = text.replace(b"# %s %s_total " % (kind, COUNT.encode()),
                                b"# %s %s " % (kind, COUNT.encode()))
        return text

    def counts(self) -> dict[LabelValues, int]:
        with self._lock:
            return {labels: s.count for labels, s in self._series.items()}


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else f"{value:g}"
