"""Proxy tests: Debian memcached backends on ephemeral ports, pymcd --proxy-config in front."""

import os
import tempfile

import pytest

from support import have_memcached, start_memcached, start_pymcd


def write_config(text: str, directory: str = None) -> str:
    handle, path = tempfile.mkstemp(suffix="_routes.py", dir=directory)
    with os.fdopen(handle, "w") as config:
        config.write(text)
    return path


def start_proxy(config_text: str, args=(), **kwargs):
    """pymcd as a proxy with ``config_text`` as its config; the path is ``proxy.config_path``."""
    path = write_config(config_text)
    proxy = start_pymcd(["--proxy-config", path] + list(args), **kwargs)
    proxy.config_path = path
    return proxy


@pytest.fixture(scope="module")
def backends():
    """Four memcached: 'main' is the first three, 'backup' the fourth (the issue's config)."""
    if not have_memcached():
        pytest.skip("Debian's memcached is not installed")
    servers = [start_memcached() for _ in range(4)]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def clean(backends):
    """Backends emptied before a test."""
    for server in backends:
        sock = server.connect()
        sock.sendall(b"flush_all\r\n")
        assert sock.recv(100) == b"OK\r\n"
        sock.close()
    return backends
