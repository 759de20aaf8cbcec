"""Prefix modes, command maps, route_ttl, route_zfailover, failover on miss, jump placement,
unix-socket and TLS backends."""

from functools import partial
import os
import subprocess
import time

import pytest
from pymemcache.client.base import Client as PymemcacheClient

from conftest import start_proxy
from integration.test_transports import certificates, tls_args  # noqa: F401 (a fixture)
from support import exchange, free_port, start_pymcd, stats

# Direct writes must be stored before the test goes on: no pymemcache noreply.
Client = partial(PymemcacheClient, default_noreply=False)


def holders(servers, key):
    return [index for index, server in enumerate(servers) if Client(server.address).get(key)]


def pools_of(backends):
    return ("from pymcd.proxy import *\n"
            + "pools(%s)\n" % ", ".join('p%d={"backends": ["127.0.0.1:%d"]}' % (i, s.port)
                                        for i, s in enumerate(backends)))


def test_prefix_separator_and_anchor_modes(clean):
    text = pools_of(clean) + ('routes(map={"a": "p0", "b": "p1"}, default="p2", separator=":")\n')
    with start_proxy(text) as proxy:
        sock = proxy.connect()
        for key in (b"a:1", b"b:1", b"c:1", b"a/1", b":a"):
            assert exchange(sock, b"set %s 0 0 1\r\nx\r\n" % key) == b"STORED\r\n"
        assert [holders(clean, k) for k in ("a:1", "b:1", "c:1", "a/1", ":a")] == \
            [[0], [1], [2], [2], [2]]
    text = pools_of(clean) + ('routes(map={"a": "p0"}, default="p1", '
                              'conf={"mode": "anchor", "start": "/", "stop": "/"})\n')
    with start_proxy(text) as proxy:
        sock = proxy.connect()
        for key in (b"/a/2", b"a/2", b"/b/2"):
            assert exchange(sock, b"set %s 0 0 1\r\nx\r\n" % key) == b"STORED\r\n"
        assert [holders(clean, k) for k in ("/a/2", "a/2", "/b/2")] == [[0], [1], [1]]


def test_command_maps_in_a_prefix_and_at_the_top(clean):
    text = pools_of(clean) + (
        'routes(map={"w": cmdmap({CMD_SET: route_direct(child="p0"), "get": "p1"})},\n'
        '       cmap={"delete": "p2", "mg": "p3"}, default="p1")\n')
    with start_proxy(text) as proxy:
        sock = proxy.connect()
        assert exchange(sock, b"set w/k 0 0 1\r\nx\r\n") == b"STORED\r\n"
        assert holders(clean, "w/k") == [0]
        Client(clean[1].address).set("w/k", b"1")
        Client(clean[3].address).set("w/k", b"3")
        assert exchange(sock, b"get w/k\r\n") == b"VALUE w/k 0 1\r\n1\r\nEND\r\n"
        assert exchange(sock, b"mg w/k v\r\n") == b"VA 1\r\n3\r\n"  # not in the cmdmap: cmap
        assert exchange(sock, b"delete w/k\r\n") == b"NOT_FOUND\r\n"  # p2 had nothing
        assert exchange(sock, b"add w/k 0 0 1\r\nz\r\n") == b"NOT_STORED\r\n"  # default: p1
        assert int(stats(sock, b"proxy")["route_w:set_requests"]) == 1


def test_route_ttl_rewrites_the_ttl_of_stores(clean):
    text = pools_of(clean) + 'routes(default=route_ttl(ttl=500, child="p0"))\n'
    with start_proxy(text) as proxy:
        sock = proxy.connect()
        assert exchange(sock, b"set t1 0 0 1\r\nx\r\n") == b"STORED\r\n"
        assert exchange(sock, b"ms t2 1 T9\r\nx\r\n") == b"HD\r\n"
        direct = Client(clean[0].address)
        for key in (b"t1", b"t2"):
            ttl = direct.raw_command(b"mg %s t" % key, end_tokens=b"\r\n")
            assert 490 < int(ttl.split(b"t")[-1]) <= 500


