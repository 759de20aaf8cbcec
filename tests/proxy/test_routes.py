"""The issue's config as written, every route handler, prefixes, command maps, multi-get."""

from functools import partial
import socket
import time

import pylibmc
import pytest
from pymemcache.client.base import Client as PymemcacheClient

from conftest import start_proxy
from support import exchange, stats

# Direct writes must be stored before the test goes on: no pymemcache noreply.
Client = partial(PymemcacheClient, default_noreply=False)

ISSUE_CONFIG = '''
from pymcd.proxy import pools, routes, internal, route_direct, route_failover, route_allsync, route_allfastest, route_split

pools(
    main={"backends": ["127.0.0.1:%d", "127.0.0.1:%d", "127.0.0.1:%d"], "dist": "ketama"},
    backup={"backends": ["127.0.0.1:%d"]},
)
routes(
    map={
        "local": internal(),                                          # keys "local/..." stay in pymcd's store
        "repl": route_allsync(children=["main", "backup"]),           # writes to both, worst answer wins
        "fast": route_allfastest(children=["main", "backup"]),
        "shadow": route_split(child_a="main", child_b="backup"),      # a answers, b gets a copy
        "only": route_direct(child="main"),
    },
    default=route_failover(children=["main", "backup"]),
)
'''


def ports(backends):
    return tuple(server.port for server in backends)


@pytest.fixture(scope="module")
def proxy(backends):
    with start_proxy(ISSUE_CONFIG % ports(backends)) as server:
        yield server


@pytest.fixture
def sock(proxy):
    connection = proxy.connect()
    yield connection
    connection.close()


def main_client(backends):
    """pylibmc with ketama over the 'main' servers: it finds keys where the proxy put them."""
    return pylibmc.Client(["127.0.0.1:%d" % s.port for s in backends[:3]],
                          behaviors={"ketama": True})


def direct(server):
    return Client(server.address)


def holders(backends, key):
    return [index for index, server in enumerate(backends) if direct(server).get(key) is not None]


def test_default_route_fails_over_in_order_and_lands_on_main(sock, clean):
    assert exchange(sock, b"set plain 0 0 2\r\nhi\r\n") == b"STORED\r\n"
    assert exchange(sock, b"get plain\r\n") == b"VALUE plain 0 2\r\nhi\r\nEND\r\n"
    assert main_client(clean).get("plain") == b"hi"
    assert holders(clean, "plain")[-1] != 3  # failover wrote main only, not backup
    assert len(holders(clean, "plain")) == 1


def test_internal_route_uses_pymcds_store(sock, clean):
    assert exchange(sock, b"set local/a 7 0 3\r\nabc\r\n") == b"STORED\r\n"
    assert exchange(sock, b"append local/a 0 0 1\r\nd\r\n") == b"STORED\r\n"
    assert exchange(sock, b"gets local/a\r\n").startswith(b"VALUE local/a 7 4 ")
    assert exchange(sock, b"incr local/a 1\r\n") == \
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
    assert exchange(sock, b"mg local/a s f v\r\n") == b"VA 4 s4 f7\r\nabcd\r\n"
    assert exchange(sock, b"md local/a q\r\nmn\r\n") == b"MN\r\n"
    assert exchange(sock, b"mg local/a v\r\n") == b"EN\r\n"
    assert exchange(sock, b"set local/big 0 0 2000000\r\n" + b"x" * 2000000 + b"\r\n",
                    expect_end=b"\r\n") == b"SERVER_ERROR object too large for cache\r\n"
    assert exchange(sock, b"set local/b 0 0 1\r\nz\r\n") == b"STORED\r\n"
    assert holders(clean, "local/b") == []
    assert int(stats(sock)["curr_items"]) >= 1  # the proxy's own store holds it


def test_allsync_writes_every_child(sock, clean):
    assert exchange(sock, b"set repl/k 0 0 1\r\nv\r\n") == b"STORED\r\n"
    assert main_client(clean).get("repl/k") == b"v"
    assert direct(clean[3]).get("repl/k") == b"v"
    assert exchange(sock, b"delete repl/k\r\n") == b"DELETED\r\n"
    assert holders(clean, "repl/k") == []


