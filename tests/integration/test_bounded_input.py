"""Input a hostile client can announce but never send: each gets memcached's answer, and the
server holds a bounded amount of it (checked against its RSS after pushing the bytes).

Where memcached's answer is sane it is asked side by side; where it misbehaves (a ``-Y`` block
announced at 2 GiB crashes Debian's 1.6.18) pymcd follows memcached's code rather than its crash.
"""

from __future__ import annotations

import os
import socket
import struct
import time

import pytest

from support import exchange, have_memcached, start_memcached, start_pymcd, stats

HEADER = struct.Struct(">BBHBBHIIQ")
RSS_GROWTH_LIMIT = 32 * 1024 * 1024
FLOOD = 64 * 1024 * 1024


def binary(opcode: int, key: bytes = b"", extras: bytes = b"", bodylen=None) -> bytes:
    if bodylen is None:
        bodylen = len(key) + len(extras)
    return HEADER.pack(0x80, opcode, len(key), len(extras), 0, 0, bodylen, 0, 0) + extras + key


def rss(pid: int) -> int:
    with open("/proc/%d/status" % pid) as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


def reply_and_closed(server, data: bytes, settle: float = 0.5):
    """What the server answers to ``data`` and whether it then hung up."""
    with server.connect() as sock:
        sock.sendall(data)
        sock.settimeout(settle)
        received = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return received, True
                received += chunk
        except socket.timeout:
            return received, False
        except ConnectionResetError:
            return received, True


