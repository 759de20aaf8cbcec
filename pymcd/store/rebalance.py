"""Moving pages between slab classes: ``slabs reassign``, the automover and ``cache_memlimit``.

A workload whose value sizes drift leaves pages stranded in classes nobody writes to any more;
memcached moves such pages to starving classes. As in memcached, ``slabs reassign`` only *asks*
for a move (a second request before the mover ran is ``BUSY``); the move itself happens on the
rebalancer's next step, taking the class's first page, rescuing its live items and the value
chunks of big items into free chunks elsewhere in the class and evicting those that do not fit.
Class 0 is memcached's global page pool: pages moved there wait for any class that needs one,
or are freed when the budget shrank.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from pymcd.store.items import COLD, SEGMENTS
from pymcd.store.pages import ItemPages
from pymcd.store.slabs import SLOT_BITS, SlabClass


OK = "OK"
BUSY = "BUSY currently processing reassign request"
BADCLASS = "BADCLASS invalid src or dst class id"
NOSPARE = "NOSPARE source class has no spare pages"
SAME = "SAME src and dst class are identical"
GLOBAL_PAGE_POOL = 0
# slab_automove.c's thresholds.
MIN_PAGES_FOR_SOURCE = 2
MIN_PAGES_FOR_RECLAIM = 2.5


class _Window:
    """One second of one class in the automover's sliding window."""

    __slots__ = ("age", "evicted_ratio", "evicted_seen", "dirty")

    def __init__(self) -> None:
        self.age = 0
        self.evicted_ratio = 0.0
        self.evicted_seen = 0
        self.dirty = 0


