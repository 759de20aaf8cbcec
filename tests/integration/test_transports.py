"""UDP, unix sockets, TLS and connection management, against a real pymcd."""

from __future__ import annotations

import os
import socket
import ssl
import stat
import struct
import subprocess
import time

import pytest
from pymemcache.client.base import Client
from support import HOST, exchange, free_port, start_pymcd, wait_for_port


def udp_request(port: int, request_id: int, payload: bytes, reserved: int = 0,
                sequence: int = 0, total: int = 1, timeout: float = 2.0):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    sock.sendto(struct.pack(">HHHH", request_id, sequence, total, reserved) + payload, (HOST, port))
    frames = []
    try:
        while True:
            frames.append(sock.recv(65536))
            if len(frames) == struct.unpack(">HHHH", frames[0][:8])[2]:
                break
    except socket.timeout:
        pass
    sock.close()
    return frames


@pytest.fixture(scope="module")
def udp_server():
    port = free_port()
    with start_pymcd(["-U", str(port)], port=port) as server:
        yield server


def test_udp_get_set_with_headers(udp_server):
    frames = udp_request(udp_server.port, 7, b"set u 0 0 2\r\nhi\r\n", reserved=256)
    assert frames == [struct.pack(">HHHH", 7, 0, 1, 0) + b"STORED\r\n"]
    frames = udp_request(udp_server.port, 65535, b"get u\r\n")
    assert frames == [struct.pack(">HHHH", 65535, 0, 1, 0) + b"VALUE u 0 2\r\nhi\r\nEND\r\n"]


def test_udp_multi_datagram_reply(udp_server):
    value = b"v" * 1000
    for i in range(4):
        udp_request(udp_server.port, i, b"set big%d 0 0 1000\r\n%s\r\n" % (i, value))
    frames = udp_request(udp_server.port, 42, b"get big0 big1 big2 big3\r\n")
    headers = [struct.unpack(">HHHH", f[:8]) for f in frames]
    assert [h[1] for h in headers] == list(range(len(frames)))
    assert all(h[0] == 42 and h[2] == len(frames) and h[3] == 0 for h in headers)
    assert all(len(f) == 1400 for f in frames[:-1])
    reply = b"".join(f[8:] for f in frames)
    assert reply == b"".join(b"VALUE big%d 0 1000\r\n%s\r\n" % (i, value) for i in range(4)) + b"END\r\n"


def test_udp_bad_frames(udp_server):
    assert udp_request(udp_server.port, 1, b"", timeout=0.5) == []  # header only: dropped
    frames = udp_request(udp_server.port, 3, b"get u\r\n", sequence=1, total=2)
    assert frames == [struct.pack(">HHHH", 3, 0, 1, 0)
                      + b"SERVER_ERROR multi-packet request not supported\r\n"]


