"""Authentication cannot be bypassed: every command of every protocol, sent unauthenticated,
leaves the store as it was.

An authenticated client stores a key first; then each request is sent on a fresh
unauthenticated connection with a well-formed shape (so that only authentication can refuse
it), and afterwards the key, its flags and TTL, and every store counter must be unchanged, and
no reply may carry the key's value. UDP has no authentication at all, so with -S or -Y the
server refuses to start with it (as memcached does).
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Dict, List

import bmemcached
import pytest

from support import exchange, start_pymcd, stats

HEADER = struct.Struct(">BBHBBHIIQ")
KEY = b"secret"
VALUE = b"s3cr3t-value"
COUNTERS = ("cmd_get", "cmd_set", "cmd_flush", "cmd_touch", "get_hits", "get_misses",
            "get_expired", "delete_hits", "delete_misses", "incr_hits", "incr_misses",
            "decr_hits", "decr_misses", "cas_hits", "cas_misses", "cas_badval", "touch_hits",
            "touch_misses", "curr_items", "total_items", "bytes")


def binary(opcode: int, key: bytes = b"", extras: bytes = b"", value: bytes = b"") -> bytes:
    return HEADER.pack(0x80, opcode, len(key), len(extras), 0, 0,
                       len(key) + len(extras) + len(value), 0, 0) + extras + key + value


STORE_EXTRAS = struct.pack(">II", 0, 0)
DELTA_EXTRAS = struct.pack(">QQI", 1, 0, 0)
EXPIRY = struct.pack(">I", 1)
# Every opcode memcached 1.6.18 serves but SASL's, shaped as a real request for KEY.
BINARY_REQUESTS: List[bytes] = [
    *(binary(op, KEY) for op in (0x00, 0x09, 0x0C, 0x0D, 0x04, 0x14)),  # gets, deletes
    *(binary(op, KEY, STORE_EXTRAS, b"evil") for op in (0x01, 0x02, 0x03, 0x11, 0x12, 0x13)),
    *(binary(op, KEY, b"", b"evil") for op in (0x0E, 0x0F, 0x19, 0x1A)),  # append, prepend
    *(binary(op, KEY, DELTA_EXTRAS) for op in (0x05, 0x06, 0x15, 0x16)),  # incr, decr
    *(binary(op, KEY, EXPIRY) for op in (0x1C, 0x1D, 0x1E, 0x23, 0x24)),  # touch, gat
    binary(0x08), binary(0x18), binary(0x08, extras=EXPIRY),  # flush
    binary(0x10), binary(0x10, b"items"), binary(0x1B, extras=struct.pack(">I", 1)),
    binary(0x0A), binary(0x0B), binary(0x07), binary(0x17),
]
TEXT_REQUESTS: List[bytes] = [
    b"get secret\r\n", b"gets secret\r\n", b"bget secret\r\n", b"gat 1 secret\r\n",
    b"gats 1 secret\r\n", b"set secret 0 0 4\r\nevil\r\n", b"add other 0 0 4\r\nevil\r\n",
    b"replace secret 0 0 4\r\nevil\r\n", b"append secret 0 0 4\r\nevil\r\n",
    b"prepend secret 0 0 4\r\nevil\r\n", b"cas secret 0 0 4 1\r\nevil\r\n",
    b"incr secret 1\r\n", b"decr secret 1\r\n", b"delete secret\r\n", b"touch secret 1\r\n",
    b"flush_all\r\n", b"flush_all 0\r\n", b"mg secret v k f t\r\n", b"ms secret 4\r\nevil\r\n",
    b"md secret\r\n", b"ma secret\r\n", b"mn\r\n", b"me secret\r\n",
    b"lru_crawler metadump all\r\n", b"watch fetchers mutations\r\n", b"stats items\r\n",
    b"stats cachedump 1 0\r\n", b"verbosity 1\r\n", b"cache_memlimit 1\r\n",
    b"slabs reassign 1 2\r\n", b"lru_crawler crawl all\r\n",
]


def counters(sock) -> Dict[str, str]:
    found = stats(sock)
    return {name: found.get(name) for name in COUNTERS}


def unauthenticated_replies(server, requests: List[bytes]) -> List[bytes]:
    """Each request on a connection of its own, and whatever comes back within a moment."""
    replies = []
    for request in requests:
        with server.connect() as sock:
            replies.append(exchange(sock, request, settle=0.1))
    return replies


@pytest.fixture(scope="module")
def passwords(tmp_path_factory):
    path = tmp_path_factory.mktemp("auth") / "users"
    path.write_text("user:pass\n")
    return path


def test_sasl_cannot_be_bypassed(passwords):
    with start_pymcd(["-S"], env={"MEMCACHED_SASL_PWDB": str(passwords)}) as server:
        client = bmemcached.Client(["%s:%d" % server.address], "user", "pass")
        assert client.set(KEY.decode(), VALUE, time=100)
        before = client.stats()["%s:%d" % server.address]
        replies = unauthenticated_replies(server, BINARY_REQUESTS + TEXT_REQUESTS)
        time.sleep(1.5)  # a touch or flush to 1 s would have taken effect by now
        after = client.stats()["%s:%d" % server.address]
        assert {name: after.get(name) for name in COUNTERS} == \
            {name: before.get(name) for name in COUNTERS}
        assert client.get(KEY.decode()) == VALUE
        for reply in replies:
            assert VALUE not in reply
        # Each binary request got memcached's refusal, but VERSION, which memcached answers
        # before authentication too.
        for request, reply in zip(BINARY_REQUESTS, replies):
            assert reply[6:8] == (b"\x00\x00" if request[1] == 0x0B else b"\x00\x20"), request
        client.disconnect_all()


def test_ascii_auth_cannot_be_bypassed(passwords):
    with start_pymcd(["-Y", str(passwords)]) as server:
        with server.connect() as owner:
            assert exchange(owner, b"set a 0 0 9\r\nuser pass\r\n", expect_end=b"\r\n") == \
                b"STORED\r\n"
            assert exchange(owner, b"set %s 7 1000 %d\r\n%s\r\n" % (KEY, len(VALUE), VALUE),
                            expect_end=b"\r\n") == b"STORED\r\n"
            before = counters(owner)
            replies = unauthenticated_replies(server, TEXT_REQUESTS + BINARY_REQUESTS)
            # All of them on one connection too: the handshake never lets a command through.
            with server.connect() as pipelined:
                replies.append(exchange(pipelined, b"".join(TEXT_REQUESTS), settle=0.5))
            time.sleep(1.5)
            assert counters(owner) == before
            assert exchange(owner, b"mg %s v f\r\n" % KEY, expect_end=b"\r\n") == \
                b"VA %d f7\r\n%s\r\n" % (len(VALUE), VALUE)
            ttl = exchange(owner, b"mg %s t\r\n" % KEY, expect_end=b"\r\n")
            assert 900 <= int(ttl.split(b" t")[1]) <= 1000  # no touch took effect
        for reply in replies:
            assert VALUE not in reply
            assert set(reply.split(b"\r\n")) <= {
                b"", b"CLIENT_ERROR unauthenticated", b"CLIENT_ERROR authentication failure",
                b"CLIENT_ERROR bad command line termination",
                b"CLIENT_ERROR bad authentication token format"}, reply


@pytest.mark.parametrize("auth", ["-S", "-Y"])
def test_no_udp_with_authentication(auth, passwords):
    args = [auth] + ([str(passwords)] if auth == "-Y" else []) + ["-U", "11999"]
    server = start_pymcd(args, env={"MEMCACHED_SASL_PWDB": str(passwords)}, wait=False)
    assert server.process.wait(timeout=20) == 64
    server.stop()
