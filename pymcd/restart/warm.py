"""A store on a memory file: restored from it at start when it can be, saved at a graceful stop.

What must match for the pages to be read back is what shapes them, as memcached checks it:
``-m``, ``-n``, ``-f``, ``-I``, ``slab_chunk_max``, the page size, ``-C`` and slab reassignment.
The metadata also carries what pages do not hold: the clock, the CAS counter, the flush horizon,
the hash table's size, where each page went, the LRU heads and tails, the chains of big items,
and a CRC-32 of every page in use, so that a page written after the stop is never served from.
"""

from __future__ import annotations

import gc
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Tuple

from pymcd.logger import emit_trace
from pymcd.restart.memory_file import MemoryFile
from pymcd.restart.meta import (
    FORMAT_VERSION,
    UnusableMeta,
    format_int_lists,
    int_list,
    int_lists,
    read_meta,
    write_meta,
)
from pymcd.store import Store, StoreSettings
from pymcd.store.pages import TornPages

Trace = Callable[[str], None]


def _shaping(settings: StoreSettings) -> List[Tuple[str, str]]:
    """The settings a restart must find unchanged, under memcached's metadata names."""
    def flag(on: bool) -> str:
        return "true" if on else "false"

    return [
        ("slab_config", repr(settings.growth_factor)),
        ("maxbytes", str(settings.memory_limit)),
        ("chunk_size", str(settings.chunk_size)),
        ("item_size_max", str(settings.item_size_max)),
        ("slab_chunk_size_max", str(settings.slab_chunk_max)),
        ("slab_page_size", str(settings.slab_page_size)),
        ("use_cas", flag(settings.use_cas)),
        ("slab_reassign", flag(settings.slab_reassign)),
    ]


def open_store(settings: StoreSettings, path: str, clock: Callable[[], float] = time.time,
               trace: Trace = emit_trace) -> Tuple[Store, MemoryFile, bool]:
    """(store, its memory file, whether the items were restored)."""
    memory = MemoryFile(path, settings.memory_limit, settings.slab_page_size)
    try:
        fields = read_meta(memory.meta_path)  # CorruptMeta: memcached refuses to start
        if fields is None:
            trace("[restart] no metadata save file, starting with a clean cache")
        else:
            started = time.perf_counter()
            store = _restore(settings, memory, fields, clock)
            trace("[restart] restored %d items in %.3f s" % (store.curr_items,
                                                             time.perf_counter() - started))
            return store, memory, True
    except (UnusableMeta, TornPages, ValueError, KeyError) as reason:
        trace("[restart] %s" % reason)
        trace("[restart] failed to validate metadata, starting with a clean cache")
    return Store(settings, clock, memory.pages()), memory, False


def _restore(settings: StoreSettings, memory: MemoryFile, fields: Dict[str, str],
             clock: Callable[[], float]) -> Store:
    for key, value in _shaping(settings):
        if fields.get(key) != value:
            raise UnusableMeta("restart incompatible due to setting for [%s] [old value: %s]"
                               % (key, fields.get(key)))
    stop_time = int(fields["stop_time"])
    if clock() < stop_time:
        raise UnusableMeta("the clock is before the stop time")
    pages = memory.pages()
    class_pages = int_lists(fields["class_pages"])
    in_use = [number for numbers in class_pages.values() for number in numbers]
    # zlib lets go of the GIL: the pages are checked on another core while the lists are walked,
    # and nothing is served before both are done.
    with ThreadPoolExecutor(max_workers=1) as checker:
        checked = checker.submit(lambda: [zlib.crc32(pages[number]) for number in in_use])
        gc.disable()  # a million keys and no cycles: collections would only cost time
        try:
            store = _adopt(settings, memory, pages, fields, class_pages, clock)
        finally:
            gc.enable()
        saved = dict(zip(int_list(fields["page_numbers"]), int_list(fields["page_crc32"])))
        for number, checksum in zip(in_use, checked.result()):
            if checksum != saved.get(number):
                raise TornPages("page %d changed since the stop" % number)
    return store


def _adopt(settings: StoreSettings, memory: MemoryFile, pages: List[memoryview],
           fields: Dict[str, str], class_pages: Dict[int, List[int]],
           clock: Callable[[], float]) -> Store:
    store = Store(settings, clock, pages, preallocate=False)
    store.process_started = int(fields["process_started"])
    store.tick()
    store.oldest_live = int(fields["oldest_live"])
    store.oldest_cas = int(fields["oldest_cas"])
    dead = store.adopt(memory.mapping, class_pages, int_list(fields["spare_pages"]),
                       int_list(fields["lru_heads"]), int_list(fields["lru_tails"]),
                       int_lists(fields["chains"]))
    for location in dead:
        store.free_item(location)
    store.restore_cas(int(fields["current_cas"]))
    store.hash_power = max(store.hash_power, int(fields["hashpower"]))
    return store


def save_store(store: Store, memory: MemoryFile, clock: Callable[[], float] = time.time) -> int:
    """Write ``<file>.meta`` for the pages as they are now; returns the items saved. Nothing
    may change the store afterwards (the caller saves once requests have stopped)."""
    slabs = store.slabs
    in_use = [number for cls in slabs.classes[1:] for number in cls.pages]
    memory.flush()
    fields = [("version", FORMAT_VERSION)] + _shaping(store.settings) + [
        ("current_time", str(store.now)),
        ("process_started", str(int(store.process_started))),
        ("stop_time", str(int(clock()))),
        ("current_cas", str(store.next_cas_to_save())),
        ("oldest_cas", str(store.oldest_cas)),
        ("oldest_live", str(store.oldest_live)),
        ("hashpower", str(store.grow_hash_power())),
        ("class_pages", format_int_lists({cls.clsid: cls.pages for cls in slabs.classes[1:]
                                          if cls.pages})),
        ("spare_pages", ",".join(map(str, slabs.spare_pages))),
        ("lru_heads", ",".join(map(str, store.lru.heads))),
        ("lru_tails", ",".join(map(str, store.lru.tails))),
        ("chains", format_int_lists(store.chains)),
        ("page_numbers", ",".join(map(str, in_use))),
        ("page_crc32", ",".join(str(zlib.crc32(slabs.pages[number])) for number in in_use)),
    ]
    write_meta(memory.meta_path, fields)
    return store.curr_items