class Rebalancer:
    """Page moves for one store."""

    def __init__(self, pages: ItemPages) -> None:
        self.pages = pages
        self.pending: Optional[Tuple[int, int]] = None
        self._last_pick = 0
        self._window_cur = 0
        self._windows: List[List[_Window]] = []
        self._before: List[Tuple[int, int, int]] = []
        self._window_size = 0
        self._reset_windows()

    # ------------------------------------------------------------------ requests

    def reassign(self, src: int, dst: int) -> str:
        """memcached's slabs_reassign: validate and queue a move of one page, or say why not."""
        slabs = self.pages.slabs
        if self.pending is not None:
            return BUSY
        if src == dst:
            return SAME
        if src == -1:
            src = self._pick_any(dst)
        if not (GLOBAL_PAGE_POOL <= src <= slabs.largest and GLOBAL_PAGE_POOL <= dst <= slabs.largest):
            return BADCLASS
        if self._page_count(src) < 2:
            return NOSPARE
        self.pending = (src, dst)
        return OK

    def _page_count(self, clsid: int) -> int:
        slabs = self.pages.slabs
        return len(slabs.spare_pages) if clsid == GLOBAL_PAGE_POOL else len(slabs.classes[clsid].pages)

    def _pick_any(self, dst: int) -> int:
        """The next class after the last one picked with a page to spare (-1 if none)."""
        largest = self.pages.slabs.largest
        for _ in range(largest):
            self._last_pick = self._last_pick + 1 if self._last_pick < largest else 1
            if self._last_pick != dst and self._page_count(self._last_pick) > 1:
                return self._last_pick
        return -1

    # ------------------------------------------------------------------ the mover

    def step(self) -> bool:
        """Carry out a queued move; True if one was done."""
        if self.pending is None:
            return False
        src, dst = self.pending
        self.pending = None
        if self._page_count(src) < 2:
            return False
        self._move_page(src, dst)
        return True

    def _move_page(self, src: int, dst: int) -> None:
        pages = self.pages
        slabs = pages.slabs
        if src == GLOBAL_PAGE_POOL:
            page_number = slabs.spare_pages.pop(0)
        else:
            cls = slabs.classes[src]
            page_number = cls.pages[0]
            self._clear_page(cls, page_number)
            slabs.release_page(cls, page_number)
        if dst == GLOBAL_PAGE_POOL:
            slabs.spare_pages.append(page_number)
            self.release_over_limit()
        else:
            slabs.assign_page(slabs.classes[dst], page_number)
        pages.slabs_moved += 1

    def _clear_page(self, cls: SlabClass, page_number: int) -> None:
        """memcached's slab_rebalance_move over a whole page: each live item whose header is
        here, and each value chunk of a big item, is copied into a free chunk of the class
        outside the page (a rescue, or a chunk rescue); with none left the item is evicted.
        Expired and flushed items just go."""
        pages = self.pages
        base = page_number << SLOT_BITS
        end = base + cls.perslab
        free_here = {loc for loc in cls.free if base <= loc < end}
        owners = pages.chunk_owners(base, end)
        for location in range(base, end):
            if location in free_here:
                continue
            owner = owners.get(location)
            head = location if owner is None else owner
            view = pages.view_at(head, with_value=False)
            if view is None:
                continue  # freed along with a big item that went earlier in this move
            if pages.is_dead(view.exptime, view.last_access, view.cas, strictly=True):
                pages.free_item(head)
                continue
            target = self._rescue_target(cls, base, end)
            if target is None:
                pages.slab_reassign_evictions_nomem += 1
                pages.free_item(head)
            elif owner is None:
                pages.rescue(location, target)
                pages.slab_reassign_rescues += 1
            else:
                pages.rescue_chunk(owner, location, target)
                pages.slab_reassign_chunk_rescues += 1

    def _rescue_target(self, cls: SlabClass, base: int, end: int) -> Optional[int]:
        """A free chunk of the class outside the page being cleared (slab_rebalance_alloc):
        free chunks of the page itself met on the way are dropped from the free list."""
        free = cls.free
        while free:
            location = free.pop()
            if not base <= location < end:
                return location
            self.pages.slab_reassign_inline_reclaim += 1
        return None

    def release_over_limit(self) -> int:
        """memcached's memory_release: free global-pool pages while over the budget."""
        slabs = self.pages.slabs
        released = 0
        if not self.pages.settings.slab_reassign:
            return released
        while slabs.malloced > slabs.memory_limit and slabs.spare_pages:
            slabs.drop_spare(slabs.spare_pages[-1])
            released += 1
        return released

    # ------------------------------------------------------------------ the automover

    def _reset_windows(self) -> None:
        nclasses = len(self.pages.slabs.classes)
        self._window_size = self.pages.settings.slab_automove_window
        self._windows = [[_Window() for _ in range(self._window_size)] for _ in range(nclasses)]
        self._before = self._snapshot()
        self._window_cur = 0

    def _snapshot(self) -> List[Tuple[int, int, int]]:
        """(evicted, outofmemory, total_pages) of every class, as slab_automove samples them."""
        pages = self.pages
        evicted, outofmemory = pages.per_lru["evicted"], pages.per_lru["outofmemory"]
        snapshot = []
        for cls in pages.slabs.classes:
            base = cls.clsid * SEGMENTS
            snapshot.append((evicted[base + COLD], sum(outofmemory[base:base + SEGMENTS]), len(cls.pages)))
        return snapshot

    def automove_decision(self) -> Tuple[int, int]:
        """One second of slab_automove_run: (src, dst) to move, or (-1, -1).

        A class with more than 2.5 pages of free chunks and no evictions, page growth or
        allocation failures over the window gives a page to the global pool; otherwise the class
        with the oldest COLD tail gives one to the class evicting the youngest items, when the
        young age is below ``slab_automove_ratio`` of the old one.
        """
        pages = self.pages
        if self._window_size != pages.settings.slab_automove_window:
            self._reset_windows()
        after = self._snapshot()
        evicted_total = sum(a[0] - b[0] for a, b in zip(after, self._before))
        self._window_cur += 1
        size = self._window_size
        oldest, oldest_age = -1, 0
        youngest, youngest_age, youngest_evicting = -1, None, False
        src = dst = -1
        for cls in pages.slabs.classes[1:]:
            n = cls.clsid
            evicted, outofmemory, total_pages = after[n]
            evicted_before, oom_before, pages_before = self._before[n]
            window = self._windows[n][self._window_cur % size] = _Window()
            if evicted > evicted_before:
                window.evicted_ratio = (evicted - evicted_before) / evicted_total
                window.evicted_seen = 1
                window.dirty = 1
            if outofmemory > oom_before or total_pages > pages_before:
                window.dirty = 1
            window.age = pages.tail_age(n, COLD)
            windows = self._windows[n]
            age = sum(w.age for w in windows) // size
            if len(cls.free) > cls.perslab * MIN_PAGES_FOR_RECLAIM and not any(w.dirty for w in windows):
                src, dst = n, GLOBAL_PAGE_POOL
                youngest = oldest = -1
                break
            if age > oldest_age and total_pages > MIN_PAGES_FOR_SOURCE:
                oldest, oldest_age = n, age
            evicted_seen = sum(w.evicted_seen for w in windows)
            evicted_ratio = sum(w.evicted_ratio for w in windows)
            if (youngest_age is None or age < youngest_age) and (
                    evicted_seen > size // 2 or evicted_ratio / size > 0.25):
                youngest, youngest_age, youngest_evicting = n, age, bool(window.evicted_seen)
        self._before = after
        if youngest != -1 and oldest != -1 and self._window_cur > size:
            if youngest_age < oldest_age * pages.settings.slab_automove_ratio and youngest_evicting:
                src, dst = oldest, youngest
        return src, dst

    def automove_step(self) -> bool:
        """With ``slabs automove 1``: decide, and queue the move if there is one. True when
        the page goes to the global pool: memcached then decides again at once (within a
        millisecond) instead of a second later, so free memory drains quickly."""
        if self.pages.settings.slab_automove != 1:
            return False
        src, dst = self.automove_decision()
        if src != -1 and dst != -1:
            self.reassign(src, dst)
            if self.pages.system_event_listener is not None:
                self.pages.system_event_listener(b"type=slab_move src=%d dst=%d" % (src, dst))
        return dst == GLOBAL_PAGE_POOL
