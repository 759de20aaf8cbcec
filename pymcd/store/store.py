"""The store API every protocol calls: get, store, delta, delete, touch, flush, and item views.

Items live in slab pages (see :mod:`pymcd.store.slabs` and :mod:`pymcd.store.items`); the only
per-item Python objects are the index entry (key -> chunk location) and the key itself. Time is
memcached's "rel time": seconds since the store started, refreshed once a second by
:meth:`Store.tick` (the service's clock), so the hot path never calls the clock.
"""

from __future__ import annotations

import time
from typing import Callable, List, Optional, Sequence, Tuple, Union

from pymcd.c_numbers import parse_u64
from pymcd.store import outcomes, statistics
from pymcd.store.items import (
    ACTIVE,
    CAS,
    COLD,
    EXPTIME,
    FETCHED,
    HEADER,
    HEADER_SIZE,
    HOT,
    KEY_BINARY,
    LINKS,
    OFF_LINKS,
    OFF_BITS,
    OFF_CAS,
    OFF_CLSID,
    OFF_EXPTIME,
    OFF_LRU,
    OFF_TIME,
    READ,
    READ_FOR_GET,
    SEGMENTS,
    STALE,
    TEMP,
    TIME,
    TOKEN_SENT,
    WARM,
    CHUNK_HEADER_SIZE,
    accounted_size,
)
from pymcd.store.crawler import Crawler
from pymcd.store.pages import ItemPages, ItemView
from pymcd.store.rebalance import Rebalancer
from pymcd.store.settings import StoreSettings
from pymcd.store.slabs import ITEM_HEADER_SIZE, SLOT_BITS, SLOT_MASK

# A value as the store hands it out for a reply.
Buffer = Union[bytes, bytearray]
REALTIME_MAXDELTA = 60 * 60 * 24 * 30
# memcached's maintainer is a thread sleeping 1 ms to 1 s; here it shares the reactor with every
# client, so it runs at most ten times a second and each pass is bounded.
MAINTAINER_MIN_SLEEP = 0.1
MAINTAINER_MAX_SLEEP = 1.0
# memcached juggles a class up to 500 times a pass on its own thread; under a get-heavy load the
# bumps keep every pass busy, and 500 here cost the reactor ~5% of its time (100: under 1%).
JUGGLES_PER_CLASS = 100
CRAWLER_MIN_SLEEP = 0.01
# memcached's slab mover is woken by a signal; here it looks for queued moves this often.
REBALANCER_SLEEP = 0.1
# ... and while the automover drains free pages to the global pool, one page per this.
REBALANCER_DRAIN_SLEEP = 0.001
ITEM_UPDATE_INTERVAL = 60
UINT64 = 2**64
# memcached starts its clock a little in the past so that rel time 1 is always already expired.
CLOCK_HEADSTART = ITEM_UPDATE_INTERVAL + 2

