"""-vv and -vvv traces of one set/get conversation, pymcd against Debian's memcached.

Connection ids differ (memcached prints its fd, pymcd a connection number), so they are
normalised to ``N``; everything else must match line for line.
"""

from __future__ import annotations

import re
import time

import pytest
from support import exchange, have_memcached, start_memcached, start_pymcd

CONVERSATION = [
    b"set foo 0 0 3\r\nbar\r\n",
    b"get foo\r\n",
    b"get foo bar\r\ndelete foo\r\n",
    b"set x 0 0 1 noreply\r\ny\r\n",
    b"incr x 1\r\n",
]


def conversation_trace(stderr: bytes) -> list:
    lines = stderr.decode(errors="replace").splitlines()
    starts = [i for i, line in enumerate(lines) if line.endswith("new auto-negotiating client connection")]
    ours = lines[starts[-1]:]
    keep = re.compile(r"^(<\d+ |>\d+ |\d+: |> (NOT FOUND|FOUND KEY) )")
    return [re.sub(r"^([<>]?)\d+", r"\1N", line) for line in ours if keep.match(line)]


def run(server) -> list:
    time.sleep(0.3)
    sock = server.connect()
    for request in CONVERSATION:
        exchange(sock, request)
    sock.close()
    time.sleep(0.3)
    _, err = server.stop()
    return conversation_trace(err)


@pytest.mark.skipif(not have_memcached(), reason="Debian's memcached is not installed")
@pytest.mark.parametrize("verbosity", ["-vv", "-vvv"])
def test_traces_match_memcached(verbosity):
    expected = run(start_memcached([verbosity]))
    actual = run(start_pymcd([verbosity]))
    assert actual == expected
