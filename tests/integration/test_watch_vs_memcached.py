"""The same operations under ``watch fetchers mutations connevents`` on pymcd and on Debian's
memcached 1.6.18: the event lines must match once the values that cannot (timestamps, the
watcher's first gid, fds and client ports) are normalised."""

from __future__ import annotations

import re
import socket
import struct
import time
from typing import List

import pytest

from support import exchange, have_memcached, start_memcached, start_pymcd

from pymcd.protocol.binary import BinaryRequest, Opcode, pack_request

pytestmark = pytest.mark.skipif(not have_memcached(), reason="Debian's memcached is not installed")

OPERATIONS = [
    b"set foo 5 0 3\r\nbar\r\n", b"get foo\r\n", b"get missing\r\n", b"gets foo\r\n",
    b"touch foo 0\r\n", b"incr foo 1\r\n", b"set n 0 0 1\r\n1\r\n", b"incr n 5\r\n",
    b"decr n 1\r\n", b"delete n\r\n", b"delete n\r\n", b"add foo 0 0 1\r\nx\r\n",
    b"replace nope 0 0 1\r\nx\r\n", b"append foo 0 0 1\r\nx\r\n", b"prepend foo 0 0 1\r\nx\r\n",
    b"cas foo 0 0 1 999\r\nx\r\n", b"gat 0 foo\r\n", b"mg foo v\r\n", b"ms mk 2\r\nhi\r\n",
    b"md mk\r\n", b"ma n\r\n", b"set sp%ace 0 0 1\r\nx\r\n", b"mg Zm9vIGJhcg== b v\r\n",
    b"ms Zm9vIGJhcg== 2 b\r\nhi\r\n", b"set big 0 0 300\r\n" + b"b" * 300 + b"\r\n",
    # One read, so that no background LRU work can reclaim the flushed item before the get.
    b"get big\r\n", b"flush_all\r\nget big\r\n",
]



def binary(opcode: int, key: bytes = b"", extras: bytes = b"", value: bytes = b"") -> bytes:
    """A binary request followed by a NOOP, whose answer marks the end of the replies."""
    return pack_request(BinaryRequest(opcode, extras, key, value)) + pack_request(
        BinaryRequest(Opcode.NOOP))


FLAGS_TTL = struct.pack(">II", 3, 0)
BINARY_OPERATIONS = [
    binary(Opcode.SET, b"bk", FLAGS_TTL, b"v1"), binary(Opcode.GET, b"bk"),
    binary(Opcode.GET, b"nope"), binary(Opcode.GETK, b"bk"), binary(Opcode.GETQ, b"nope"),
    binary(Opcode.ADD, b"bk", FLAGS_TTL, b"x"), binary(Opcode.APPEND, b"bk", value=b"2"),
    binary(Opcode.TOUCH, b"bk", struct.pack(">I", 0)), binary(Opcode.GAT, b"bk", struct.pack(">I", 0)),
    binary(Opcode.INCREMENT, b"bn", struct.pack(">QQI", 1, 5, 0)),
    binary(Opcode.DECREMENT, b"bn", struct.pack(">QQI", 1, 5, 0)),
    binary(Opcode.DELETE, b"bn"), binary(Opcode.DELETE, b"bn"),
    binary(Opcode.REPLACE, b"nope", FLAGS_TTL, b"x"),
]
NOOP_REPLY_START = b"\x81\x0a"


def watched_lines(server, operations: List[bytes] = OPERATIONS) -> List[bytes]:
    watcher = server.connect()
    assert exchange(watcher, b"watch fetchers mutations connevents\r\n",
                    expect_end=b"\r\n", timeout=5) == b"OK\r\n"
    client = server.connect()
    for operation in operations:
        if operation[:1] == b"\x80":
            reply = exchange(client, operation, timeout=5, settle=0.05)
            while reply[-24:-22] != NOOP_REPLY_START:
                reply += exchange(client, b"", timeout=5, settle=0.05)
        else:
            exchange(client, operation, expect_end=b"\r\n")
    client.close()
    received = b""
    watcher.settimeout(0.5)
    deadline = time.time() + 10
    while b"conn_close" not in received and time.time() < deadline:
        try:
            received += watcher.recv(1 << 16)
        except socket.timeout:
            pass
    watcher.close()
    return normalise(received.split(b"\n")[:-1])


def normalise(lines: List[bytes]) -> List[bytes]:
    """gid relative to the first line; no ts, cfd or rport."""
    first_gid = int(re.search(rb"gid=(\d+)", lines[0]).group(1))
    result = []
    for line in lines:
        gid = int(re.search(rb"gid=(\d+)", line).group(1))
        line = re.sub(rb"^ts=\S+ gid=\d+ ", b"+%d " % (gid - first_gid), line)
        result.append(re.sub(rb" (cfd|rport)=\d+", b" \\1=N", line))
    return result


def test_event_lines_match_memcached():
    with start_pymcd(["-m", "64"]) as pymcd, start_memcached(["-m", "64"]) as memcached:
        ours, theirs = watched_lines(pymcd), watched_lines(memcached)
    assert len(ours) > len(OPERATIONS)
    assert ours == theirs


def test_binary_event_lines_match_memcached():
    with start_pymcd(["-m", "64"]) as pymcd, start_memcached(["-m", "64"]) as memcached:
        ours = watched_lines(pymcd, BINARY_OPERATIONS)
        theirs = watched_lines(memcached, BINARY_OPERATIONS)
    assert any(b"type=item_store key=bk status=stored cmd=set" in line for line in ours)
    assert any(b"type=item_get key=nope status=not_found" in line for line in ours)
    assert ours == theirs


# How a connection ends, and who ends it: the conn_close reason must be memcached's.
ENDINGS = [
    b"quit\r\n",                                   # the client asks: normal
    b"GET / HTTP/1.1\r\n",                         # the server hangs up on HTTP: error
    b"x" * 3000,                                   # a line too long: error
    b"version\r\n",                                # the client closes cleanly: normal
    b"\x81" + b"\x00" * 23,                        # a binary header with a bad magic: error
    pack_request(BinaryRequest(Opcode.QUIT)),      # binary QUIT: normal
]


def close_reasons(server) -> List[bytes]:
    watcher = server.connect()
    assert exchange(watcher, b"watch connevents\r\n", expect_end=b"\r\n", timeout=5) == b"OK\r\n"
    for ending in ENDINGS:
        client = server.connect()
        exchange(client, ending, timeout=1, settle=0.2)  # reads whatever the server says
        client.close()
        time.sleep(0.1)
    received = b""
    watcher.settimeout(0.5)
    deadline = time.time() + 10
    while received.count(b"conn_close") < len(ENDINGS) and time.time() < deadline:
        try:
            received += watcher.recv(1 << 16)
        except socket.timeout:
            pass
    watcher.close()
    return re.findall(rb"type=conn_close .* reason=(\w+)", received)


def test_close_reasons_match_memcached():
    with start_pymcd() as pymcd, start_memcached() as memcached:
        ours, theirs = close_reasons(pymcd), close_reasons(memcached)
    assert set(theirs) == {b"normal", b"error"}
    assert ours == theirs
