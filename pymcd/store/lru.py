"""Doubly linked LRU lists threaded through the item headers.

Each slab class has four lists (HOT, WARM, COLD, TEMP). Heads, tails, counts and byte totals are
plain int lists indexed by ``clsid * 4 + segment``; the links themselves live in the items'
headers, so linking and unlinking allocate nothing.
"""

from __future__ import annotations

from typing import List

import struct

from pymcd.store.items import LINKS, OFF_LINKS, OFF_LRU, OFF_NEXT, OFF_PREV, SEGMENTS
from pymcd.store.slabs import SLOT_BITS, SLOT_MASK, SlabAllocator

_LINK = struct.Struct("<i")


class LRULists:
    """All LRU lists of all classes."""

    def __init__(self, slabs: SlabAllocator) -> None:
        self.slabs = slabs
        self._pages = slabs.pages
        self._sizes = slabs.page_chunk_size
        size = len(slabs.classes) * SEGMENTS
        self.heads: List[int] = [-1] * size
        self.tails: List[int] = [-1] * size
        self.counts: List[int] = [0] * size
        self.sizes: List[int] = [0] * size  # accounted bytes per list (memcached's sizes_bytes)

    def link(self, location: int, clsid: int, segment: int, accounted: int) -> None:
        """Put an item at the head of a list."""
        pages, sizes = self._pages, self._sizes
        index = clsid * SEGMENTS + segment
        number = location >> SLOT_BITS
        page = pages[number]
        offset = (location & SLOT_MASK) * sizes[number]
        head = self.heads[index]
        LINKS.pack_into(page, offset + OFF_LINKS, -1, head)
        page[offset + OFF_LRU] = segment
        if head >= 0:
            number = head >> SLOT_BITS
            _LINK.pack_into(pages[number], (head & SLOT_MASK) * sizes[number] + OFF_PREV, location)
        else:
            self.tails[index] = location
        self.heads[index] = location
        self.counts[index] += 1
        self.sizes[index] += accounted

    def unlink(self, location: int, clsid: int, accounted: int) -> int:
        """Take an item out of its list; returns the segment it was in."""
        pages, sizes = self._pages, self._sizes
        number = location >> SLOT_BITS
        page = pages[number]
        offset = (location & SLOT_MASK) * sizes[number]
        segment = page[offset + OFF_LRU]
        index = clsid * SEGMENTS + segment
        prev, nxt = LINKS.unpack_from(page, offset + OFF_LINKS)
        if prev >= 0:
            number = prev >> SLOT_BITS
            _LINK.pack_into(pages[number], (prev & SLOT_MASK) * sizes[number] + OFF_NEXT, nxt)
        else:
            self.heads[index] = nxt
        if nxt >= 0:
            number = nxt >> SLOT_BITS
            _LINK.pack_into(pages[number], (nxt & SLOT_MASK) * sizes[number] + OFF_PREV, prev)
        else:
            self.tails[index] = prev
        self.counts[index] -= 1
        self.sizes[index] -= accounted
        return segment

    def previous(self, location: int) -> int:
        """The item above ``location`` (towards the head), or -1."""
        page, offset = self.slabs.locate(location)
        return _LINK.unpack_from(page, offset + OFF_PREV)[0]

    def class_bytes(self, clsid: int) -> int:
        base = clsid * SEGMENTS
        return sum(self.sizes[base:base + SEGMENTS])

