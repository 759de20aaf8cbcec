"""Proxy mode: pymcd routes requests to pools of memcached servers (``--proxy-config FILE``).

This package's top level is the route library a config file imports, named after memcached's
Lua routelib (see docs/scale-out.md). The proxy itself: ``config`` (loading and building),
``handlers`` (route handlers), ``pool`` and ``hashing`` (key placement), ``backend`` (pipelined
backend connections and their health), ``commands`` and ``client`` (what clients send and how
answers are put back in order), ``service`` (reloads, timeouts, stats, watch events).
"""

from pymcd.proxy.routelib import (  # noqa: F401
    CMD,
    ConfigError,
    cmdmap,
    internal,
    local_zone,
    pools,
    route_allfastest,
    route_allsync,
    route_direct,
    route_failover,
    route_split,
    route_ttl,
    route_zfailover,
    routes,
    settings,
)

globals().update(CMD)  # CMD_GET, CMD_SET...: cmdmap keys as a Lua config writes them
