"""Moving pages between slab classes: ``slabs reassign``, the automover and ``cache_memlimit``.

A workload whose value sizes drift leaves pages stranded in classes nobody writes to any more;
memcached moves such pages to starving classes. Moving a page rescues its live items into free
chunks of the same class when there are some, and evicts them otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List

from pymcd.store.slabs import SLOT_BITS

if TYPE_CHECKING:  # pragma: no cover
    from pymcd.store.store import Store

REASSIGN_REPLIES = {
    "ok": "OK",
    "running": "BUSY currently processing reassign request",
    "badclass": "BADCLASS invalid src or dst class id",
    "nospare": "NOSPARE source class has no spare pages",
    "same": "SAME src and dst class are identical",
}
# A class holding this many pages' worth of free chunks can give one away.
FREE_PAGES_TO_GIVE = 2.5


class Rebalancer:
    """Page moves for one store."""

    def __init__(self, store: "Store") -> None:
        self.store = store
        self._evictions_seen: Dict[int, int] = {}
        self._starving_windows: Dict[int, int] = {}

    def reassign(self, src: int, dst: int) -> str:
        """Move one page from class ``src`` (-1: any class with a spare) to ``dst``."""
        store = self.store
        largest = store.slabs.largest
        if src == dst:
            return REASSIGN_REPLIES["same"]
        if src == -1:
            src = self._class_with_spare(exclude=dst)
            if src == 0:
                return REASSIGN_REPLIES["nospare"]
        if not (1 <= src <= largest and 1 <= dst <= largest):
            return REASSIGN_REPLIES["badclass"]
        if len(store.slabs.classes[src].pages) < 2:
            return REASSIGN_REPLIES["nospare"]
        self._move_page(src, dst)
        return REASSIGN_REPLIES["ok"]

    def _class_with_spare(self, exclude: int) -> int:
        best, best_free = 0, 0.0
        for cls in self.store.slabs.classes[1:]:
            if cls.clsid == exclude or len(cls.pages) < 2:
                continue
            free_pages = len(cls.free) / cls.perslab
            if free_pages > best_free:
                best, best_free = cls.clsid, free_pages
        return best

    def _move_page(self, src: int, dst: int) -> None:
        store = self.store
        slabs = store.slabs
        cls = slabs.classes[src]
        # The page with the fewest live items costs the fewest rescues.
        free_by_page: Dict[int, int] = {}
        for location in cls.free:
            free_by_page[location >> SLOT_BITS] = free_by_page.get(location >> SLOT_BITS, 0) + 1
        page_number = max(cls.pages, key=lambda p: free_by_page.get(p, 0))
        base = page_number << SLOT_BITS
        free_here = {loc for loc in cls.free if base <= loc < base + cls.perslab}
        for location in range(base, base + cls.perslab):
            if location in free_here:
                continue
            if not store.rescue(location, avoid_page=page_number):
                store.slab_reassign_evictions_nomem += 1
                store.evict_for_move(location)
            else:
                store.slab_reassign_rescues += 1
        slabs.release_page(cls, page_number)
        slabs.new_page(slabs.classes[dst])
        store.slabs_moved += 1

    def automove_step(self) -> float:
        """Mode 1: give a page to a class that evicted in several windows in a row, from a
        class with plenty of free chunks. Returns seconds until the next look."""
        store = self.store
        mode = store.settings.slab_automove
        self.release_over_limit()
        if mode == 0:
            return 1.0
        evicted = store.per_lru["evicted"]
        for cls in store.slabs.classes[1:]:
            total = sum(evicted[cls.clsid * 4:cls.clsid * 4 + 4])
            grew = total > self._evictions_seen.get(cls.clsid, 0)
            self._evictions_seen[cls.clsid] = total
            self._starving_windows[cls.clsid] = self._starving_windows.get(cls.clsid, 0) + 1 if grew else 0
        needed = 3 if mode == 1 else 1
        starving = [c for c, windows in self._starving_windows.items() if windows >= needed]
        for dst in starving:
            src = self._class_with_spare(exclude=dst)
            if src and len(store.slabs.classes[src].free) >= FREE_PAGES_TO_GIVE * store.slabs.classes[src].perslab:
                self._move_page(src, dst)
                self._starving_windows[dst] = 0
        return 1.0

    def release_over_limit(self) -> List[int]:
        """After ``cache_memlimit`` shrinks the budget, hand wholly free pages back."""
        slabs = self.store.slabs
        released = []
        while slabs.malloced > slabs.memory_limit:
            page = self._wholly_free_page()
            if page is None:
                break
            cls_id = slabs.page_class[page]
            slabs.release_page(slabs.classes[cls_id], page)
            slabs.drop_spare(page)
            released.append(page)
        return released

    def _wholly_free_page(self):
        slabs = self.store.slabs
        for cls in slabs.classes[1:]:
            if len(cls.pages) < 2 or len(cls.free) < cls.perslab:
                continue
            counts: Dict[int, int] = {}
            for location in cls.free:
                counts[location >> SLOT_BITS] = counts.get(location >> SLOT_BITS, 0) + 1
            for page, count in counts.items():
                if count == cls.perslab:
                    return page
        return None
