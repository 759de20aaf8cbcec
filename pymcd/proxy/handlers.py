"""The running route handlers, built from a config's RouteSpecs by pymcd.proxy.config.

Each handler has ``handle(request, done)`` and calls ``done(reply, error)`` exactly once, now or
later. Children are pools (:class:`pymcd.proxy.pool.Pool`) or other handlers. A reply is an
*error* when the backend failed (memcached's ``SERVER_ERROR backend failure``) or answered a
``SERVER_ERROR``; the behaviours follow memcached's routelib.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from pymcd.proxy.backend import Done
from pymcd.proxy.request import ProxyRequest, is_miss
from pymcd.proxy.request_log import RequestLog

NO_ROUTE = b"SERVER_ERROR no route\r\n"


def _discard(reply: bytes, error: bool) -> None:
    """route_split's second child: its answer is not wanted."""


class InternalRoute:
    """pymcd's own store, through the server's own text commands (memcached's internal())."""

    def __init__(self, request_log: RequestLog) -> None:
        self.request_log = request_log

    def handle(self, request: ProxyRequest, done: Done) -> None:
        if self.request_log.watching():
            done = self.request_log.logged(request, b"internal", b"", done)
        reply = request.client.run_internal(request)
        done(reply, reply.startswith(b"SERVER_ERROR"))


class DirectRoute:
    def __init__(self, child) -> None:
        self.child = child

    def handle(self, request: ProxyRequest, done: Done) -> None:
        self.child.handle(request, done)


class FailoverRoute:
    """Children in order until one answers without error (with ``miss``: and not a miss)."""

    def __init__(self, children: Sequence, tries: Optional[int], miss: bool) -> None:
        self.children = list(children)
        self.tries = min(tries or len(self.children), len(self.children))
        self.miss = miss

    def handle(self, request: ProxyRequest, done: Done) -> None:
        self._attempt(request, done, 0)

    def _attempt(self, request: ProxyRequest, done: Done, index: int) -> None:
        def answered(reply: bytes, error: bool) -> None:
            retry = error or (self.miss and request.is_fetch and is_miss(reply))
            if retry and index + 1 < self.tries:
                self._attempt(request, done, index + 1)
            else:
                done(reply, error)

        self.children[index].handle(request, answered)


class AllSyncRoute:
    """Every child at once; waits for all; the first error (in child order), else the last."""

    def __init__(self, children: Sequence) -> None:
        self.children = list(children)

    def handle(self, request: ProxyRequest, done: Done) -> None:
        results: List[Optional[Tuple[bytes, bool]]] = [None] * len(self.children)
        remaining = [len(self.children)]

        def collector(index: int) -> Done:
            def answered(reply: bytes, error: bool) -> None:
                results[index] = (reply, error)
                remaining[0] -= 1
                if remaining[0] == 0:
                    errors = [result for result in results if result[1]]
                    done(*(errors[0] if errors else results[-1]))
            return answered

        for index, child in enumerate(self.children):
            child.handle(request, collector(index))


class AllFastestRoute:
    """Every child at once; the first answer without error wins; all errors: the last one."""

    def __init__(self, children: Sequence) -> None:
        self.children = list(children)

    def handle(self, request: ProxyRequest, done: Done) -> None:
        state = {"answered": False, "errors": 0}

        def answered(reply: bytes, error: bool) -> None:
            if state["answered"]:
                return
            if error:
                state["errors"] += 1
                if state["errors"] < len(self.children):
                    return
            state["answered"] = True
            done(reply, error)

        for child in self.children:
            child.handle(request, answered)


class SplitRoute:
    """``child_a`` answers; ``child_b`` gets the same request and its answer is dropped."""

    def __init__(self, child_a, child_b) -> None:
        self.child_a = child_a
        self.child_b = child_b

    def handle(self, request: ProxyRequest, done: Done) -> None:
        self.child_a.handle(request, done)
        self.child_b.handle(request, _discard)


class TtlRoute:
    """Stores go on with their TTL replaced by ``ttl``."""

    def __init__(self, ttl: int, child) -> None:
        self.ttl = ttl
        self.child = child

    def handle(self, request: ProxyRequest, done: Done) -> None:
        self.child.handle(request.with_ttl(self.ttl), done)


class CommandMap:
    """A route per command; not itself a handler: the router looks the command up."""

    def __init__(self, commands: Dict[bytes, object]) -> None:
        self.commands = commands


class RouteCounters:
    __slots__ = ("requests", "errors")

    def __init__(self) -> None:
        self.requests = self.errors = 0


class Router:
    """Picks a route by key prefix (``map``), then by command (``cmap``), then ``default``."""

    def __init__(self, by_prefix: Dict[bytes, object], by_command: Dict[bytes, object],
                 default, mode: str, start: bytes, stop: bytes) -> None:
        self.by_prefix = by_prefix
        self.by_command = by_command
        self.default = default
        self.anchored = mode == "anchor"
        self.start = start
        self.stop = stop
        self.counters: Dict[str, RouteCounters] = {}
        self.names: Dict[int, str] = {}
        for prefix, route in by_prefix.items():
            self._name(route, prefix.decode("latin-1"))
        for command, route in by_command.items():
            self._name(route, "cmd_" + command.decode())
        if default is not None:
            self._name(default, "default")

    def _name(self, route, name: str) -> None:
        self.names.setdefault(id(route), name)
        self.counters.setdefault(self.names[id(route)], RouteCounters())
        if isinstance(route, CommandMap):
            for command, inner in route.commands.items():
                self._name(inner, "%s:%s" % (name, command.decode()))

    def prefix_of(self, key: bytes) -> Optional[bytes]:
        if self.anchored:
            if not key.startswith(self.start):
                return None
            end = key.find(self.stop, 1)
            return key[1:end] if end > 0 else None
        end = key.find(self.stop)
        return key[:end] if end > 0 else None

    def select(self, command: bytes, key: bytes):
        """The handler for a request, or None when nothing matches and there is no default."""
        route = None
        prefix = self.prefix_of(key)
        if prefix is not None:
            route = self.by_prefix.get(prefix)
        if isinstance(route, CommandMap):
            route = route.commands.get(command)
        if route is None:
            route = self.by_command.get(command, self.default)
        return route

    def handle(self, request: ProxyRequest, done: Done) -> None:
        route = self.select(request.command, request.key)
        if route is None:
            done(NO_ROUTE, True)
            return
        counters = self.counters[self.names[id(route)]]
        counters.requests += 1

        def counted(reply: bytes, error: bool) -> None:
            if error:
                counters.errors += 1
            done(reply, error)

        route.handle(request, counted)
