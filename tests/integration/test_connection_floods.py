"""Connection floods: -c, thousands of idle clients, slowloris, running out of descriptors."""

from __future__ import annotations

import os
import resource
import socket
import time

import pytest

from support import exchange, free_port, have_memcached, start_memcached, start_pymcd, stats

IDLE_CONNECTIONS = 9000
BYTES_PER_IDLE_CONNECTION = 4096


def rss(pid: int) -> int:
    with open("/proc/%d/status" % pid) as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


def cpu_seconds(pid: int) -> float:
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def many_descriptors():
    """Let this process hold the flood's sockets (as root the hard limit can be raised)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = IDLE_CONNECTIONS + 1000
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), max(hard, wanted)))
    except (ValueError, OSError):
        pytest.skip("cannot raise RLIMIT_NOFILE to %d" % wanted)
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.skipif(not have_memcached(), reason="needs Debian's memcached")
def test_over_the_limit_like_memcached():
    """-c 30: memcached keeps descriptors for itself, so the seventh client is refused, in its
    words, and the others are still served; the same with a UDP socket (one per thread)."""
    def attempt(server, admitted):
        time.sleep(0.3)  # let the readiness probe's close be seen
        kept = [server.connect() for _ in range(admitted)]
        for sock in kept:
            exchange(sock, b"version\r\n", expect_end=b"\r\n")
        extra = server.connect()
        refused = exchange(extra, b"", expect_end=b"\r\n")
        still_open = exchange(extra, b"version\r\n", expect_end=b"\r\n") if refused == b"" else b""
        served = exchange(kept[0], b"version\r\n", expect_end=b"\r\n").startswith(b"VERSION")
        for sock in kept + [extra]:
            sock.close()
        return refused, still_open, served

    for admitted, udp in ((6, False), (12, True)):
        port = free_port()
        args = ["-c", "40" if udp else "30"]
        reference = start_memcached(args + (["-U", str(port)] if udp else []), port=port)
        server = start_pymcd(args + (["-U", str(port + 1)] if udp else []),
                             port=port + 1 if udp else None)
        with reference, server:
            ours = attempt(server, admitted)
            assert ours == attempt(reference, admitted)
            assert ours[0] == b"ERROR Too many open connections\r\n"
            with server.connect() as sock:
                assert int(stats(sock)["rejected_connections"]) == 1


def test_idle_connections_cost_bounded_memory(many_descriptors):
    with start_pymcd(["-c", str(IDLE_CONNECTIONS + 100)]) as server:
        with server.connect() as probe:
            exchange(probe, b"version\r\n", expect_end=b"\r\n")
            time.sleep(0.5)
            before = rss(server.process.pid)
            flood = []
            try:
                for _ in range(IDLE_CONNECTIONS):
                    flood.append(socket.create_connection(server.address, timeout=10))
                deadline = time.time() + 30
                while int(stats(probe)["curr_connections"]) < IDLE_CONNECTIONS + 1:
                    assert time.time() < deadline
                    time.sleep(0.2)
                per_connection = (rss(server.process.pid) - before) / IDLE_CONNECTIONS
                started = time.perf_counter()
                assert exchange(probe, b"version\r\n", expect_end=b"\r\n").startswith(b"VERSION")
                latency = time.perf_counter() - started
            finally:
                for sock in flood:
                    sock.close()
        print("%d idle connections: %.0f bytes each, version in %.2f ms"
              % (IDLE_CONNECTIONS, per_connection, latency * 1e3))
        assert per_connection < BYTES_PER_IDLE_CONNECTION
        assert latency < 0.05


def trickle_until_closed(server, seconds: float) -> float:
    """Send a get line a byte every 0.3 s; how long until the server hangs up."""
    sock = server.connect()
    started = time.time()
    try:
        for byte in b"get " + b"k" * 1000:
            if time.time() - started > seconds:
                return float("inf")
            sock.sendall(bytes([byte]))
            sock.settimeout(0.3)
            try:
                if sock.recv(100) == b"":
                    return time.time() - started
            except socket.timeout:
                pass
    except (BrokenPipeError, ConnectionResetError):
        return time.time() - started
    finally:
        sock.close()
    return float("inf")


@pytest.mark.skipif(not have_memcached(), reason="needs Debian's memcached")
def test_slowloris_is_closed_by_idle_timeout():
    """A client that trickles a line never issues a command: idle_timeout closes it, as in
    memcached (whose idle clock also starts at the last command), and others are served."""
    args = ["-o", "idle_timeout=2"]
    with start_memcached(args) as reference, start_pymcd(args) as server:
        ours, theirs = trickle_until_closed(server, 8), trickle_until_closed(reference, 8)
        assert 2 <= ours <= 5 and 2 <= theirs <= 5, (ours, theirs)
        with server.connect() as sock:
            assert int(stats(sock)["idle_kicks"]) == 1
        # A client that keeps sending commands is never kicked.
        with server.connect() as busy:
            for _ in range(12):
                assert exchange(busy, b"version\r\n", expect_end=b"\r\n").startswith(b"VERSION")
                time.sleep(0.3)


def test_out_of_descriptors_does_not_spin():
    """EMFILE: Twisted releases a spare descriptor to accept and close the client at once
    (memcached leaves it in the backlog); the server neither spins nor stops serving."""
    with start_pymcd(["-c", "10000"]) as server:
        with server.connect() as probe:
            exchange(probe, b"version\r\n", expect_end=b"\r\n")
            resource.prlimit(server.process.pid, resource.RLIMIT_NOFILE, (64, 64))
            flood = []
            for _ in range(150):
                flood.append(socket.create_connection(server.address, timeout=5))
            time.sleep(0.5)
            spent = cpu_seconds(server.process.pid)
            time.sleep(2)
            assert cpu_seconds(server.process.pid) - spent < 0.5
            served = 0
            for sock in flood:
                try:
                    sock.sendall(b"version\r\n")
                    served += sock.recv(100).startswith(b"VERSION")
                except OSError:
                    pass
                sock.close()
            assert 10 < served < 64
            assert exchange(probe, b"version\r\n", expect_end=b"\r\n").startswith(b"VERSION")
        time.sleep(0.5)
        with server.connect() as later:
            assert exchange(later, b"version\r\n", expect_end=b"\r\n").startswith(b"VERSION")
        _, err = server.stop()
        assert b"Traceback" not in err
