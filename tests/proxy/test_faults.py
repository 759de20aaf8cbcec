"""Backends that fail: refused, silent, killed mid-load; down and up marking; prompt errors."""

import signal
import socket
import threading
import time

import pytest

from conftest import start_proxy
from support import exchange, free_port, have_memcached, start_memcached, stats

pytestmark = pytest.mark.skipif(not have_memcached(), reason="Debian's memcached is needed")

FAILURE = b"SERVER_ERROR backend failure\r\n"


def config(pools: str, default: str, options: str = "") -> str:
    return ("from pymcd.proxy import *\n"
            "settings(%s)\npools(%s)\nroutes(default=%s)\n" % (options, pools, default))


def test_every_backend_failing_answers_server_error_promptly():
    dead = [free_port(), free_port()]
    text = config('a={"backends": ["127.0.0.1:%d"]}, b={"backends": ["127.0.0.1:%d"]}' % tuple(dead),
                  'route_failover(children=["a", "b"])')
    with start_proxy(text) as proxy:
        sock = proxy.connect()
        started = time.time()
        assert exchange(sock, b"get k\r\n", expect_end=b"\r\n") == FAILURE
        assert exchange(sock, b"set k 0 0 1\r\nv\r\nmg k v\r\n",
                        expect_end=FAILURE + FAILURE) == FAILURE + FAILURE
        assert time.time() - started < 2
        # one key of a multi-get failing on every route: the failure, once
        assert exchange(sock, b"get x y\r\n", expect_end=b"\r\n") == FAILURE


def test_silent_backend_times_out_within_readtimeout():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts (in the kernel) and never answers
    text = config('a={"backends": ["127.0.0.1:%d"], "backend_options": {"readtimeout": 0.4}}'
                  % silent.getsockname()[1], 'route_direct(child="a")')
    try:
        with start_proxy(text) as proxy:
            sock = proxy.connect()
            started = time.time()
            assert exchange(sock, b"get k\r\nget j\r\n", expect_end=FAILURE + FAILURE,
                            timeout=5) == FAILURE + FAILURE
            assert 0.3 < time.time() - started < 3.0
            assert int(stats(sock, b"proxy")["backend_127.0.0.1:%d_timeouts"
                                              % silent.getsockname()[1]]) == 1
    finally:
        silent.close()


def test_backend_marked_down_then_up_again():
    backend = start_memcached()
    port = backend.port
    text = config('a={"backends": ["127.0.0.1:%d"]}' % port, 'route_direct(child="a")',
                  "backend_failurelimit=2, backend_retrytimeout=0.5")
    with start_proxy(text) as proxy:
        sock = proxy.connect()
        assert exchange(sock, b"set k 0 0 1\r\nv\r\n") == b"STORED\r\n"
        backend.stop(signal.SIGKILL)
        name = "backend_127.0.0.1:%d_" % port
        for _ in range(3):
            assert exchange(sock, b"get k\r\n", expect_end=b"\r\n") == FAILURE
        figures = stats(sock, b"proxy")
        assert figures[name + "status"] == "down" and figures["backend_marked_bad"] == "1"
        # while down it fails at once, without trying
        started = time.time()
        assert exchange(sock, b"get k\r\n", expect_end=b"\r\n") == FAILURE
        assert time.time() - started < 0.3
        backend = start_memcached(port=port)
        try:
            time.sleep(0.6)
            assert exchange(sock, b"get k\r\n", expect_end=b"\r\n") == b"END\r\n"
            assert stats(sock, b"proxy")[name + "status"] == "up"
        finally:
            backend.stop()


