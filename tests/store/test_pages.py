"""Page moves: ``slabs reassign`` replies and effects, the automover, ``cache_memlimit``."""

from __future__ import annotations

from pymcd.store import outcomes
from pymcd.store.rebalance import BADCLASS, BUSY, NOSPARE, OK, SAME

from tests.store.conftest import MIB
from tests.store.test_eviction import CLASS, PER_PAGE, fill, present

SMALL_CLASS = 1  # 10-byte values: 48 + 7 + 12 + 8 = 75 bytes, 96-byte chunks


def test_reassign_replies(clocked) -> None:
    c = clocked()
    store = c.store
    fill(store, 0, 2 * PER_PAGE + 1)  # three pages of class 12
    largest = store.slabs.largest
    assert store.slabs_reassign(CLASS, CLASS) == SAME
    assert store.slabs_reassign(CLASS, largest + 1) == BADCLASS
    assert store.slabs_reassign(-2, 3) == BADCLASS
    assert store.slabs_reassign(3, CLASS) == NOSPARE  # class 3 has no pages at all
    assert store.slabs_reassign(0, CLASS) == NOSPARE  # the global pool is empty
    assert store.slabs_reassign(CLASS, 5) == OK
    assert store.slabs_reassign(CLASS, 6) == BUSY  # the first move has not run yet
    assert c.stat("slab_reassign_running") == 1
    assert store.rebalancer.step()
    assert c.stat("slab_reassign_running") == 0 and c.stat("slabs_moved") == 1
    assert store.slabs_reassign(CLASS, 6) == OK


def test_a_moved_page_rescues_what_fits_and_evicts_the_rest(clocked) -> None:
    c = clocked()
    store = c.store
    fill(store, 0, 3 * PER_PAGE)
    for number in range(2 * PER_PAGE, 2 * PER_PAGE + 100):  # free 100 chunks on the third page
        store.delete(b"k%05d" % number)
    assert store.slabs_reassign(CLASS, 5) == OK
    store.rebalancer.step()
    # The first page's 885 items: 100 rescued into the free chunks, 785 evicted.
    assert c.stat("slab_reassign_rescues") == 100
    assert c.stat("slab_reassign_evictions_nomem") == PER_PAGE - 100
    assert c.slab_stat(CLASS, "total_pages") == 2 and c.slab_stat(5, "total_pages") == 1
    assert c.stat("curr_items") == 3 * PER_PAGE - 100 - (PER_PAGE - 100)
    survivors = present(store, 0, PER_PAGE)
    assert len(survivors) == 100
    assert all(store.get(b"k%05d" % number)[1] == b"v" * 1000 for number in survivors)
    assert c.slab_stat(5, "free_chunks") == c.slab_stat(5, "total_chunks")
    # The destination class now stores into the page it was given, within the same budget.
    malloced = store.slabs.malloced
    assert store.store(outcomes.SET, b"five", 0, 0, b"x" * 150)[0] == outcomes.STORED
    assert store.slabs.malloced == malloced


def test_any_source_and_the_global_pool(clocked) -> None:
    c = clocked()
    store = c.store
    fill(store, 0, 2 * PER_PAGE)
    assert store.slabs_reassign(-1, 3) == OK  # -1: memcached picks a class with pages to spare
    store.rebalancer.step()
    assert c.slab_stat(3, "total_pages") == 1
    assert store.slabs_reassign(-1, 4) == BADCLASS  # nobody has two pages left
    fill(store, 5000, PER_PAGE)  # class 12 is back to two pages... and a third
    assert store.slabs_reassign(CLASS, 0) == OK  # to the global page pool
    store.rebalancer.step()
    assert c.stat("slab_global_page_pool") == 1
    malloced = store.slabs.malloced
    fill(store, 9000, PER_PAGE + 1)  # class 12 needs a page: it comes from the pool
    assert c.stat("slab_global_page_pool") == 0 and store.slabs.malloced == malloced + MIB


