"""The other two ways to spread keys over pymcd servers: twemproxy (nutcracker) and pymemcache's
HashClient. Each key lands on exactly one server, all servers get some, and reads come back."""

from functools import partial
import shutil
import subprocess
import tempfile

import pytest
from pymemcache.client.base import Client as PymemcacheClient
from pymemcache.client.hash import HashClient

from support import HOST, free_port, start_pymcd, wait_for_port

# Direct writes must be stored before the test goes on: no pymemcache noreply.
Client = partial(PymemcacheClient, default_noreply=False)

KEYS = ["scale%d" % i for i in range(150)]


@pytest.fixture(scope="module")
def three_pymcd():
    servers = [start_pymcd() for _ in range(3)]
    yield servers
    for server in servers:
        server.stop()


def spread(servers):
    counts = []
    for server in servers:
        found = Client(server.address).get_many(KEYS)
        counts.append(len(found))
    return counts


def test_twemproxy_ketama_over_three_pymcd(three_pymcd):
    if shutil.which("nutcracker") is None:
        pytest.skip("Debian's nutcracker is not installed")
    for server in three_pymcd:
        Client(server.address).flush_all()
    port, stats_port = free_port(), free_port()
    yaml = ("pymcd:\n  listen: %s:%d\n  hash: md5\n  distribution: ketama\n"
            "  timeout: 2000\n  auto_eject_hosts: false\n  servers:\n" % (HOST, port)
            + "".join("   - %s:%d:1\n" % (HOST, s.port) for s in three_pymcd))
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as config:
        config.write(yaml)
    twemproxy = subprocess.Popen(["nutcracker", "-c", config.name, "-s", str(stats_port),
                                  "-a", HOST], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process=twemproxy)
        client = Client((HOST, port))
        for key in KEYS:
            client.set(key, key.encode())
        assert client.get_many(KEYS) == {key: key.encode() for key in KEYS}
        counts = spread(three_pymcd)
        assert sum(counts) == len(KEYS) and min(counts) > 10
        assert client.delete(KEYS[0]) is True
        assert sum(spread(three_pymcd)) == len(KEYS) - 1
    finally:
        twemproxy.terminate()
        twemproxy.wait()


def test_pymemcache_hashclient_over_three_pymcd(three_pymcd):
    for server in three_pymcd:
        Client(server.address).flush_all()
    client = HashClient([server.address for server in three_pymcd])
    for key in KEYS:
        client.set(key, key.encode())
    assert client.get_many(KEYS) == {key: key.encode() for key in KEYS}
    counts = spread(three_pymcd)
    assert sum(counts) == len(KEYS) and min(counts) > 10