def test_unix_socket_mask_and_cleanup(tmp_path):
    path = str(tmp_path / "mc.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)  # a socket file nobody listens on: replaced, as memcached replaces it
    stale.close()
    server = start_pymcd(["-s", path, "-a", "600"], wait=False)
    try:
        deadline = time.time() + 15
        while time.time() < deadline:
            probe = socket.socket(socket.AF_UNIX)
            try:
                probe.connect(path)
                break
            except OSError:
                time.sleep(0.05)
            finally:
                probe.close()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with pytest.raises(OSError):  # -s disables the network
            socket.create_connection((HOST, server.port), timeout=1)
        client = Client(path, connect_timeout=5, timeout=5)
        assert client.set("k", b"v") and client.get("k") == b"v"
        client.close()
    finally:
        server.stop()
    assert not os.path.exists(path)


def test_maxconns_refusal():
    with start_pymcd(["-c", "30"]) as server:
        time.sleep(0.3)  # let the readiness probe's close be seen
        # memcached 1.6.18 at -t 4 with one listener admits 6 clients under -c 30.
        kept = [server.connect() for _ in range(6)]
        for sock in kept:
            assert exchange(sock, b"version\r\n", b"\r\n") == b"VERSION 1.6.18\r\n"
        extra = server.connect()
        assert exchange(extra, b"", b"\r\n") == b"ERROR Too many open connections\r\n"
        assert extra.recv(10) == b""
        stats = exchange(kept[0], b"stats\r\n", b"END\r\n")
        assert b"STAT rejected_connections 1\r\n" in stats
        assert b"STAT max_connections 30\r\n" in stats
        for sock in kept + [extra]:
            sock.close()


def test_idle_timeout_spares_a_client_mid_value():
    with start_pymcd(["-o", "idle_timeout=1"]) as server:
        idle = server.connect()
        busy = server.connect()
        busy.sendall(b"set k 0 0 10\r\nabc")
        time.sleep(3.5)
        idle.settimeout(1)
        assert idle.recv(10) == b""
        busy.sendall(b"defghij\r\n")
        assert exchange(busy, b"", b"\r\n") == b"STORED\r\n"
        assert b"STAT idle_kicks 1\r\n" in exchange(busy, b"stats\r\n", b"END\r\n")


def test_reqs_per_event_fairness():
    """A greedy pipeliner yields every -R requests, so a second client is served meanwhile."""
    with start_pymcd(["-R", "5"]) as server:
        greedy, polite = server.connect(), server.connect()
        greedy.sendall(b"".join(b"set g%d 0 0 1\r\nx\r\n" % i for i in range(20000)))
        assert exchange(polite, b"version\r\n", b"\r\n", timeout=5) == b"VERSION 1.6.18\r\n"
        received = b""
        while received.count(b"STORED\r\n") < 20000:
            received += greedy.recv(65536)
        stats = exchange(polite, b"stats\r\n", b"END\r\n")
        yields = int(stats.split(b"STAT conn_yields ")[1].split(b"\r\n")[0])
        assert yields >= 1000


def test_stats_conns(pymcd_server):
    with pymcd_server.connect() as a, pymcd_server.connect() as b:
        b.sendall(b"set k 0 0 5\r\nab")
        time.sleep(0.2)
        reply = exchange(a, b"stats conns\r\n", b"END\r\n").decode()
        lines = reply.splitlines()
        assert any(l.endswith(":state conn_nread") for l in lines)
        assert any(l.endswith(":state conn_parse_cmd") for l in lines)
        assert any(":listen_addr tcp:127.0.0.1:%d" % pymcd_server.port in l for l in lines)
        assert any(":addr tcp:127.0.0.1:" in l for l in lines)


def test_shutdown_graceful_finishes_reply_in_flight():
    with start_pymcd(["-A", "-I", "8m", "-m", "64"]) as server:
        value = b"z" * (4 * 1024 * 1024)
        setter = server.connect()
        setter.sendall(b"set big 0 0 %d\r\n" % len(value) + value + b"\r\n")
        assert exchange(setter, b"", b"\r\n", timeout=10) == b"STORED\r\n"
        reader = server.connect()
        reader.settimeout(10)
        reader.sendall(b"get big\r\n")
        # Shut down only once the reply has started: most of its 4 MiB is still queued then.
        received = reader.recv(4096)
        assert received.startswith(b"VALUE big")
        setter.sendall(b"shutdown graceful\r\n")
        while True:
            chunk = reader.recv(1 << 20)
            if not chunk:
                break
            received += chunk
        assert received == b"VALUE big 0 %d\r\n" % len(value) + value + b"\r\nEND\r\n"
        assert server.process.wait(timeout=10) == 0


def test_sigterm_exits_zero():
    server = start_pymcd()
    server.stop()
    assert server.process.returncode == 0


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A CA, a server certificate and a client certificate, made with openssl."""
    folder = tmp_path_factory.mktemp("pki")

    def run(*args):
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=pymcd-test-ca")
    for name in ("server", "client"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "%s.key" % name, "-out",
            "%s.csr" % name, "-subj", "/CN=127.0.0.1")
        run("x509", "-req", "-in", "%s.csr" % name, "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "%s.pem" % name, "-days", "2")
    return folder


def tls_args(pki, verify_mode: int = 0):
    return ["-Z", "-o", "ssl_chain_cert=%s,ssl_key=%s,ssl_ca_cert=%s,ssl_verify_mode=%d" % (
        pki / "server.pem", pki / "server.key", pki / "ca.pem", verify_mode)]


def client_context(pki, with_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    context.check_hostname = False
    if with_cert:
        context.load_cert_chain(str(pki / "client.pem"), str(pki / "client.key"))
    return context


def test_tls_with_pymemcache(certificates):
    port = free_port()
    server = start_pymcd(tls_args(certificates), port=port)
    try:
        client = Client((HOST, port), tls_context=client_context(certificates, False),
                        connect_timeout=5, timeout=5)
        assert client.set("t", b"secret") and client.get("t") == b"secret"
        stats = client.stats()
        # As memcached: ssl_new_sessions only with -o ssl_session_cache, no ssl_min_version.
        assert b"ssl_new_sessions" not in stats and b"ssl_min_version" not in stats
        assert stats[b"ssl_handshake_errors"] == 0
        client.close()
    finally:
        server.stop()


def test_tls_requires_client_certificate(certificates):
    port = free_port()
    server = start_pymcd(tls_args(certificates, verify_mode=2), port=port)
    try:
        good = Client((HOST, port), tls_context=client_context(certificates, True),
                      connect_timeout=5, timeout=5)
        assert good.set("t", b"1")
        good.close()
        bad = Client((HOST, port), tls_context=client_context(certificates, False),
                     connect_timeout=5, timeout=5)
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            bad.set("t", b"2")
            bad.get("t")
    finally:
        server.stop()


def test_tls_with_python_binary_memcached_add(certificates):
    """python-binary-memcached's own TLS tests, replayed: its fixture starts the server with -Z
    and ssl_verify_mode=1, and each test makes a fresh client that first deletes its keys.

    Its add returned False in that suite only because the fixture waits 0.1 s after starting
    the server: pymcd listens some 0.5 s after it starts, the client's first connection is
    refused, and the client then answers every request as "server disconnected" (add: False)
    for its 5-second retry delay. Started and listening, pymcd answers as memcached does.
    """
    bmemcached = pytest.importorskip("bmemcached")
    port = free_port()
    # Its fixture's flags, as it gives them.
    server = start_pymcd(["-Z", "-o", "ssl_key=%s" % (certificates / "server.key"),
                          "-o", "ssl_chain_cert=%s" % (certificates / "server.pem"),
                          "-o", "ssl_verify_mode=1"], port=port)

    def fresh_client():
        client = bmemcached.Client("%s:%d" % (HOST, port),
                                   tls_context=client_context(certificates, False))
        for key in ("test_key", "test_key2", "fresh_key"):
            client.delete(key)
        return client

    try:
        client = fresh_client()  # testAddPass
        assert client.add("test_key", "test") is True
        client.disconnect_all()
        client = fresh_client()  # testAddFail
        assert client.add("test_key", "value") is True
        assert client.add("test_key", "test") is False
        client.disconnect_all()
        client = fresh_client()  # testAddCas
        success, cas = client.add("test_key", "value", get_cas=True)
        assert success and cas
        assert client.gets("test_key") == ("value", cas)
        assert client.add("test_key", "value2", get_cas=True) == (False, None)
        assert client.cas("test_key", "value3", cas)
        assert client.get("test_key") == "value3"
        assert client.add("test_key2", "value") is True
        client.disconnect_all()
    finally:
        server.stop()


def test_refresh_certs_and_notls_listener(certificates):
    tls_port, plain_port = free_port(), free_port()
    args = tls_args(certificates) + ["-l", "notls:127.0.0.1:%d" % plain_port]
    server = start_pymcd(args, port=tls_port)
    try:
        wait_for_port(plain_port, process=server.process)  # listeners open one by one
        with socket.create_connection((HOST, plain_port), timeout=5) as plain:
            assert exchange(plain, b"refresh_certs\r\n", b"\r\n") == b"OK\r\n"
        raw = socket.create_connection((HOST, tls_port), timeout=5)
        wrapped = client_context(certificates, False).wrap_socket(raw)
        assert exchange(wrapped, b"version\r\n", b"\r\n") == b"VERSION 1.6.18\r\n"
        wrapped.close()
    finally:
        server.stop()
