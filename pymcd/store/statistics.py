"""The store's ``stats`` lines: general, ``slabs``, ``items`` and ``sizes``, in memcached's order.

Counters are kept per slab class and per LRU list on the hot path (one list index each); the
totals memcached prints are summed here, when someone asks.
"""

from __future__ import annotations

from collections import Counter
from typing import List, Tuple

from pymcd.store.items import COLD, HOT, SEGMENTS, TEMP, WARM
from pymcd.store.pages import PER_CLASS_COUNTERS, ItemPages

Stat = Tuple[str, object]
SIZE_BUCKET = 32


def _class_sum(pages: ItemPages, name: str, clsid: int) -> int:
    counters = pages.per_lru[name]
    return sum(counters[clsid * SEGMENTS:(clsid + 1) * SEGMENTS])


def _total(pages: ItemPages, name: str) -> int:
    source = pages.per_lru if name in pages.per_lru else pages.per_class
    return sum(source[name])


def general_stats(pages: ItemPages, crawler_running: bool, reassign_running: bool) -> List[Stat]:
    """The store's part of plain ``stats``."""
    get_hits = _total(pages, "hits")

    def maintained(stats: List[Stat]) -> List[Stat]:
        """memcached shows the segmented LRU's counters only with its maintainer thread."""
        return stats if pages.settings.lru_maintainer else []

    lines: List[Stat] = [
        ("cmd_get", get_hits + pages.get_misses),
        ("cmd_set", _total(pages, "cmd_set")),
        ("cmd_touch", pages.cmd_touch),
        ("get_hits", get_hits),
        ("get_misses", pages.get_misses),
        ("get_expired", pages.get_expired),
        ("get_flushed", pages.get_flushed),
        ("delete_misses", pages.delete_misses),
        ("delete_hits", _total(pages, "delete_hits")),
        ("incr_misses", pages.incr_misses),
        ("incr_hits", _total(pages, "incr_hits")),
        ("decr_misses", pages.decr_misses),
        ("decr_hits", _total(pages, "decr_hits")),
        ("cas_misses", pages.cas_misses),
        ("cas_hits", _total(pages, "cas_hits")),
        ("cas_badval", _total(pages, "cas_badval")),
        ("touch_hits", _total(pages, "touch_hits")),
        ("touch_misses", pages.touch_misses),
        ("store_too_large", pages.store_too_large),
        ("store_no_memory", pages.store_no_memory),
        ("limit_maxbytes", pages.settings.memory_limit),
        ("hash_power_level", pages.grow_hash_power()),
        ("hash_bytes", 8 << pages.hash_power),
        ("hash_is_expanding", 0),
    ]
    if pages.settings.slab_reassign:
        lines += [
            ("slab_reassign_rescues", pages.slab_reassign_rescues),
            ("slab_reassign_chunk_rescues", pages.slab_reassign_chunk_rescues),
            ("slab_reassign_evictions_nomem", pages.slab_reassign_evictions_nomem),
            ("slab_reassign_inline_reclaim", pages.slab_reassign_inline_reclaim),
            ("slab_reassign_busy_items", pages.slab_reassign_busy_items),
            ("slab_reassign_busy_deletes", 0),
            ("slab_reassign_running", int(reassign_running)),
            ("slabs_moved", pages.slabs_moved),
        ]
    if pages.settings.lru_crawler:
        lines += [
            ("lru_crawler_running", int(crawler_running)),
            ("lru_crawler_starts", pages.lru_crawler_starts),
        ]
    if pages.settings.lru_maintainer:
        lines.append(("lru_maintainer_juggles", pages.lru_maintainer_juggles))
    return lines + [
        ("malloc_fails", 0),
        ("bytes", pages.bytes),
        ("curr_items", pages.curr_items),
        ("total_items", pages.total_items),
        ("slab_global_page_pool", len(pages.slabs.spare_pages)),
        ("expired_unfetched", _total(pages, "expired_unfetched")),
        ("evicted_unfetched", _total(pages, "evicted_unfetched")),
    ] + maintained([("evicted_active", _total(pages, "evicted_active"))]) + [
        ("evictions", _total(pages, "evicted")),
        ("reclaimed", _total(pages, "reclaimed")),
        ("crawler_reclaimed", _total(pages, "crawler_reclaimed")),
        ("crawler_items_checked", _total(pages, "crawler_items_checked")),
        ("lrutail_reflocked", 0),
    ] + maintained([
        ("moves_to_cold", _total(pages, "moves_to_cold")),
        ("moves_to_warm", _total(pages, "moves_to_warm")),
        ("moves_within_lru", _total(pages, "moves_within_lru")),
        ("direct_reclaims", _total(pages, "direct_reclaims")),
        ("lru_bumps_dropped", 0),
    ])


