"""The ``pymcd_`` metric families: what only pymcd knows, beside memcached_exporter's.

- ``pymcd_request_duration_seconds{protocol,command}``: sampled service time per command (see
  :mod:`pymcd.web.latency`); its ``_count`` counts samples, not requests.
- ``pymcd_watch_lines_sent_total``, ``pymcd_watch_lines_skipped_total``, ``pymcd_watchers``:
  the ``watch`` streams, and the lines dropped for watchers that could not keep up.
- ``pymcd_info{version,memcached_version}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from pymcd import MEMCACHED_VERSION, __version__
from pymcd.web.latency import LatencySampler

if TYPE_CHECKING:  # pragma: no cover
    from pymcd.context import ServerContext


class PymcdCollector:
    def __init__(self, server: "ServerContext", sampler: LatencySampler) -> None:
        self.server = server
        self.sampler = sampler

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("pymcd_info", "pymcd's version and the memcached version it "
                                 "behaves as.", labels=["version", "memcached_version"])
        info.add_metric([__version__, MEMCACHED_VERSION], 1)
        yield info
        latency = HistogramMetricFamily(
            "pymcd_request_duration_seconds", "Sampled time the server spent executing one "
            "request, per command (the count is of samples, not of requests).",
            labels=["protocol", "command"])
        for (protocol, command), histogram in sorted(self.sampler.histograms.items()):
            if histogram.samples:
                latency.add_metric([protocol, command], histogram.cumulative(), histogram.total)
        yield latency
        log = dict(self.server.event_log.stats())
        for name, doc, key in (
                ("pymcd_watch_lines_sent", "Lines sent to watch connections.",
                 "log_watcher_sent"),
                ("pymcd_watch_lines_skipped", "Lines dropped because a watcher's buffer was "
                 "full (each watcher is told skipped=N).", "log_watcher_skipped")):
            counter = CounterMetricFamily(name, doc)
            counter.add_metric([], log[key])
            yield counter
        watchers = GaugeMetricFamily("pymcd_watchers", "Connections running watch.")
        watchers.add_metric([], log["log_watchers"])
        yield watchers
