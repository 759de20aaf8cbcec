"""Putting a server together: store service, shared context, listeners, shutdown."""

from __future__ import annotations

import os
import signal
import stat
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from twisted.application import internet, service, strports
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from pymcd.context import ServerContext, reserved_descriptors
from pymcd.options import bindable_port, listen_addresses, listener_specs
from pymcd.server.datagram import MemcacheDatagramProtocol
from pymcd.server.stream import MemcacheStreamFactory, format_address
from pymcd.service import StoreService
from pymcd.session import Session
from pymcd.settings import Settings
from pymcd.startup import EX_USAGE, StartupError, listen_failure, raise_file_limit
from pymcd.store.store import CLOCK_HEADSTART

if TYPE_CHECKING:  # pragma: no cover
    from pymcd.server.tls import ServerTLSContext

log = Logger()

# How long a stopping server waits for its clients to take their replies.
DRAIN_TIMEOUT = 5.0

# memcached's prot_text(): how a listener's protocol is named in its -vv line.
LISTENING_PROTOCOL_NAMES = {"auto": "auto-negotiate", "ascii": "ascii", "binary": "binary"}


class _AddressRecorder:
    """Wraps a stream listener's endpoint to learn the address it bound (an ephemeral port, a
    unix path) for its listening connection and for MEMCACHED_PORT_FILENAME."""

    def __init__(self, endpoint, on_listening) -> None:
        self.endpoint = endpoint
        self.on_listening = on_listening

    def listen(self, factory) -> Deferred:
        listening = self.endpoint.listen(factory)
        listening.addCallback(self._listening)
        return listening

    def _listening(self, port):
        self.on_listening(port.getHost())
        return port


class PymcdService(service.MultiService):
    """The whole server: ``self.context`` is what every connection shares."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        store_service = StoreService.for_settings(settings.store, settings.memory_file)
        store = store_service.store
        self.context = ServerContext(settings, store)
        if store_service.restored:  # uptime goes on from the first start, as in memcached
            self.context.stats.started = store.process_started + CLOCK_HEADSTART
        self.context.request_shutdown = self.shutdown
        store_service.setServiceParent(self)
        self.factory = MemcacheStreamFactory(self.context)
        self.proxy = None
        if settings.proxy_config:
            from pymcd.proxy.service import ProxyService

            self.proxy = ProxyService(self.context, settings.proxy_config)
            self.proxy.setServiceParent(self)
            self.factory = self.proxy.factory
        self.listeners: List[Tuple[service.Service, Session]] = []
        self.listener_names: Dict[service.Service, str] = {}
        # (TCP or UDP, address) of every socket bound, in memcached's order, for the port file.
        self.bound: List[Tuple[str, object]] = []
        self.tls: Optional["ServerTLSContext"] = None
        if settings.ssl_enabled:
            # Imported here: a server without TLS does not load pyOpenSSL at all.
            from pymcd.server.tls import ServerTLSContext, tls_factory

            self.tls = ServerTLSContext(settings, self.context.stats)
            self.context.tls = self.tls
        for endpoint, use_tls in listener_specs(settings):
            factory = tls_factory(self.tls, self.factory) if use_tls else self.factory
            listener = _endpoint_service(endpoint, factory)
            session = self.context.open_listener()
            listener.endpoint = _AddressRecorder(
                listener.endpoint, lambda address, session=session: self._bound(session, address))
            self._add_listener(listener, _stream_listener_name(settings, endpoint), session)
        if settings.udp_port and not settings.unix_socket:  # -s disables the network
            for host, port, _ in listen_addresses(settings, settings.udp_port):
                session = self.context.open_listener(udp=True)
                udp = internet.UDPServer(bindable_port(port),
                                         MemcacheDatagramProtocol(self.context, session, self._bound),
                                         interface=host or "")
                self._add_listener(udp, "UDP port %d" % port if host is None
                                   else "one of interface(s) %s" % settings.interface, session)
        datagram = sum(session.udp for _, session in self.listeners)
        self.context.reserved = reserved_descriptors(
            settings.num_threads, len(self.listeners) - datagram, datagram)
        if settings.http_endpoint:
            # Imported here: without --http neither twisted.web nor prometheus_client loads.
            from pymcd.web.site import web_service

            web = web_service(self.context, settings.http_endpoint, self.proxy)
            web.setServiceParent(self)
            self.listener_names[web] = settings.http_endpoint
        if settings.idle_timeout:
            idle = internet.TimerService(1.0, self.factory.kick_idle, settings.idle_timeout)
            idle.setServiceParent(self)

    def _add_listener(self, listener: service.Service, name: str, session: Session) -> None:
        """``name`` says the listener as memcached's "failed to listen on <name>" does;
        ``session`` is its connection in ``stats conns``."""
        listener.setServiceParent(self)
        self.listeners.append((listener, session))
        self.listener_names[listener] = name

    def _bound(self, session: Session, address) -> None:
        session.peer = format_address(address, listening=True)
        self.bound.append(("UDP" if session.udp else "TCP", address))

    def privilegedStartService(self) -> None:
        """Listen (twistd calls this before dropping privileges; the pymcd script too)."""
        self._catch_signals()
        raise_file_limit(self.settings.maxconns)
        _remove_stale_socket(self.settings.unix_socket)
        for child in self:
            try:
                child.privilegedStartService()
            except CannotListenError as error:
                raise listen_failure(self.listener_names[child], error.socketError) from None
        if self.settings.port_file and not self.settings.unix_socket:
            _write_port_file(self.settings.port_file, self.bound)

    def startService(self) -> None:
        if self.settings.verbose > 1:
            for line in self.context.store.slab_class_lines():
                self.context.trace(line)
            self._trace_listeners()
        super().startService()

    def _catch_signals(self) -> None:
        """Before the first listener opens: a supervisor may signal as soon as the port
        answers, before the reactor installs its own SIGTERM and SIGINT handlers (which
        do the same: a graceful stop once the reactor runs)."""
        from twisted.internet import reactor

        def stop(*_) -> None:
            reactor.callFromThread(self.shutdown, True)

        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
            signal.signal(number, stop)
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
        for _, session in self.listeners:
            kind = "udp" if session.udp else negotiation
            self.context.trace("<%d server listening (%s)" % (session.conn_id, kind))

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
        for listener, _ in self.listeners:
            yield listener.stopService()
        yield self.factory.close_all(DRAIN_TIMEOUT)
        yield super().stopService()


def _write_port_file(path: str, bound: List[Tuple[str, object]]) -> None:
    """memcached's MEMCACHED_PORT_FILENAME: ``TCP INET: <port>`` per inet socket, written to
    ``<path>.lck`` and renamed, so a reader never sees half of it."""
    lines = []
    for transport, address in bound:
        if isinstance(address, (IPv4Address, IPv6Address)):
            family = "INET" if isinstance(address, IPv4Address) else "INET6"
            lines.append("%s %s: %d\n" % (transport, family, address.port))
    temporary = path + ".lck"
    try:
        with open(temporary, "a") as port_file:
            port_file.write("".join(lines))
    except OSError as error:
        log.warn('Failed to open "{path}": {reason}', path=temporary, reason=error.strerror)
        return
    os.rename(temporary, path)


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
