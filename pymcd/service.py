"""The store as a Twisted Service: its clock and its background maintainers.

memcached runs a clock and three background threads (LRU maintainer, LRU crawler, slab
automover). Here each is a reactor-timed loop: the clock is a plain LoopingCall, while each
maintainer reports how long it wants to sleep after every step (memcached's threads pace
themselves the same way), so they are ``callLater`` chains rather than fixed-interval loops.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional

from twisted.application import service
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall

from pymcd.store import Store

CLOCK_INTERVAL = 1.0


class StoreService(service.Service):
    """Owns a Store's clock and maintainers while the server runs."""

    name = "store"

    def __init__(self, store: Store, clock: Optional[IReactorTime] = None) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self.store = store
        self.clock = clock
        self._ticker = LoopingCall(store.tick)
        self._ticker.clock = clock
        self._pending: Dict[str, IDelayedCall] = {}

    def startService(self) -> None:
        super().startService()
        self._ticker.start(CLOCK_INTERVAL, now=True)
        self._schedule("lru_maintainer", self.store.lru_maintainer_step, 0)
        self._schedule("lru_crawler", self.store.crawler_step, 0)
        self._schedule("slab_automover", self.store.automove_step, 0)

    def _schedule(self, name: str, step: Callable[[], float], delay: float) -> None:
        def run() -> None:
            self._schedule(name, step, step())

        self._pending[name] = self.clock.callLater(delay, run)

    def stopService(self) -> None:
        super().stopService()
        if self._ticker.running:
            self._ticker.stop()
        for call in self._pending.values():
            if call.active():
                call.cancel()
        self._pending.clear()
