"""A pool: backends that share a key space, each key hashed to one of them."""

from __future__ import annotations

from typing import List

from pymcd.proxy.backend import Backend, Done
from pymcd.proxy.hashing import KetamaContinuum, jump_bucket, key_hash64
from pymcd.proxy.request import ProxyRequest
from pymcd.proxy.request_log import RequestLog
from pymcd.proxy.routelib import ConfigError

DISTRIBUTIONS = ("jump", "ketama")


class Pool:
    def __init__(self, name: str, backends: List[Backend], dist: str,
                 request_log: RequestLog) -> None:
        if dist not in DISTRIBUTIONS:
            raise ConfigError("pool %s: dist must be jump or ketama, not %r" % (name, dist))
        if not backends:
            raise ConfigError("pool %s has no backends" % name)
        self.name = name
        self.backends = backends
        self.dist = dist
        self.request_log = request_log
        self.ring = None
        if dist == "ketama":
            if any(backend.address.kind == "unix" for backend in backends):
                raise ConfigError("pool %s: ketama needs host:port backends" % name)
            self.ring = KetamaContinuum([(b.address.host, b.address.port) for b in backends])

    def backend_for(self, key: bytes) -> Backend:
        backends = self.backends
        if len(backends) == 1:
            return backends[0]
        if self.ring is not None:
            return backends[self.ring.server_for(key)]
        return backends[jump_bucket(key_hash64(key), len(backends))]

    def handle(self, request: ProxyRequest, done: Done) -> None:
        backend = self.backend_for(request.key)
        if self.request_log.watching():
            address = backend.address
            done = self.request_log.logged(request, (address.path or address.host).encode(),
                                           b"%d" % address.port if address.port else b"", done)
        backend.send(request.raw, done)
