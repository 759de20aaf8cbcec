"""Stopping under load: every way of stopping lets each client read whole replies, then EOF.

Clients pipeline batches of gets (of a 200 KB value and a small one) and sets while the server
is told to stop; each keeps reading until the server closes, and what it read must parse as
whole replies. The server must stop accepting at once and exit 0 in bounded time, even when
a client never reads (it is cut off after the drain timeout).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from typing import List, Optional

import pytest

from support import HOST, ServerProcess, exchange, free_port, start_pymcd

BIG = b"b" * 200_000
BATCH = b"get big\r\nget small\r\nset s 0 0 5\r\nhello\r\nget big small\r\n"
REPLIES_PER_SEND = 16  # BATCH * 4: four replies each
DRAIN_TIMEOUT = 5.0


def whole_replies(data: bytes) -> Optional[int]:
    """How many replies ``data`` holds, or None if it ends inside one."""
    count = 0
    pos = 0
    while pos < len(data):
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return None
        line = data[pos:eol]
        pos = eol + 2
        if line.startswith(b"VALUE "):
            length = int(line.split()[3])
            if len(data) < pos + length + 2 or data[pos + length:pos + length + 2] != b"\r\n":
                return None
            pos += length + 2
            continue  # the END line closes the reply
        if line not in (b"END", b"STORED"):
            raise AssertionError("unexpected reply line %r" % line[:60])
        count += 1
    return count


class LoadClient(threading.Thread):
    """Sends batches and reads their replies until the server closes the connection."""

    def __init__(self, server) -> None:
        super().__init__(daemon=True)
        self.sock = server.connect(timeout=15)
        self.received = bytearray()
        self.batches = 0
        self.error: Optional[str] = None

    def run(self) -> None:
        sock = self.sock
        try:
            while True:
                try:
                    sock.sendall(BATCH * 4)
                except OSError:
                    pass  # the server stopped reading: keep reading what it owes
                batch = bytearray()
                while whole_replies(bytes(batch)) != REPLIES_PER_SEND:
                    chunk = sock.recv(1 << 20)
                    if not chunk:
                        self.received += batch
                        return
                    batch += chunk
                self.received += batch
                self.batches += 1
        except OSError as error:
            self.error = repr(error)
        finally:
            sock.close()


def stop_by(server, how: str) -> None:
    if how == "shutdown":
        with server.connect() as sock:
            sock.sendall(b"shutdown\r\n")
    else:
        server.process.send_signal(getattr(signal, how))


def start_twistd(args) -> ServerProcess:
    port = free_port()
    twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
    return ServerProcess([twistd, "--nodaemon", "--pidfile", "", "pymcd", "-p", str(port), "-U", "0", "-l", HOST] + args, port)


@pytest.mark.parametrize("how, start", [
    ("SIGTERM", start_pymcd), ("SIGINT", start_pymcd), ("SIGUSR1", start_pymcd),
    ("shutdown", start_pymcd), ("SIGTERM", start_twistd),
], ids=["SIGTERM", "SIGINT", "SIGUSR1", "shutdown", "twistd-SIGTERM"])
def test_stop_under_load_leaves_no_half_reply(how, start):
    server = start(["-A"])
    with server.connect() as setup:
        exchange(setup, b"set big 0 0 %d\r\n%s\r\nset small 0 0 1\r\nx\r\n" % (len(BIG), BIG),
                 expect_end=b"STORED\r\nSTORED\r\n")
    clients: List[LoadClient] = [LoadClient(server) for _ in range(8)]
    for client in clients:
        client.start()
    time.sleep(1.0)
    started = time.time()
    stop_by(server, how)
    # twistd re-raises the signal that stopped it once the reactor is done (Twisted's
    # convention, so that supervisors see why it ended); the pymcd script exits 0 as memcached.
    expected = -signal.SIGTERM if start is start_twistd else 0
    assert server.process.wait(timeout=DRAIN_TIMEOUT + 5) == expected
    elapsed = time.time() - started
    for client in clients:
        client.join(timeout=10)
        assert not client.is_alive()
        assert client.error is None, client.error
        assert client.batches > 0
        assert whole_replies(bytes(client.received)) is not None
    # Every client read and closed, so nobody waited for the drain timeout.
    assert elapsed < DRAIN_TIMEOUT
    _, err = server.stop()
    assert b"Traceback" not in err


def test_stop_refuses_new_clients_and_cuts_off_a_client_that_never_reads():
    server = start_pymcd()
    with server.connect() as setup:
        exchange(setup, b"set big 0 0 %d\r\n%s\r\n" % (len(BIG), BIG), expect_end=b"\r\n")
    stalled = server.connect()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    # 2,000 gets fit the socket buffers unread; their 400 MB of replies do not, so the server
    # holds a batch of them, unsent, when it is told to stop.
    stalled.sendall(b"get big\r\n" * 2000)
    time.sleep(1.0)
    started = time.time()
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(server.address, timeout=1)
    assert server.process.wait(timeout=DRAIN_TIMEOUT + 5) == 0
    assert DRAIN_TIMEOUT - 1 < time.time() - started < DRAIN_TIMEOUT + 3
    stalled.close()


def test_a_sigterm_as_soon_as_the_port_answers_is_a_graceful_stop():
    """A supervisor may signal the moment the port answers, before the reactor has put in
    its own SIGTERM handler; that too must be a clean stop, not a kill by the signal."""
    for _ in range(5):
        server = start_pymcd(wait=False)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, server.port), 0.05).close()
                break
            except OSError:
                time.sleep(0.002)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(10) == 0
