"""The route library a proxy config file calls, named after memcached's Lua routelib.

A config is a Python file; ``pools{...}`` in Lua is ``pools(...)`` here and ``route_direct{
child = "foo" }`` is ``route_direct(child="foo")``, so a Lua config translates line by line. The
calls only *describe*: they record into the :class:`ConfigDraft` being loaded, and
:mod:`pymcd.proxy.config` checks the draft and builds the running routes from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

# memcached's mcp.CMD_* names, for cmdmap keys written as in a Lua config.
COMMANDS = (
    "get", "gets", "gat", "gats", "set", "add", "replace", "append", "prepend", "cas",
    "incr", "decr", "delete", "touch", "mg", "ms", "md", "ma", "me",
)
CMD = {"CMD_" + name.upper(): name for name in COMMANDS}


class ConfigError(Exception):
    """A config that cannot run; the message says why (logged on a failed reload)."""


@dataclass
class RouteSpec:
    """A route handler as the config describes it; children are pool names or RouteSpecs."""


@dataclass
class InternalSpec(RouteSpec):
    pass


@dataclass
class DirectSpec(RouteSpec):
    child: Any


@dataclass
class FailoverSpec(RouteSpec):
    children: Any
    failover_count: Optional[int] = None
    shuffle: bool = False
    miss: bool = False


@dataclass
class AllSyncSpec(RouteSpec):
    children: Any


@dataclass
class AllFastestSpec(RouteSpec):
    children: Any


@dataclass
class SplitSpec(RouteSpec):
    child_a: Any
    child_b: Any


@dataclass
class TtlSpec(RouteSpec):
    ttl: int
    child: Any


@dataclass
class ZFailoverSpec(RouteSpec):
    children: Any
    local_zone: Optional[str] = None
    failover_count: Optional[int] = None
    shuffle: bool = False
    miss: bool = False


@dataclass
class CmdMapSpec(RouteSpec):
    commands: Dict[str, Any]


@dataclass
class RouterSpec:
    map: Dict[str, Any]
    default: Any
    cmap: Dict[str, Any]
    mode: str
    start: str
    stop: str


@dataclass
class ConfigDraft:
    """What one load of a config file recorded."""

    pools: Dict[str, dict] = field(default_factory=dict)
    router: Optional[RouterSpec] = None
    settings: Dict[str, Any] = field(default_factory=dict)
    local_zone: Optional[str] = None


_draft: Optional[ConfigDraft] = None


def begin_draft() -> ConfigDraft:
    """Start recording a config's calls (pymcd.proxy.config does this around a load)."""
    global _draft
    _draft = ConfigDraft()
    return _draft


def end_draft() -> None:
    global _draft
    _draft = None


def _current() -> ConfigDraft:
    if _draft is None:
        raise ConfigError("the route library is only usable while a proxy config loads")
    return _draft


def pools(**named: dict) -> None:
    """``pools(name={"backends": [...], "dist": "jump"|"ketama", "backend_options": {...}})``.

    A value that is a dict of such dicts (no ``backends`` key) is a *set* of pools, one per
    zone, for route_zfailover.
    """
    _current().pools.update(named)


def settings(**options: Any) -> None:
    """Proxy-wide overrides, as routelib's settings{}: backend_connect_timeout and friends."""
    _current().settings.update(options)


def local_zone(name: str) -> None:
    _current().local_zone = name


def routes(map: Optional[Dict[str, Any]] = None, default: Any = None,
           cmap: Optional[Dict[str, Any]] = None, conf: Optional[Dict[str, str]] = None,
           mode: Optional[str] = None, separator: Optional[str] = None) -> None:
    """The route tree: ``map`` by key prefix, ``cmap`` by command, then ``default``.

    ``conf={"mode": "prefix", "stop": "/"}`` (memcached's default) routes ``foo/rest`` by
    ``foo``; ``mode="anchor"`` with ``start``/``stop`` routes ``/foo/rest``. ``mode=`` and
    ``separator=`` are shorthands for the same.
    """
    conf = dict(conf or {})
    if mode is not None:
        conf["mode"] = mode
    if separator is not None:
        conf["stop"] = separator
    router_mode = conf.get("mode", "prefix")
    if router_mode not in ("prefix", "anchor"):
        raise ConfigError("routes: unknown mode %r (prefix or anchor)" % router_mode)
    stop = conf.get("stop", "/")
    start = conf.get("start", "/" if router_mode == "anchor" else "")
    if not stop or len(stop) != 1 or len(start) > 1:
        raise ConfigError("routes: start and stop are single characters")
    _current().router = RouterSpec(dict(map or {}), default, _commands(cmap or {}),
                                   router_mode, start, stop)


def _commands(table: Dict[str, Any]) -> Dict[str, Any]:
    commands = {}
    for name, route in table.items():
        name = CMD.get(name, name)
        if name not in COMMANDS:
            raise ConfigError("unknown command %r in a command map" % (name,))
        commands[name] = route
    return commands


def internal() -> InternalSpec:
    """Serve the route from pymcd's own store, with the server's own command code."""
    return InternalSpec()


def route_direct(child: Any) -> DirectSpec:
    return DirectSpec(child)


def route_failover(children: Any, failover_count: Optional[int] = None, shuffle: bool = False,
                   miss: bool = False) -> FailoverSpec:
    return FailoverSpec(children, failover_count, shuffle, miss)


def route_allsync(children: Any) -> AllSyncSpec:
    return AllSyncSpec(children)


def route_allfastest(children: Any) -> AllFastestSpec:
    return AllFastestSpec(children)


def route_split(child_a: Any, child_b: Any) -> SplitSpec:
    return SplitSpec(child_a, child_b)


def route_ttl(ttl: int, child: Any) -> TtlSpec:
    return TtlSpec(int(ttl), child)


def route_zfailover(children: Any, local_zone: Optional[str] = None,
                    failover_count: Optional[int] = None, shuffle: bool = False,
                    miss: bool = False) -> ZFailoverSpec:
    return ZFailoverSpec(children, local_zone, failover_count, shuffle, miss)


def cmdmap(commands: Optional[Dict[str, Any]] = None, **by_name: Any) -> CmdMapSpec:
    """A route per command (``cmdmap({CMD_SET: route})`` or ``cmdmap(set=route)``); other
    commands fall through to the router's ``cmap`` and ``default``."""
    table: Dict[str, Any] = dict(commands or {})
    table.update(by_name)
    return CmdMapSpec(_commands(table))


