"""The store's ``stats`` lines: general, ``slabs``, ``items`` and ``sizes``, in memcached's order.

Counters are kept per slab class and per LRU list on the hot path (one list index each); the
totals memcached prints are summed here, when someone asks.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, List, Tuple

from pymcd.store.items import COLD, HOT, SEGMENTS, TEMP, WARM
if TYPE_CHECKING:  # pragma: no cover
    from pymcd.store.store import Store

Stat = Tuple[str, object]
SIZE_BUCKET = 32

# Counters kept per slab class, and per LRU list (clsid * 4 + segment), on the hot path.
PER_CLASS_COUNTERS = (
    "cmd_set", "delete_hits", "incr_hits", "decr_hits", "cas_hits", "cas_badval",
    "touch_hits",
)
PER_LRU_COUNTERS = (
    "hits", "evicted", "evicted_nonzero", "evicted_time", "outofmemory", "tailrepairs", "reclaimed",
    "expired_unfetched", "evicted_unfetched", "evicted_active", "crawler_reclaimed",
    "crawler_items_checked", "lrutail_reflocked", "moves_to_cold", "moves_to_warm",
    "moves_within_lru", "direct_reclaims",
)


def _class_sum(store: "Store", name: str, clsid: int) -> int:
    counters = store.per_lru[name]
    return sum(counters[clsid * SEGMENTS:(clsid + 1) * SEGMENTS])


def _total(store: "Store", name: str) -> int:
    source = store.per_lru if name in store.per_lru else store.per_class
    return sum(source[name])


def general_stats(store: "Store") -> List[Stat]:
    """The store's part of plain ``stats``."""
    get_hits = _total(store, "hits")

    def maintained(stats: List[Stat]) -> List[Stat]:
        """memcached shows the segmented LRU's counters only with its maintainer thread."""
        return stats if store.settings.lru_maintainer else []

    lines: List[Stat] = [
        ("cmd_get", get_hits + store.get_misses),
        ("cmd_set", _total(store, "cmd_set")),
        ("cmd_touch", store.cmd_touch),
        ("get_hits", get_hits),
        ("get_misses", store.get_misses),
        ("get_expired", store.get_expired),
        ("get_flushed", store.get_flushed),
        ("delete_misses", store.delete_misses),
        ("delete_hits", _total(store, "delete_hits")),
        ("incr_misses", store.incr_misses),
        ("incr_hits", _total(store, "incr_hits")),
        ("decr_misses", store.decr_misses),
        ("decr_hits", _total(store, "decr_hits")),
        ("cas_misses", store.cas_misses),
        ("cas_hits", _total(store, "cas_hits")),
        ("cas_badval", _total(store, "cas_badval")),
        ("touch_hits", _total(store, "touch_hits")),
        ("touch_misses", store.touch_misses),
        ("store_too_large", store.store_too_large),
        ("store_no_memory", store.store_no_memory),
        ("limit_maxbytes", store.settings.memory_limit),
        ("hash_power_level", _hash_power(store.index_size)),
        ("hash_bytes", 8 << _hash_power(store.index_size)),
        ("hash_is_expanding", 0),
    ]
    if store.settings.slab_reassign:
        lines += [
            ("slab_reassign_rescues", store.slab_reassign_rescues),
            ("slab_reassign_chunk_rescues", 0),
            ("slab_reassign_evictions_nomem", store.slab_reassign_evictions_nomem),
            ("slab_reassign_inline_reclaim", 0),
            ("slab_reassign_busy_items", store.slab_reassign_busy_items),
            ("slab_reassign_busy_deletes", 0),
            ("slab_reassign_running", int(store.rebalancer.pending is not None)),
            ("slabs_moved", store.slabs_moved),
        ]
    if store.settings.lru_crawler:
        lines += [
            ("lru_crawler_running", int(store.crawler.running)),
            ("lru_crawler_starts", store.lru_crawler_starts),
        ]
    if store.settings.lru_maintainer:
        lines.append(("lru_maintainer_juggles", store.lru_maintainer_juggles))
    return lines + [
        ("malloc_fails", 0),
        ("bytes", store.bytes),
        ("curr_items", store.curr_items),
        ("total_items", store.total_items),
        ("slab_global_page_pool", len(store.slabs.spare_pages)),
        ("expired_unfetched", _total(store, "expired_unfetched")),
        ("evicted_unfetched", _total(store, "evicted_unfetched")),
    ] + maintained([("evicted_active", _total(store, "evicted_active"))]) + [
        ("evictions", _total(store, "evicted")),
        ("reclaimed", _total(store, "reclaimed")),
        ("crawler_reclaimed", _total(store, "crawler_reclaimed")),
        ("crawler_items_checked", _total(store, "crawler_items_checked")),
        ("lrutail_reflocked", 0),
    ] + maintained([
        ("moves_to_cold", _total(store, "moves_to_cold")),
        ("moves_to_warm", _total(store, "moves_to_warm")),
        ("moves_within_lru", _total(store, "moves_within_lru")),
        ("direct_reclaims", _total(store, "direct_reclaims")),
        ("lru_bumps_dropped", 0),
    ])


