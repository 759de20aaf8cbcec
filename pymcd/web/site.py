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

from pathlib import Path
from time import monotonic
from typing import TYPE_CHECKING, Callable, Dict, Optional, Tuple

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import choose_encoder
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

    A rendering costs a couple of milliseconds of the reactor (prometheus_client's exposition
    is about 10 us a sample), so one is reused by scrapes within ``reuse_seconds`` of it: a
    Prometheus scraping every few seconds always gets a fresh one, while a poller hammering the
    endpoint cannot take more than a few milliseconds a second from memcached clients.
    """

    isLeaf = True

    def __init__(self, registry: CollectorRegistry, clock: Callable[[], float] = monotonic,
                 reuse_seconds: float = 1.0) -> None:
        super().__init__()
        self.registry = registry
        self.clock = clock
        self.reuse_seconds = reuse_seconds
        self._rendered: Dict[str, Tuple[float, bytes]] = {}

    def render_GET(self, request) -> bytes:
        encoder, content_type = choose_encoder(request.getHeader("accept"))
        request.setHeader("content-type", content_type)
        now = self.clock()
        rendered_at, body = self._rendered.get(content_type, (None, b""))
        if rendered_at is None or now - rendered_at >= self.reuse_seconds:
            body = encoder(self.registry)
            self._rendered[content_type] = (now, body)
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
