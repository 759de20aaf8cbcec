"""The LRU crawler: finds expired items without any client asking for them, and dumps metadata.

memcached runs it as a thread woken by ``lru_crawler crawl`` or by the LRU maintainer; here it is
a step function the service calls from a LoopingCall, each step checking a bounded number of
items so that the reactor is never held for long.
"""

from __future__ import annotations

import string
from typing import TYPE_CHECKING, List, Optional

from pymcd.store.items import SEGMENTS

if TYPE_CHECKING:  # pragma: no cover
    from pymcd.store.store import Store

ITEMS_PER_STEP = 500
MAX_CLASS_ID = 63
UNRESERVED = set((string.ascii_letters + string.digits + "-._~").encode())


def uriencode(key: bytes) -> str:
    """memcached's key encoding in metadump lines: RFC 3986 unreserved bytes stay, others %XX."""
    return "".join(chr(b) if b in UNRESERVED else "%%%02X" % b for b in key)


class Crawler:
    """Crawl requests waiting for the background steps, and metadump on demand."""

    def __init__(self, store: "Store") -> None:
        self.store = store
        self.enabled = store.settings.lru_crawler
        self.pending: List[int] = []  # classes still to crawl
        self._current: List[int] = []  # locations left in the class being crawled
        self._current_class = 0
        self._left_in_class = 0

    @property
    def running(self) -> bool:
        return bool(self.pending or self._current)

    def parse_classes(self, spec: bytes) -> Optional[List[int]]:
        """``all`` or a comma separated list of class ids; None for a bad id (BADCLASS)."""
        if spec == b"all":
            return list(range(1, len(self.store.slabs.classes)))
        classes = []
        for part in spec.split(b","):
            if not part.isdigit() or not 1 <= int(part) <= MAX_CLASS_ID:
                return None
            classes.append(int(part))
        return classes

    def crawl(self, spec: bytes) -> str:
        """``lru_crawler crawl``: memcached's reply line (without CRLF)."""
        if not self.enabled:
            return "CLIENT_ERROR lru crawler disabled"
        if self.running:
            return "BUSY currently processing crawler request"
        classes = self.parse_classes(spec)
        if classes is None:
            return "BADCLASS invalid class id"
        self.start([c for c in classes if c < len(self.store.slabs.classes)])
        return "OK"

    def start(self, classes: List[int]) -> None:
        self.pending = list(classes)
        self.store.lru_crawler_starts += 1

    def step(self) -> bool:
        """Check up to ITEMS_PER_STEP items; returns True while a crawl is in progress."""
        store = self.store
        budget = ITEMS_PER_STEP
        tocrawl = store.settings.lru_crawler_tocrawl
        while budget:
            if not self._current:
                if not self.pending:
                    return False
                self._current_class = self.pending.pop(0)
                self._current = store.locations_of_class(self._current_class)
                self._left_in_class = tocrawl or len(self._current)
                continue
            location = self._current.pop()
            budget -= 1
            self._left_in_class -= 1
            if self._left_in_class <= 0:
                self._current = []
            if store.slabs.page_class[location >> 16] != self._current_class:
                continue  # the chunk moved to another class since the walk began
            clsid = self._current_class
            page, offset = store.slabs.locate(location)
            segment = page[offset + 26]
            counters = store.per_lru
            index = clsid * SEGMENTS + segment
            counters["crawler_items_checked"][index] += 1
            if store.reclaim_if_dead(location):
                counters["crawler_reclaimed"][index] += 1
                counters["reclaimed"][index] += 1
        return True

    def metadump(self, spec: bytes) -> List[bytes]:
        """``lru_crawler metadump``: one line per live item, then END (or an error line)."""
        store = self.store
        if not self.enabled:
            return [b"CLIENT_ERROR lru crawler disabled\r\n"]
        if not store.settings.dump_enabled:
            return [b"ERROR metadump not allowed\r\n"]
        if spec == b"hash":
            classes = list(range(1, len(store.slabs.classes)))
        else:
            classes = self.parse_classes(spec)
            if classes is None:
                return [b"BADCLASS invalid class id\r\n"]
        lines = []
        started = int(store.process_started)
        for clsid in classes:
            if clsid >= len(store.slabs.classes):
                continue
            for location in store.locations_of_class(clsid):
                view = store.view_at(location)
                if store.is_dead(view.exptime, view.last_access, view.cas):
                    continue
                lines.append(
                    (
                        "key=%s exp=%d la=%d cas=%d fetch=%s cls=%d size=%d\n"
                        % (
                            uriencode(view.key),
                            -1 if view.exptime == 0 else view.exptime + started,
                            view.last_access + started,
                            view.cas,
                            "yes" if view.fetched else "no",
                            view.clsid,
                            view.total_size,
                        )
                    ).encode()
                )
        lines.append(b"END\r\n")
        return lines