def test_automove_gives_idle_free_pages_to_the_global_pool(clocked) -> None:
    c = clocked(slab_automove=1, slab_automove_window=3)
    store = c.store
    fill(store, 0, 4 * PER_PAGE)
    for number in range(4 * PER_PAGE):
        store.delete(b"k%05d" % number)
    for _ in range(4):  # the window must see no page growth, evictions or failures
        c.advance(1)
        store.rebalancer_step()
    assert c.stat("slabs_moved") >= 1
    assert c.stat("slab_global_page_pool") >= 1


def test_automove_feeds_a_class_evicting_young_items(clocked) -> None:
    """The class with the oldest COLD tail gives a page to one that evicts young items."""
    c = clocked(memory_limit=8 * MIB, slab_automove=1, slab_automove_window=3)
    store = c.store
    fill(store, 0, 3 * PER_PAGE)  # class 12: 3 pages, then left alone
    for _ in range(10):
        store.juggle(CLASS)
    small = b"s" * 10
    number = 0
    moved_to_small = False
    for _ in range(12):  # class 1 fills the rest of the budget and keeps evicting
        for _ in range(20_000):
            store.store(outcomes.SET, b"s%07d" % number, 0, 0, small)
            number += 1
        c.advance(30)
        store.rebalancer_step()
        store.rebalancer_step()
        if c.slab_stat(CLASS, "total_pages") < 3:
            moved_to_small = True
            break
    assert c.item_stat(SMALL_CLASS, "evicted") > 0
    assert moved_to_small
    assert c.stat("slabs_moved") >= 1


def test_memlimit_grows_at_once_and_shrinks_through_the_pool(clocked) -> None:
    c = clocked(memory_limit=2 * MIB, slab_automove=1, slab_automove_window=3)
    store = c.store
    fill(store, 0, 2 * PER_PAGE + 5)
    assert c.stat("evictions") == 5 and c.slab_stat(CLASS, "total_pages") == 2
    store.set_memory_limit(8 * MIB)
    assert c.stat("limit_maxbytes") == 8 * MIB
    fill(store, 10_000, 4 * PER_PAGE)
    assert c.stat("evictions") == 5 and c.slab_stat(CLASS, "total_pages") == 6
    for number in range(10_000, 10_000 + 4 * PER_PAGE):
        store.delete(b"k%05d" % number)
    store.set_memory_limit(3 * MIB)
    assert store.slabs.malloced == 6 * MIB  # nothing in the pool yet: shrinking waits for pages
    for _ in range(12):
        c.advance(1)
        store.rebalancer_step()
        store.rebalancer_step()
    # Free pages go to the pool and are freed until under 2.5 pages' worth of chunks are free:
    # memcached shrinks by moving free memory, never by evicting.
    assert store.slabs.malloced == 4 * MIB
    assert c.stat("slab_global_page_pool") == 0
    assert dict(store.slabs_stats())["total_malloced"] == store.slabs.malloced
    assert len(present(store, 2 * PER_PAGE - 100, 100)) > 0  # live items were rescued, not lost


BIG_VALUES = [600_000, 524_288, 1_000_000, 1_048_000, 700_000]


def test_big_items_are_chained_over_chunks_of_memcached_classes(clocked) -> None:
    """A header chunk in a small class, full chunks of the largest, a last one as big as needed
    (the classes and counts memcached 1.6.18 reports for the same five values)."""
    c = clocked()
    store = c.store
    for number, size in enumerate(BIG_VALUES):
        value = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        assert store.store(outcomes.SET, b"big%d" % number, 0, 0, value)[0] == outcomes.STORED
        assert store.get(b"big%d" % number)[1] == value
    used = {clsid: c.slab_stat(clsid, "used_chunks") for clsid in (2, 31, 35, 39)}
    assert used == {2: 6, 31: 1, 35: 1, 39: 7}
    assert c.item_stat(39, "number") == 5
    for number in range(len(BIG_VALUES)):
        store.delete(b"big%d" % number)
    assert all(c.slab_stat(clsid, "used_chunks") == 0 for clsid in (2, 31, 35, 39))


