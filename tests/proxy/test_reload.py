"""Starting a proxy (-o proxy_config=, twistd), SIGHUP reloads, watch proxyreqs/proxyevents."""

from functools import partial
import os
import signal
import subprocess
import sys
import time

import pytest
from pymemcache.client.base import Client as PymemcacheClient

from conftest import start_proxy, write_config
from support import HOST, ServerProcess, exchange, free_port, start_pymcd, stats

# Direct writes must be stored before the test goes on: no pymemcache noreply.
Client = partial(PymemcacheClient, default_noreply=False)

ROUTE_TO = ("from pymcd.proxy import pools, routes, route_direct\n"
            "pools(p={\"backends\": [\"127.0.0.1:%d\"]})\n"
            "routes(default=route_direct(child=\"p\"))\n")


def wait_until(condition, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_sighup_reloads_without_dropping_clients_and_keeps_a_broken_config_out(clean):
    first, second = clean[0], clean[1]
    with start_proxy(ROUTE_TO % first.port) as proxy:
        sock = proxy.connect()
        watcher = proxy.connect()
        assert exchange(watcher, b"watch proxyevents\r\n") == b"OK\r\n"
        assert exchange(sock, b"set r1 0 0 1\r\n1\r\n") == b"STORED\r\n"
        assert Client(first.address).get("r1") == b"1"
        with open(proxy.config_path, "w") as config:
            config.write(ROUTE_TO % second.port)
        proxy.process.send_signal(signal.SIGHUP)
        assert wait_until(lambda: stats(sock, b"proxy")["config_reloads"] == "1")
        assert exchange(sock, b"set r2 0 0 1\r\n2\r\n") == b"STORED\r\n"  # same connection
        assert Client(second.address).get("r2") == b"2"
        assert Client(first.address).get("r2") is None
        events = exchange(watcher, b"", expect_end=b"status=done\n")
        assert b"type=proxy_conf status=start" in events and b"status=done" in events

        with open(proxy.config_path, "w") as config:
            config.write("from pymcd.proxy import *\npools(p={\"backends\": [\"nohost\"]})\n"
                         "routes(default=\"p\")\n")
        proxy.process.send_signal(signal.SIGHUP)
        assert wait_until(lambda: stats(sock, b"proxy")["config_reload_fails"] == "1")
        assert b"type=proxy_error" in exchange(watcher, b"", expect_end=b"\n")
        assert exchange(sock, b"set r3 0 0 1\r\n3\r\n") == b"STORED\r\n"
        assert Client(second.address).get("r3") == b"3"  # the old config goes on
        _, err = proxy.stop()
        assert b"not reloaded" in err and b"nohost" in err


def test_watch_proxyreqs_and_backend_events(clean):
    dead = free_port()
    text = ("from pymcd.proxy import *\n"
            "pools(p={\"backends\": [\"127.0.0.1:%d\"]}, d={\"backends\": [\"127.0.0.1:%d\"]})\n"
            "routes(map={\"dead\": route_direct(child=\"d\"), \"local\": internal()},\n"
            "       default=route_direct(child=\"p\"))\n"
            % (clean[0].port, dead))
    with start_proxy(text) as proxy:
        watcher = proxy.connect()
        assert exchange(watcher, b"watch proxyreqs proxyevents\r\n") == b"OK\r\n"
        sock = proxy.connect()
        exchange(sock, b"get somekey\r\n")
        exchange(sock, b"set local/k 0 0 1\r\nv\r\n")
        exchange(sock, b"get dead/k\r\n", expect_end=b"\r\n")
        lines = exchange(watcher, b"", expect_end=b"req=get dead/k\n", timeout=3)
        assert (b"type=proxy_req elapsed=" in lines and b" type=7 code=0 status=0 be=127.0.0.1:%d "
                b"detail=END req=get somekey\n" % clean[0].port in lines)
        assert b"type=9 code=0 status=0 be=internal: detail=STORED req=set local/k 0 0 1\n" in lines
        assert b"type=7 code=1 status=1 be=127.0.0.1:%d detail=SERVER_ERROR req=get dead/k\n" \
            % dead in lines
        assert b"type=proxy_backend error=connect_failed name=127.0.0.1 port=%d" % dead in lines


def test_extended_option_starts_a_proxy(clean):
    path = write_config(ROUTE_TO % clean[2].port)
    with start_pymcd(["-o", "proxy_config=%s" % path]) as proxy:
        sock = proxy.connect()
        assert exchange(sock, b"set o 0 0 1\r\no\r\n") == b"STORED\r\n"
        assert Client(clean[2].address).get("o") == b"o"


def test_twistd_starts_a_proxy(clean):
    path = write_config(ROUTE_TO % clean[2].port)
    port = free_port()
    twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
    command = [twistd, "-n", "--pidfile=", "pymcd", "-p", str(port), "-U", "0", "-l", HOST,
               "--proxy-config", path]
    with ServerProcess(command, port) as proxy:
        sock = proxy.connect()
        assert exchange(sock, b"set t 0 0 1\r\nt\r\n") == b"STORED\r\n"
        assert Client(clean[2].address).get("t") == b"t"


@pytest.mark.parametrize("text, reason", [
    ("routes(default='nopool')\nfrom pymcd.proxy import routes\n", b"NameError"),
    ("from pymcd.proxy import *\nroutes(default=route_direct(child='nopool'))\n",
     b"no pool named 'nopool'"),
    ("from pymcd.proxy import *\npools(p={'backends': ['127.0.0.1:1'], 'dist': 'md5'})\n"
     "routes(default='p')\n", b"dist must be jump or ketama"),
    ("from pymcd.proxy import *\npools(p={'backends': ['127.0.0.1:1']})\n", b"never calls routes"),
])
def test_a_broken_config_stops_the_start_with_the_reason(text, reason):
    path = write_config(text)
    result = subprocess.run([sys.executable, "-m", "pymcd", "-p", str(free_port()),
                             "--proxy-config", path], capture_output=True, timeout=30)
    assert result.returncode != 0
    assert b"Failed to load proxy config" in result.stderr and reason in result.stderr


def test_requests_in_flight_on_a_dropped_backend_are_answered(clean):
    with start_proxy(ROUTE_TO % clean[0].port) as proxy:
        sock = proxy.connect()
        assert exchange(sock, b"set f 0 0 1\r\nv\r\n") == b"STORED\r\n"
        with open(proxy.config_path, "w") as config:
            config.write(ROUTE_TO % clean[1].port)
        expected = b"VALUE f 0 1\r\nv\r\nEND\r\n"
        for _ in range(5):
            sock.sendall(b"get f\r\n" * 3000)
            proxy.process.send_signal(signal.SIGHUP)
            reply = exchange(sock, b"mn\r\n", expect_end=b"MN\r\n", timeout=10)
            hits = reply.count(expected)
            # the old backend's hits, then the new one's misses: none failed, lost or doubled
            assert reply == expected * hits + b"END\r\n" * (3000 - hits) + b"MN\r\n"
            if hits < 3000:
                return  # the reload came mid-pipeline: the rest came from the new backend
        pytest.fail("the reload never landed mid-pipeline")
