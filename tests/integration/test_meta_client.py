"""meta-memcache, a client built on the meta protocol only, drives pymcd through its everyday API.

Every call goes over mg/ms/md/ma; the client raises on any reply it does not understand, so a
clean run means pymcd's replies are what a real meta client expects.
"""

from __future__ import annotations

import pytest

meta_memcache = pytest.importorskip("meta_memcache")
from meta_memcache import (  # noqa: E402
    CacheClient,
    Key,
    LeasePolicy,
    RecachePolicy,
    ServerAddress,
    StalePolicy,
    connection_pool_factory_builder,
)


def _client(server):
    return CacheClient.cache_client_from_servers(
        servers=[ServerAddress(host="127.0.0.1", port=server.port)],
        connection_pool_factory_fn=connection_pool_factory_builder(recv_timeout=5),
    )


@pytest.fixture
def client(pymcd_server):
    return _client(pymcd_server)


@pytest.fixture
def other_client(pymcd_server):
    return _client(pymcd_server)


def test_get_set_delete_touch(client):
    assert client.get("mmc:absent") is None
    assert client.set("mmc:a", "text", ttl=100)
    assert client.set("mmc:b", {"structured": [1, 2]}, ttl=100)
    assert client.set("mmc:c", b"\x00binary\r\n", ttl=100)
    assert client.get("mmc:a") == "text"
    assert client.get("mmc:b") == {"structured": [1, 2]}
    assert client.get("mmc:c") == b"\x00binary\r\n"
    assert client.multi_get(["mmc:a", "mmc:absent"]) == {
        Key("mmc:a"): "text", Key("mmc:absent"): None,
    }
    assert client.touch("mmc:a", ttl=500)
    assert not client.touch("mmc:absent", ttl=500)
    assert client.delete("mmc:a")
    assert client.get("mmc:a") is None
    assert not client.delete("mmc:a")


def test_counters(client):
    assert client.delta("mmc:n", 5) is False
    assert client.delta_initialize("mmc:n", 5, initial_value=10, initial_ttl=60)
    assert client.delta_and_get("mmc:n", 5) == 15
    assert client.delta_and_get("mmc:n", -20) == 0
    assert client.delta_initialize_and_get("mmc:m", 1, initial_value=7, initial_ttl=60) == 7
    assert client.delta_initialize_and_get("mmc:m", 1, initial_value=7, initial_ttl=60) == 8


def test_cas(client):
    assert client.set("mmc:cas", "v1", ttl=100)
    value, cas = client.get_cas("mmc:cas")
    assert value == "v1" and cas
    assert client.set("mmc:cas", "v2", ttl=100, cas_token=cas)
    assert not client.set("mmc:cas", "v3", ttl=100, cas_token=cas)
    assert client.get("mmc:cas") == "v2"


def test_recache_policy_one_client_wins(client, other_client):
    assert client.set("mmc:hot", "old", ttl=20)
    recache = RecachePolicy(ttl=30)
    # The TTL left (20 s) is under the recache threshold: the first reader wins and sees a miss,
    # everyone else keeps the current value while the winner refills.
    assert client.get("mmc:hot", recache_policy=recache) is None
    assert other_client.get("mmc:hot", recache_policy=recache) == "old"
    assert client.set("mmc:hot", "new", ttl=100)
    assert other_client.get("mmc:hot", recache_policy=recache) == "new"


def test_stale_policy_delete_and_cas_mismatch(client, other_client):
    stale = StalePolicy(mark_stale_on_deletion_ttl=30, mark_stale_on_cas_mismatch=True)
    assert client.set("mmc:stale", "v1", ttl=100)
    _, old_cas = client.get_cas("mmc:stale")
    assert client.invalidate("mmc:stale", stale_policy=stale)
    # Stale: the first reader wins the refill, others are served the stale value.
    assert client.get("mmc:stale") is None
    assert other_client.get("mmc:stale") == "v1"
    # A writer holding an old CAS stores its value, but as stale, not as fresh.
    assert client.set("mmc:stale", "v2", ttl=100, cas_token=old_cas, stale_policy=stale)
    assert other_client.get("mmc:stale") == "v2"
    assert client.delete("mmc:stale")
    assert client.get("mmc:stale") is None


def test_lease_on_miss(client, other_client):
    lease = LeasePolicy(ttl=30, miss_retries=1, miss_retry_wait=0.01)
    # The first caller wins the lease (a miss to fill); a second caller finds the placeholder.
    assert client.get_or_lease("mmc:lease", lease_policy=lease) is None
    assert other_client.get_or_lease("mmc:lease", lease_policy=lease) is None
    assert client.set("mmc:lease", "filled", ttl=100)
    assert other_client.get_or_lease("mmc:lease", lease_policy=lease) == "filled"
