"""The ``--http`` site: one ``twisted.web`` Site on its own endpoint, beside the memcached
listeners, in the same reactor thread (so it reads the server's counters without locks).

- ``/``: the dashboard (``static/index.html``, its script and uPlot, all shipped in the package:
  no CDN, no build step, works offline);
- ``/metrics``: Prometheus's text format (or OpenMetrics when asked for) from a registry holding
  the memcached_exporter families, the ``pymcd_`` ones and the process collector;
- ``/api/...``: JSON and server-sent events (:mod:`pymcd.web.api`).

Access follows the server's: HTTP basic against the ``-Y`` or ``-S`` users, over TLS when the
server has TLS.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from time import monotonic
from typing import TYPE_CHECKING, Callable, Dict, Optional, Tuple

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import choose_encoder, gzip_accepted
from twisted.application import internet, service, strports
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import File

from pymcd.web.access import Guarded, credential_checker
from pymcd.web.api import api_resource
from pymcd.web.exporter import MemcachedExporterCollector
from pymcd.web.latency import SAMPLES_PER_SECOND, LatencySampler
from pymcd.web.pymcd_metrics import PymcdCollector

STATIC = Path(__file__).resolve().parent / "static"
# Fast and still about 8:1 on the exposition format.
GZIP_LEVEL = 1
# A rendering is reused for at least this many times what it took (see MetricsResource).
REUSE_FACTOR = 200

if TYPE_CHECKING:  # pragma: no cover
    from pymcd.context import ServerContext
    from pymcd.proxy.service import ProxyService


class QuietSite(Site):
    """No access log: a scraper polling ten times a second would fill the server's log."""

    noisy = False

    def log(self, request) -> None:
        pass


class MetricsResource(Resource):
    """``GET /metrics``: the registry rendered in the reactor thread when scraped.

    A rendering costs the reactor 10-20 ms with a few hundred samples (prometheus_client's
    exposition is about 10 us a sample, collecting the stats as much again), so a rendering is
    reused by the scrapes that follow it for at least ``reuse_seconds`` and at least
    ``REUSE_FACTOR`` times what it cost: a Prometheus scraping every few seconds always gets a
    fresh one, while a poller hammering the endpoint cannot make rendering take more than half
    a percent of the time memcached clients get. A request with ``Cache-Control: no-cache``
    gets a fresh rendering, as it would from an HTTP cache.
    """

    isLeaf = True

    def __init__(self, registry: CollectorRegistry, clock: Callable[[], float] = monotonic,
                 reuse_seconds: float = 1.0) -> None:
        super().__init__()
        self.registry = registry
        self.clock = clock
        self.reuse_seconds = reuse_seconds
        # (content type, gzip) -> (reusable until, body)
        self._rendered: Dict[Tuple[str, bool], Tuple[float, bytes]] = {}

    def render_GET(self, request) -> bytes:
        encoder, content_type = choose_encoder(request.getHeader("accept"))
        request.setHeader("content-type", content_type)
        # Prometheus asks for gzip; the compressed rendering is reused with the rendering, so a
        # scrape then costs sending an eighth of the bytes and no compression.
        compressed = gzip_accepted(request.getHeader("accept-encoding"))
        if compressed:
            request.setHeader("content-encoding", "gzip")
        now = self.clock()
        reusable_until, body = self._rendered.get((content_type, compressed), (now, b""))
        if now >= reusable_until or "no-cache" in (request.getHeader("cache-control") or ""):
            body = encoder(self.registry)
            if compressed:
                body = gzip.compress(body, GZIP_LEVEL)
            cost = self.clock() - now
            self._rendered[(content_type, compressed)] = (
                now + max(self.reuse_seconds, REUSE_FACTOR * cost), body)
        return body


def metrics_registry(server: "ServerContext", sampler: LatencySampler,
                     proxy: Optional["ProxyService"] = None) -> CollectorRegistry:
    def stats_source() -> tuple:
        store = server.store
        return (server.general_stats(), server.settings_stats(), store.items_stats(),
                store.slabs_stats())

    registry = CollectorRegistry(auto_describe=False)
    registry.register(MemcachedExporterCollector(stats_source))
    registry.register(PymcdCollector(server, sampler, proxy))
    ProcessCollector(registry=registry)
    return registry


def web_service(server: "ServerContext", endpoint: str,
                proxy: Optional["ProxyService"] = None) -> service.MultiService:
    """The site's listener and the latency sampler's timer, as one service (``proxy``: the
    proxy mode's service, whose backends get their own families)."""
    web = service.MultiService()
    sampler = LatencySampler(server.commands)
    internet.TimerService(1.0 / SAMPLES_PER_SECOND, sampler.arm).setServiceParent(web)
    from twisted.internet import reactor

    root = Resource()
    root.putChild(b"", File(str(STATIC / "index.html"), defaultType="text/html"))
    root.putChild(b"static", File(str(STATIC)))
    root.putChild(b"metrics", MetricsResource(metrics_registry(server, sampler, proxy)))
    root.putChild(b"api", api_resource(server, proxy, reactor))
    check = credential_checker(server)
    site = QuietSite(Guarded(root, check) if check is not None else root)
    site.displayTracebacks = False
    factory = site
    if server.tls is not None and endpoint.split(":", 1)[0] in ("tcp", "tcp6"):
        # The server speaks TLS: so does its web site, with the same certificate.
        from pymcd.server.tls import tls_factory

        factory = tls_factory(server.tls, site)
    listener = strports.service(endpoint, factory)
    listener.setName("http:" + endpoint)
    listener.setServiceParent(web)
    return web