class Store(ItemPages):
    """An in-memory cache with memcached's memory discipline and semantics."""

    def __init__(self, settings: StoreSettings, clock: Callable[[], float] = time.time,
                 memory: Optional[Sequence[memoryview]] = None, preallocate: bool = True) -> None:
        """``memory``: the pages of a memory file (``-e``) instead of pages made on demand."""
        # A whole second, as memcached's time(0): an absolute exptime must not lose a second
        # to truncation against a fractional start.
        started = int(clock()) - CLOCK_HEADSTART
        super().__init__(settings, started, CLOCK_HEADSTART, memory, preallocate)
        self._clock = clock
        self._last_cas = 0
        self.eviction_listener: Optional[Callable[[ItemView], None]] = None
        self._lru_hits = self.per_lru["hits"]
        self._class_sets = self.per_class["cmd_set"]
        self.crawler = Crawler(self)
        self.rebalancer = Rebalancer(self)
        self._maintainer_sleep = MAINTAINER_MAX_SLEEP
        self._last_crawler_check = -1
        # Items stored from this CAS on count in ``stats sizes`` (memcached takes a CAS for it).
        self.sizes_cas_min = self._next_cas() if settings.track_sizes else 0
        self._last_automove_check = -1

    # ------------------------------------------------------------------ time

    def tick(self) -> None:
        """Re-read the clock (memcached's clock_handler, once a second)."""
        self.now = int(self._clock() - self.process_started)

    def realtime(self, exptime: int) -> int:
        """A client exptime as rel time: 0 never, up to 30 days relative, else absolute unix
        time; negative means already expired."""
        if exptime == 0:
            return 0
        if exptime < 0:
            exptime = REALTIME_MAXDELTA + 1
        if exptime > REALTIME_MAXDELTA:
            if exptime <= self.process_started:
                return 1
            return int(exptime - self.process_started)
        return exptime + self.now

    # ------------------------------------------------------------------ counters

    def count_too_large(self) -> None:
        """A storage request refused before its data was read (the text protocol's first pass)."""
        self.store_too_large += 1

    # ------------------------------------------------------------------ reading

    def _live_location(self, key: bytes, count: bool) -> Optional[int]:
        """The item's location if it is alive; reclaims it (and counts why) if not."""
        location = self._index.get(key)
        if location is None:
            return None
        slabs = self.slabs
        page_number = location >> SLOT_BITS
        page = slabs.pages[page_number]
        offset = (location & SLOT_MASK) * slabs.page_chunk_size[page_number]
        exptime = EXPTIME.unpack_from(page, offset)[0]
        last_access = TIME.unpack_from(page, offset + OFF_TIME)[0]
        now = self.now
        if exptime and exptime <= now:
            if count:
                self.get_expired += 1
            self.free_item(location)
            return None
        oldest = self.oldest_live
        if oldest and oldest <= now:
            cas = CAS.unpack_from(page, offset + OFF_CAS)[0]
            if last_access <= oldest or (self.oldest_cas and cas and cas < self.oldest_cas):
                if count:
                    self.get_flushed += 1
                self.free_item(location)
                return None
        return location

    def get(self, key: bytes) -> Optional[Tuple[int, Buffer, int]]:
        """(flags, value, cas) of a live item, bumping it as a fetch does; None on a miss.

        The value is a copy of the item's bytes, as a bytearray: what a reply is built from
        (bytes formatting and joins take it as they take bytes), copied once instead of twice.
        cmd_get is not counted here: it is hits plus misses, summed when stats are asked for.
        """
        location = self._index.get(key)
        if location is None:
            self.get_misses += 1
            return None
        page_number = location >> SLOT_BITS
        page = self._pages[page_number]
        offset = (location & SLOT_MASK) * self._chunk_sizes[page_number]
        exptime, last_access, flags, nbytes, cas, nkey, bits, segment, clsid = \
            READ_FOR_GET.unpack_from(page, offset)
        if (exptime and exptime <= self.now) or (
            self.oldest_live and self.is_flushed(last_access, cas)
        ):
            if self._live_location(key, True) is None:
                self.get_misses += 1
                return None
        if not bits & ACTIVE:
            self._bump(location, page, offset, bits)
        self._lru_hits[clsid * SEGMENTS + segment] += 1
        start = offset + HEADER_SIZE + nkey
        if clsid == self._largest and location in self._chains:
            return flags, self._chained_value(location, start, nbytes), cas
        return flags, page[start:start + nbytes], cas

    def _bump(self, location: int, page: bytearray, offset: int, bits: int) -> None:
        """memcached's fetch bump: first fetch marks FETCHED, the next marks ACTIVE."""
        if not self.settings.lru_segmented:
            page[offset + OFF_BITS] = bits | FETCHED
            if TIME.unpack_from(page, offset + OFF_TIME)[0] < self.now - ITEM_UPDATE_INTERVAL:
                self._relink(location, page, offset, COLD)
            return
        if not bits & FETCHED:
            page[offset + OFF_BITS] = bits | FETCHED
            return
        page[offset + OFF_BITS] = bits | ACTIVE
        if page[offset + OFF_LRU] == COLD:
            # Active items found in COLD go straight back to WARM.
            page[offset + OFF_BITS] = bits & ~ACTIVE
            clsid = page[offset + OFF_CLSID]
            self.per_lru["moves_to_warm"][clsid * SEGMENTS + COLD] += 1
            self._relink(location, page, offset, WARM)
        else:
            TIME.pack_into(page, offset + OFF_TIME, self.now)

    def _relink(self, location: int, page: bytearray, offset: int, segment: int) -> None:
        clsid = page[offset + OFF_CLSID]
        accounted = self._accounted_at(page, offset)
        self.lru.unlink(location, clsid, accounted)
        TIME.pack_into(page, offset + OFF_TIME, self.now)
        self.lru.link(location, clsid, segment, accounted)

    def gat(self, key: bytes, exptime: int) -> Optional[Tuple[int, bytes, int]]:
        """get-and-touch: counted as a touch, as memcached counts gat."""
        self.cmd_touch += 1
        location = self._live_location(key, True)
        if location is None:
            self.touch_misses += 1
            return None
        page, offset = self.slabs.locate(location)
        EXPTIME.pack_into(page, offset + OFF_EXPTIME, self.realtime(exptime))
        bits = page[offset + OFF_BITS]
        if not bits & ACTIVE:
            self._bump(location, page, offset, bits)
        self.per_class["touch_hits"][page[offset + OFF_CLSID]] += 1
        view = self._view(location, key)
        return view.flags, view.value, view.cas

    def touch(self, key: bytes, exptime: int) -> bool:
        self.cmd_touch += 1
        location = self._live_location(key, False)
        if location is None:
            self.touch_misses += 1
            return False
        page, offset = self.slabs.locate(location)
        EXPTIME.pack_into(page, offset + OFF_EXPTIME, self.realtime(exptime))
        bits = page[offset + OFF_BITS]
        if not bits & ACTIVE:
            self._bump(location, page, offset, bits)
        self.per_class["touch_hits"][page[offset + OFF_CLSID]] += 1
        return True

    # ------------------------------------------------------------------ writing

    def item_size_ok(self, nkey: int, nbytes: int, flags: int = 0) -> bool:
        """Whether a value of ``nbytes`` fits under -I (memcached's item_size_ok)."""
        return accounted_size(nkey, flags, nbytes, self.settings.use_cas) <= self.settings.item_size_max

    def fits_one_chunk(self, nkey: int, nbytes: int) -> bool:
        """Whether an item of ``nbytes`` needs no chain of chunks (memcached keeps SASL data
        in such an item and refuses what would need a chain)."""
        return (accounted_size(nkey, 0, nbytes, self.settings.use_cas)
                <= self.settings.slab_chunk_max)

    def next_cas_to_save(self) -> int:
        """The CAS counter as memcached saves it for a restart (it takes one more id)."""
        return self._last_cas + 1

    def restore_cas(self, saved: int) -> None:
        """Continue the CAS sequence of the run that saved ``saved``."""
        self._last_cas = saved

    def _next_cas(self) -> int:
        if not self.settings.use_cas:
            return 0
        self._last_cas += 1
        return self._last_cas

    def store(
        self,
        mode: int,
        key: bytes,
        flags: int,
        exptime: int,
        value: bytes,
        cas: int = 0,
        *,
        new_cas: int = 0,
        allow_stale: bool = False,
        key_binary: bool = False,
    ) -> Tuple[int, int]:
        """Store a value; returns (result, the item's new CAS).

        ``new_cas`` forces the new item's CAS (meta's E flag); ``allow_stale`` lets an older CAS
        replace the value but mark it stale (meta's I flag with C).
        """
        o = outcomes
        if mode == o.SET and not (cas or new_cas or key_binary):
            return self._write_item(key, flags, self.realtime(exptime) if exptime else 0, value,
                                    0, 0, False, o.SET)
        location = self._live_location(key, False)
        stale_bits = 0
        stale_exptime = None
        if mode == o.CAS or (cas and mode != o.ADD):
            if location is None:
                if mode in (o.APPEND, o.PREPEND):
                    # memcached's do_store_item: nothing to append to, whatever the CAS.
                    return o.NOT_STORED, 0
                self.cas_misses += 1
                return o.NOT_FOUND, 0
            page, offset = self.slabs.locate(location)
            current = CAS.unpack_from(page, offset + OFF_CAS)[0]
            clsid = page[offset + OFF_CLSID]
            if current != cas:
                # A CAS of 0 compares as "none" in do_store_item: never stale, always EXISTS.
                if allow_stale and 0 < cas < current:
                    # memcached's do_store_item: the stale value keeps the old item's rel-time
                    # exptime as it is, and its win token.
                    stale_exptime = EXPTIME.unpack_from(page, offset + OFF_EXPTIME)[0]
                    stale_bits = STALE | (page[offset + OFF_BITS] & TOKEN_SENT)
                else:
                    self.per_class["cas_badval"][clsid] += 1
                    return o.EXISTS, 0
            else:
                self.per_class["cas_hits"][clsid] += 1
            if mode == o.CAS:
                mode = o.SET
        if mode == o.ADD and location is not None:
            page, offset = self.slabs.locate(location)
            TIME.pack_into(page, offset + OFF_TIME, self.now)
            return o.NOT_STORED, 0
        if location is None and mode in (o.REPLACE, o.APPEND, o.PREPEND):
            return o.NOT_STORED, 0
        realtime = self.realtime(exptime) if stale_exptime is None else stale_exptime
        if mode in (o.APPEND, o.PREPEND):
            old = self._view(location, key)
            value = old.value + value if mode == o.APPEND else value + old.value
            flags, realtime = old.flags, old.exptime
            # memcached allocates the joined item afresh: it carries no binary-key bit.
            key_binary = False
        return self._write_item(key, flags, realtime, value, new_cas, stale_bits, key_binary, mode)

    def _write_item(self, key: bytes, flags: int, realtime: int, value: bytes, new_cas: int,
                    stale_bits: int, key_binary: bool, mode: int) -> Tuple[int, int]:
        """Allocate, fill and link a new item, replacing any old one under the key."""
        settings = self.settings
        nkey, nbytes = len(key), len(value)
        ntotal = accounted_size(nkey, flags, nbytes, settings.use_cas)
        clsid = self.slabs.class_for(ntotal)
        joined = mode in (outcomes.APPEND, outcomes.PREPEND)
        if clsid == 0:
            if joined:
                # memcached's do_store_item: no room for the joined item is NOT_STORED, and no
                # store_too_large (that counts only the request's own item).
                return outcomes.NOT_STORED, 0
            self.store_too_large += 1
            if mode == outcomes.SET:
                self.unlink(key)
            return outcomes.TOO_LARGE, 0
        old = self._index.get(key)
        if old is not None and clsid != self._largest and self._page_class[old >> SLOT_BITS] == clsid \
                and self._classes[clsid].free and settings.lru_segmented:
            # Same class, and memcached would find a free chunk for the new item: the new item
            # takes the old one's chunk instead (same counts, no free/alloc, no re-index). With no
            # free chunk memcached grows the class or evicts first, and the flat LRU (no_modern)
            # reclaims a dead tail before any alloc, so those take the path below.
            page_number = old >> SLOT_BITS
            page = self._pages[page_number]
            offset = (old & SLOT_MASK) * self._chunk_sizes[page_number]
            _, _, old_flags, old_nbytes, _, old_nkey = READ.unpack_from(page, offset)
            old_total = accounted_size(old_nkey, old_flags, old_nbytes, settings.use_cas)
            self.lru.unlink(old, clsid, old_total)
            self.bytes -= old_total
            self.curr_items -= 1
            locations = [old]
        else:
            locations = self._allocate(clsid, nkey, flags, nbytes)
            if locations is None:
                if joined:
                    return outcomes.NOT_STORED, 0
                self.store_no_memory += 1
                if mode == outcomes.SET:
                    self.unlink(key)
                return outcomes.NO_MEMORY, 0
            # Making room may have reclaimed or evicted the old item itself.
            old = self._index.get(key)
            if old is not None:
                self.free_item(old)
        cas = new_cas or self._next_cas()
        bits = stale_bits | (KEY_BINARY if key_binary else 0)
        temp = settings.temp_lru and realtime and realtime - self.now <= settings.temporary_ttl
        segment = TEMP if temp else (HOT if settings.lru_segmented else COLD)
        head = locations[0]
        blob = HEADER.pack(realtime, self.now, flags, nbytes, cas, nkey, bits, segment, clsid,
                           -1, -1) + key + value
        if len(locations) == 1:
            page_number = head >> SLOT_BITS
            offset = (head & SLOT_MASK) * self._chunk_sizes[page_number]
            self._pages[page_number][offset:offset + len(blob)] = blob
        else:
            self._fill(locations, blob)
        if head != old:
            self._index[key] = head
        self.lru.link(head, clsid, segment, ntotal)
        self._class_sets[clsid] += 1
        self.curr_items += 1
        self.total_items += 1
        self.bytes += ntotal
        return outcomes.STORED, cas

    def _fill(self, locations: List[int], blob: bytes) -> None:
        """Spread a big item's bytes over its chunks, each filled to its size; remember the chain."""
        slabs = self.slabs
        start = 0
        for location in locations:
            page, offset = slabs.locate(location)
            piece = blob[start:start + slabs.page_chunk_size[location >> SLOT_BITS]]
            page[offset:offset + len(piece)] = piece
            start += len(piece)
        self._chains[locations[0]] = locations[1:]

    def _chunk_classes(self, nkey: int, flags: int, nbytes: int) -> List[int]:
        """The classes of a big item's chunks, as memcached allocates them: a header chunk with
        room for the key, then value chunks (value and CRLF) of the largest size, the last one
        only as large as what remains."""
        settings, slabs = self.settings, self.slabs
        header = (ITEM_HEADER_SIZE + CHUNK_HEADER_SIZE + nkey + 1 + (4 if flags else 0)
                  + (8 if settings.use_cas else 0))
        classes = [slabs.class_for(header)]
        remaining = nbytes + 2
        while remaining > 0:
            size = min(remaining + CHUNK_HEADER_SIZE, settings.slab_chunk_max)
            classes.append(slabs.class_for(size))
            remaining -= size - CHUNK_HEADER_SIZE
        return classes

    def _allocate(self, clsid: int, nkey: int, flags: int, nbytes: int) -> Optional[List[int]]:
        """Chunks for an item: one of its class, or a chain for one over the largest chunk."""
        if clsid != self._largest or accounted_size(nkey, flags, nbytes, self.settings.use_cas) \
                <= self.settings.slab_chunk_max:
            location = self._alloc_chunk(clsid)
            return None if location is None else [location]
        locations: List[int] = []
        for chunk_class in self._chunk_classes(nkey, flags, nbytes):
            location = self._alloc_chunk(chunk_class)
            if location is None and locations and chunk_class != self._largest:
                # No memory for a small last chunk: memcached falls back to a largest one.
                location = self._alloc_chunk(self._largest)
            if location is None:
                for taken in locations:
                    self.slabs.free(taken)
                return None
            locations.append(location)
        return locations

    def _alloc_chunk(self, clsid: int) -> Optional[int]:
        """A chunk of ``clsid``: free, from a new page, or by reclaiming or evicting a tail
        (memcached's do_item_alloc_pull: up to 10 tries, the retries counted as direct
        reclaims)."""
        segmented = self.settings.lru_segmented
        location = None
        tries = 0
        while tries < 10:
            if not segmented:
                # The flat LRU reclaims an expired or flushed tail before every alloc.
                self._pull_tail(clsid, COLD, 0, 0, evict=False)
            location = self.slabs.alloc(clsid)
            if location is not None:
                break
            if segmented:
                self._pull_tail(clsid, HOT, 0, 0, evict=False)
            if self._pull_tail(clsid, COLD, 0, 0, evict=True) <= 0:
                if not segmented:
                    break
                if self._pull_tail(clsid, HOT, 0, 0, evict=False) <= 0 and \
                        self._pull_tail(clsid, WARM, 0, 0, evict=False) <= 0:
                    break
            tries += 1
        if tries:
            self.per_lru["direct_reclaims"][clsid * SEGMENTS + HOT] += tries
        if location is None:
            self.per_lru["outofmemory"][clsid * SEGMENTS + COLD] += 1
        return location

    # ------------------------------------------------------------------ removal

    def unlink(self, key: bytes) -> bool:
        """Drop an item without counting a delete (memcached does this after a failed SET)."""
        location = self._index.get(key)
        if location is None:
            return False
        self.free_item(location)
        return True

    def delete(self, key: bytes, cas: int = 0) -> int:
        location = self._live_location(key, False)
        if location is None:
            self.delete_misses += 1
            return outcomes.NOT_FOUND
        page, offset = self.slabs.locate(location)
        if cas and CAS.unpack_from(page, offset + OFF_CAS)[0] != cas:
            return outcomes.EXISTS
        self.per_class["delete_hits"][page[offset + OFF_CLSID]] += 1
        self.free_item(location)
        return outcomes.DELETED

    def flush_all(self, delay: int = 0) -> None:
        """Invalidate every item last written before now (or before now + delay)."""
        new_oldest = self.realtime(delay) if delay > 0 else self.now
        if self.settings.use_cas:
            self.oldest_live = new_oldest - 1
            if self.oldest_live <= self.now:
                self.oldest_cas = self._next_cas()
        else:
            self.oldest_live = new_oldest

    # ------------------------------------------------------------------ arithmetic

    def delta(
        self,
        key: bytes,
        incr: bool,
        delta: int,
        initial: Optional[int] = None,
        exptime: int = 0,
        cas: int = 0,
    ) -> Tuple[int, int, int]:
        """incr/decr: (result, new value, new cas). ``initial`` creates a missing counter."""
        location = self._live_location(key, False)
        if location is None:
            if initial is None:
                if incr:
                    self.incr_misses += 1
                else:
                    self.decr_misses += 1
                return outcomes.NOT_FOUND, 0, 0
            result, new_cas = self._write_item(
                key, 0, self.realtime(exptime), b"%d" % initial, 0, 0, False, outcomes.ADD
            )
            if result != outcomes.STORED:
                return outcomes.NO_MEMORY, 0, 0
            return outcomes.DELTA_OK, initial, new_cas
        view = self._view(location, key)
        # memcached refuses an empty or chunked (large) value before it compares the CAS, and
        # reads any other value with strtoull, as it reads a request's numbers.
        chunked = location in self._chains
        if chunked or not view.value:
            return outcomes.DELTA_NON_NUMERIC, 0, 0
        if cas and view.cas != cas:
            return outcomes.EXISTS, 0, 0
        number = parse_u64(view.value)
        if number is None:
            return outcomes.DELTA_NON_NUMERIC, 0, 0
        number = (number + delta) % UINT64 if incr else max(0, number - delta)
        counter = "incr_hits" if incr else "decr_hits"
        self.per_class[counter][view.clsid] += 1
        text = b"%d" % number
        page, offset = self.slabs.locate(location)
        if len(text) <= view.nbytes and location not in self._chains:
            # memcached rewrites in place, padding with spaces, when the number still fits.
            start = offset + HEADER_SIZE + len(key)
            page[start:start + view.nbytes] = text.ljust(view.nbytes)
            new_cas = self._next_cas()
            CAS.pack_into(page, offset + OFF_CAS, new_cas)
            return outcomes.DELTA_OK, number, new_cas
        # A counter that outgrew its item is re-created as memcached's do_add_delta does it: the
        # new item keeps the flags and exptime, not the binary-key mark.
        result, new_cas = self._write_item(
            key, view.flags, view.exptime, text, 0, 0, False, outcomes.REPLACE
        )
        if result != outcomes.STORED:
            return outcomes.NO_MEMORY, 0, 0
        return outcomes.DELTA_OK, number, new_cas

    # ------------------------------------------------------------------ item views (meta)

    def peek(self, key: bytes) -> Optional[ItemView]:
        """The item as it is, without bumping it or counting anything (None if dead)."""
        location = self._live_location(key, False)
        return None if location is None else self._view(location, key)

    def bump(self, key: bytes) -> None:
        """Apply a fetch's LRU bump to a live item (after a peek)."""
        location = self._index.get(key)
        if location is not None:
            page, offset = self.slabs.locate(location)
            bits = page[offset + OFF_BITS]
            if not bits & ACTIVE:
                self._bump(location, page, offset, bits)

    def set_bits(self, key: bytes, add: int = 0, remove: int = 0) -> None:
        """Set or clear item bits (FETCHED, TOKEN_SENT, STALE, ... from pymcd.store.items)."""
        location = self._index.get(key)
        if location is not None:
            page, offset = self.slabs.locate(location)
            page[offset + OFF_BITS] = (page[offset + OFF_BITS] | add) & ~remove

    def set_exptime(self, key: bytes, exptime: int) -> None:
        """Give a live item a new client exptime (meta's T flag)."""
        location = self._index.get(key)
        if location is not None:
            page, offset = self.slabs.locate(location)
            EXPTIME.pack_into(page, offset + OFF_EXPTIME, self.realtime(exptime))

    def mark_stale(self, key: bytes) -> int:
        """meta delete with I: keep the item but stale, win token cleared, new CAS."""
        location = self._index.get(key)
        if location is None:
            return 0
        page, offset = self.slabs.locate(location)
        page[offset + OFF_BITS] = (page[offset + OFF_BITS] | STALE) & ~TOKEN_SENT
        cas = self._next_cas()
        CAS.pack_into(page, offset + OFF_CAS, cas)
        return cas

    # ------------------------------------------------------------------ LRU maintenance

    def _pull_tail(self, clsid: int, segment: int, total_bytes: int, max_age: int,
                   evict: bool) -> int:
        """memcached's lru_pull_tail: reclaim expired tails, move or evict the last item.

        Returns how many items were removed or moved.
        """
        lru = self.lru
        slabs = self.slabs
        index = clsid * SEGMENTS + segment
        per_lru = self.per_lru
        settings = self.settings
        removed = 0
        location = lru.tails[index]
        tries = 5
        while tries and location >= 0:
            tries -= 1
            page, offset = slabs.locate(location)
            above = lru.previous(location)
            exptime, last_access, _, _, cas, _ = READ.unpack_from(page, offset)
            bits = page[offset + OFF_BITS]
            now = self.now
            if (exptime and exptime < now) or (self.oldest_live and self.is_flushed(last_access, cas)):
                per_lru["reclaimed"][index] += 1
                if not bits & FETCHED:
                    per_lru["expired_unfetched"][index] += 1
                self.free_item(location)
                removed += 1
                location = above
                continue
            if segment in (HOT, WARM):
                pct = settings.hot_lru_pct if segment == HOT else settings.warm_lru_pct
                limit = total_bytes * pct // 100
                if bits & ACTIVE:
                    page[offset + OFF_BITS] = bits & ~ACTIVE
                    removed += 1
                    if segment == WARM:
                        per_lru["moves_within_lru"][index] += 1
                        self._relink_keep_time(location, page, offset, WARM)
                    else:
                        per_lru["moves_to_warm"][index] += 1
                        self._relink_keep_time(location, page, offset, WARM)
                elif lru.sizes[index] > limit or now - last_access > max_age:
                    per_lru["moves_to_cold"][index] += 1
                    self._relink_keep_time(location, page, offset, COLD)
                    removed += 1
            elif segment == COLD:
                if evict:
                    if not settings.evict_to_free:
                        break
                    per_lru["evicted"][index] += 1
                    per_lru["evicted_time"][index] = now - last_access
                    if exptime:
                        per_lru["evicted_nonzero"][index] += 1
                    if not bits & FETCHED:
                        per_lru["evicted_unfetched"][index] += 1
                    if bits & ACTIVE:
                        per_lru["evicted_active"][index] += 1
                    if self.eviction_listener is not None:
                        self.eviction_listener(self._view(location))
                    self.free_item(location)
                    removed += 1
                    if settings.slab_automove == 2:
                        self.rebalancer.reassign(-1, clsid)
                elif bits & ACTIVE and settings.lru_segmented:
                    per_lru["moves_to_warm"][index] += 1
                    page[offset + OFF_BITS] = bits & ~ACTIVE
                    self._relink_keep_time(location, page, offset, WARM)
                    removed += 1
            break
        return removed

    def _relink_keep_time(self, location: int, page: bytearray, offset: int, segment: int) -> None:
        clsid = page[offset + OFF_CLSID]
        accounted = self._accounted_at(page, offset)
        self.lru.unlink(location, clsid, accounted)
        self.lru.link(location, clsid, segment, accounted)

    def juggle(self, clsid: int) -> int:
        """One class's maintenance pass (memcached's lru_maintainer_juggle); returns moves.

        TEMP tails are only reclaimed. HOT and WARM drain into COLD when over their share of the
        class or older than a factor of COLD's tail age; in flat mode (ages and sizes of 0)
        they drain entirely, which matters after ``lru mode flat``.
        """
        settings = self.settings
        moves = 0
        if settings.temp_lru:
            for _ in range(JUGGLES_PER_CLASS):
                if self._pull_tail(clsid, TEMP, 0, 0, evict=False) <= 0:
                    break
                moves += 1
        total = hot_age = warm_age = 0
        segmented = settings.lru_segmented
        if segmented:
            cold_age = self.tail_age(clsid, COLD)
            hot_age = int(cold_age * settings.hot_max_factor)
            warm_age = int(cold_age * settings.warm_max_factor)
            base = clsid * SEGMENTS
            sizes = self.lru.sizes
            total = sizes[base + HOT] + sizes[base + WARM] + sizes[base + COLD]
        for _ in range(JUGGLES_PER_CLASS):
            more = 0
            if self._pull_tail(clsid, HOT, total, hot_age, evict=False) or \
                    self._pull_tail(clsid, WARM, total, warm_age, evict=False):
                more += 1
            if segmented:
                more += self._pull_tail(clsid, COLD, total, 0, evict=False)
            if not more:
                break
            moves += 1
        return moves

    # ------------------------------------------------------------------ iteration

    def cold_items(self, clsid: int, limit: int) -> List[ItemView]:
        """Up to ``limit`` (0: all) items from the head of a class's COLD LRU, binary keys left
        out (memcached's cachedump)."""
        views: List[ItemView] = []
        if clsid >= len(self.slabs.classes):
            return views
        location = self.lru.heads[clsid * SEGMENTS + COLD]
        while location >= 0 and (limit == 0 or len(views) < limit):
            view = self._view(location)
            if not view.key_binary:
                views.append(view)
            page, offset = self.slabs.locate(location)
            location = LINKS.unpack_from(page, offset + OFF_LINKS)[1]
        return views

    # ------------------------------------------------------------------ page moves

    # ------------------------------------------------------------------ maintainers

    def lru_maintainer_step(self) -> float:
        """Juggle every class's LRUs once; sleep less while there is work (memcached's pacing).

        Once a second it also starts the crawls that are due, as memcached's maintainer does.
        """
        if self.settings.lru_crawler and self._last_crawler_check != self.now:
            self._last_crawler_check = self.now
            self.crawler.autocrawl_check()
        self.grow_hash_power()
        moves = 0
        self.lru_maintainer_juggles += 1
        for clsid in range(1, len(self.slabs.classes)):
            if self.lru.class_bytes(clsid):
                moves += self.juggle(clsid)
        if moves:
            self._maintainer_sleep = max(MAINTAINER_MIN_SLEEP, self._maintainer_sleep / 2)
        else:
            self._maintainer_sleep = min(MAINTAINER_MAX_SLEEP, self._maintainer_sleep * 2)
        return self._maintainer_sleep

    def crawler_step(self) -> float:
        """Advance a crawl; check again soon while one runs, else in a second."""
        if self.settings.lru_crawler and self.crawler.step():
            return max(self.settings.lru_crawler_sleep / 1_000_000, CRAWLER_MIN_SLEEP)
        return 1.0

    def rebalancer_step(self) -> float:
        """Carry out a queued page move; once a second, let the automover queue one (again at
        once while it is handing free pages to the global pool)."""
        draining = False
        if self._last_automove_check != self.now:
            draining = self.rebalancer.automove_step()
            if not draining:
                self._last_automove_check = self.now
        self.rebalancer.step()
        return REBALANCER_DRAIN_SLEEP if draining else REBALANCER_SLEEP

    def slabs_reassign(self, src: int, dst: int) -> str:
        return self.rebalancer.reassign(src, dst)

    def set_memory_limit(self, limit: int) -> bool:
        """``cache_memlimit``: grows at once; shrinking hands free pages back over time. Not
        with preallocated pages (a memory file), as in memcached."""
        if self.slabs.preallocated:
            return False
        self.settings.memory_limit = limit
        self.slabs.memory_limit = limit
        self.rebalancer.release_over_limit()
        return True

    # ------------------------------------------------------------------ stats

    def general_stats(self) -> list:
        return statistics.general_stats(self, self.crawler.running, self.rebalancer.pending is not None)

    def slabs_stats(self) -> list:
        return statistics.slabs_stats(self)

    def items_stats(self) -> list:
        return statistics.items_stats(self)

    def sizes_stats(self) -> list:
        return statistics.sizes_stats(self, self.sizes_cas_min)

    def enable_size_tracking(self) -> list:
        """``stats sizes_enable``: count items stored from now on (needs CAS to tell them)."""
        if not self.settings.use_cas:
            return [("sizes_status", "error"), ("sizes_error", "cas_support_disabled")]
        if not self.settings.track_sizes:
            self.settings.track_sizes = True
            self.sizes_cas_min = self._next_cas()
        return [("sizes_status", "enabled")]

    def disable_size_tracking(self) -> list:
        """``stats sizes_disable``."""
        self.settings.track_sizes = False
        return [("sizes_status", "disabled")]

    def slab_class_lines(self) -> List[str]:
        return self.slabs.slab_class_lines()