def _hash_power(items: int) -> int:
    """memcached's hash table starts at 2**16 buckets and doubles past 1.5 items a bucket."""
    power = 16
    while items > (3 << power) // 2:
        power += 1
    return power


def slabs_stats(store: "Store") -> List[Stat]:
    """``stats slabs``: every class that has pages."""
    lines: List[Stat] = []
    active = 0
    for cls in store.slabs.classes[1:]:
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
            ("%d:get_hits" % n, _class_sum(store, "hits", n)),
        ]
        lines += [("%d:%s" % (n, name), store.per_class[name][n]) for name in PER_CLASS_COUNTERS]
    lines += [("active_slabs", active), ("total_malloced", store.slabs.malloced)]
    return lines


def items_stats(store: "Store") -> List[Stat]:
    """``stats items``: every class that holds items, per LRU where memcached splits them."""
    lines: List[Stat] = []
    lru = store.lru
    for cls in store.slabs.classes[1:]:
        n = cls.clsid
        base = n * SEGMENTS
        number = sum(lru.counts[base:base + SEGMENTS])
        if number == 0:
            continue
        prefix = "items:%d:" % n
        maintained = store.settings.lru_maintainer
        lines.append((prefix + "number", number))
        if maintained:
            lines += [
                (prefix + "number_hot", lru.counts[base + HOT]),
                (prefix + "number_warm", lru.counts[base + WARM]),
                (prefix + "number_cold", lru.counts[base + COLD]),
            ]
            if store.settings.temp_lru:
                lines.append((prefix + "number_temp", lru.counts[base + TEMP]))
            lines += [
                (prefix + "age_hot", store.tail_age(n, HOT)),
                (prefix + "age_warm", store.tail_age(n, WARM)),
            ]
        lines += [
            (prefix + "age", store.tail_age(n, COLD)),
            (prefix + "mem_requested", lru.class_bytes(n)),
        ]
        for name in ("evicted", "evicted_nonzero"):
            lines.append((prefix + name, _class_sum(store, name, n)))
        lines.append((prefix + "evicted_time", max(store.per_lru["evicted_time"][base:base + SEGMENTS])))
        names = ["outofmemory", "tailrepairs", "reclaimed", "expired_unfetched", "evicted_unfetched"]
        names += ["evicted_active"] if maintained else []
        names += ["crawler_reclaimed", "crawler_items_checked", "lrutail_reflocked"]
        if maintained:
            names += ["moves_to_cold", "moves_to_warm", "moves_within_lru", "direct_reclaims"]
        lines += [(prefix + name, _class_sum(store, name, n)) for name in names]
        if maintained:
            hits = store.per_lru["hits"]
            lines += [
                (prefix + "hits_to_hot", hits[base + HOT]),
                (prefix + "hits_to_warm", hits[base + WARM]),
                (prefix + "hits_to_cold", hits[base + COLD]),
                (prefix + "hits_to_temp", hits[base + TEMP]),
            ]
    return lines


def sizes_stats(store: "Store") -> List[Stat]:
    """``stats sizes``: items per 32-byte size bucket, only with ``-o track_sizes``.

    memcached keeps the histogram as items come and go, counting those whose CAS is at least
    the one taken when tracking began; walking the linked items on demand gives the same
    counts without a cost on every store.
    """
    if not store.settings.track_sizes:
        return [("sizes_status", "disabled")]
    buckets: Counter = Counter()
    for cls in store.slabs.classes[1:]:
        for location in store.locations_of_class(cls.clsid):
            view = store.view_at(location, with_value=False)
            if view.cas < store.sizes_cas_min:
                continue
            size = view.total_size
            buckets[-(-size // SIZE_BUCKET) * SIZE_BUCKET] += 1
    return [(str(size), count) for size, count in sorted(buckets.items())]