def test_allsync_worst_answer_wins(sock, clean):
    direct(clean[3]).set("repl/only-backup", b"x")
    # add stores on main, not on backup: no child errs (NOT_STORED is an answer), the last wins
    assert exchange(sock, b"add repl/only-backup 0 0 1\r\ny\r\n") == b"NOT_STORED\r\n"


def test_allfastest_answers_with_the_first_good_reply(sock, clean):
    direct(clean[3]).set("fast/k", b"b")
    assert exchange(sock, b"get fast/k\r\n") in (
        b"VALUE fast/k 0 1\r\nb\r\nEND\r\n", b"END\r\n")
    assert exchange(sock, b"set fast/k 0 0 1\r\nf\r\n") == b"STORED\r\n"
    assert exchange(sock, b"get fast/k\r\n") == b"VALUE fast/k 0 1\r\nf\r\nEND\r\n"


def test_split_answers_from_a_and_copies_to_b(sock, clean):
    assert exchange(sock, b"set shadow/k 0 0 1\r\ns\r\n") == b"STORED\r\n"
    assert main_client(clean).get("shadow/k") == b"s"
    deadline = time.time() + 2
    while direct(clean[3]).get("shadow/k") is None and time.time() < deadline:
        time.sleep(0.02)
    assert direct(clean[3]).get("shadow/k") == b"s"
    direct(clean[3]).set("shadow/k", b"other")
    assert exchange(sock, b"get shadow/k\r\n") == b"VALUE shadow/k 0 1\r\ns\r\nEND\r\n"


def test_direct_route_only_main(sock, clean):
    assert exchange(sock, b"set only/k 0 0 1\r\no\r\n") == b"STORED\r\n"
    assert holders(clean, "only/k") != [] and 3 not in holders(clean, "only/k")


def test_ketama_placement_matches_pylibmc(sock, clean):
    keys = ["kt%d" % i for i in range(200)]
    request = b"".join(b"set %s 0 0 2 noreply\r\nok\r\n" % key.encode() for key in keys)
    sock.sendall(request)
    assert exchange(sock, b"mn\r\n", expect_end=b"MN\r\n") == b"MN\r\n"
    found = main_client(clean).get_multi(keys)
    assert len(found) == len(keys)
    spread = [len([k for k in keys if direct(server).get(k) is not None])
              for server in clean[:3]]
    assert sum(spread) == len(keys) and min(spread) > 20


def test_multiget_merges_in_key_order_with_one_end(sock, clean):
    for key in ("a1", "b2", "c3", "d4", "local/e5"):
        exchange(sock, b"set %s 0 0 %d\r\n%s\r\n" % (key.encode(), len(key), key.encode()))
    reply = exchange(sock, b"get d4 nope local/e5 a1 c3 a1 b2\r\n", expect_end=b"END\r\n")
    order = [line.split(b" ")[1] for line in reply.split(b"\r\n") if line.startswith(b"VALUE")]
    assert order == [b"d4", b"local/e5", b"a1", b"c3", b"a1", b"b2"]
    assert reply.count(b"END\r\n") == 1 and reply.endswith(b"END\r\n")
    gets = exchange(sock, b"gets a1 b2\r\n", expect_end=b"END\r\n")
    assert gets.count(b"VALUE") == 2 and all(
        len(line.split(b" ")) == 5 for line in gets.split(b"\r\n") if line.startswith(b"VALUE"))
    touched = exchange(sock, b"gat 100 b2 a1 zz\r\n", expect_end=b"END\r\n")
    assert touched == b"VALUE b2 0 2\r\nb2\r\nVALUE a1 0 2\r\na1\r\nEND\r\n"
    # pymemcache's get_many splits nothing itself: the proxy does
    client = Client(("127.0.0.1", sock.getpeername()[1]))
    assert client.get_many(["a1", "b2", "c3", "zz"]) == {"a1": b"a1", "b2": b"b2", "c3": b"c3"}


