"""Putting a server together: store service, shared context, listeners, shutdown."""

from __future__ import annotations

import os
import signal
import stat
from typing import TYPE_CHECKING, Dict, List, Optional

from twisted.application import internet, service, strports
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from pymcd.context import ServerContext
from pymcd.options import listen_addresses, listener_specs
from pymcd.server.datagram import MemcacheDatagramProtocol
from pymcd.server.stream import MemcacheStreamFactory
from pymcd.service import StoreService
from pymcd.settings import Settings
from pymcd.startup import EX_USAGE, StartupError, listen_failure, raise_file_limit
from pymcd.store import Store

if TYPE_CHECKING:  # pragma: no cover
    from pymcd.server.tls import ServerTLSContext

log = Logger()

# How long a stopping server waits for its clients to take their replies.
DRAIN_TIMEOUT = 5.0

# memcached's prot_text(): how a listener's protocol is named in its -vv line.
LISTENING_PROTOCOL_NAMES = {"auto": "auto-negotiate", "ascii": "ascii", "binary": "binary"}


class PymcdService(service.MultiService):
    """The whole server: ``self.context`` is what every connection shares."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        store = Store(settings.store)
        self.context = ServerContext(settings, store)
        self.context.request_shutdown = self.shutdown
        StoreService(store).setServiceParent(self)
        self.factory = MemcacheStreamFactory(self.context)
        self.proxy = None
        if settings.proxy_config:
            from pymcd.proxy.service import ProxyService

            self.proxy = ProxyService(self.context, settings.proxy_config)
            self.proxy.setServiceParent(self)
            self.factory = self.proxy.factory
        self.listeners: List[service.Service] = []
        self.listener_names: Dict[service.Service, str] = {}
        self.tls: Optional["ServerTLSContext"] = None
        if settings.ssl_enabled:
            # Imported here: a server without TLS does not load pyOpenSSL at all.
            from pymcd.server.tls import ServerTLSContext, tls_factory

            self.tls = ServerTLSContext(settings, self.context.stats)
            self.context.tls = self.tls
        for endpoint, use_tls in listener_specs(settings):
            factory = tls_factory(self.tls, self.factory) if use_tls else self.factory
            self._add_listener(_endpoint_service(endpoint, factory),
                               _stream_listener_name(settings, endpoint))
        if settings.udp_port and not settings.unix_socket:  # -s disables the network
            for host, port, _ in listen_addresses(settings, settings.udp_port):
                udp = internet.UDPServer(port, MemcacheDatagramProtocol(self.context),
                                         interface=host or "")
                self._add_listener(udp, "UDP port %d" % port if host is None
                                   else "one of interface(s) %s" % settings.interface)
        if settings.http_endpoint:
            # Imported here: without --http neither twisted.web nor prometheus_client loads.
            from pymcd.web.site import web_service

            web = web_service(self.context, settings.http_endpoint, self.proxy)
            web.setServiceParent(self)
            self.listener_names[web] = settings.http_endpoint
        if settings.idle_timeout:
            idle = internet.TimerService(1.0, self.factory.kick_idle, settings.idle_timeout)
            idle.setServiceParent(self)

    def _add_listener(self, listener: service.Service, name: str) -> None:
        """``name`` says the listener as memcached's "failed to listen on <name>" does."""
        listener.setServiceParent(self)
        self.listeners.append(listener)
        self.listener_names[listener] = name

    def privilegedStartService(self) -> None:
        """Listen (twistd calls this before dropping privileges; the pymcd script too)."""
        raise_file_limit(self.settings.maxconns)
        _remove_stale_socket(self.settings.unix_socket)
        for child in self:
            try:
                child.privilegedStartService()
            except CannotListenError as error:
                raise listen_failure(self.listener_names[child], error.socketError) from None

    def startService(self) -> None:
        if self.settings.verbose > 1:
            for line in self.context.store.slab_class_lines():
                self.context.trace(line)
            self._trace_listeners()
        super().startService()
        from twisted.internet import reactor

        signal.signal(signal.SIGUSR1, lambda *_: reactor.callFromThread(self.shutdown, True))
        signal.signal(signal.SIGHUP, lambda *_: reactor.callFromThread(self._reload))

    def _reload(self) -> None:
        """SIGHUP: re-read the -Y file (connections already authenticated stay so) and the
        proxy config (clients stay connected). As in memcached, SIGHUP never stops the server.
        """
        if self.proxy is not None:
            self.proxy.reload()
        table = self.context.auth_table
        if table is not None and not table.reload():
            log.warn("could not reload the auth file {path}", path=table.path)

    def _trace_listeners(self) -> None:
        """memcached's -vv line for each listening socket, numbered like connections."""
        negotiation = LISTENING_PROTOCOL_NAMES[self.settings.binding_protocol]
        for listener in self.listeners:
            kind = "udp" if isinstance(listener, internet.UDPServer) else negotiation
            self.context.trace("<%d server listening (%s)" % (self.context.next_conn_id(), kind))

    def shutdown(self, graceful: bool) -> None:
        """``shutdown [graceful]`` and SIGUSR1: stop the reactor, whose shutdown runs
        :meth:`stopService`. Both modes stop gracefully: a cache that exits under its clients'
        feet leaves them half a reply, and the drain is bounded by DRAIN_TIMEOUT anyway."""
        from twisted.internet import reactor

        reactor.callLater(0, reactor.stop)

    @inlineCallbacks
    def stopService(self) -> Deferred:
        """The graceful stop every way of stopping runs (SIGTERM, SIGINT, ``shutdown``, SIGUSR1,
        twistd's stop): stop accepting, let every connection send the replies it was given
        and close (within DRAIN_TIMEOUT seconds), then stop the other services. The store
        service stops last, once no connection can reach the store any more, so what its own
        stopService does (saving it, say) sees the final state."""
        for listener in self.listeners:
            yield listener.stopService()
        yield self.factory.close_all(DRAIN_TIMEOUT)
        yield super().stopService()


def _remove_stale_socket(path: Optional[str]) -> None:
    """memcached replaces a socket file left behind by a dead server (never a regular file)."""
    if path and os.path.exists(path) and stat.S_ISSOCK(os.lstat(path).st_mode):
        os.unlink(path)


def _endpoint_service(endpoint: str, factory) -> service.Service:
    """A listener for a Twisted endpoint string; a string Twisted refuses (unknown type, bad
    argument, an ``ssl:`` certificate it cannot load) is a start-up mistake."""
    try:
        return strports.service(endpoint, factory)
    except Exception as error:  # serverFromString's plugins raise what they like
        raise StartupError("Invalid endpoint %r: %s" % (endpoint, error or type(error).__name__),
                           EX_USAGE) from None


def _stream_listener_name(settings: Settings, endpoint: str) -> str:
    """How memcached names this listener in "failed to listen on ...": explicit ``--port``
    endpoints by their string."""
    if endpoint in settings.ports:
        return endpoint
    if endpoint.startswith("unix:"):
        return "UNIX socket: %s" % settings.unix_socket
    if settings.interface:
        return "one of interface(s) %s" % settings.interface
    return "TCP port %d" % settings.tcp_port


def build_server(settings: Settings) -> PymcdService:
    return PymcdService(settings)
