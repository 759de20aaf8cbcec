"""Backpressure: a client that pipelines requests for a large value and never reads its replies.

Without it the server queues every reply (issue 12: 2.8 GiB of RSS in 8 seconds); with it the
connection stops being read once a batch of replies (``OUTPUT_BOUND``) cannot be sent, so the
server's RSS
stays bounded and every other client keeps being answered at once. The stall lasts
``PYMCD_STALL_SECONDS`` (4 s by default; the figures in the issue are for 8).
"""

from __future__ import annotations

import os
import socket
import ssl
import statistics
import struct
import threading
import time
from typing import Optional

import pytest

from integration.test_transports import certificates, client_context, tls_args  # noqa: F401
from support import HOST, exchange, start_pymcd

STALL_SECONDS = float(os.environ.get("PYMCD_STALL_SECONDS", "4"))
VALUE_SIZE = 500_000
RSS_LIMIT = 100 * 1024 * 1024
VERSION_LATENCY_LIMIT = 0.010

BINARY_GETK = struct.pack(">BBHBBHIIQ", 0x80, 0x0C, 3, 0, 0, 0, 3, 0, 0) + b"big"
REQUESTS = {
    "get": b"get big\r\n",
    "mg": b"mg big v\r\n",
    "binary-getk": BINARY_GETK,
}


def rss_bytes(pid: int) -> int:
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS for %d" % pid)