def test_moving_a_page_with_value_chunks_evicts_their_items(clocked) -> None:
    c = clocked()
    store = c.store
    for number in range(4):
        store.store(outcomes.SET, b"big%d" % number, 0, 0, b"b" * 1_000_000)
    largest = store.slabs.largest
    assert c.slab_stat(largest, "total_pages") == 4
    assert store.slabs_reassign(largest, 5) == OK
    store.rebalancer.step()
    assert c.stat("slab_reassign_evictions_nomem") == 1  # the first page held big0's first value chunk
    assert store.get(b"big0") is None and store.get(b"big1")[1] == b"b" * 1_000_000
    assert c.slab_stat(largest, "used_chunks") == 6 and c.slab_stat(2, "used_chunks") == 3


def big_value(number: int) -> bytes:
    return (b"%07d|" % number) * 1375  # 11,000 bytes: a header chunk and three value chunks


HEADER_CLASS = 2  # 120-byte chunks, 8738 a page: a big item's header chunk, or a 40-byte value
HEADERS_PER_PAGE = 8738


def test_a_moved_page_rescues_value_chunks_and_chained_headers(clocked) -> None:
    """With 4 KiB chunks, big items are chains; moving a page of value chunks copies each
    chunk elsewhere in its class, moving a page of header chunks copies each header with the
    chain it heads, and every value reads back whole."""
    c = clocked(slab_chunk_max=4096)
    store = c.store
    small = b"s" * 40
    for number in range(HEADERS_PER_PAGE - 38):
        store.store(outcomes.SET, b"s%05d" % number, 0, 0, small)
    for number in range(600):  # 38 headers end the first page of class 2, the rest start a second
        store.store(outcomes.SET, b"n%d" % number, 0, 0, big_value(number))
    for number in range(0, 600, 3):
        store.delete(b"n%d" % number)
    for number in range(5000):
        store.delete(b"s%05d" % number)
    first_header = store.peek(b"n0").location if store.peek(b"n0") else store.peek(b"n1").location
    assert store.slabs.page_class[first_header >> 16] == HEADER_CLASS
    assert store.slabs_reassign(store.slabs.largest, 0) == OK  # a page of value chunks
    store.rebalancer.step()
    assert c.stat("slab_reassign_chunk_rescues") > 0 and c.stat("slab_reassign_rescues") == 0
    assert store.slabs_reassign(HEADER_CLASS, 0) == OK  # small items and 25 chained headers
    store.rebalancer.step()
    assert c.stat("slab_reassign_rescues") == HEADERS_PER_PAGE - 38 - 5000 + 25
    assert c.stat("slab_reassign_evictions_nomem") == 0 and c.stat("slab_global_page_pool") == 2
    assert c.stat("curr_items") == HEADERS_PER_PAGE - 38 - 5000 + 400
    for number in range(600):
        expected = None if number % 3 == 0 else big_value(number)
        found = store.get(b"n%d" % number)
        assert (found and found[1]) == expected
    assert store.get(b"s05000")[1] == small


def test_expired_items_of_a_moved_page_just_go(clocked) -> None:
    """memcached neither rescues nor counts an eviction for an item already dead."""
    c = clocked()
    store = c.store
    fill(store, 0, PER_PAGE, exptime=5)
    fill(store, PER_PAGE, PER_PAGE + 10)
    c.advance(6)
    assert store.slabs_reassign(CLASS, 0) == OK
    store.rebalancer.step()
    assert c.stat("slab_reassign_rescues") == 0 and c.stat("slab_reassign_evictions_nomem") == 0
    assert c.stat("curr_items") == PER_PAGE + 10
    assert len(present(store, PER_PAGE, PER_PAGE + 10)) == PER_PAGE + 10


def test_automove_drains_free_pages_without_waiting_a_second_each(clocked) -> None:
    """After it gave a page to the global pool, memcached's automover decides again at once."""
    c = clocked(slab_automove=1, slab_automove_window=3)
    store = c.store
    fill(store, 0, 8 * PER_PAGE)
    for number in range(8 * PER_PAGE):
        store.delete(b"k%05d" % number)
    for _ in range(4):  # the window must see no page growth, evictions or failures
        c.advance(1)
        store.rebalancer_step()
    for _ in range(10):  # within the same second
        store.rebalancer_step()
    # Free chunks over 2.5 pages' worth keep going: 8 pages end as 2 in the class, 6 in the pool.
    assert c.stat("slab_global_page_pool") == 6 and c.slab_stat(CLASS, "total_pages") == 2
