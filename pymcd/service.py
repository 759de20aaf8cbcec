"""The store as a Twisted Service: its clock and its background maintainers.

memcached runs a clock and three background threads (LRU maintainer, LRU crawler, slab
rebalancer with its automover). Here each is a ``LoopingCall`` on the reactor. memcached's
threads pace themselves (the maintainer sleeps longer while there is nothing to move), so each
step returns how long it wants to sleep and its loop's interval follows.

With a memory file (``-e``) the service also opens the store from it, and saves its metadata
once the reactor has shut down (every connection closed, so nothing changes the pages after
the save), whatever stopped it: SIGUSR1, SIGTERM, ``shutdown`` or twistd.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from typing import TYPE_CHECKING, Callable, Dict, Optional

from twisted.application import service
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

from pymcd.logger import emit_trace
from pymcd.store import Store, StoreSettings

if TYPE_CHECKING:  # pragma: no cover
    from pymcd.restart.memory_file import MemoryFile

CLOCK_INTERVAL = 1.0
HEAP_TRIM_INTERVAL = 10.0
# PyPy runs a major collection only once its heap has grown to 1.82 times what the last one
# left (PYPY_GC_MAJOR_COLLECT, read at start-up), so values passing through on their way into
# the pages stayed allocated long after they were garbage: bench/memory.py's fill left PyPy's
# pymcd at 210.8 MiB of RSS, 165.6 MiB after a collection and a trim. Each heap trim first
# walks one major collection through in PyPy's own incremental steps, one a reactor turn
# (37 steps of at most 5-6 ms, about 30 ms in all with 55,000 items); CPython has no such step
# and frees its garbage as it goes.
COLLECT_STEP = getattr(gc, "collect_step", None)
# glibc's M_MMAP_THRESHOLD parameter, and the value it starts from.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024


def libc_function(name: str) -> Optional[Callable[..., int]]:
    """A function of the C library (glibc's malloc tuning), or None where it has none."""
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c")), name)
    except (OSError, AttributeError, TypeError):
        return None


def heap_trimmer() -> Optional[Callable[[int], int]]:
    """glibc's ``malloc_trim``, or None where the C library has none.

    Values pass through the heap on their way into the pages (and replies on their way out);
    glibc keeps what they freed for reuse, so without a trim RSS drifts above what ``-m``
    and the index account for (about 100 bytes per resident item in bench/memory.py).
    """
    return libc_function("malloc_trim")


def fix_mmap_threshold() -> bool:
    """Hold glibc's mmap threshold at its starting 128 KiB; False where there is no mallopt.

    glibc raises it to the size of each mapped block freed, so once the index's table was
    replaced in a resize (2.5 MiB at 31,000 items; a table churned by evictions is replaced at
    the same size every few tens of thousands of sets) or a 500 KB reply was freed, such
    blocks came from the heap instead, and each one freed left a hole that stayed resident
    until the next trim (bench/soak.py: 4-6.5 MiB of the heap free, RSS swinging 3-5 MiB
    between trims). Mapped, a freed block goes back to the kernel at once.
    """
    mallopt = libc_function("mallopt")
    return mallopt is not None and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def freeze_startup_objects() -> None:
    """Leave what imports and start-up made out of every later cyclic collection.

    A server with TLS has some 45,000 such objects (modules, classes, functions), and a full
    collection walking them took 20-25 ms here: a pause every client saw, each time the
    survivors of younger collections (connections, replies in flight) added up to a quarter
    of them. They live as long as the process, so collecting them only costs time.
    (PyPy's collector has no freeze and needs none: it does not walk old objects this way.)
    """
    freeze = getattr(gc, "freeze", None)
    if freeze is not None:
        freeze()


class StoreService(service.Service):
    """Owns a Store's clock and maintainers while the server runs."""

    name = "store"

    def __init__(self, store: Store, clock: Optional[IReactorTime] = None,
                 memory: Optional["MemoryFile"] = None, restored: bool = False) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self.store = store
        self.clock = clock
        self.memory = memory
        self.restored = restored
        self.loops: Dict[str, LoopingCall] = {}
        self._add("clock", self._tick)
        settings = store.settings
        if settings.lru_maintainer:
            self._add("lru_maintainer", store.lru_maintainer_step)
        self._add("lru_crawler", store.crawler_step)
        if settings.slab_reassign:
            self._add("slab_rebalancer", store.rebalancer_step)
        fix_mmap_threshold()
        self._trim = heap_trimmer()
        if self._trim is not None:
            self._add("heap_trim", self._trim_heap)

    @classmethod
    def for_settings(cls, settings: StoreSettings, memory_file: Optional[str]) -> "StoreService":
        """A fresh store, or with ``-e`` one on that memory file (restored when it can be)."""
        if not memory_file:
            return cls(Store(settings))
        from pymcd.restart.warm import open_store

        store, memory, restored = open_store(settings, memory_file)
        return cls(store, memory=memory, restored=restored)

    def save(self) -> None:
        """Write the memory file's metadata (after the reactor stopped serving)."""
        from pymcd.restart.warm import save_store

        saved = save_store(self.store, self.memory)
        emit_trace("[restart] saved %d items to %s" % (saved, self.memory.meta_path))

    def _tick(self) -> float:
        self.store.tick()
        return CLOCK_INTERVAL

    def _trim_heap(self) -> float:
        if COLLECT_STEP is not None and not COLLECT_STEP().major_is_done:
            # PyPy: the rest of the major collection on the next reactor turns, then the trim.
            return 0
        self._trim(0)
        return HEAP_TRIM_INTERVAL

    def _add(self, name: str, step: Callable[[], float]) -> None:
        def run() -> None:
            loop.interval = step()

        loop = LoopingCall(run)
        loop.clock = self.clock
        self.loops[name] = loop

    def startService(self) -> None:
        super().startService()
        freeze_startup_objects()
        for loop in self.loops.values():
            loop.start(CLOCK_INTERVAL, now=True)
        if self.memory is not None:
            from twisted.internet import reactor

            reactor.addSystemEventTrigger("after", "shutdown", self.save)

    def stopService(self) -> None:
        super().stopService()
        for loop in self.loops.values():
            if loop.running:
                loop.stop()
