"""The item store: slab pages, the index, the segmented LRU. Pure Python, no Twisted, no I/O."""

from pymcd.store import outcomes
from pymcd.store.settings import StoreSettings
from pymcd.store.store import ItemView, Store

__all__ = ["Store", "StoreSettings", "ItemView", "outcomes"]
