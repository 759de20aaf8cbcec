"""Slab classes and 1 MiB pages: where item bytes live.

Classes are computed exactly as memcached computes them (``slabs_init``), so the same item lands
in the same class on both servers. A page is a ``bytearray`` assigned to one class on demand and
cut into that class's chunks; ``-m`` bounds the pages, so it bounds item memory for real.

A chunk is named by an int *location*: ``page_number << 16 | slot``. Free chunks of a class are
a list of locations used as a stack. No Python object exists per chunk.

With a memory file (``-e``) the pages are views of one shared mapping handed in at start, all
of them at once: as memcached does then, every class gets a first page and the rest wait in the
global pool, and the budget can no longer change while running.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

from pymcd.store.settings import StoreSettings

CHUNK_ALIGN_BYTES = 8
ITEM_HEADER_SIZE = 48  # memcached's sizeof(item) on 64-bit: the unit its size accounting uses
MAX_NUMBER_OF_SLAB_CLASSES = 64
SLOT_BITS = 16
SLOT_MASK = (1 << SLOT_BITS) - 1


class SlabClass:
    """One size class: its chunk size, chunks per page, pages and free chunks."""

    __slots__ = ("clsid", "size", "perslab", "pages", "free", "used_chunks")

    def __init__(self, clsid: int, size: int, perslab: int) -> None:
        self.clsid = clsid
        self.size = size
        self.perslab = perslab
        self.pages: List[int] = []
        self.free: List[int] = []
        self.used_chunks = 0

    @property
    def total_chunks(self) -> int:
        return len(self.pages) * self.perslab


def compute_classes(settings: StoreSettings) -> List[SlabClass]:
    """memcached's class table; index 0 is unused as in memcached (class ids start at 1)."""
    classes: List[SlabClass] = [SlabClass(0, 0, 0)]
    size = ITEM_HEADER_SIZE + settings.chunk_size
    clsid = 1
    while clsid < MAX_NUMBER_OF_SLAB_CLASSES - 1:
        if size >= settings.slab_chunk_max / settings.growth_factor:
            break
        if size % CHUNK_ALIGN_BYTES:
            size += CHUNK_ALIGN_BYTES - size % CHUNK_ALIGN_BYTES
        classes.append(SlabClass(clsid, size, settings.slab_page_size // size))
        size = int(size * settings.growth_factor)
        clsid += 1
    largest = settings.slab_chunk_max
    classes.append(SlabClass(clsid, largest, settings.slab_page_size // largest))
    return classes


class SlabAllocator:
    """Pages and chunks under a memory limit."""

    def __init__(self, settings: StoreSettings, memory: Optional[Sequence[memoryview]] = None,
                 preallocate: bool = True) -> None:
        """``memory``: preallocated pages (a memory file's); ``preallocate`` then hands them out
        as memcached does on a cold start (a warm one places them itself)."""
        self.settings = settings
        self.classes = compute_classes(settings)
        self.largest = len(self.classes) - 1
        self.page_size = settings.slab_page_size
        self.memory_limit = settings.memory_limit
        self.pages: List[bytearray] = []
        # Chunk size of each page's class: turns a location into a byte offset.
        self.page_chunk_size: List[int] = []
        self.page_class: List[int] = []
        self.spare_pages: List[int] = []  # pages taken back from a class, not yet reassigned
        self.dropped_pages: List[int] = []  # page numbers whose memory went back (memlimit)
        # The size a class is chosen by, for every ntotal up to the largest chunk: a list
        # indexed by ntotal // 8 keeps class lookup to one index on the hot path.
        self._class_by_size = self._build_class_lookup()
        self.preallocated = memory is not None
        self._zero_page = bytes(self.page_size)
        if memory is not None:
            self.pages.extend(memory)
            self.page_chunk_size.extend([0] * len(memory))
            self.page_class.extend([0] * len(memory))
            if preallocate:
                self._preallocate()

    def _preallocate(self) -> None:
        """memcached's slabs_preallocate then slabs_prefill_global: a page for every class,
        the rest in the global pool."""
        numbers = iter(range(len(self.pages)))
        for cls in self.classes[1:]:
            number = next(numbers, None)
            if number is None:
                return
            self.assign_page(cls, number)
        self.spare_pages.extend(numbers)

    def _build_class_lookup(self) -> List[int]:
        lookup = []
        clsid = 1
        for step in range(self.settings.slab_chunk_max // CHUNK_ALIGN_BYTES + 1):
            size = step * CHUNK_ALIGN_BYTES
            while clsid < self.largest and size > self.classes[clsid].size:
                clsid += 1
            lookup.append(clsid)
        return lookup

    def class_for(self, ntotal: int) -> int:
        """slabs_clsid: the smallest class whose chunks hold ``ntotal`` bytes (0: too large)."""
        if ntotal == 0 or ntotal > self.settings.item_size_max:
            return 0
        if ntotal > self.settings.slab_chunk_max:
            return self.largest
        return self._class_by_size[(ntotal + CHUNK_ALIGN_BYTES - 1) // CHUNK_ALIGN_BYTES]

    @property
    def malloced(self) -> int:
        return (len(self.pages) - len(self.dropped_pages)) * self.page_size \
            + self.settings.initial_malloced

    def can_grow(self, cls: SlabClass) -> bool:
        """memcached always lets a class have its first page, even past the limit."""
        return self.malloced + self.page_size <= self.memory_limit or not cls.pages

    def new_page(self, cls: SlabClass) -> bool:
        """Give ``cls`` a page: from the global pool first, else new memory if the budget allows."""
        if self.spare_pages:
            page_number = self.spare_pages.pop(0)
        elif not self.can_grow(cls):
            return False
        elif self.dropped_pages:
            page_number = self.dropped_pages.pop()
            self.pages[page_number] = bytearray(self.page_size)
        else:
            page_number = len(self.pages)
            self.pages.append(bytearray(self.page_size))
            self.page_chunk_size.append(0)
            self.page_class.append(0)
        self.assign_page(cls, page_number, wipe=False)
        return True

    def assign_page(self, cls: SlabClass, page_number: int, wipe: bool = True) -> None:
        """Cut a page into ``cls``'s chunks, all free; its old bytes are wiped (a moved page,
        or a memory file's left from an earlier run) unless it is known to be new."""
        if wipe:
            self.pages[page_number][:] = self._zero_page
        self.page_chunk_size[page_number] = cls.size
        self.page_class[page_number] = cls.clsid
        cls.pages.append(page_number)
        base = page_number << SLOT_BITS
        # Reversed so that pop() hands out slots from the start of the page.
        cls.free.extend(range(base + cls.perslab - 1, base - 1, -1))

    def alloc(self, clsid: int) -> Optional[int]:
        """A free chunk of class ``clsid``, growing the class by a page if allowed."""
        cls = self.classes[clsid]
        if not cls.free and not self.new_page(cls):
            return None
        cls.used_chunks += 1
        return cls.free.pop()

    def free(self, location: int) -> None:
        cls = self.classes[self.page_class[location >> SLOT_BITS]]
        cls.used_chunks -= 1
        cls.free.append(location)

    def locate(self, location: int):
        """(page bytearray, byte offset) of a chunk."""
        page_number = location >> SLOT_BITS
        return self.pages[page_number], (location & SLOT_MASK) * self.page_chunk_size[page_number]

    def release_page(self, cls: SlabClass, page_number: int) -> None:
        """Take a page whose chunks are all free away from its class (the caller places it)."""
        base = page_number << SLOT_BITS
        end = base + cls.perslab
        cls.free = [loc for loc in cls.free if not base <= loc < end]
        cls.pages.remove(page_number)
        self.page_class[page_number] = 0

    def drop_spare(self, page_number: int) -> None:
        """Give a global-pool page's memory back (the budget shrank)."""
        self.spare_pages.remove(page_number)
        self.pages[page_number] = bytearray()
        self.dropped_pages.append(page_number)

    def slab_class_lines(self) -> List[str]:
        return [
            "slab class %3d: chunk size %9d perslab %7d" % (cls.clsid, cls.size, cls.perslab)
            for cls in self.classes[1:]
        ]
