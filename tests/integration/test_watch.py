"""``watch`` against a real pymcd: each event type for a real operation, several watchers, a
stalled watcher under 100,000 sets, limits and clean-up."""

from __future__ import annotations

import re
import socket
import time
from typing import List

import pytest

from support import exchange, start_pymcd

LINE = re.compile(rb"^ts=\d+\.\d+ gid=\d+ (.*)$")


class WatchConnection:
    """A raw socket that sent ``watch ...`` and collects the event lines it receives."""

    def __init__(self, server, types: bytes = b"", receive_buffer: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.connect(server.address)
        self.pending = b""
        reply = exchange(self.sock, b"watch %s\r\n" % types if types else b"watch\r\n",
                         expect_end=b"\r\n")
        assert reply == b"OK\r\n", reply

    def lines(self, until: bytes = b"", timeout: float = 5.0) -> List[bytes]:
        """Lines received until one contains ``until`` (or, without it, until quiet)."""
        self.sock.settimeout(0.3 if not until else 0.2)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if until and until in self.pending:
                break
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                if not until:
                    break
                continue
            if not chunk:
                break
            self.pending += chunk
        complete, _, self.pending = self.pending.rpartition(b"\n")
        return complete.split(b"\n") if complete else []

    def events(self, until: bytes = b"") -> List[bytes]:
        """The event lines without their ts= and gid= prefix."""
        bodies = []
        for line in self.lines(until):
            match = LINE.match(line)
            assert match, line
            bodies.append(match.group(1))
        return bodies

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def server():
    with start_pymcd(["-m", "64"]) as server:
        yield server


@pytest.fixture
def client(server):
    sock = server.connect()
    yield sock
    sock.close()


def conn_id(sock) -> int:
    """The client's id as pymcd reports it (cfd=): stats conns shows the asker parsing."""
    listing = exchange(sock, b"stats conns\r\n", expect_end=b"END\r\n")
    return int(re.search(rb"STAT (\d+):state conn_parse_cmd", listing).group(1))


def test_fetchers_by_default(server, client):
    watcher = WatchConnection(server)
    cfd = conn_id(client)
    exchange(client, b"set foo 5 0 3\r\nbar\r\nget foo missing\r\n", expect_end=b"END\r\n")
    assert watcher.events(until=b"key=missing") == [
        b"type=item_get key=foo status=not_found clsid=0 cfd=%d size=0" % cfd,
        b"type=item_get key=foo status=found clsid=1 cfd=%d size=3" % cfd,
        b"type=item_get key=missing status=not_found clsid=0 cfd=%d size=0" % cfd,
    ]
    watcher.close()


def test_fetch_of_an_expired_item_says_expired():
    """Without the LRU maintainer: it may reclaim the expired item first (memcached's too),
    and the fetch then says not_found, as memcached's does."""
    with start_pymcd(["-m", "64", "-o", "no_lru_maintainer"]) as server:
        client = server.connect()
        watcher = WatchConnection(server, b"fetchers")
        exchange(client, b"set soon 0 1 1\r\nx\r\n", expect_end=b"STORED\r\n")
        time.sleep(2.1)
        exchange(client, b"get soon\r\n", expect_end=b"END\r\n")
        assert watcher.events(until=b"expired")[-1].startswith(
            b"type=item_get key=soon status=expired")
        watcher.close()
        client.close()


def test_mutations(server, client):
    watcher = WatchConnection(server, b"mutations")
    cfd = conn_id(client)
    exchange(client, b"set m1 0 100 3\r\nabc\r\nadd m1 0 0 1\r\nx\r\nappend m1 0 0 2\r\nde\r\n"
                     b"cas m1 0 0 1 1\r\nz\r\nreplace nope 0 0 1\r\nz\r\nms m2 2\r\nhi\r\n"
                     b"incr m1 1\r\ndelete m2\r\nmn\r\n", expect_end=b"MN\r\n")
    events = watcher.events(until=b"key=m2")
    # memcached's ttl is computed against its clock: 100 or 99 a moment later.
    assert [re.sub(rb"ttl=(99|100) ", b"ttl=100 ", e) for e in events] == [
        b"type=item_store key=m1 status=stored cmd=set ttl=100 clsid=1 cfd=%d size=3" % cfd,
        b"type=item_store key=m1 status=not_stored cmd=add ttl=0 clsid=1 cfd=%d size=1" % cfd,
        b"type=item_store key=m1 status=stored cmd=append ttl=100 clsid=1 cfd=%d size=5" % cfd,
        b"type=item_store key=m1 status=exists cmd=cas ttl=0 clsid=1 cfd=%d size=1" % cfd,
        b"type=item_store key=nope status=not_stored cmd=replace ttl=0 clsid=1 cfd=%d size=1"
        % cfd,
        b"type=item_store key=m2 status=stored cmd=set ttl=0 clsid=1 cfd=%d size=2" % cfd,
    ]
    watcher.close()


def test_too_large_is_a_mutation(server, client):
    watcher = WatchConnection(server, b"mutations")
    assert exchange(client, b"set big 0 0 2000000\r\n" + b"x" * 2000000 + b"\r\n",
                    expect_end=b"\r\n") == b"SERVER_ERROR object too large for cache\r\n"
    assert watcher.events(until=b"key=big") == [
        b"type=item_store key=big status=too_large cmd=set ttl=0 clsid=0 cfd=%d size=0"
        % conn_id(client)]
    watcher.close()


def test_keys_are_uri_encoded(server, client):
    watcher = WatchConnection(server, b"fetchers")
    exchange(client, b"get sp%ace a~b.c-d_e\r\nmg Zm9vIGJhcuk= b v\r\n", expect_end=b"EN\r\n")
    keys = [re.search(rb"key=(\S+)", e).group(1) for e in watcher.events(until=b"key=foo")]
    assert keys == [b"sp%25ace", b"a~b.c-d_e", b"foo%20bar%E9"]
    watcher.close()


def test_connection_events(server):
    watcher = WatchConnection(server, b"connevents")
    sock = server.connect()
    cfd = conn_id(sock)
    port = sock.getsockname()[1]
    sock.close()
    assert watcher.events(until=b"conn_close") == [
        b"type=conn_new rip=127.0.0.1 rport=%d transport=tcp cfd=%d" % (port, cfd),
        b"type=conn_close rip=127.0.0.1 rport=%d transport=tcp reason=normal cfd=%d"
        % (port, cfd),
    ]
    watcher.close()


def test_two_watchers_with_their_own_filters(server, client):
    fetches = WatchConnection(server, b"fetchers")
    stores = WatchConnection(server, b"mutations connevents")
    exchange(client, b"set two 0 0 1\r\n2\r\nget two\r\n", expect_end=b"END\r\n")
    fetch_events = fetches.events(until=b"status=found")
    store_events = stores.events(until=b"item_store")
    assert [e.split(b" ")[0:3] for e in fetch_events] == [
        [b"type=item_get", b"key=two", b"status=not_found"],
        [b"type=item_get", b"key=two", b"status=found"]]
    assert [e.split(b" ")[0:3] for e in store_events] == [
        [b"type=item_store", b"key=two", b"status=stored"]]
    fetches.close()
    stores.close()


def test_evictions():
    with start_pymcd(["-m", "2"]) as server:
        watcher = WatchConnection(server, b"evictions")
        sock = server.connect()
        value = b"v" * 1000
        batch = b"".join(b"set key%d 0 0 1000 noreply\r\n%s\r\n" % (i, value) for i in range(3000))
        exchange(sock, batch + b"version\r\n", expect_end=b"VERSION 1.6.18\r\n", timeout=30)
        events = watcher.events(until=b"type=eviction")
        assert events, "3 MB into -m 2 evicted nothing"
        assert re.match(rb"type=eviction key=key\d+ fetch=no ttl=-1 la=\d+ clsid=\d+ size=1000$",
                        events[0]), events[0]
        sock.close()


def test_stalled_watcher_skips_and_the_server_keeps_serving(server):
    stalled = WatchConnection(server, b"mutations fetchers", receive_buffer=4096)
    sock = server.connect()
    batch = b"".join(b"set stall%d 0 0 10 noreply\r\n0123456789\r\n" % i for i in range(1000))
    for _ in range(100):  # 100,000 sets; the watcher never reads
        sock.sendall(batch)
    assert exchange(sock, b"version\r\n", expect_end=b"\r\n", timeout=60) == b"VERSION 1.6.18\r\n"
    stats = exchange(sock, b"stats\r\n", expect_end=b"END\r\n")
    assert int(re.search(rb"STAT log_watcher_skipped (\d+)", stats).group(1)) > 0
    # Drain what the watcher was sent; the next event to fit says how many were dropped.
    lines = stalled.lines()
    exchange(sock, b"set after 0 0 1\r\n1\r\n", expect_end=b"STORED\r\n")
    lines += stalled.lines(until=b"key=after")
    assert any(re.match(rb"skipped=\d+$", line) for line in lines)
    sock.close()
    stalled.close()


def test_disconnected_watcher_is_forgotten_at_once(server, client):
    def watchers() -> int:
        stats = exchange(client, b"stats\r\n", expect_end=b"END\r\n")
        return int(re.search(rb"STAT log_watchers (\d+)", stats).group(1))

    before = watchers()
    watcher = WatchConnection(server, b"fetchers")
    assert watchers() == before + 1
    watcher.close()
    deadline = time.time() + 5
    while watchers() != before:
        assert time.time() < deadline
        time.sleep(0.05)


def test_input_after_watch_is_ignored(server):
    sock = server.connect()
    assert exchange(sock, b"watch\r\nversion\r\n") == b"OK\r\n"
    assert exchange(sock, b"version\r\n") == b""
    sock.close()


@pytest.mark.parametrize("request_bytes, reply", [
    (b"watch deletions\r\n", b"ERROR\r\n"),
    (b"watch fetchers syserrors\r\n", b"ERROR\r\n"),
    (b"watch bogus noreply\r\n", b""),
    (b"version\r\nwatch\r\n",
     b"VERSION 1.6.18\r\nERROR cannot pipeline other commands before watch\r\n"),
    (b"get a\r\nwatch\r\n", b"END\r\nOK\r\n"),
])
def test_refusals(server, request_bytes, reply):
    sock = server.connect()
    assert exchange(sock, request_bytes) == reply
    sock.close()


def test_at_most_twenty_watchers(server):
    watchers = [WatchConnection(server, b"sysevents") for _ in range(20)]
    sock = server.connect()
    assert exchange(sock, b"watch\r\n", expect_end=b"\r\n") == \
        b"WATCHER_TOO_MANY log watcher limit reached\r\n"
    sock.close()
    for watcher in watchers:
        watcher.close()


def test_watch_disabled():
    with start_pymcd(["-W"]) as server:
        sock = server.connect()
        assert exchange(sock, b"watch\r\nwatch mutations\r\n") == \
            b"CLIENT_ERROR watch commands not allowed\r\n" * 2
        sock.close()