def test_keyless_commands_are_the_proxys_own(sock, clean):
    assert exchange(sock, b"version\r\n").startswith(b"VERSION ")
    assert exchange(sock, b"mn\r\n") == b"MN\r\n"
    assert exchange(sock, b"verbosity 0\r\n") == b"OK\r\n"
    assert exchange(sock, b"set local/f 0 0 1\r\nf\r\nset f 0 0 1\r\nf\r\n") == b"STORED\r\nSTORED\r\n"
    assert exchange(sock, b"flush_all\r\n") == b"OK\r\n"
    assert exchange(sock, b"get local/f\r\n") == b"END\r\n"  # the proxy's own store flushed
    assert exchange(sock, b"get f\r\n") == b"VALUE f 0 1\r\nf\r\nEND\r\n"  # backends untouched
    assert b"STAT pid " in exchange(sock, b"stats\r\n", expect_end=b"END\r\n")
    assert exchange(sock, b"bogus\r\n") == b"ERROR\r\n"
    assert exchange(sock, b"get\r\n") == b"ERROR\r\n"
    assert exchange(sock, b"get " + b"k" * 251 + b"\r\n") == b"CLIENT_ERROR bad command line format\r\n"


def test_noreply_and_quiet_mode_are_kept_in_step(sock, clean):
    sock.sendall(b"set q1 0 0 1 noreply\r\n1\r\nset local/q2 0 0 1 noreply\r\n2\r\n"
                 b"mg q1 v q\r\nmg nope v q\r\nms q3 1 q\r\n3\r\nmd nope q\r\nmn\r\n")
    assert exchange(sock, b"", expect_end=b"MN\r\n") == b"VA 1\r\n1\r\nNF\r\nMN\r\n"
    assert exchange(sock, b"get local/q2 q3\r\n") == \
        b"VALUE local/q2 0 1\r\n2\r\nVALUE q3 0 1\r\n3\r\nEND\r\n"


def test_pipelined_replies_come_back_in_request_order(sock, clean):
    requests = []
    for i in range(300):
        key = b"local/p%d" % i if i % 3 == 0 else b"p%d" % i
        requests.append(b"set %s 0 0 %d\r\n%d\r\nget %s\r\n" % (key, len(str(i)), i, key))
    sock.sendall(b"".join(requests))
    expected = b"".join(b"STORED\r\nVALUE %s 0 %d\r\n%d\r\nEND\r\n"
                        % (b"local/p%d" % i if i % 3 == 0 else b"p%d" % i, len(str(i)), i)
                        for i in range(300))
    assert exchange(sock, b"", expect_end=expected[-30:], timeout=10) == expected


def test_stats_proxy_counts_routes_and_backends(sock, clean, backends):
    exchange(sock, b"get only/x\r\n")
    figures = stats(sock, b"proxy")
    assert int(figures["route_only_requests"]) >= 1
    assert figures["backend_127.0.0.1:%d_status" % backends[3].port] == "up"
    assert int(figures["backend_total"]) == 4


def test_real_clients_through_the_proxy(proxy, clean):
    address = "127.0.0.1:%d" % proxy.port
    client = pylibmc.Client([address], binary=False)
    client.set_multi({"lib/%d" % i: "v%d" % i for i in range(30)})
    client.set("local/lib", 7)
    assert client.get_multi(["lib/%d" % i for i in range(30)] + ["local/lib", "nope"]) == dict(
        {"lib/%d" % i: "v%d" % i for i in range(30)}, **{"local/lib": 7})
    assert client.incr("local/lib", 5) == 12
    assert client.delete("lib/0") and client.get("lib/0") is None
    pm = Client(("127.0.0.1", proxy.port))
    assert pm.gets("lib/1")[0] == b"v1"
    value, cas = pm.gets("lib/1")
    assert pm.cas("lib/1", b"new", cas) is True and pm.cas("lib/1", b"x", cas) is False
    assert pm.touch("lib/2", 100) is True and pm.append("lib/2", b"+") is True
    assert pm.get("lib/2") == b"v2+"
