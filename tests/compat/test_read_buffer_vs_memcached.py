"""Long lines against memcached's 16 KiB read buffer, side by side with memcached 1.6.18.

memcached looks for a line's newline only in its read buffer and closes past 2 KiB without one;
before it reads again with the buffer used up it writes what it has queued. Each pipeline here
is written in one go on a fresh connection (so memcached's reads take all of it) and ends in an
``mn`` whose ``MN`` says the server read to the end, unless it closed first.
"""

from __future__ import annotations

import socket

import pytest
from support import have_memcached, start_memcached, start_pymcd

pytestmark = pytest.mark.skipif(not have_memcached(), reason="Debian's memcached is not installed")

BUFFER = 16384


def value(size: int) -> bytes:
    return bytes(b"abcdefghij"[i % 10] for i in range(size))


def storage(verb: bytes, key: bytes, size: int, flags: bytes = b"0") -> bytes:
    return b"%s %s %s 0 %d\r\n%s\r\n" % (verb, key, flags, size, value(size))


def pipeline_with_junk(junk_start: int, newline_at: int, tail: bytes = b"delete nothing\r\n") -> bytes:
    """A ``delete`` (its reply queued), a set whose block ends at ``junk_start``, an unknown
    command line of over 2 KiB from there with its newline at ``newline_at``, then ``tail``."""
    prefix = b"delete nothing\r\n"
    size = junk_start - len(prefix) - len(b"set a 0 0 00000\r\n") - 2
    data = prefix + b"set a 0 0 %05d\r\n" % size + value(size) + b"\r\n"
    assert len(data) == junk_start
    return data + b"x" * (newline_at - junk_start - 1) + b"\r\n" + tail


CASES = {
    # The newline is the buffer's last byte: answered (ERROR); one further: closed, the queued
    # NOT_FOUND and STORED unsent.
    "newline inside the buffer": pipeline_with_junk(BUFFER - 3000, BUFFER - 1),
    "newline just past the buffer": pipeline_with_junk(BUFFER - 3000, BUFFER),
    # 2 KiB or less of the line in the buffer: memcached writes what it has, moves the line to
    # the front and reads on, so the line is answered; a later close keeps the first replies.
    "short line start at the buffer's end": pipeline_with_junk(BUFFER - 2000, BUFFER + 3000),
    "refill then a line past the new buffer": pipeline_with_junk(
        BUFFER - 2000, BUFFER + 3000, tail=b"y" * 20000 + b"\r\n"),
    # The fuzzer's case (text seed 7): an append's block ends inside the buffer, a refused add
    # leaves its 9,970-byte block to be read as a line, which runs past the buffer.
    "refused block read as a line past the buffer": b"gets k6\r\n" + storage(b"append", b"k0", 11988)
    + storage(b"add", b"gbh", 9970, flags=b"-9223372036854775808") + b"get k0\r\n",
    # A data block that runs past the buffer is read to its end from the socket; the buffer
    # starts again after it, with the replies so far written.
    "block past the buffer, then a long line": b"delete nothing\r\n" + storage(b"set", b"b", 20000)
    + b"z" * 3000 + b"\r\n",
    # The fuzzer's case (meta seed 7): a refused ms swallows 1 MiB + 3 of a 2 MiB block; the rest,
    # read as a line, closes, after the error was written.
    "swallowed block, then the rest as a line": b"ms k1 1048577 S\r\n" + b"v" * (2 << 20) + b"\r\n",
}


def replay(start, data: bytes) -> bytes:
    with start(["-o", "no_lru_maintainer"]) as server:
        with server.connect() as setup:
            setup.sendall(storage(b"set", b"k0", 11) + b"mn\r\n")
            reply = b""
            while not reply.endswith(b"MN\r\n"):
                reply += setup.recv(4096)
        with server.connect() as sock:
            sock.settimeout(10)
            try:
                sock.sendall(data + b"mn\r\n")
            except OSError:
                pass  # closed before it read everything: what it wrote first is still there
            reply = b""
            while not reply.endswith(b"MN\r\n"):
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    return reply + b"<closed>"
                reply += chunk
            return reply


@pytest.mark.parametrize("case", sorted(CASES))
def test_long_lines_meet_the_read_buffer_as_in_memcached(case):
    theirs = replay(start_memcached, CASES[case])
    ours = replay(start_pymcd, CASES[case])
    assert ours == theirs
