"""Binary-protocol clients against a real pymcd: memccapable, pylibmc (libmemcached) and
python-binary-memcached, plus items crossing between the binary and text protocols."""

from __future__ import annotations

import re
import shutil
import subprocess

import bmemcached
import pylibmc
import pytest
from pymemcache.client.base import Client

needs_memccapable = pytest.mark.skipif(shutil.which("memccapable") is None,
                                       reason="libmemcached-tools not installed")


def memccapable(port: int, *mode: str) -> str:
    result = subprocess.run(["memccapable", "-h", "127.0.0.1", "-p", str(port)] + list(mode),
                            capture_output=True, text=True, timeout=120)
    return result.stdout + result.stderr


@needs_memccapable
def test_memccapable_binary_passes_all_27(pymcd_server):
    output = memccapable(pymcd_server.port, "-b")
    assert not re.findall(r".*\[(?:fail|FAIL)\].*", output), output
    assert len(re.findall(r"\[pass\]", output)) == 27, output


@needs_memccapable
def test_memccapable_full_run_passes_all_54(pymcd_server):
    output = memccapable(pymcd_server.port)
    assert not re.findall(r".*\[(?:fail|FAIL)\].*", output), output
    assert len(re.findall(r"\[pass\]", output)) == 54, output


@pytest.fixture
def libmemcached(pymcd_server):
    client = pylibmc.Client(["127.0.0.1:%d" % pymcd_server.port], binary=True,
                            behaviors={"cas": True})
    yield client
    client.disconnect_all()


def test_pylibmc_binary_everyday_operations(libmemcached):
    client = libmemcached
    assert client.set("a", "1")
    assert client.get("a") == "1"
    assert client.add("a", "2") is False
    assert client.replace("a", "3")
    assert client.get("a") == "3"
    assert client.delete("a") and not client.delete("a")
    assert client.get("a") is None
    client.set("n", 10)
    assert client.incr("n", 5) == 15
    assert client.decr("n", 20) == 0
    with pytest.raises(pylibmc.NotFound):
        client.incr("missing", 1)


def test_pylibmc_binary_cas_multi_and_touch(libmemcached):
    client = libmemcached
    client.set("c", "v")
    value, cas = client.gets("c")
    assert value == "v" and cas
    assert client.cas("c", "w", cas) is True
    assert client.cas("c", "x", cas) is False
    assert client.get("c") == "w"
    assert client.set_multi({"m1": "1", "m2": "2"}) == []
    assert client.get_multi(["m1", "m2", "nope"]) == {"m1": "1", "m2": "2"}
    client.delete_multi(["m1", "m2"])
    assert client.get_multi(["m1", "m2"]) == {}
    assert client.touch("c", 100) is True
    assert client.touch("nope", 100) is False
    assert int(client.get_stats()[0][1]["cmd_get"]) >= 3


def test_bmemcached_without_sasl(pymcd_server):
    client = bmemcached.Client(["127.0.0.1:%d" % pymcd_server.port])
    assert client.set("bk", "v")
    assert client.get("bk") == "v"
    assert client.get_multi(["bk", "zz"]) == {"bk": "v"}
    client.disconnect_all()


def test_binary_values_read_back_over_ascii_with_the_same_flags_and_cas(pymcd_server,
                                                                        libmemcached):
    value = bytes(range(256))
    libmemcached.set("crossed", value)
    _, binary_cas = libmemcached.gets("crossed")
    text = Client(pymcd_server.address)
    try:
        read, text_cas = text.gets("crossed")
        assert read == value and int(text_cas) == binary_cas
        text.set("from_text", b"plain", expire=0)
        assert libmemcached.get("from_text") == b"plain"
    finally:
        text.close()