def stall(sock: socket.socket, request: bytes, deadline: float) -> None:
    """Send pipelined requests until the server stops reading, then hold the connection open.

    A send that blocks for half a second means the server's reads are paused; sending stops
    there for good (a partly sent request would desynchronise the stream).
    """
    sock.settimeout(0.5)
    chunk = request * (256 * 1024 // len(request))
    try:
        while time.time() < deadline:
            sock.sendall(chunk)
    except (socket.timeout, ssl.SSLError, OSError):
        pass
    while time.time() < deadline:
        time.sleep(0.05)


def stalled_reader_figures(server, request: Optional[bytes], connect) -> dict:
    """Peak RSS and `version` latencies of another client while one client stalls."""
    with connect() as setup:
        value = b"x" * VALUE_SIZE
        assert exchange(setup, b"set big 0 0 %d\r\n%s\r\n" % (VALUE_SIZE, value),
                        expect_end=b"\r\n") == b"STORED\r\n"
    idle = rss_bytes(server.process.pid)
    deadline = time.time() + STALL_SECONDS
    # No request: the probe alone, the control for what the machine itself adds.
    if request is not None:
        stalled = connect()
        sender = threading.Thread(target=stall, args=(stalled, request, deadline), daemon=True)
        sender.start()
    peak = 0
    latencies = []
    began = time.perf_counter()
    with connect() as probe:
        probe.settimeout(5)
        while time.time() < deadline:
            peak = max(peak, rss_bytes(server.process.pid))
            started = time.perf_counter()
            probe.sendall(b"version\r\n")
            reply = b""
            while not reply.endswith(b"\r\n"):
                reply += probe.recv(100)
            latencies.append((time.perf_counter() - started, started - began))
            assert reply.startswith(b"VERSION ")
            time.sleep(0.02)
    if request is not None:
        sender.join()
        stalled.close()
    latencies.sort()
    slowest, slowest_at = latencies[-1]
    latencies = [latency for latency, _ in latencies]
    return {"peak_rss": peak, "stall_cost": peak - idle, "p50": statistics.median(latencies),
            "p90": latencies[int(len(latencies) * 0.9)],
            "p99": latencies[int(len(latencies) * 0.99)], "max": slowest,
            # When the slowest probe went out, in seconds from the stall's start.
            "max_at": slowest_at, "probes": len(latencies),
            "over_limit": sum(latency >= VERSION_LATENCY_LIMIT for latency in latencies)}


def describe(figures: dict) -> str:
    return ("peak RSS %.1f MiB (stall %+.1f), version p50 %.2f ms p90 %.2f ms p99 %.2f ms "
            "max %.2f ms at %.1f s" % (
                figures["peak_rss"] / 2**20, figures["stall_cost"] / 2**20, figures["p50"] * 1e3,
                figures["p90"] * 1e3, figures["p99"] * 1e3, figures["max"] * 1e3,
                figures["max_at"]))


def tls_connector(server, certificates):  # noqa: F811
    """Connections to a ``-Z`` server, trusting the test CA."""
    context = client_context(certificates, False)

    def connect():
        raw = socket.create_connection(server.address, timeout=5)
        return context.wrap_socket(raw, server_hostname=HOST)

    return connect


def check(figures: dict) -> None:
    print("stalled reader:", describe(figures))
    assert figures["peak_rss"] < RSS_LIMIT
    # The machine this runs on is shared and noisy: the 90th percentile carries the claim.
    assert figures["p90"] < VERSION_LATENCY_LIMIT


@pytest.mark.parametrize("kind", sorted(REQUESTS))
def test_stalled_reader_costs_bounded_memory(kind):
    with start_pymcd() as server:
        check(stalled_reader_figures(server, REQUESTS[kind], server.connect))
        # The server is still whole: the stalled connection's requests stopped, nothing else.
        with server.connect() as after:
            assert exchange(after, b"mg big s\r\n", expect_end=b"\r\n") == \
                b"HD s%d\r\n" % VALUE_SIZE


def test_stalled_reader_over_tls(certificates):  # noqa: F811
    with start_pymcd(tls_args(certificates)) as server:
        check(stalled_reader_figures(server, REQUESTS["get"],
                                     tls_connector(server, certificates)))


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_slow_reader_gets_every_reply_in_order(transport, certificates):  # noqa: F811
    """Backpressure pauses a connection, it never drops or reorders its replies (over TLS,
    where replies are also handed over 64 KiB a reactor turn)."""
    with start_pymcd(tls_args(certificates) if transport == "tls" else []) as server:
        connect = tls_connector(server, certificates) if transport == "tls" else server.connect
        with connect() as setup:
            for number in range(4):
                value = bytes([65 + number]) * VALUE_SIZE
                exchange(setup, b"set k%d 0 0 %d\r\n%s\r\n" % (number, VALUE_SIZE, value),
                         expect_end=b"\r\n")
        with connect() as slow:
            slow.settimeout(10)
            requests = b"".join(b"get k%d\r\n" % (n % 4) for n in range(200))
            sender = threading.Thread(target=slow.sendall, args=(requests,), daemon=True)
            sender.start()
            time.sleep(1.0)  # let the server pause on this connection
            expected = b"".join(
                b"VALUE k%d 0 %d\r\n%s\r\nEND\r\n" % (n % 4, VALUE_SIZE,
                                                     bytes([65 + n % 4]) * VALUE_SIZE)
                for n in range(200))
            received = bytearray()
            while len(received) < len(expected):
                chunk = slow.recv(1 << 20)
                assert chunk
                received += chunk
            sender.join()
            assert bytes(received) == expected


def test_tls_closing_request_after_big_replies_keeps_them(certificates):  # noqa: F811
    """``quit`` after pipelined gets over TLS: every reply is handed over before the
    connection closes, also those still waiting for a later reactor turn when ``quit`` ran
    (200 KB values: the third get and the quit share a batch)."""
    with start_pymcd(tls_args(certificates)) as server:
        connect = tls_connector(server, certificates)
        value = b"q" * 200_000
        with connect() as setup:
            exchange(setup, b"set big 0 0 %d\r\n%s\r\n" % (len(value), value),
                     expect_end=b"\r\n")
        with connect() as client:
            client.settimeout(10)
            client.sendall(b"get big\r\n" * 3 + b"quit\r\n")
            received = bytearray()
            while True:
                chunk = client.recv(1 << 20)
                if not chunk:
                    break
                received += chunk
        assert bytes(received) == b"VALUE big 0 %d\r\n%s\r\nEND\r\n" % (len(value), value) * 3
