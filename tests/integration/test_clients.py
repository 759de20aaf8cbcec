"""Real client libraries and memcached's own conformance tool against pymcd."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from pymemcache.client.base import Client


@pytest.fixture
def client(pymcd_server):
    c = Client(pymcd_server.address, connect_timeout=5, timeout=5)
    yield c
    c.close()


def test_pymemcache_everyday_operations(client):
    assert client.set("a", b"1")
    assert client.get("a") == b"1"
    assert client.add("a", b"2", noreply=False) is False
    assert client.replace("a", b"3", noreply=False)
    assert client.append("a", b"4", noreply=False)
    assert client.prepend("a", b"0", noreply=False)
    assert client.get("a") == b"034"
    assert client.get_many(["a", "missing"]) == {"a": b"034"}
    value, cas = client.gets("a")
    assert client.cas("a", b"x", cas) is True
    assert client.cas("a", b"y", cas) is False
    client.set("n", b"41")
    assert client.incr("n", 1) == 42
    assert client.decr("n", 50) == 0
    assert client.touch("n", 100)
    assert client.get("n") == b"0 "
    assert client.delete("n")
    assert client.get("n") is None
    assert client.delete("n", noreply=False) is False
    assert client.version() == b"1.6.18"
    stats = client.stats()
    assert stats[b"cmd_get"] >= 1
    assert client.flush_all()
    assert client.get("a") is None


def test_pymemcache_noreply_pipelining(client):
    for i in range(100):
        client.set("k%d" % i, b"v%d" % i, noreply=True)
    assert client.get_many(["k0", "k99"]) == {"k0": b"v0", "k99": b"v99"}


@pytest.mark.skipif(shutil.which("memccapable") is None, reason="libmemcached-tools not installed")
def test_memccapable_ascii(pymcd_server):
    result = subprocess.run(
        ["memccapable", "-h", "127.0.0.1", "-p", str(pymcd_server.port), "-a"],
        capture_output=True, text=True, timeout=120,
    )
    output = result.stdout + result.stderr
    passed = len(re.findall(r"\[pass\]", output))
    failed = re.findall(r".*\[(?:fail|FAIL)\].*", output)
    assert not failed, output
    assert passed == 27, output
