"""Eviction under -m: order, the active bit, TEMP items, -M refusals and items over -I."""

from __future__ import annotations

from pymcd.store import outcomes
from pymcd.store.items import COLD, HOT, TEMP, WARM

from tests.store.conftest import MIB

VALUE = b"v" * 1000  # 48 + 7 + 1002 + 8 = 1065 bytes accounted: class 12 (1184 B chunks, 885 a page)
CLASS = 12
PER_PAGE = 885


def fill(store, first: int, count: int, exptime: int = 0) -> None:
    for number in range(first, first + count):
        assert store.store(outcomes.SET, b"k%05d" % number, 0, exptime, VALUE)[0] == outcomes.STORED


def present(store, first: int, count: int) -> list:
    return [number for number in range(first, first + count) if store.peek(b"k%05d" % number)]


def test_the_least_recently_stored_go_first(clocked) -> None:
    c = clocked(memory_limit=2 * MIB)
    store = c.store
    fill(store, 0, 2 * PER_PAGE)
    assert c.stat("evictions") == 0 and c.slab_stat(CLASS, "total_pages") == 2
    fill(store, 2 * PER_PAGE, 10)
    assert c.stat("evictions") == 10
    assert present(store, 0, 11) == [10]
    assert c.stat("evicted_unfetched") == 10
    assert c.item_stat(CLASS, "evicted") == 10
    assert c.stat("curr_items") == 2 * PER_PAGE
    assert c.slab_stat(CLASS, "total_pages") == 2  # the budget held: no third page


def test_evicted_time_is_the_victims_idle_seconds(clocked) -> None:
    c = clocked(memory_limit=2 * MIB)
    fill(c.store, 0, 2 * PER_PAGE)
    c.advance(42)
    fill(c.store, 2 * PER_PAGE, 1)
    assert c.item_stat(CLASS, "evicted_time") == 42


def test_items_fetched_twice_are_active_and_outlive_the_others(clocked) -> None:
    c = clocked(memory_limit=2 * MIB)
    store = c.store
    fill(store, 0, 2 * PER_PAGE)
    store.get(b"k00020")
    store.get(b"k00020")  # second fetch sets the active bit
    store.get(b"k00021")  # fetched once: not active, goes like the rest
    fill(store, 2 * PER_PAGE, PER_PAGE)
    assert store.peek(b"k00020") is not None
    assert store.peek(b"k00020").lru == WARM
    assert store.peek(b"k00021") is None
    assert c.stat("evicted_unfetched") == c.stat("evictions") - 1


def test_temp_items_are_never_evicted_before_they_expire(clocked) -> None:
    c = clocked(memory_limit=4 * MIB, temp_lru=True, temporary_ttl=61)
    store = c.store
    fill(store, 0, PER_PAGE, exptime=30)  # TTL under temporary_ttl: the TEMP LRU
    assert store.peek(b"k00000").lru == TEMP
    fill(store, 10_000, 6 * PER_PAGE)  # no TTL: HOT, then COLD, then evicted
    assert c.stat("evictions") > 2 * PER_PAGE
    assert len(present(store, 0, PER_PAGE)) == PER_PAGE
    assert c.item_stat(CLASS, "number_temp") == PER_PAGE
    c.advance(31)
    store.juggle(CLASS)  # the maintainer reclaims expired TEMP tails
    assert c.item_stat(CLASS, "number_temp") < PER_PAGE
    assert c.stat("reclaimed") > 0


def test_minus_M_refuses_instead_of_evicting(clocked) -> None:
    c = clocked(memory_limit=2 * MIB, evict_to_free=False)
    store = c.store
    fill(store, 0, 2 * PER_PAGE)
    result, cas = store.store(outcomes.SET, b"one-more", 0, 0, VALUE)
    assert (result, cas) == (outcomes.NO_MEMORY, 0)
    assert c.stat("evictions") == 0
    assert c.stat("store_no_memory") == 1
    assert c.item_stat(CLASS, "outofmemory") == 1
    assert len(present(store, 0, 2 * PER_PAGE)) == 2 * PER_PAGE
    # Expired items are still reclaimed to make room.
    c2 = clocked(memory_limit=2 * MIB, evict_to_free=False)
    fill(c2.store, 0, 2 * PER_PAGE, exptime=10)
    c2.advance(11)
    assert c2.store.store(outcomes.SET, b"fits", 0, 0, VALUE)[0] == outcomes.STORED
    assert c2.stat("reclaimed") >= 1


