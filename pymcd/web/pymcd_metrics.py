"""The ``pymcd_`` metric families: what only pymcd knows, beside memcached_exporter's.

- ``pymcd_request_duration_seconds{protocol,command}``: sampled service time per command (see
  :mod:`pymcd.web.latency`); its ``_count`` counts samples, not requests.
- ``pymcd_watch_lines_sent_total``, ``pymcd_watch_lines_skipped_total``, ``pymcd_watchers``:
  the ``watch`` streams, and the lines dropped for watchers that could not keep up.
- ``pymcd_backpressure_pauses_total``: reads paused because a client's unsent replies passed
  the output bound (it stopped reading what it asked for).
- in proxy mode, ``pymcd_proxy_backend_*{backend}`` (up, requests, errors, timeouts, failures,
  times marked down), ``pymcd_proxy_route_*{route}`` and the config reload counters.
- ``pymcd_info{version,memcached_version}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Optional

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
    from pymcd.proxy.service import ProxyService


class PymcdCollector:
    def __init__(self, server: "ServerContext", sampler: LatencySampler,
                 proxy: Optional["ProxyService"] = None) -> None:
        self.server = server
        self.sampler = sampler
        self.proxy = proxy

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
        yield _counter("pymcd_backpressure_pauses", "Reads paused because a client's unsent "
                       "replies passed the output bound.", self.server.stats.backpressure_pauses)
        if self.proxy is not None:
            yield from proxy_families(self.proxy)


def _counter(name: str, doc: str, value: float) -> Metric:
    counter = CounterMetricFamily(name, doc)
    counter.add_metric([], value)
    return counter


BACKEND_COUNTERS = (("requests", "Requests sent to the backend."),
                    ("errors", "Requests the backend failed (or refused while marked down)."),
                    ("timeouts", "Requests the backend did not answer in time."),
                    ("failures", "Connection failures."),
                    ("marked_down", "Times the backend was marked down."))


def proxy_families(proxy: "ProxyService") -> Iterator[Metric]:
    """Per-backend and per-route figures of proxy mode, read from its live objects."""
    yield _counter("pymcd_proxy_config_reloads", "Proxy config reloads.", proxy.reloads)
    yield _counter("pymcd_proxy_config_reload_fails", "Proxy config reloads that failed (the "
                   "old config went on).", proxy.reload_failures)
    backends = list(proxy.config.backends.values())
    up = GaugeMetricFamily("pymcd_proxy_backend_up", "1 while the backend is in service, 0 "
                           "while marked down.", labels=["backend"])
    for backend in backends:
        up.add_metric([backend.name], 0 if backend.down else 1)
    yield up
    for field, doc in BACKEND_COUNTERS:
        family = CounterMetricFamily("pymcd_proxy_backend_" + field, doc, labels=["backend"])
        for backend in backends:
            family.add_metric([backend.name], getattr(backend.stats, field))
        yield family
    for field in ("requests", "errors"):
        family = CounterMetricFamily("pymcd_proxy_route_" + field, "Requests routed (and failed) "
                                     "per route.", labels=["route"])
        for name, counters in proxy.router.counters.items():
            family.add_metric([name], getattr(counters, field))
        yield family
