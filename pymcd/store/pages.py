"""Items in their slab pages: the index, the chains of big items, and the page-level helpers.

Everything that walks or rewrites items chunk by chunk lives here, below the store API: the
crawler, the page mover, the ``stats`` walks and the warm restart's rebuild all work on an
:class:`ItemPages` and never on :class:`pymcd.store.store.Store`, which extends it with the
commands' operations. The store is a subclass rather than a holder of an ItemPages because its
hot paths read these tables as attributes of ``self``: one lookup fewer on every request.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional

from pymcd.store.items import (
    ACTIVE,
    FETCHED,
    FREE_CHUNK,
    HEADER,
    HEADER_SIZE,
    HOT,
    KEY_BINARY,
    OFF_CLSID,
    OFF_LRU,
    OFF_TIME,
    READ,
    SEGMENTS,
    STALE,
    TEMP,
    TIME,
    TOKEN_SENT,
    WARM,
    COLD,
    accounted_size,
)
from pymcd.store.lru import LRULists
from pymcd.store.settings import StoreSettings
from pymcd.store.slabs import SLOT_BITS, SlabAllocator

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
# Counters kept as plain attributes (what ``stats reset`` zeroes besides the lists above).
SCALAR_COUNTERS = (
    "get_misses", "get_expired", "get_flushed", "cmd_touch", "touch_misses",
    "delete_misses", "incr_misses", "decr_misses", "cas_misses", "store_too_large",
    "store_no_memory", "slabs_moved", "slab_reassign_rescues", "slab_reassign_chunk_rescues",
    "slab_reassign_evictions_nomem", "slab_reassign_inline_reclaim", "slab_reassign_busy_items",
    "lru_maintainer_juggles", "lru_crawler_starts", "total_items",
)


class ItemView:
    """A snapshot of one item, for the meta commands and introspection (not the hot path)."""

    __slots__ = (
        "key", "flags", "value", "nbytes", "cas", "exptime", "last_access", "fetched", "active",
        "stale", "token_sent", "key_binary", "clsid", "total_size", "location", "lru",
    )

    def __init__(self, **fields) -> None:
        for name, value in fields.items():
            setattr(self, name, value)


class ItemPages:
    """The items of one cache, as they lie in their pages, with the tables that find them."""

    def __init__(self, settings: StoreSettings, process_started: float, now: int) -> None:
        self.settings = settings
        # memcached's rel time: ``now`` is seconds since ``process_started`` (unix time).
        self.process_started = process_started
        self.now = now
        self.slabs = SlabAllocator(settings)
        # The allocator's page tables, bound once: the hot paths index them directly.
        self._pages = self.slabs.pages
        self._chunk_sizes = self.slabs.page_chunk_size
        self._page_class = self.slabs.page_class
        self._largest = self.slabs.largest
        self._classes = self.slabs.classes
        self.lru = LRULists(self.slabs)
        self._index: Dict[bytes, int] = {}
        self._chains: Dict[int, List[int]] = {}  # head location -> further chunks of big items
        self.oldest_live = 0
        self.oldest_cas = 0
        # Receives memcached's sysevents lines (LRU crawler results, automover page moves).
        self.system_event_listener: Optional[Callable[[bytes], None]] = None
        nclasses = len(self.slabs.classes)
        self.per_class = {name: [0] * nclasses for name in PER_CLASS_COUNTERS}
        self.per_lru = {name: [0] * (nclasses * SEGMENTS) for name in PER_LRU_COUNTERS}
        self.reset_counters()
        self.curr_items = 0
        self.bytes = 0

    def reset_counters(self) -> None:
        for name in SCALAR_COUNTERS:
            setattr(self, name, 0)
        for counters in self.per_class.values():
            counters[:] = [0] * len(counters)
        for counters in self.per_lru.values():
            counters[:] = [0] * len(counters)

    @property
    def index_size(self) -> int:
        return len(self._index)

    # ------------------------------------------------------------------ liveness

    def is_flushed(self, last_access: int, cas: int) -> bool:
        """Written before the last flush_all took effect."""
        oldest = self.oldest_live
        if not oldest or oldest > self.now:
            return False
        return last_access <= oldest or bool(self.oldest_cas and cas and cas < self.oldest_cas)

    def is_dead(self, exptime: int, last_access: int, cas: int, strictly: bool = False) -> bool:
        """Expired or flushed: memcached's two reasons an item no longer exists. The crawler,
        metadump and the page mover (``strictly``) still count an item expiring this very
        second as alive."""
        if exptime and (exptime < self.now or (exptime == self.now and not strictly)):
            return True
        return self.is_flushed(last_access, cas)

    # ------------------------------------------------------------------ reading items

    def _accounted_at(self, page: bytearray, offset: int) -> int:
        _, _, flags, nbytes, _, nkey = READ.unpack_from(page, offset)
        return accounted_size(nkey, flags, nbytes, self.settings.use_cas)

    def _chained_value(self, location: int, start: int, nbytes: int) -> bytes:
        """The value of an item spread over a header chunk and its value chunks."""
        slabs = self.slabs
        page, offset = slabs.locate(location)
        parts = [page[start:offset + slabs.page_chunk_size[location >> SLOT_BITS]]]
        for further in self._chains[location]:
            page, offset = slabs.locate(further)
            parts.append(page[offset:offset + slabs.page_chunk_size[further >> SLOT_BITS]])
        return b"".join(parts)[:nbytes]

    def _view(self, location: int, key: Optional[bytes] = None, with_value: bool = True) -> ItemView:
        page, offset = self.slabs.locate(location)
        (exptime, last_access, flags, nbytes, cas, nkey, bits, lru, clsid, _, _) = \
            HEADER.unpack_from(page, offset)
        start = offset + HEADER_SIZE
        if key is None:
            key = bytes(page[start:start + nkey])
        if not with_value:
            value = b""
        elif location in self._chains:
            value = self._chained_value(location, start + nkey, nbytes)
        else:
            value = bytes(page[start + nkey:start + nkey + nbytes])
        return ItemView(
            key=key, flags=flags, value=value, nbytes=nbytes, cas=cas, exptime=exptime,
            last_access=last_access, fetched=bool(bits & FETCHED), active=bool(bits & ACTIVE),
            stale=bool(bits & STALE), token_sent=bool(bits & TOKEN_SENT),
            key_binary=bool(bits & KEY_BINARY), clsid=clsid,
            total_size=accounted_size(nkey, flags, nbytes, self.settings.use_cas),
            location=location, lru=lru,
        )

    def view_at(self, location: int, with_value: bool = True) -> Optional[ItemView]:
        """The item whose header is in a chunk, or None if there is none any more: walks that
        span several steps (the crawler's) may find a chunk freed, or reused for a value."""
        page, offset = self.slabs.locate(location)
        if page[offset + OFF_LRU] == FREE_CHUNK:
            return None
        view = self._view(location, with_value=False)
        if self._index.get(view.key) != location:
            return None
        return self._view(location, view.key) if with_value else view

    def tail_age(self, clsid: int, segment: int) -> int:
        """Seconds since the tail item of a list was last touched (0 if the list is empty)."""
        tail = self.lru.tails[clsid * SEGMENTS + segment]
        if tail < 0:
            return 0
        page, offset = self.slabs.locate(tail)
        return self.now - TIME.unpack_from(page, offset + OFF_TIME)[0]

    def locations_of_class(self, clsid: int) -> List[int]:
        """Every linked item of a class, tail first per LRU (for the crawler and dumps)."""
        found = []
        for segment in (HOT, WARM, COLD, TEMP):
            location = self.lru.tails[clsid * SEGMENTS + segment]
            while location >= 0:
                found.append(location)
                location = self.lru.previous(location)
        return found

    # ------------------------------------------------------------------ removing items

    def free_item(self, location: int) -> None:
        """Remove the item whose header is here: index, LRU and chunks."""
        slabs = self.slabs
        page, offset = slabs.locate(location)
        _, _, flags, nbytes, _, nkey = READ.unpack_from(page, offset)
        key = bytes(page[offset + HEADER_SIZE:offset + HEADER_SIZE + nkey])
        clsid = page[offset + OFF_CLSID]
        accounted = accounted_size(nkey, flags, nbytes, self.settings.use_cas)
        self.lru.unlink(location, clsid, accounted)
        if self._index.get(key) == location:
            del self._index[key]
        for further in self._chains.pop(location, ()):
            slabs.free(further)
        page[offset + OFF_LRU] = FREE_CHUNK
        slabs.free(location)
        self.curr_items -= 1
        self.bytes -= accounted

    # ------------------------------------------------------------------ moving chunks

    def holds_item(self, location: int) -> bool:
        """Whether an item's header is in this chunk right now."""
        return self.view_at(location, with_value=False) is not None

    def chunk_owners(self, start: int, end: int) -> Dict[int, int]:
        """Value chunks of big items in ``[start, end)``, mapped to their items' header chunks."""
        return {further: head for head, chain in self._chains.items()
                for further in chain if start <= further < end}

    def rescue(self, location: int, target: int) -> None:
        """Copy the item whose header is in ``location`` into ``target``, a free chunk of the
        same class the caller (the page mover) took off the free list; a big item keeps its
        value chunks. The old chunk is the caller's to place."""
        slabs = self.slabs
        page, offset = slabs.locate(location)
        _, _, flags, nbytes, _, nkey = READ.unpack_from(page, offset)
        chain = self._chains.pop(location, None)
        size = slabs.page_chunk_size[location >> SLOT_BITS] if chain else HEADER_SIZE + nkey + nbytes
        accounted = accounted_size(nkey, flags, nbytes, self.settings.use_cas)
        clsid = page[offset + OFF_CLSID]
        segment = self.lru.unlink(location, clsid, accounted)
        new_page, new_offset = slabs.locate(target)
        new_page[new_offset:new_offset + size] = page[offset:offset + size]
        self.lru.link(target, clsid, segment, accounted)
        key = bytes(page[offset + HEADER_SIZE:offset + HEADER_SIZE + nkey])
        self._index[key] = target
        if chain is not None:
            self._chains[target] = chain
        page[offset + OFF_LRU] = FREE_CHUNK

    def rescue_chunk(self, head: int, location: int, target: int) -> None:
        """Copy one value chunk of the big item headed at ``head`` into ``target``."""
        slabs = self.slabs
        size = slabs.page_chunk_size[location >> SLOT_BITS]
        page, offset = slabs.locate(location)
        new_page, new_offset = slabs.locate(target)
        new_page[new_offset:new_offset + size] = page[offset:offset + size]
        chain = self._chains[head]
        chain[chain.index(location)] = target