def test_zfailover_tries_the_local_zone_first(clean):
    text = ("from pymcd.proxy import *\nlocal_zone('z2')\n"
            "pools(zones={'z1': {'backends': ['127.0.0.1:%d']}, 'z2': {'backends': "
            "['127.0.0.1:%d']}, 'z3': {'backends': ['127.0.0.1:%d']}})\n"
            "routes(default=route_zfailover(children='zones', miss=True))\n"
            % (clean[0].port, clean[1].port, clean[2].port))
    with start_proxy(text) as proxy:
        sock = proxy.connect()
        assert exchange(sock, b"set z 0 0 1\r\nx\r\n") == b"STORED\r\n"
        assert holders(clean, "z") == [1]
        Client(clean[2].address).set("only3", b"3")
        # a miss in z2 and z1 moves on to z3 (miss=True)
        assert exchange(sock, b"get only3\r\n") == b"VALUE only3 0 1\r\n3\r\nEND\r\n"
        assert exchange(sock, b"mg only3 v\r\n") == b"VA 1\r\n3\r\n"


def test_failover_on_miss_and_failover_count(clean):
    text = pools_of(clean) + (
        'routes(map={"m": route_failover(children=["p0", "p1", "p2"], miss=True),\n'
        '            "c": route_failover(children=["p0", "p1", "p2"], miss=True, '
        'failover_count=2)})\n')
    with start_proxy(text) as proxy:
        sock = proxy.connect()
        Client(clean[2].address).set("m/k", b"2")
        Client(clean[2].address).set("c/k", b"2")
        assert exchange(sock, b"get m/k\r\n") == b"VALUE m/k 0 1\r\n2\r\nEND\r\n"
        assert exchange(sock, b"get c/k\r\n") == b"END\r\n"  # two tries: p0, p1
        assert exchange(sock, b"get other\r\n") == b"SERVER_ERROR no route\r\n"


def test_jump_spreads_keys_and_keeps_them_put(clean):
    text = ("from pymcd.proxy import *\npools(j={'backends': [%s]})\nroutes(default='j')\n"
            % ", ".join("'127.0.0.1:%d'" % s.port for s in clean))
    keys = ["jk%d" % i for i in range(400)]
    with start_proxy(text) as proxy:
        sock = proxy.connect()
        sock.sendall(b"".join(b"set %s 0 0 1 noreply\r\nv\r\n" % key.encode() for key in keys))
        assert exchange(sock, b"mn\r\n", expect_end=b"MN\r\n") == b"MN\r\n"
    placed = [set(Client(server.address).get_many(keys)) for server in clean]
    assert sum(len(on_server) for on_server in placed) == len(keys)
    assert min(len(on_server) for on_server in placed) > 60
    # jump: without the last backend, only that backend's keys move
    text = ("from pymcd.proxy import *\npools(j={'backends': [%s]})\nroutes(default='j')\n"
            % ", ".join("'127.0.0.1:%d'" % s.port for s in clean[:3]))
    with start_proxy(text) as proxy:
        found = Client(proxy.address).get_many(keys)
    assert set(found) == set(keys) - placed[3]


def test_unix_socket_and_tls_backends(tmp_path, certificates):  # noqa: F811
    path = str(tmp_path / "mc.sock")
    unix = subprocess.Popen(["memcached", "-s", path, "-u", "root"] if os.geteuid() == 0
                            else ["memcached", "-s", path])
    tls_port = free_port()
    tls = start_pymcd(tls_args(certificates), port=tls_port)
    try:
        deadline = time.time() + 10
        while not os.path.exists(path) and time.time() < deadline:
            time.sleep(0.05)
        text = ("from pymcd.proxy import *\npools(u={'backends': ['unix:%s']}, "
                "t={'backends': ['tls:127.0.0.1:%d']})\n"
                "routes(map={'t': 't'}, default='u')\n" % (path, tls_port))
        with start_proxy(text) as proxy:
            sock = proxy.connect()
            assert exchange(sock, b"set uk 0 0 2\r\nun\r\nget uk\r\n",
                            expect_end=b"END\r\n") == b"STORED\r\nVALUE uk 0 2\r\nun\r\nEND\r\n"
            assert exchange(sock, b"set t/k 0 0 2\r\ntl\r\nmg t/k v\r\n",
                            expect_end=b"tl\r\n") == b"STORED\r\nVA 2\r\ntl\r\n"
            assert int(stats(sock, b"proxy")["backend_127.0.0.1:%d_requests" % tls_port]) == 2
    finally:
        unix.terminate()
        unix.wait()
        tls.stop()
