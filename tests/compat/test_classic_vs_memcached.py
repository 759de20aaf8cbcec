"""The classic text protocol, side by side with Debian's memcached 1.6.18, byte for byte.

A fixed script of classic commands (successes, every error string, noreply, swallowed data
blocks, pipelines) is replayed against both servers; each step is followed by ``version`` so the
end of its replies is known. CAS uniques are the only values that may differ: they are renumbered
by first appearance on both sides before comparing.
"""

from __future__ import annotations

import re
import time
from typing import Dict, List

import pytest
from support import exchange, have_memcached, start_memcached, start_pymcd

LONG_KEY = b"k" * 251
BIG = 2 * 1024 * 1024

SCRIPT: List[bytes] = [
    # storage commands and their replies
    b"set a 1 0 3\r\nabc\r\nget a\r\ngets a\r\n",
    b"add a 0 0 1\r\nx\r\nadd b 2 0 1\r\nx\r\nreplace nope 0 0 1\r\nx\r\nreplace b 3 0 2\r\nyy\r\n",
    b"append b 9 9 2\r\n!!\r\nprepend b 0 0 2\r\n<<\r\nappend nope 0 0 1\r\nx\r\nget b\r\n",
    b"prepend nope 0 0 1\r\nx\r\nget a b nope a\r\n",
    b"gets b\r\n",
    # each part fits an item, the joined value does not: NOT_STORED, the old item stays
    b"set j 0 0 200\r\n" + b"x" * 200 + b"\r\nprepend j 0 0 1048476\r\n" + b"v" * 1048476
    + b"\r\nappend j 0 0 1048476\r\n" + b"v" * 1048476 + b"\r\nget j\r\n",
    b"cas b 0 0 1 1\r\nz\r\ncas nope 0 0 1 1\r\nz\r\n",
    b"cas b 0 0 1\r\nz\r\ncas b 0 0 1 x\r\nz\r\n",
    # noreply on every storage verb, and errors that noreply does not hide
    b"set n 0 0 1 noreply\r\n1\r\nadd n 0 0 1 noreply\r\n2\r\nreplace n 0 0 1 noreply\r\n3\r\n"
    b"append n 0 0 1 noreply\r\n4\r\nprepend n 0 0 1 noreply\r\n5\r\ncas n 0 0 1 1 noreply\r\n6\r\n"
    b"get n\r\n",
    b"set n 0 0 1 noreply\r\nxyz\r\n",
    b"set n 0 0 -1 noreply\r\n",
    # numbers: flags, lengths, exptime
    b"set f 4294967295 0 1\r\na\r\nget f\r\nset f 4294967296 0 1\r\na\r\n",
    b"set f -1 0 1\r\na\r\nset f 0 x 1\r\na\r\nset f 0 0 x\r\na\r\n",
    b"set e 0 -1 1\r\na\r\nget e\r\n",
    # a length memcached cannot add the CRLF to is a bad line, not a block to read
    b"set l 0 0 2147483647\r\nset l 0 0 2147483646\r\nset l 0 0 4294967295\r\n",
    b"set k 0 0\r\nset\r\nset k 0 0 1 2 3 4\r\nx\r\n",
    # data chunk errors and the swallow of refused blocks
    b"set k 0 0 1\r\nabc\r\n",
    b"set k 0 0 3\r\nabcde\r\n",
    b"set big 0 0 %d\r\n" % BIG + b"x" * BIG + b"\r\nget big\r\n",
    b"set " + LONG_KEY + b" 0 0 1\r\nx\r\n",
    # arithmetic
    b"set c 0 0 2\r\n10\r\nincr c 5\r\ndecr c 100\r\nincr c 18446744073709551615\r\nget c\r\n",
    b"set c 0 0 20\r\n18446744073709551615\r\nincr c 2\r\nget c\r\n",
    b"set c 0 0 2\r\n99\r\nincr c 1\r\nget c\r\ndecr c 1\r\nget c\r\n",
    b"incr nope 1\r\ndecr nope 1\r\nincr c -1\r\nincr c x\r\nincr c 18446744073709551616\r\n",
    b"set s 0 0 3\r\nabc\r\nincr s 1\r\ndecr s 1\r\nincr c 1 noreply\r\nget c\r\n",
    b"incr c\r\nincr " + LONG_KEY + b" 1\r\n",
    # delete, touch, gat
    b"set d 0 0 1\r\nx\r\ndelete d 0\r\ndelete d\r\ndelete d 5\r\ndelete d noreply\r\n",
    b"set d 0 0 1\r\nx\r\ndelete d noreply\r\nget d\r\ndelete " + LONG_KEY + b"\r\n",
    b"set t 4 0 2\r\nhi\r\ntouch t 100\r\ntouch nope 100\r\ntouch t x\r\ntouch t 10 noreply\r\n",
    b"gat 100 t\r\ngat x t\r\ngat 100 nope t\r\ngat 100\r\ngat -1 t\r\nget t\r\n",
    # retrieval edge cases
    b"get\r\nget " + LONG_KEY + b"\r\nget a " + LONG_KEY + b"\r\n",
    # flush_all, verbosity, version, unknown commands
    b"set fl 0 0 1\r\na\r\nflush_all\r\nget fl\r\nflush_all 0\r\nflush_all x\r\n",
    b"flush_all noreply\r\nflush_all 0 noreply\r\nflush_all -1\r\n",
    b"verbosity 1\r\nverbosity\r\nverbosity x\r\nverbosity 0 noreply\r\nverbosity 0\r\n",
    b"bogus\r\n\r\nGET a\r\nshutdown\r\nmisbehave\r\n",
    b"stats nonsense\r\nstats detail on\r\nstats detail dump\r\nstats detail off\r\n",
]

