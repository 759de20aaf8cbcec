"""The store's settings (memcached's names and defaults for the memory and LRU options)."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass
class StoreSettings:
    memory_limit: int = 64 * MIB
    growth_factor: float = 1.25
    chunk_size: int = 48
    item_size_max: int = MIB
    slab_chunk_max: int = MIB // 2
    slab_page_size: int = MIB
    evict_to_free: bool = True
    use_cas: bool = True
    lru_maintainer: bool = True
    lru_segmented: bool = True
    hot_lru_pct: int = 20
    warm_lru_pct: int = 40
    hot_max_factor: float = 0.2
    warm_max_factor: float = 2.0
    temp_lru: bool = False
    temporary_ttl: int = 61
    lru_crawler: bool = True
    lru_crawler_sleep: int = 100
    lru_crawler_tocrawl: int = 0
    track_sizes: bool = False
    slab_reassign: bool = True
    slab_automove: int = 1
    slab_automove_ratio: float = 0.8
    slab_automove_window: int = 30
    slab_automove_freeratio: float = 0.01  # extstore's automover only; shown in stats settings
    dump_enabled: bool = True
    initial_malloced: int = 0  # bytes counted as allocated before the first page (see pymcd.environment)
    hashpower_init: int = 0  # -o hashpower (0: memcached's 16)
