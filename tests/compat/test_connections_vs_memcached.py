"""What memcached says about its sockets, side by side with pymcd: ``stats conns`` (listeners,
the UDP socket, clients in their states) and the port file of ``MEMCACHED_PORT_FILENAME``.

memcached numbers connections by fd and pymcd by a counter, and ports are the kernel's: both
are renumbered by first appearance before comparing.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from typing import Callable, List

import pytest
from support import HOST, exchange, free_port, have_memcached, start_memcached, start_pymcd

pytestmark = pytest.mark.skipif(not have_memcached(), reason="Debian's memcached is not installed")


def renumber(text: bytes, pattern: bytes) -> bytes:
    """Replace each distinct match of ``pattern``'s group 1 by #1, #2... in order of appearance."""
    numbering = {}

    def number(match) -> bytes:
        value = numbering.setdefault(match.group(1), b"#%d" % (len(numbering) + 1))
        return match.group(0).replace(match.group(1), value)

    return re.sub(pattern, number, text)


def conns_view(reply: bytes) -> bytes:
    reply = renumber(reply, rb"(?m)^STAT (\d+):")
    reply = renumber(reply, rb":(\d{4,5})\r")
    return re.sub(rb"secs_since_last_cmd \d+", b"secs_since_last_cmd S", reply)


def conns_over_tcp(start: Callable) -> bytes:
    udp_port = free_port()
    with start(["-U", str(udp_port), "-t", "1"]) as server:
        with server.connect() as sending, server.connect() as asking:
            sending.sendall(b"set foo 0 0 6\r\n")  # left waiting for its data: conn_nread
            time.sleep(0.3)
            return conns_view(exchange(asking, b"stats conns\r\n", expect_end=b"END\r\n"))


def test_stats_conns_over_tcp_and_udp_match_memcached():
    ours, theirs = conns_over_tcp(start_pymcd), conns_over_tcp(start_memcached)
    assert b"state conn_listening" in theirs and b"UDP UDP" in theirs
    assert ours == theirs


def wait_for_unix(path: str, timeout: float = 15.0) -> socket.socket:
    deadline = time.time() + timeout
    while True:
        try:
            sock = socket.socket(socket.AF_UNIX)
            sock.settimeout(5)
            sock.connect(path)
            return sock
        except OSError:
            sock.close()
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def conns_over_unix(start: Callable, path: str) -> bytes:
    with start(["-s", path], wait=False):
        with wait_for_unix(path) as sending, wait_for_unix(path) as asking:
            sending.sendall(b"set foo 0 0 6\r\n")
            time.sleep(0.3)
            reply = exchange(asking, b"stats conns\r\n", expect_end=b"END\r\n")
    return conns_view(reply.replace(path.encode(), b"PATH"))


def test_stats_conns_over_a_unix_socket_match_memcached(tmp_path):
    ours = conns_over_unix(start_pymcd, str(tmp_path / "pymcd.sock"))
    theirs = conns_over_unix(start_memcached, str(tmp_path / "memcached.sock"))
    assert b"addr unix:PATH" in theirs and b"addr ?:<AF 0>" in theirs
    assert ours == theirs


def port_file(start: Callable, path: str, args: List[str]) -> bytes:
    with start(args, env={"MEMCACHED_PORT_FILENAME": path}, wait=False) as server:
        deadline = time.time() + 15
        while not os.path.exists(path):
            assert time.time() < deadline and server.process.poll() is None
            time.sleep(0.05)
        with open(path, "rb") as written:
            contents = written.read()
        ports = re.findall(rb": (\d+)", contents)
        with socket.create_connection((HOST, int(ports[0])), timeout=5) as sock:
            assert exchange(sock, b"version\r\n", expect_end=b"\r\n").startswith(b"VERSION ")
    return renumber(contents, rb": (\d+)")


@pytest.mark.parametrize("args", [["-p", "-1", "-U", "-1"], ["-p", "-1", "-U", "0"],
                                  ["-U", "-1"]], ids=["ephemeral_both", "tcp_only", "udp_moves_tcp"])
def test_port_file_matches_memcached(tmp_path, args):
    ours = port_file(start_pymcd, str(tmp_path / "pymcd.ports"), args)
    theirs = port_file(start_memcached, str(tmp_path / "memcached.ports"), args)
    assert theirs.startswith(b"TCP INET: #1\n")
    assert ours == theirs


def server_socket_timers(start: Callable) -> List[str]:
    """The kernel's timers on the server's side of two TCP connections (``ss -o``): memcached's
    sockets carry SO_KEEPALIVE, so an idle one shows its keepalive timer."""
    with start() as server:
        with server.connect() as first, server.connect() as second:
            for sock in (first, second):
                assert exchange(sock, b"version\r\n", expect_end=b"\r\n").startswith(b"VERSION")
            listing = subprocess.run(
                ["ss", "-tnoH", "state", "established", "( sport = :%d )" % server.address[1]],
                capture_output=True, text=True, check=True).stdout
    return sorted(re.sub(r"timer:\((\w+),.*", r"\1", line.split()[-1])
                  for line in listing.splitlines())


@pytest.mark.skipif(shutil.which("ss") is None, reason="iproute2's ss is not installed")
def test_tcp_sockets_keep_alive_as_memcached():
    theirs = server_socket_timers(start_memcached)
    assert theirs == ["keepalive", "keepalive"]
    assert server_socket_timers(start_pymcd) == theirs