def flood(server, head: bytes, filler: bytes = b"x") -> bool:
    """Send ``head`` then up to FLOOD bytes; True if the server hung up before taking them all."""
    with server.connect(timeout=10) as sock:
        sock.sendall(head)
        chunk = filler * (1 << 20)
        try:
            for _ in range(FLOOD // len(chunk)):
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            return True
        return False


SIDE_BY_SIDE = [
    # data lengths as memcached's safe_strtol reads them: 2**32 + 1 is a 1-byte block
    b"set k 0 0 2147483648\r\n",
    b"set k 0 0 2147483646\r\n",
    b"set k 0 0 4294967297\r\nab\r\nget k\r\n",
    b"set k 0 0 4294967296\r\n\r\nget k\r\n",
    b"ms k 2147483646\r\n",
    b"ms k 4294967297 T0\r\nz\r\nmg k v\r\n",
    # a binary body announced at 2 GiB or more is not swallowed: what follows is parsed
    binary(0x55, b"k", bodylen=0x80000000) + b"garbage",
    binary(0x00, b"k", bodylen=0xFFFFFFFF) + b"x" * 100,
    binary(0x0A, bodylen=0xFFFFFFFF),
    # a line of 3 KiB without a newline that is not a get
    b"x" * 3000,
    b"set k 0 0 1" + b" " * 3000,
]


@pytest.mark.skipif(not have_memcached(), reason="needs Debian's memcached")
@pytest.mark.parametrize("data", SIDE_BY_SIDE, ids=range(len(SIDE_BY_SIDE)))
def test_like_memcached(data):
    with start_memcached() as reference, start_pymcd() as server:
        assert reply_and_closed(server, data) == reply_and_closed(reference, data)


@pytest.fixture(scope="module")
def pymcd():
    with start_pymcd() as server:
        yield server


def test_refused_storage_blocks_are_swallowed_unbuffered(pymcd):
    start = rss(pymcd.process.pid)
    # An item over -I is refused at once and its block discarded as it arrives.
    assert not flood(pymcd, b"set k 0 0 2000000000\r\n")
    assert not flood(pymcd, binary(0x01, b"k", b"\0" * 8, bodylen=0x7FFFFFFF))
    assert rss(pymcd.process.pid) - start < RSS_GROWTH_LIMIT
    with pymcd.connect() as sock:
        assert exchange(sock, b"version\r\n", expect_end=b"\r\n").startswith(b"VERSION")


def test_endless_multiget_line_is_cut_off(pymcd):
    start = rss(pymcd.process.pid)
    assert flood(pymcd, b"get ", b"k ")
    assert rss(pymcd.process.pid) - start < RSS_GROWTH_LIMIT
    reply, closed = reply_and_closed(pymcd, b"get " + b"k " * (1024 * 1024 + 1))
    assert (reply, closed) == (b"SERVER_ERROR out of memory reading request\r\n", True)


def test_long_multiget_line_is_served(pymcd):
    """A legitimate multiget of 100,000 keys (about 600 KiB) is still answered."""
    with pymcd.connect() as sock:
        exchange(sock, b"set k00001 0 0 1\r\nv\r\n", expect_end=b"\r\n")
        keys = b" ".join(b"k%05d" % (n % 100000) for n in range(100000))
        reply = exchange(sock, b"get " + keys + b"\r\n", expect_end=b"END\r\n", timeout=10)
        assert reply == b"VALUE k00001 0 1\r\nv\r\nEND\r\n"


def test_multiget_reply_is_capped(pymcd):
    """pymcd copies values into the reply: one get may not build more than 64 MiB of it."""
    with pymcd.connect(timeout=20) as sock:
        value = b"v" * 1000000
        exchange(sock, b"set big 0 0 %d\r\n%s\r\n" % (len(value), value), expect_end=b"\r\n")
        reply = exchange(sock, b"get " + b"big " * 100 + b"\r\n", expect_end=b"\r\n",
                         timeout=20)
        assert reply == b"SERVER_ERROR out of memory writing get response\r\n"
        # Under the cap the same multiget is served whole.
        reply = exchange(sock, b"get " + b"big " * 10 + b"\r\n", expect_end=b"END\r\n",
                         timeout=20)
        assert reply.count(b"VALUE big") == 10


def test_one_value_over_the_reply_cap_is_refused():
    """The cap holds for a one-key get too (it takes its own path): a value over 64 MiB, which
    -I 128m lets in, is answered with the out-of-memory error, for get and gets alike."""
    with start_pymcd(["-m", "512", "-I", "128m"]) as server, server.connect(timeout=30) as sock:
        value = b"v" * (65 * 1024 * 1024)
        reply = exchange(sock, b"set huge 0 0 %d\r\n%s\r\n" % (len(value), value),
                         expect_end=b"\r\n", timeout=30)
        assert reply == b"STORED\r\n"
        for verb in (b"get", b"gets"):
            reply = exchange(sock, verb + b" huge\r\n", expect_end=b"\r\n", timeout=30)
            assert reply == b"SERVER_ERROR out of memory writing get response\r\n"


def test_sasl_data_before_authentication_is_bounded(tmp_path):
    passwords = tmp_path / "pwdb"
    passwords.write_text("user:secret\n")
    with start_pymcd(["-S"], env={"MEMCACHED_SASL_PWDB": str(passwords)}) as server:
        start = rss(server.process.pid)
        for opcode in (0x21, 0x22):  # SASL_AUTH, SASL_STEP
            # The error is written once the refused body has been swallowed (conn_swallow).
            reply, _ = reply_and_closed(server, binary(opcode, b"PLAIN", bodylen=600005)
                                        + b"x" * 600000)
            assert reply[6:8] == b"\x00\x82" and reply.endswith(b"Out of memory")
            assert not flood(server, binary(opcode, b"PLAIN", bodylen=0x7FFFFFFF))
        # A request needing authentication is refused before its body is read.
        reply, closed = reply_and_closed(server, binary(0x01, b"k", b"\0" * 8, 0x7FFFFFFF))
        assert reply.endswith(b"Auth failure.") and closed
        assert rss(server.process.pid) - start < RSS_GROWTH_LIMIT


def test_ascii_auth_block_must_fit_the_read_buffer(tmp_path):
    users = tmp_path / "auth"
    users.write_text("user:secret\n")
    with start_pymcd(["-Y", str(users)]) as server:
        start = rss(server.process.pid)
        assert flood(server, b"set k 0 0 2147483648\r\n")
        assert flood(server, b"set k 0 0 100\r\n" + b"x" * 20000)
        assert flood(server, b"x" * 5000)
        # A short block still waits for the rest, as memcached does.
        reply, closed = reply_and_closed(server, b"set k 0 0 100000\r\nuser")
        assert (reply, closed) == (b"", False)
        assert rss(server.process.pid) - start < RSS_GROWTH_LIMIT
        with server.connect() as sock:
            assert exchange(sock, b"set k 0 0 11\r\nuser secret\r\n",
                            expect_end=b"\r\n") == b"STORED\r\n"


@pytest.mark.skipif(not have_memcached(), reason="needs Debian's memcached")
@pytest.mark.parametrize("threads", ["32", "16"])
def test_response_budget_like_memcached(threads):
    """-o read_buf_mem_limit bounds the responses a connection stacks between writes."""
    args = ["-o", "read_buf_mem_limit=1", "-t", threads, "-R", "500"]
    requests = []
    for count in (13, 14, 39, 40):
        requests.append(b"get " + b" ".join([b"foo"] * count) + b"\r\n")
        requests.append(b"mg foo v\r\n" * count)
    requests.append(b"set foo 0 0 1\r\nx\r\n" + b"get foo foo\r\n" * 30)
    with start_memcached(args) as reference, start_pymcd(args) as server:
        for data in requests:
            assert reply_and_closed(server, data) == reply_and_closed(reference, data), data[:40]
        with server.connect() as ours, reference.connect() as theirs:
            assert stats(ours)["response_obj_oom"] == stats(theirs)["response_obj_oom"]
