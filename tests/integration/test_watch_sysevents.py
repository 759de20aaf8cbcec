"""``watch sysevents`` on pymcd beside Debian's memcached: the LRU maintainer's crawler results,
one line per LRU of each slab class after each automatic crawl, in memcached's format."""

from __future__ import annotations

import re
import socket
import time
from typing import List

import pytest

from support import exchange, have_memcached, start_memcached, start_pymcd

pytestmark = pytest.mark.skipif(not have_memcached(), reason="Debian's memcached is not installed")

CRAWLER_LINE = re.compile(
    rb"ts=\d+\.\d+ gid=\d+ type=lru_crawler crawler=(\d+) lru=(hot|warm|cold|temp) "
    rb"low_mark=\d+ next_reclaims=\d+ since_run=\d+ next_run=\d+ elapsed=\d+ examined=\d+ "
    rb"reclaimed=\d+$")


def read_lines(sock: socket.socket, seconds: float) -> List[bytes]:
    sock.settimeout(0.2)
    data = b""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            data += sock.recv(65536)
        except socket.timeout:
            pass
    return data.splitlines()


def watch_from_start(server, seconds: float = 3.0):
    """sysevents lines in the first seconds of a fresh server, and after a manual crawl."""
    watcher = server.connect()
    assert exchange(watcher, b"watch sysevents\r\n", b"\r\n", timeout=5) == b"OK\r\n"
    at_start = read_lines(watcher, seconds)
    with server.connect() as client:
        assert exchange(client, b"lru_crawler crawl all\r\n", b"\r\n", timeout=5) == b"OK\r\n"
    after_manual_crawl = read_lines(watcher, seconds)
    watcher.close()
    return at_start, after_manual_crawl


def summary(lines: List[bytes]) -> dict:
    """Class 1's four lines without their timestamps and gids."""
    return {match.group(2): re.sub(rb"^ts=\S+ gid=\d+ ", b"", line)
            for line in lines for match in [CRAWLER_LINE.match(line)]
            if match and match.group(1) == b"1"}


def test_maintainer_crawls_are_logged_like_memcached():
    with start_pymcd() as pymcd:
        ours, our_later = watch_from_start(pymcd)
    with start_memcached() as memcached:
        theirs, their_later = watch_from_start(memcached)
    assert ours and all(CRAWLER_LINE.match(line) for line in ours)
    assert all(CRAWLER_LINE.match(line) for line in theirs)
    # Every LRU of every class pymcd has; memcached also lists the ids it has no class for.
    assert {(m.group(1), m.group(2)) for m in map(CRAWLER_LINE.match, ours)} <= \
        {(m.group(1), m.group(2)) for m in map(CRAWLER_LINE.match, theirs)}
    assert len(ours) % 4 == 0
    assert summary(ours) == summary(theirs) != {}
    # A crawl asked for with lru_crawler crawl is not the maintainer's: neither logs it.
    assert our_later == their_later == []
