"""``/metrics`` of pymcd in proxy mode: a family per backend, beside the server's own."""

from __future__ import annotations

import os
import tempfile

import pytest

from support import exchange, have_memcached, start_memcached
from web_support import labels, scrape, start_with_http

pytestmark = pytest.mark.skipif(not have_memcached(), reason="Debian's memcached is not installed")

CONFIG = """
from pymcd.proxy import pools, routes, route_direct

pools(main={"backends": ["127.0.0.1:%d"]})
routes(default=route_direct(child="main"))
"""


def test_backend_families():
    backend = start_memcached()
    handle, path = tempfile.mkstemp(suffix="_routes.py")
    with os.fdopen(handle, "w") as config:
        config.write(CONFIG % backend.port)
    proxy, http_port = start_with_http(["--proxy-config", path])
    try:
        with proxy.connect() as client:
            for i in range(10):
                assert exchange(client, b"set k%d 0 0 1\r\nx\r\n" % i, b"\r\n") == b"STORED\r\n"
        types, samples = scrape(http_port)
        name = "127.0.0.1:%d" % backend.port
        assert samples[("pymcd_proxy_backend_up", labels(backend=name))] == 1
        assert samples[("pymcd_proxy_backend_requests_total", labels(backend=name))] >= 10
        assert samples[("pymcd_proxy_backend_errors_total", labels(backend=name))] == 0
        assert types["pymcd_proxy_backend_marked_down"] == "counter"
        assert samples[("pymcd_proxy_config_reloads_total", ())] == 0
        assert samples[("memcached_up", ())] == 1
    finally:
        proxy.stop()
        backend.stop()
        os.unlink(path)
