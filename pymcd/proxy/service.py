"""The proxy as a Twisted service: its config, reloads, timeouts, counters and events."""

from __future__ import annotations

from collections import Counter
from typing import List

from twisted.application import service
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from pymcd.event_log import PROXYEVENTS
from pymcd.proxy.backend import Backend, BackendAddress, BackendOptions, Done
from pymcd.proxy.client import ProxyStreamFactory, write_ready
from pymcd.proxy.commands import proxy_dispatch
from pymcd.proxy.config import ProxyConfig, load_draft
from pymcd.proxy.request_log import RequestLog
from pymcd.proxy.request import ProxyRequest
from pymcd.proxy.routelib import ConfigError
from pymcd.stats import Stat

log = Logger()

# How often backends are checked for read timeouts (the finest timeout that means anything).
TIMEOUT_CHECK_INTERVAL = 0.05


class ProxyService(service.Service):
    """Routes the requests of every proxy client; ``reload()`` swaps configs on SIGHUP."""

    def __init__(self, context, path: str, clock=None) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self.context = context
        self.path = path
        self.clock = clock
        self.dispatch = proxy_dispatch(context.commands.text)
        self.commands: Counter = Counter()
        self.reloads = self.reload_failures = 0
        self.request_log = RequestLog(context.event_log, clock)
        self.config = ProxyConfig(load_draft(path), self._new_backend, {}, self.request_log)
        self.router = self.config.router
        self.request_limit = self.config.active_request_limit
        self.factory = ProxyStreamFactory(context, self)
        # Backends a reload dropped that still have requests to answer.
        self.retiring: List[Backend] = []
        self._timeouts = LoopingCall(self._check_timeouts)
        self._timeouts.clock = clock

    def startService(self) -> None:
        super().startService()
        self._timeouts.start(TIMEOUT_CHECK_INTERVAL, now=False)

    def stopService(self) -> None:
        super().stopService()
        if self._timeouts.running:
            self._timeouts.stop()
        for backend in list(self.config.backends.values()) + self.retiring:
            backend.close()

    def _new_backend(self, address: BackendAddress, options: BackendOptions) -> Backend:
        return Backend(address, options, self.clock, self._backend_event, write_ready)

    # ------------------------------------------------------------------ requests
    def count(self, command: bytes) -> None:
        self.commands[command] += 1

    def handle(self, request: ProxyRequest, done: Done) -> None:
        self.router.handle(request, done)

    def _check_timeouts(self) -> None:
        now = self.clock.seconds()
        for backend in self.config.backends.values():
            backend.check_timeout(now)
        if self.retiring:
            for backend in self.retiring:
                backend.check_timeout(now)
            self.retiring = [backend for backend in self.retiring
                             if backend.protocol is not None or backend.connector is not None]

    # ------------------------------------------------------------------ config
    def reload(self) -> bool:
        """SIGHUP: build the new config beside the old; a broken one leaves the old running."""
        self._event(b"type=proxy_conf status=start")
        try:
            config = ProxyConfig(load_draft(self.path), self._new_backend, self.config.backends,
                                 self.request_log)
        except ConfigError as error:
            self.reload_failures += 1
            log.error("proxy config {path} not reloaded, the old one goes on: {error}",
                      path=self.path, error=str(error))
            self._event(b"type=proxy_error msg=%s", str(error).replace(" ", "_").encode())
            return False
        old = self.config
        self.config, self.router = config, config.router
        self.request_limit = config.active_request_limit
        self.reloads += 1
        kept = set(map(id, config.backends.values()))
        for backend in old.backends.values():
            if id(backend) not in kept:
                backend.retire()
                self.retiring.append(backend)
        self._event(b"type=proxy_conf status=done")
        log.info("proxy config {path} reloaded", path=self.path)
        return True

    # ------------------------------------------------------------------ visibility
    def _event(self, body: bytes, *args) -> None:
        if self.context.event_log.flags & PROXYEVENTS:
            self.context.event_log.emit(PROXYEVENTS, body, *args)

    def _backend_event(self, kind: str, backend: Backend, why: str = "") -> None:
        """Backend health changes, logged and sent to proxyevents watchers."""
        address = backend.address
        port = b"%d" % address.port if address.kind != "unix" else b"0"
        host = (address.path if address.kind == "unix" else address.host).encode()
        if kind == "backend_error":
            error = why.split(":", 1)[0].replace(" ", "_").encode()
        elif kind == "backend_down":
            error = b"markedbad"
            log.warn("proxy backend {name} marked down: {why}", name=backend.name, why=why)
        else:
            error = b"markedgood"
            log.info("proxy backend {name} is back", name=backend.name)
        self._event(b"type=proxy_backend error=%s name=%s port=%s", error, host, port)

    def stats(self) -> List[Stat]:
        """``stats proxy``: commands, routes, backends."""
        lines: List[Stat] = [
            ("config_reloads", self.reloads),
            ("config_reload_fails", self.reload_failures),
        ]
        backends = list(self.config.backends.values())
        lines.append(("backend_total", len(backends)))
        lines.append(("backend_marked_bad", sum(1 for b in backends if b.down)))
        for command, count in sorted(self.commands.items()):
            lines.append(("cmd_%s" % command.decode(), count))
        for name, counters in self.router.counters.items():
            lines.append(("route_%s_requests" % name, counters.requests))
            lines.append(("route_%s_errors" % name, counters.errors))
        for backend in backends:
            stats = backend.stats
            prefix = "backend_%s_" % backend.name
            lines.extend([
                (prefix + "status", "down" if backend.down else "up"),
                (prefix + "requests", stats.requests),
                (prefix + "errors", stats.errors),
                (prefix + "timeouts", stats.timeouts),
                (prefix + "failures", stats.failures),
                (prefix + "marked_down", stats.marked_down),
            ])
        return lines


def check_config(path: str) -> None:
    """Raise ConfigError unless the config at ``path`` loads and builds (no connection made)."""
    ProxyConfig(load_draft(path), lambda address, options: Backend(
        address, options, None, lambda *args: None, lambda: None), {}, RequestLog(None, None))