def _load(proxy, client_index: int, count: int, results: dict) -> None:
    """Pipelined ms/mg with opaques; records every opaque that came back, in order."""
    sock = proxy.connect(timeout=10)
    sent, seen = [], []
    buffer = b""
    slowest = 0.0
    for batch in range(count // 20):
        batch_started = time.time()
        request = b""
        for i in range(batch * 20, batch * 20 + 20):
            opaque = b"O%d" % i
            key = b"c%dk%d" % (client_index, i)
            if i % 2:
                request += b"mg %s v %s\r\n" % (key, opaque)
            else:
                request += b"ms %s 2 %s\r\nv%d\r\n" % (key, opaque, i % 10)
            sent.append(opaque)
        sock.sendall(request)
        while len(seen) < len(sent):
            lines = buffer.split(b"\r\n")
            buffer = lines.pop()
            for line in lines:
                if line.startswith((b"HD", b"EN", b"NS", b"VA", b"SERVER_ERROR")):
                    seen.append(line.split(b" ")[-1] if b" O" in line else line)
            if len(seen) >= len(sent):
                break
            buffer += sock.recv(65536)
        slowest = max(slowest, time.time() - batch_started)
        time.sleep(0.005)
    sock.settimeout(0.3)
    try:
        extra = sock.recv(65536)
    except socket.timeout:
        extra = b""
    results[client_index] = (sent, seen, buffer + extra, slowest)


def test_backend_killed_mid_load_fails_over_without_lost_or_doubled_replies():
    main, backup = start_memcached(), start_memcached()
    text = config('main={"backends": ["127.0.0.1:%d"]}, backup={"backends": ["127.0.0.1:%d"]}'
                  % (main.port, backup.port), 'route_failover(children=["main", "backup"])',
                  "backend_readtimeout=1, backend_retrytimeout=30")
    try:
        with start_proxy(text) as proxy:
            results = {}
            threads = [threading.Thread(target=_load, args=(proxy, n, 2000, results))
                       for n in range(4)]
            started = time.time()
            for thread in threads:
                thread.start()
            time.sleep(0.3)
            main.stop(signal.SIGKILL)
            for thread in threads:
                thread.join(30)
            assert time.time() - started < 20
            for sent, seen, leftover, slowest in results.values():
                assert seen == sent  # every request answered once, in order, none by an error
                assert leftover == b""
                assert slowest < 3.0, slowest  # the read timeout (1 s) plus a loaded machine
            sock = proxy.connect()
            figures = stats(sock, b"proxy")
            assert figures["backend_127.0.0.1:%d_status" % main.port] == "down"
            assert int(figures["backend_127.0.0.1:%d_requests" % main.port]) > 0
            assert int(figures["backend_127.0.0.1:%d_requests" % backup.port]) > 0
    finally:
        main.stop()
        backup.stop()


def test_routes_with_one_dead_child(clean):
    live, dead = clean[0].port, free_port()
    text = ("from pymcd.proxy import *\n"
            "pools(live={'backends': ['127.0.0.1:%d']}, dead={'backends': ['127.0.0.1:%d']},\n"
            "      forced={'backends': ['127.0.0.1:%d _down_']})\n"
            "routes(map={'sync': route_allsync(children=['live', 'dead']),\n"
            "            'fast': route_allfastest(children=['dead', 'live']),\n"
            "            'split': route_split(child_a='live', child_b='dead'),\n"
            "            'forced': route_failover(children=['forced', 'live'])},\n"
            "       default='forced')\n" % (live, dead, live))
    with start_proxy(text) as proxy:
        sock = proxy.connect()
        assert exchange(sock, b"set sync/k 0 0 1\r\nv\r\n", expect_end=b"\r\n") == FAILURE
        assert exchange(sock, b"get sync/k\r\n") == FAILURE  # the error wins over live's hit
        assert exchange(sock, b"set fast/k 0 0 1\r\nv\r\n") == b"STORED\r\n"
        assert exchange(sock, b"set split/k 0 0 1\r\nv\r\n") == b"STORED\r\n"
        assert exchange(sock, b"get split/k\r\n") == b"VALUE split/k 0 1\r\nv\r\nEND\r\n"
        assert exchange(sock, b"get forced/k\r\n") == b"END\r\n"  # _down_ skipped at once
        assert exchange(sock, b"get other\r\n", expect_end=b"\r\n") == FAILURE
        figures = stats(sock, b"proxy")
        assert figures["route_sync_errors"] == "2" and figures["route_fast_errors"] == "0"
        assert figures["backend_marked_bad"] == "2"  # dead after 3 failures, and forced


def test_connect_timeout_when_the_backend_never_accepts():
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    fillers = []
    for _ in range(3):  # fill the accept queue: further handshakes get no answer
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.2)
    probe = socket.socket()
    probe.settimeout(0.3)
    try:
        probe.connect(("127.0.0.1", port))
        pytest.skip("this kernel completes handshakes beyond a full accept queue")
    except socket.timeout:
        pass
    finally:
        probe.close()
    text = config('a={"backends": ["127.0.0.1:%d"], "backend_options": {"connecttimeout": 0.5}}'
                  % port, 'route_direct(child="a")')
    try:
        with start_proxy(text) as proxy:
            sock = proxy.connect()
            started = time.time()
            assert exchange(sock, b"get k\r\n", expect_end=b"\r\n", timeout=5) == FAILURE
            assert 0.4 < time.time() - started < 3.0
    finally:
        for filler in fillers:
            filler.close()
        full.close()


def test_active_request_limit_stops_reading_a_client_until_answers_come():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    text = config('a={"backends": ["127.0.0.1:%d"]}' % port, 'route_direct(child="a")',
                  "active_request_limit=100, backend_readtimeout=0.5, backend_failurelimit=1,"
                  " backend_retrytimeout=30")
    try:
        with start_proxy(text) as proxy:
            sock = proxy.connect(timeout=10)
            sock.sendall(b"get k\r\n" * 600)
            time.sleep(0.3)
            sent = int(stats(proxy.connect(), b"proxy")["backend_127.0.0.1:%d_requests" % port])
            assert 100 <= sent < 200  # the rest waits, unread, in the socket
            # the read timeout fails what was sent, the backend goes down, the rest fails at once
            reply = exchange(sock, b"", expect_end=FAILURE * 600, timeout=10)
            assert reply == FAILURE * 600
    finally:
        silent.close()
