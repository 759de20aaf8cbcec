"""The store service's heap trim on PyPy: a major collection walked through in PyPy's own
incremental steps, one a reactor turn, before memory goes back to the kernel (see
pymcd.service.COLLECT_STEP). CPython has no such collector; the test runs in CI's PyPy subset."""

import gc

import pytest
from twisted.internet.task import Clock

from pymcd.service import HEAP_TRIM_INTERVAL, StoreService
from pymcd.store import Store, StoreSettings

pytestmark = pytest.mark.skipif(not hasattr(gc, "collect_step"),
                                reason="PyPy's incremental collector")


def test_each_trim_walks_one_major_collection_through_in_steps():
    majors = []
    gc.hooks.on_gc_collect = majors.append
    clock = Clock()
    service = StoreService(Store(StoreSettings()), clock=clock)
    try:
        service.startService()
        # The first step ran at start, and the collection goes on over later turns: no single
        # pause of a whole collection.
        assert not majors
        turns = 0
        while not majors and turns < 10_000:
            clock.advance(0)
            turns += 1
        assert len(majors) == 1
        # Then the loop waits for the next trim, collecting nothing meanwhile.
        for _ in range(100):
            clock.advance(0)
        assert len(majors) == 1
        clock.advance(HEAP_TRIM_INTERVAL)
        while len(majors) == 1 and turns < 20_000:
            clock.advance(0)
            turns += 1
        assert len(majors) == 2
    finally:
        gc.hooks.on_gc_collect = None
        service.stopService()