def test_a_failed_set_drops_the_old_value(clocked) -> None:
    """memcached unlinks the old item when a SET cannot be stored, so stale data never stays."""
    c = clocked(memory_limit=2 * MIB, evict_to_free=False)
    store = c.store
    fill(store, 0, 2 * PER_PAGE)
    assert store.store(outcomes.SET, b"k00005", 0, 0, VALUE)[0] == outcomes.NO_MEMORY
    assert store.peek(b"k00005") is None
    assert c.stat("curr_items") == 2 * PER_PAGE - 1


def test_overwriting_a_full_class_evicts_as_memcached_does(clocked) -> None:
    """The new value needs a chunk before the old one is freed: with none free, the tail goes."""
    c = clocked(memory_limit=2 * MIB)
    store = c.store
    fill(store, 0, 2 * PER_PAGE)
    fill(store, 100, 1)
    assert c.stat("evictions") == 1 and present(store, 0, 2) == [1]
    assert c.stat("curr_items") == 2 * PER_PAGE - 1
    fill(store, 200, 1)  # now a chunk is free: no eviction
    assert c.stat("evictions") == 1


def test_items_over_the_item_size_max_are_too_large(clocked) -> None:
    c = clocked(item_size_max=1024 * 1024)
    store = c.store
    assert store.store(outcomes.SET, b"big", 0, 0, b"x" * (1024 * 1024))[0] == outcomes.TOO_LARGE
    assert c.stat("store_too_large") == 1
    largest_ok = 1024 * 1024 - (48 + 4 + 2 + 8)
    assert store.item_size_ok(3, largest_ok) and not store.item_size_ok(3, largest_ok + 1)
    assert store.store(outcomes.SET, b"big", 0, 0, b"y" * largest_ok)[0] == outcomes.STORED
    assert store.get(b"big")[1] == b"y" * largest_ok  # spread over chunks of the largest class


def test_flat_lru_evicts_in_store_order_from_cold(clocked) -> None:
    c = clocked(memory_limit=2 * MIB, lru_segmented=False, lru_maintainer=False)
    store = c.store
    fill(store, 0, 2 * PER_PAGE)
    assert store.peek(b"k00000").lru == COLD
    fill(store, 2 * PER_PAGE, 5)
    assert present(store, 0, 6) == [5]


def test_new_items_start_hot_and_the_maintainer_moves_them(clocked) -> None:
    c = clocked()
    store = c.store
    fill(store, 0, 100)
    assert store.peek(b"k00000").lru == HOT
    assert c.item_stat(CLASS, "number_hot") == 100
    store.juggle(CLASS)
    # HOT may hold 20% of the class's bytes, WARM 40%: the rest flows to COLD.
    assert c.item_stat(CLASS, "number_hot") <= 21
    assert c.item_stat(CLASS, "number_cold") >= 79
    assert c.stat("moves_to_cold") >= 79


def test_overwriting_the_item_that_is_evicted_to_make_room(clocked) -> None:
    """A full class overwrites its least recently used key: making room evicts that very item,
    and the store must not unlink it a second time (memcached looks the old item up after
    allocating)."""
    c = clocked(memory_limit=2 * MIB)
    store = c.store
    fill(store, 0, 2 * PER_PAGE)
    assert store.store(outcomes.SET, b"k00000", 0, 0, b"w" * 1000)[0] == outcomes.STORED
    assert c.stat("evictions") == 1 and c.stat("curr_items") == 2 * PER_PAGE
    assert store.peek(b"k00000").value == b"w" * 1000
    fill(store, 2 * PER_PAGE, PER_PAGE)  # the LRU is still whole
    assert c.stat("curr_items") == 2 * PER_PAGE and c.stat("evictions") == PER_PAGE + 1


def test_flat_lru_reclaims_a_flushed_tail_before_allocating(clocked) -> None:
    """-o no_modern: every alloc first reclaims the dead tails (up to five), here the item being
    overwritten and the one stored beside it."""
    c = clocked(lru_segmented=False, lru_maintainer=False)
    store = c.store
    fill(store, 0, 2)
    c.advance(2)
    store.flush_all()
    assert store.store(outcomes.SET, b"k00000", 0, 0, VALUE)[0] == outcomes.STORED
    assert c.stat("reclaimed") == 2 and c.stat("curr_items") == 1
    assert store.peek(b"k00000").value == VALUE
