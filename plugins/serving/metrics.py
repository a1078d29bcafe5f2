"""The server's Prometheus metrics, written in the text exposition format (version 0.0.4).

``beamline_serving_requests_total{model, route, code}``, the latency histogram
``beamline_serving_request_seconds{model, route}``, the batch-size histogram
``beamline_serving_batch_size``, ``beamline_serving_model_version{model}`` (the version
answering), ``beamline_serving_model_swaps_total`` and
``beamline_serving_model_load_failures_total``.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Histogram:
    """Cumulative buckets, sum and count, as Prometheus histograms are exposed."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one observation."""
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value

    def lines(self, metric: str, labels: str) -> list[str]:
        """The ``_bucket``, ``_sum`` and ``_count`` lines."""
        out, total = [], 0
        sep = "," if labels else ""
        for bound, count in zip((*self.buckets, float("inf")), self.counts, strict=True):
            total += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            out.append(f'{metric}_bucket{{{labels}{sep}le="{le}"}} {total}')
        braces = f"{{{labels}}}" if labels else ""
        out += [f"{metric}_sum{braces} {self.sum!r}", f"{metric}_count{braces} {total}"]
        return out


class ServingMetrics:
    """Counters and histograms of one server (updated from the event loop and the loader)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = {}
        self.batches = Histogram(BATCH_BUCKETS)
        self.version = 0
        self.swaps = 0
        self.load_failures = 0

    def request(self, route: str, code: int, seconds: float) -> None:
        """Count one answered request."""
        with self._lock:
            self.requests[(route, code)] += 1
            self.latency.setdefault(route, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def batch(self, rows: int) -> None:
        """Count one batch run by the model."""
        with self._lock:
            self.batches.observe(rows)

    def loaded(self, version: int) -> None:
        """A version now answers."""
        with self._lock:
            if self.version:
                self.swaps += 1
            self.version = version

    def load_failed(self) -> None:
        """A version failed to load."""
        with self._lock:
            self.load_failures += 1

    def text(self) -> str:
        """Every metric in Prometheus's text format."""
        m = f'model="{self.model}"'
        with self._lock:
            lines = [
                "# HELP beamline_serving_requests_total Requests answered, by route and HTTP code.",
                "# TYPE beamline_serving_requests_total counter",
            ]
            for (route, code), count in sorted(self.requests.items()):
                lines.append(
                    f'beamline_serving_requests_total{{{m},route="{route}",code="{code}"}} {count}'
                )
            lines += [
                "# HELP beamline_serving_request_seconds Time from request to answer.",
                "# TYPE beamline_serving_request_seconds histogram",
            ]
            for route, histogram in sorted(self.latency.items()):
                lines += histogram.lines("beamline_serving_request_seconds", f'{m},route="{route}"')
            lines += [
                "# HELP beamline_serving_batch_size Examples per batch run by the model.",
                "# TYPE beamline_serving_batch_size histogram",
                *self.batches.lines("beamline_serving_batch_size", m),
                "# HELP beamline_serving_model_version The model version answering requests.",
                "# TYPE beamline_serving_model_version gauge",
                f"beamline_serving_model_version{{{m}}} {self.version}",
                "# HELP beamline_serving_model_swaps_total New versions swapped in.",
                "# TYPE beamline_serving_model_swaps_total counter",
                f"beamline_serving_model_swaps_total{{{m}}} {self.swaps}",
                "# HELP beamline_serving_model_load_failures_total Versions that failed to load.",
                "# TYPE beamline_serving_model_load_failures_total counter",
                f"beamline_serving_model_load_failures_total{{{m}}} {self.load_failures}",
            ]
        return "\n".join(lines) + "\n"
