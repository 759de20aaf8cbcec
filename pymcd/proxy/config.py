"""Loading a proxy config file and building its running routes, pools and backends.

The file is Python run in a namespace of its own; the route library calls it makes are recorded
(:mod:`pymcd.proxy.routelib`) and checked here before anything changes, so a broken config raises
:class:`ConfigError` and whatever was running goes on. Backends are shared with the config being
replaced when address and options are the same: a reload keeps their open connections.
"""

from __future__ import annotations

import random
from typing import Callable, Dict, List, Tuple

from pymcd.proxy import routelib
from pymcd.proxy.backend import Backend, BackendAddress, BackendOptions
from pymcd.proxy.pool import Pool
from pymcd.proxy.request_log import RequestLog
from pymcd.proxy.routelib import ConfigDraft, ConfigError
from pymcd.proxy.handlers import (
    AllFastestRoute,
    AllSyncRoute,
    CommandMap,
    DirectRoute,
    FailoverRoute,
    InternalRoute,
    Router,
    SplitRoute,
    TtlRoute,
)

BackendKey = Tuple[BackendAddress, Tuple]
# Routed requests one client connection may have unanswered before the proxy stops reading it.
DEFAULT_ACTIVE_REQUEST_LIMIT = 4096
BackendMaker = Callable[[BackendAddress, BackendOptions], Backend]


def load_draft(path: str) -> ConfigDraft:
    """Run the config file and return what it declared (ConfigError if it cannot run)."""
    draft = routelib.begin_draft()
    try:
        with open(path) as source:
            code = compile(source.read(), path, "exec")
        exec(code, {"__name__": "pymcd_proxy_config", "__file__": path})
    except ConfigError:
        raise
    except Exception as error:  # anything a config file can do wrong
        raise ConfigError("%s: %s: %s" % (path, type(error).__name__, error))
    finally:
        routelib.end_draft()
    if draft.router is None:
        raise ConfigError("%s never calls routes()" % path)
    return draft


class ProxyConfig:
    """A checked config, built: its router, its pools and the backends they use."""

    def __init__(self, draft: ConfigDraft, make_backend: BackendMaker,
                 reuse: Dict[BackendKey, Backend], request_log: RequestLog) -> None:
        self.draft = draft
        self.request_log = request_log
        self.backends: Dict[BackendKey, Backend] = {}
        self._make_backend = make_backend
        self._reuse = reuse
        settings = dict(draft.settings)
        self.active_request_limit = int(settings.pop("active_request_limit",
                                                     DEFAULT_ACTIVE_REQUEST_LIMIT))
        if self.active_request_limit < 1:
            raise ConfigError("active_request_limit must be at least 1")
        unknown = [name for name in settings if not name.startswith("backend_")]
        if unknown:
            raise ConfigError("unknown settings: %s" % ", ".join(sorted(unknown)))
        options = BackendOptions().updated(settings)
        self.pools: Dict[str, Pool] = {}
        self.pool_sets: Dict[str, Dict[str, Pool]] = {}
        for name, spec in draft.pools.items():
            if not isinstance(spec, dict):
                raise ConfigError("pool %s is not a dict" % name)
            if "backends" in spec:
                self.pools[name] = self._pool(name, spec, options)
            elif spec and all(isinstance(zone, dict) for zone in spec.values()):
                self.pool_sets[name] = {
                    zone: self._pool("%s.%s" % (name, zone), zone_spec, options)
                    for zone, zone_spec in spec.items()}
            else:
                raise ConfigError("pool %s has no backends" % name)
        self.internal = InternalRoute(request_log)
        router = draft.router
        self.router = Router(
            {prefix.encode(): self._route(route) for prefix, route in router.map.items()},
            {command.encode(): self._route(route) for command, route in router.cmap.items()},
            self._route(router.default) if router.default is not None else None,
            router.mode, router.start.encode(), router.stop.encode(),
        )

    def _pool(self, name: str, spec: dict, options: BackendOptions) -> Pool:
        unknown = set(spec) - {"backends", "dist", "backend_options", "options"}
        if unknown:
            raise ConfigError("pool %s: unknown keys %s" % (name, ", ".join(sorted(unknown))))
        pool_options = options.updated(spec.get("backend_options", {}))
        backends = []
        for entry in spec["backends"]:
            address = BackendAddress.parse(entry)
            backend_options = pool_options
            if isinstance(entry, dict):
                backend_options = pool_options.updated(
                    {k: v for k, v in entry.items()
                     if k not in ("host", "port", "path", "unix", "tls", "down", "label")})
            backends.append(self._backend(address, backend_options))
        return Pool(name, backends, spec.get("dist", "jump"), self.request_log)

    def _backend(self, address: BackendAddress, options: BackendOptions) -> Backend:
        key = (address, tuple(sorted(options.__dict__.items())))
        backend = self.backends.get(key) or self._reuse.get(key)
        if backend is None:
            backend = self._make_backend(address, options)
        self.backends[key] = backend
        return backend

    def _child(self, child):
        if isinstance(child, routelib.RouteSpec):
            return self._route(child)
        if isinstance(child, str) and child in self.pools:
            return self.pools[child]
        raise ConfigError("no pool named %r" % (child,))

    def _children(self, children, spec) -> List:
        if isinstance(children, str) and children in self.pool_sets:
            return list(self.pool_sets[children].values())
        if isinstance(children, str):
            children = [children]
        if not children:
            raise ConfigError("%s has no children" % type(spec).__name__)
        return [self._child(child) for child in children]

    def _zones(self, spec: routelib.ZFailoverSpec) -> List:
        if isinstance(spec.children, str) and spec.children in self.pool_sets:
            zones = dict(self.pool_sets[spec.children])
        elif isinstance(spec.children, dict):
            zones = {zone: self._child(child) for zone, child in spec.children.items()}
        else:
            raise ConfigError("route_zfailover children are a pool set or {zone: child}")
        local = spec.local_zone or self.draft.local_zone
        if local is not None and local not in zones:
            raise ConfigError("local zone %r is not among %s" % (local, ", ".join(zones)))
        others = [child for zone, child in zones.items() if zone != local]
        if spec.shuffle:
            random.shuffle(others)
        return ([zones[local]] if local is not None else []) + others

    def _route(self, spec):
        if isinstance(spec, str):
            return DirectRoute(self._child(spec))
        if isinstance(spec, routelib.InternalSpec):
            return self.internal
        if isinstance(spec, routelib.DirectSpec):
            return DirectRoute(self._child(spec.child))
        if isinstance(spec, routelib.FailoverSpec):
            children = self._children(spec.children, spec)
            if spec.shuffle:
                random.shuffle(children)
            return FailoverRoute(children, spec.failover_count, spec.miss)
        if isinstance(spec, routelib.ZFailoverSpec):
            return FailoverRoute(self._zones(spec), spec.failover_count, spec.miss)
        if isinstance(spec, routelib.AllSyncSpec):
            return AllSyncRoute(self._children(spec.children, spec))
        if isinstance(spec, routelib.AllFastestSpec):
            return AllFastestRoute(self._children(spec.children, spec))
        if isinstance(spec, routelib.SplitSpec):
            return SplitRoute(self._child(spec.child_a), self._child(spec.child_b))
        if isinstance(spec, routelib.TtlSpec):
            return TtlRoute(spec.ttl, self._child(spec.child))
        if isinstance(spec, routelib.CmdMapSpec):
            return CommandMap({name.encode(): self._route(route)
                               for name, route in spec.commands.items()})
        raise ConfigError("%r is not a route" % (spec,))