CAS = re.compile(rb"(?m)^VALUE \S+ \d+ \d+ (\d+)")
STEP_END = b"version\r\n"


def normalise(replies: List[bytes]) -> List[bytes]:
    """Renumber CAS uniques by first appearance (they depend on the server's history)."""
    numbering: Dict[bytes, bytes] = {}

    def cas(match) -> bytes:
        number = numbering.setdefault(match.group(1), b"#%d" % (len(numbering) + 1))
        return match.group(0)[:match.start(1) - match.start(0)] + number

    return [CAS.sub(cas, reply) for reply in replies]


def replay(server) -> List[bytes]:
    with server.connect() as sock:
        replies = []
        for step in SCRIPT:
            reply = exchange(sock, step + STEP_END, expect_end=b"VERSION 1.6.18\r\n", timeout=5)
            replies.append(reply[:reply.rindex(b"VERSION ")])
        return replies


@pytest.mark.skipif(not have_memcached(), reason="Debian's memcached is not installed")
def test_classic_script_matches_memcached():
    with start_memcached() as memcached:
        expected = normalise(replay(memcached))
    with start_pymcd() as pymcd:
        actual = normalise(replay(pymcd))
    mismatches = [(step, want, got) for step, want, got in zip(SCRIPT, expected, actual)
                  if want != got]
    assert not mismatches
    # The script must exercise what it claims to: every reply kind appears.
    everything = b"".join(actual)
    for reply in (b"STORED", b"NOT_STORED", b"EXISTS", b"NOT_FOUND", b"DELETED", b"TOUCHED",
                  b"CLIENT_ERROR bad data chunk", b"SERVER_ERROR object too large for cache",
                  b"VALUE a 1 3 #", b"OK", b"ERROR"):
        assert reply in everything


@pytest.mark.skipif(not have_memcached(), reason="Debian's memcached is not installed")
@pytest.mark.parametrize("request_bytes", [
    b"get " + b"k " * 30 + b"\r\n" + b"x" * 3000,   # a line too long and never ended
    b"set k 0 0 1\r\n" + b"x" * 5000,             # a data block that does not end
    # a refused storage line, then its data block read as a command: ended within memcached's
    # 16 KiB read buffer it is ERROR, beyond it memcached never sees the newline and closes
    b"set k 0 x 5\r\n" + b"a" * 12000 + b"\r\n",
    b"set k 0 x 5\r\n" + b"a" * 20000 + b"\r\n",
    b"a" * 16382 + b"\r\n",
    b"a" * 16383 + b"\r\n",
    b"get " + b"k" * 20000 + b"\r\n",                 # a get line may be longer
    b"GET / HTTP/1.1\r\n",
    b"quit\r\n",
    b"version\r\nquit\r\nversion\r\n",  # nothing after quit is read
    b"mn\r\nquit\r\nmn\r\n",
])
def test_where_memcached_closes_pymcd_closes(request_bytes):
    """Both servers answer the same bytes and then both close (or both keep) the connection."""
    results = []
    for start in (start_memcached, start_pymcd):
        with start() as server, server.connect() as sock:
            sock.sendall(request_bytes)
            time.sleep(0.3)
            try:
                received = exchange(sock, b"", timeout=1)
            except ConnectionResetError:
                # Closed with bytes unread (memcached's close of an over-long line): a reset.
                received = b""
            try:
                sock.sendall(b"version\r\n")
                after = exchange(sock, b"", timeout=1)
            except OSError:
                after = b"<closed>"
            results.append((received, after or b"<closed>"))
    assert results[1] == results[0]
