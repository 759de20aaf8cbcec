"""The store as a Twisted Service: its clock and its background maintainers.

memcached runs a clock and three background threads (LRU maintainer, LRU crawler, slab
rebalancer with its automover). Here each is a ``LoopingCall`` on the reactor. memcached's
threads pace themselves (the maintainer sleeps longer while there is nothing to move), so each
step returns how long it wants to sleep and its loop's interval follows.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Callable, Dict, Optional

from twisted.application import service
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

from pymcd.store import Store

CLOCK_INTERVAL = 1.0
HEAP_TRIM_INTERVAL = 10.0


def heap_trimmer() -> Optional[Callable[[int], int]]:
    """glibc's ``malloc_trim``, or None where the C library has none.

    Values pass through the heap on their way into the pages (and replies on their way out);
    glibc keeps what they freed for reuse, so without a trim RSS drifts above what ``-m``
    and the index account for (about 100 bytes per resident item in bench/memory.py).
    """
    try:
        return ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None


class StoreService(service.Service):
    """Owns a Store's clock and maintainers while the server runs."""

    name = "store"

    def __init__(self, store: Store, clock: Optional[IReactorTime] = None) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self.store = store
        self.clock = clock
        self.loops: Dict[str, LoopingCall] = {}
        self._add("clock", self._tick)
        settings = store.settings
        if settings.lru_maintainer:
            self._add("lru_maintainer", store.lru_maintainer_step)
        self._add("lru_crawler", store.crawler_step)
        if settings.slab_reassign:
            self._add("slab_rebalancer", store.rebalancer_step)
        self._trim = heap_trimmer()
        if self._trim is not None:
            self._add("heap_trim", self._trim_heap)

    def _tick(self) -> float:
        self.store.tick()
        return CLOCK_INTERVAL

    def _trim_heap(self) -> float:
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
        for loop in self.loops.values():
            loop.start(CLOCK_INTERVAL, now=True)

    def stopService(self) -> None:
        super().stopService()
        for loop in self.loops.values():
            if loop.running:
                loop.stop()