def slabs_stats(pages: ItemPages) -> List[Stat]:
    """``stats slabs``: every class that has pages."""
    lines: List[Stat] = []
    active = 0
    for cls in pages.slabs.classes[1:]:
        if not cls.pages:
            continue
        active += 1
        n = cls.clsid
        lines += [
            ("%d:chunk_size" % n, cls.size),
            ("%d:chunks_per_page" % n, cls.perslab),
            ("%d:total_pages" % n, len(cls.pages)),
            ("%d:total_chunks" % n, cls.total_chunks),
            ("%d:used_chunks" % n, cls.used_chunks),
            ("%d:free_chunks" % n, len(cls.free)),
            ("%d:free_chunks_end" % n, 0),
            ("%d:get_hits" % n, _class_sum(pages, "hits", n)),
        ]
        lines += [("%d:%s" % (n, name), pages.per_class[name][n]) for name in PER_CLASS_COUNTERS]
    lines += [("active_slabs", active), ("total_malloced", pages.slabs.malloced)]
    return lines


def items_stats(pages: ItemPages) -> List[Stat]:
    """``stats items``: every class that holds items, per LRU where memcached splits them."""
    lines: List[Stat] = []
    lru = pages.lru
    for cls in pages.slabs.classes[1:]:
        n = cls.clsid
        base = n * SEGMENTS
        number = sum(lru.counts[base:base + SEGMENTS])
        if number == 0:
            continue
        prefix = "items:%d:" % n
        maintained = pages.settings.lru_maintainer
        lines.append((prefix + "number", number))
        if maintained:
            lines += [
                (prefix + "number_hot", lru.counts[base + HOT]),
                (prefix + "number_warm", lru.counts[base + WARM]),
                (prefix + "number_cold", lru.counts[base + COLD]),
            ]
            if pages.settings.temp_lru:
                lines.append((prefix + "number_temp", lru.counts[base + TEMP]))
            lines += [
                (prefix + "age_hot", pages.tail_age(n, HOT)),
                (prefix + "age_warm", pages.tail_age(n, WARM)),
            ]
        lines += [
            (prefix + "age", pages.tail_age(n, COLD)),
            (prefix + "mem_requested", lru.class_bytes(n)),
        ]
        for name in ("evicted", "evicted_nonzero"):
            lines.append((prefix + name, _class_sum(pages, name, n)))
        lines.append((prefix + "evicted_time", max(pages.per_lru["evicted_time"][base:base + SEGMENTS])))
        names = ["outofmemory", "tailrepairs", "reclaimed", "expired_unfetched", "evicted_unfetched"]
        names += ["evicted_active"] if maintained else []
        names += ["crawler_reclaimed", "crawler_items_checked", "lrutail_reflocked"]
        if maintained:
            names += ["moves_to_cold", "moves_to_warm", "moves_within_lru", "direct_reclaims"]
        lines += [(prefix + name, _class_sum(pages, name, n)) for name in names]
        if maintained:
            hits = pages.per_lru["hits"]
            lines += [
                (prefix + "hits_to_hot", hits[base + HOT]),
                (prefix + "hits_to_warm", hits[base + WARM]),
                (prefix + "hits_to_cold", hits[base + COLD]),
                (prefix + "hits_to_temp", hits[base + TEMP]),
            ]
    return lines


def sizes_stats(pages: ItemPages, cas_min: int) -> List[Stat]:
    """``stats sizes``: items per 32-byte size bucket, only with ``-o track_sizes``.

    memcached keeps the histogram as items come and go, counting those whose CAS is at least
    the one taken when tracking began; walking the linked items on demand gives the same
    counts without a cost on every pages.
    """
    if not pages.settings.track_sizes:
        return [("sizes_status", "disabled")]
    buckets: Counter = Counter()
    for cls in pages.slabs.classes[1:]:
        for location in pages.locations_of_class(cls.clsid):
            view = pages.view_at(location, with_value=False)
            if view.cas < cas_min:
                continue
            size = view.total_size
            buckets[-(-size // SIZE_BUCKET) * SIZE_BUCKET] += 1
    return [(str(size), count) for size, count in sorted(buckets.items())]
