"""Page moves side by side with Debian's memcached 1.6.18: the same rescues, evictions, pages.

``slabs reassign`` of a page holding value chunks of big items copies each chunk elsewhere in
its class when there is room (``slab_reassign_chunk_rescues``), items whose header chunk is in
the page are rescued the same way, and only what finds no free chunk is evicted. The automover
hands idle free pages to the global pool page after page, not one a second. Both servers run
the same script at once (in two threads) and their counters must be equal.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Dict, List, Tuple

import pytest
from support import exchange, have_memcached, start_memcached, start_pymcd, stats

pytestmark = pytest.mark.skipif(not have_memcached(), reason="memcached not installed")

MOVE_COUNTERS = ("slab_reassign_rescues", "slab_reassign_chunk_rescues",
                 "slab_reassign_evictions_nomem", "slabs_moved", "slab_global_page_pool",
                 "curr_items", "evictions")


def value_of(number: int, size: int) -> bytes:
    return (b"%07d|" % number) * (size // 8) + b"v" * (size % 8)


def set_many(sock, prefix: bytes, count: int, size: int) -> None:
    script = b"".join(b"set %s%d 0 0 %d noreply\r\n%s\r\n" % (prefix, n, size, value_of(n, size))
                      for n in range(count))
    assert exchange(sock, script + b"mn\r\n", expect_end=b"MN\r\n", timeout=60) == b"MN\r\n"


def values_kept(sock, prefix: bytes, count: int, size: int) -> List[int]:
    """The numbers whose value comes back whole (a wrong value fails the test)."""
    kept = []
    for n in range(count):
        reply = exchange(sock, b"get %s%d\r\n" % (prefix, n), expect_end=b"END\r\n")
        if reply != b"END\r\n":
            assert reply == b"VALUE %s%d 0 %d\r\n%s\r\nEND\r\n" % (prefix, n, size, value_of(n, size))
            kept.append(n)
    return kept


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while not condition() and time.time() < deadline:
        time.sleep(0.2)


def side_by_side(flags: List[str], scenario: Callable) -> Tuple[object, object]:
    results: Dict[str, object] = {}

    def run(name: str, start) -> None:
        with start(flags) as server:
            with server.connect(timeout=30) as sock:
                results[name] = scenario(sock)

    threads = [threading.Thread(target=run, args=(name, start))
               for name, start in (("pymcd", start_pymcd), ("memcached", start_memcached))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results["pymcd"], results["memcached"]


def chunked_reassign(sock):
    """Big items over 4 KiB chunks, a third deleted, three pages of value chunks moved away."""
    set_many(sock, b"n", 1150, 11000)
    exchange(sock, b"".join(b"delete n%d noreply\r\n" % n for n in range(0, 1150, 3)) + b"mn\r\n",
             expect_end=b"MN\r\n")
    slabs = stats(sock, b"slabs")
    chunk_class = next(name.split(":")[0] for name, value in slabs.items()
                       if name.endswith(":chunk_size") and value == "4096")
    for moved in range(1, 4):
        assert exchange(sock, b"slabs reassign %s 0\r\n" % chunk_class.encode(),
                        expect_end=b"\r\n") == b"OK\r\n"
        wait_until(lambda: int(stats(sock)["slabs_moved"]) == moved)
    counters = stats(sock)
    return {name: counters[name] for name in MOVE_COUNTERS}, values_kept(sock, b"n", 1150, 11000)


def test_reassigning_value_chunks_rescues_them_as_memcached() -> None:
    pymcd, memcached = side_by_side(["-m", "16", "-o", "slab_chunk_max=4096,slab_automove=0"],
                                    chunked_reassign)
    assert int(memcached[0]["slab_reassign_chunk_rescues"]) > 0
    assert pymcd == memcached


def free_pages_drain(sock):
    """Half of the items deleted: the automover gives the free pages to the global pool."""
    set_many(sock, b"n", 2500, 11000)
    exchange(sock, b"".join(b"delete n%d noreply\r\n" % n for n in range(0, 2500, 2)) + b"mn\r\n",
             expect_end=b"MN\r\n")
    started = time.time()
    wait_until(lambda: int(stats(sock)["slab_global_page_pool"]) >= 10)
    seconds = time.time() - started
    time.sleep(1.5)  # nothing more to move: the counters settle
    counters = stats(sock)
    return {name: counters[name] for name in MOVE_COUNTERS}, seconds < 8


def test_automove_drains_free_pages_as_memcached() -> None:
    pymcd, memcached = side_by_side(["-m", "30", "-o", "slab_automove_window=3"], free_pages_drain)
    assert int(memcached[0]["slab_global_page_pool"]) >= 10
    assert pymcd == memcached
