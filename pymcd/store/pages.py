"""Items in their slab pages: the index, the chains of big items, and the page-level helpers.

Everything that walks or rewrites items chunk by chunk lives here, below the store API: the
crawler, the page mover, the ``stats`` walks and the warm restart's rebuild all work on an
:class:`ItemPages` and never on :class:`pymcd.store.store.Store`, which extends it with the
commands' operations. The store is a subclass rather than a holder of an ItemPages because its
hot paths read these tables as attributes of ``self``: one lookup fewer on every request.
"""

from __future__ import annotations

from itertools import compress
from typing import Callable, Dict, List, Optional, Sequence

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
from pymcd.store.slabs import ITEM_HEADER_SIZE, SLOT_BITS, SLOT_MASK, SlabAllocator

DEFAULT_HASH_POWER = 16
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

    def __init__(self, settings: StoreSettings, process_started: float, now: int,
                 memory: Optional[Sequence[memoryview]] = None, preallocate: bool = True) -> None:
        self.settings = settings
        # memcached's rel time: ``now`` is seconds since ``process_started`` (unix time).
        self.process_started = process_started
        self.now = now
        self.slabs = SlabAllocator(settings, memory, preallocate)
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
        self.hash_power = settings.hashpower_init or DEFAULT_HASH_POWER

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

    @property
    def chains(self) -> Dict[int, List[int]]:
        """Header chunk -> value chunks of every big item (read-only for callers)."""
        return self._chains

    def grow_hash_power(self) -> int:
        """memcached's hash table: 2**16 buckets (or -o hashpower) doubling whenever the items
        pass 1.5 a bucket, never shrinking. Checked by the maintainer and by ``stats``, not on
        every insert (memcached grows it in a background thread too)."""
        items = len(self._index)
        while items > (3 << self.hash_power) // 2:
            self.hash_power += 1
        return self.hash_power

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

    # ------------------------------------------------------------------ a warm restart

    def adopt(self, flat, class_pages: Dict[int, List[int]], spare_pages: List[int],
              heads: List[int], tails: List[int], chains: Dict[int, List[int]]) -> List[int]:
        """Take over the items an earlier run left in these (preallocated) pages; ``flat`` is
        the memory they are views of, page n at n * page size (read directly: a slice of it
        is already bytes, one allocation less per key).

        The pages are placed as they were, then each LRU list is walked from its head through
        the links in the item headers, so the index, the lists' order and their counts come
        back as they were; free lists are what no item or value chunk holds. Anything that does
        not add up (a link out of its class, list or page, a chunk claimed twice, a tail that is
        not the end of its list, two items under one key) raises :class:`TornPages`: the caller
        starts cold rather than serve from such pages. Returns the items already dead (expired
        or flushed meanwhile) for the caller to free once the clock is right.
        """
        slabs = self.slabs
        pages = self._pages
        classes = self._classes
        free_maps: Dict[int, bytearray] = {}  # page number -> 1 per chunk still free
        placed = set()
        for clsid, numbers in class_pages.items():
            if not 1 <= clsid <= self._largest:
                raise TornPages("class %d does not exist" % clsid)
            cls = classes[clsid]
            for number in numbers:
                if number in placed or not 0 <= number < len(pages):
                    raise TornPages("page %d placed twice or missing" % number)
                placed.add(number)
                cls.pages.append(number)
                slabs.page_chunk_size[number] = cls.size
                slabs.page_class[number] = clsid
                free_maps[number] = bytearray(b"\x01") * cls.perslab
        for number in spare_pages:
            if number in placed or not 0 <= number < len(pages):
                raise TornPages("page %d placed twice or missing" % number)
            placed.add(number)
            slabs.spare_pages.append(number)
        if len(placed) != len(pages):
            raise TornPages("%d pages placed, %d in the file" % (len(placed), len(pages)))
        chunk_sizes = self._chunk_sizes
        index = self._index
        lru = self.lru
        unpack = HEADER.unpack_from
        cas_bytes = 8 if self.settings.use_cas else 0
        dead: List[int] = []
        now, oldest = self.now, self.oldest_live
        maps: List[Optional[bytearray]] = [free_maps.get(number) for number in range(len(pages))]
        page_size = slabs.page_size
        walked = 0
        for list_index, head in enumerate(heads):
            clsid, segment = divmod(list_index, SEGMENTS)
            location, previous, count, size = head, -1, 0, 0
            try:
                while location >= 0:
                    number = location >> SLOT_BITS
                    slot = location & SLOT_MASK
                    free_map = maps[number]
                    if not free_map[slot]:  # None (not a class page) raises TypeError
                        raise TornPages("chunk %d is in two lists" % location)
                    free_map[slot] = 0
                    offset = number * page_size + slot * chunk_sizes[number]
                    exptime, last_access, flags, nbytes, cas, nkey, _, lru_byte, item_class, prev, \
                        nxt = unpack(flat, offset)
                    if item_class != clsid or lru_byte != segment or prev != previous:
                        raise TornPages("item at chunk %d is not where list %d says"
                                        % (location, list_index))
                    start = offset + HEADER_SIZE
                    index[flat[start:start + nkey]] = location
                    count += 1
                    size += nkey + nbytes + (4 if flags else 0)
                    if (exptime and exptime <= now) or (oldest and self.is_flushed(last_access, cas)):
                        dead.append(location)
                    previous, location = location, nxt
            except (IndexError, TypeError):
                raise TornPages("list %d links to chunk %d, not a chunk of a class page"
                                % (list_index, location))
            if previous != tails[list_index]:
                raise TornPages("list %d does not end at its tail" % list_index)
            size += count * (ITEM_HEADER_SIZE + 3 + cas_bytes)
            lru.heads[list_index], lru.tails[list_index] = head, previous
            lru.counts[list_index], lru.sizes[list_index] = count, size
            self.curr_items += count
            self.bytes += size
            walked += count
        if len(index) != walked:
            raise TornPages("two items under one key")
        for head, chain in chains.items():
            head_map = free_maps.get(head >> SLOT_BITS)
            if head_map is None or (head & SLOT_MASK) >= len(head_map) or head_map[head & SLOT_MASK]:
                raise TornPages("a big item's header chunk %d holds no item" % head)
            for further in chain:
                free_map = free_maps.get(further >> SLOT_BITS)
                if free_map is None or (further & SLOT_MASK) >= len(free_map) or \
                        not free_map[further & SLOT_MASK]:
                    raise TornPages("value chunk %d claimed twice" % further)
                free_map[further & SLOT_MASK] = 0
        self._chains.update(chains)
        for number, free_map in free_maps.items():
            cls = classes[slabs.page_class[number]]
            base = number << SLOT_BITS
            free_map.reverse()  # the free list is a stack: a page's first chunks go first
            free = list(compress(range(base + cls.perslab - 1, base - 1, -1), free_map))
            cls.free.extend(free)
            cls.used_chunks += cls.perslab - len(free)
        self.total_items = self.curr_items
        return dead


class TornPages(Exception):
    """Pages that do not hold what their metadata says (edited, or written after the stop)."""
