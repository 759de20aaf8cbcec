"""A Store on a clock the test moves: expiry, ages and crawls without sleeping."""

from __future__ import annotations

from typing import Callable

import pytest

from machines import Clock

from pymcd.store import Store, StoreSettings

MIB = 1024 * 1024


class ClockedStore:
    """A store and its clock; ``advance`` moves time as memcached's clock tick would see it."""

    def __init__(self, **settings) -> None:
        self.clock = Clock(start=1_700_000_000.0)
        self.store = Store(StoreSettings(**settings), clock=self.clock)

    def advance(self, seconds: float) -> None:
        self.clock.now += seconds
        self.store.tick()

    def stat(self, name: str) -> object:
        return dict(self.store.general_stats())[name]

    def slab_stat(self, clsid: int, name: str) -> object:
        return dict(self.store.slabs_stats())["%d:%s" % (clsid, name)]

    def item_stat(self, clsid: int, name: str) -> object:
        return dict(self.store.items_stats())["items:%d:%s" % (clsid, name)]


@pytest.fixture
def clocked() -> Callable[..., ClockedStore]:
    return ClockedStore
