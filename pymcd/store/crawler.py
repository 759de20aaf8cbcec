"""The LRU crawler: finds expired items without any client asking for them, and dumps metadata.

memcached runs it as a thread, started by ``lru_crawler crawl`` or, once a second, by the LRU
maintainer for every class whose last crawl suggests there is something to reclaim
(``lru_maintainer_crawler_check``). Here both are step functions the service calls from its
loops; each crawl step checks a bounded number of items so the reactor is never held for long.
"""

from __future__ import annotations

import string
from typing import List, Optional, Tuple

from pymcd.store.items import SEGMENTS
from pymcd.store.pages import ItemPages, ItemView
from pymcd.store.slabs import SLOT_BITS


ITEMS_PER_STEP = 500
MAX_NUMBER_OF_SLAB_CLASSES = 64
UNRESERVED = set((string.ascii_letters + string.digits + "-._~").encode())
# lru_maintainer_crawler_check: at most an hour between crawls, and a TTL histogram by minute.
MAX_MAINTCRAWL_WAIT = 60 * 60
HISTOGRAM_MINUTES = 61

OK = "OK"
BUSY = "BUSY currently processing crawler request"
BADCLASS = "BADCLASS invalid class id"
UNKNOWN_ERROR = "ERROR an unknown error happened"
DISABLED = "CLIENT_ERROR lru crawler disabled"


def uriencode(key: bytes) -> str:
    """memcached's key encoding in metadump lines: RFC 3986 unreserved bytes stay, others %XX."""
    return "".join(chr(b) if b in UNRESERVED else "%%%02X" % b for b in key)


class ClassCrawlStats:
    """What the last crawl of one class saw: how soon another crawl would pay off."""

    __slots__ = ("seen", "noexp", "examined", "reclaimed", "histogram", "run_complete",
                 "automatic", "start_time", "end_time", "next_crawl", "next_wait")

    def __init__(self) -> None:
        self.seen = 0
        self.noexp = 0
        # Per LRU segment (HOT, WARM, COLD, TEMP), for the sysevents lines.
        self.examined = [0] * SEGMENTS
        self.reclaimed = [0] * SEGMENTS
        self.automatic = False
        self.start_time = 0
        self.histogram = [0] * HISTOGRAM_MINUTES
        self.run_complete = False
        self.end_time = 0
        self.next_crawl = 0
        self.next_wait = 0

    def start(self, now: int, automatic: bool) -> None:
        self.seen = self.noexp = 0
        self.examined = [0] * SEGMENTS
        self.reclaimed = [0] * SEGMENTS
        self.automatic = automatic
        self.start_time = now
        self.histogram = [0] * HISTOGRAM_MINUTES
        self.run_complete = False


class Crawler:
    """Crawl requests waiting for the background steps, auto-crawl scheduling, and metadump."""

    def __init__(self, pages: ItemPages) -> None:
        self.pages = pages
        self.pending: List[int] = []  # classes still to crawl
        self.automatic = False  # the running crawl was started by the maintainer
        # (location, its page's class) left to check in the class being crawled: a big item's
        # header chunk lives in a smaller class's page, and a page may move during the walk.
        self._current: List[Tuple[int, int]] = []
        self._current_class = 0
        self._left_in_class = 0
        self._block_automatic_until = 0
        self.class_stats = [ClassCrawlStats() for _ in range(MAX_NUMBER_OF_SLAB_CLASSES)]

    @property
    def running(self) -> bool:
        return bool(self.pending or self._current)

    @staticmethod
    def parse_classes(spec: bytes) -> Optional[List[int]]:
        """``all`` or a comma separated list of class ids; None for a bad id (BADCLASS)."""
        if spec == b"all":
            return list(range(1, MAX_NUMBER_OF_SLAB_CLASSES))
        classes = []
        for part in spec.split(b","):
            if not part.isdigit() or not 1 <= int(part) < MAX_NUMBER_OF_SLAB_CLASSES:
                return None
            classes.append(int(part))
        return classes

    def crawl(self, spec: bytes) -> str:
        """``lru_crawler crawl``: memcached's reply line (without CRLF)."""
        if not self.pages.settings.lru_crawler:
            return DISABLED
        if spec == b"hash":
            return UNKNOWN_ERROR  # memcached walks the hash table for metadump only
        classes = self.parse_classes(spec)
        if classes is None:
            return BADCLASS
        if self.running:
            if self.automatic:
                # The maintainer's crawls then pause for a minute to let the client's through.
                self._block_automatic_until = self.pages.now + 60
            return BUSY
        self.start(classes, automatic=False)
        return OK

    def enable(self) -> bool:
        """``lru_crawler enable``: False if it already runs (memcached cannot start it twice)."""
        settings = self.pages.settings
        if settings.lru_crawler:
            return False
        settings.lru_crawler = True
        return True

    def disable(self) -> None:
        """``lru_crawler disable``: stop, dropping any crawl in progress."""
        self.pages.settings.lru_crawler = False
        self.pending, self._current, self._current_class = [], [], 0

    def start(self, classes: List[int], automatic: bool) -> None:
        self.pending = [clsid for clsid in classes if clsid < len(self.pages.slabs.classes)]
        self.automatic = automatic
        for clsid in self.pending:
            self.class_stats[clsid].start(self.pages.now, automatic)
        self.pages.lru_crawler_starts += 1

    def autocrawl_check(self) -> None:
        """lru_maintainer_crawler_check: schedule the classes whose next crawl is due.

        After a class's crawl, the wait before the next one grows by a minute while there was
        nothing worth reclaiming within the hour (at most an hour), and shrinks by a minute when
        at least 1% of the items will expire sooner than the wait.
        """
        pages = self.pages
        now = pages.now
        due = []
        for clsid in range(1, len(pages.slabs.classes)):
            stats = self.class_stats[clsid]
            if stats.run_complete:
                low_watermark = (stats.seen - stats.noexp) // 100 + 1
                available = 0
                for minute in range(60):
                    available += stats.histogram[minute]
                    if available > low_watermark:
                        if stats.next_wait < minute * 60:
                            stats.next_wait += 60
                        elif stats.next_wait >= 60:
                            stats.next_wait -= 60
                        break
                if available == 0:
                    stats.next_wait += 60
                stats.next_wait = min(stats.next_wait, MAX_MAINTCRAWL_WAIT)
                stats.next_crawl = now + stats.next_wait + 5
                stats.run_complete = False
                if pages.system_event_listener is not None and stats.automatic:
                    self._log_crawl(clsid, stats, low_watermark, available)
            if now > stats.next_crawl:
                due.append(clsid)
                stats.next_crawl = now + 5  # minimum retry wait
        if due and not self.running and self._block_automatic_until <= now:
            self.start(due, automatic=True)

    def _log_crawl(self, clsid: int, stats: ClassCrawlStats, low_watermark: int,
                   available: int) -> None:
        """memcached's sysevents line for each LRU of a class after a maintainer's crawl.

        memcached schedules each LRU on its own; pymcd crawls a class's four together, so the
        scheduling figures are the class's and only examined/reclaimed are the LRU's own.
        """
        now = self.pages.now
        for segment, name in enumerate((b"hot", b"warm", b"cold", b"temp")):
            self.pages.system_event_listener(
                b"type=lru_crawler crawler=%d lru=%s low_mark=%d next_reclaims=%d since_run=%d "
                b"next_run=%d elapsed=%d examined=%d reclaimed=%d"
                % (clsid, name, low_watermark, available, now - stats.end_time,
                   stats.next_crawl - now, stats.end_time - stats.start_time,
                   stats.examined[segment], stats.reclaimed[segment]))

    def step(self) -> bool:
        """Check up to ITEMS_PER_STEP items; returns True while a crawl is in progress."""
        pages = self.pages
        budget = ITEMS_PER_STEP
        tocrawl = pages.settings.lru_crawler_tocrawl
        counters = pages.per_lru
        while budget:
            if not self._current:
                if self._current_class:
                    self._class_done()
                if not self.pending:
                    return False
                self._current_class = self.pending.pop(0)
                page_class = pages.slabs.page_class
                self._current = [(location, page_class[location >> SLOT_BITS])
                                 for location in pages.locations_of_class(self._current_class)]
                self._left_in_class = tocrawl or len(self._current)
                if not self._current:
                    self._class_done()
                continue
            location, walked_page_class = self._current.pop()
            budget -= 1
            self._left_in_class -= 1
            if self._left_in_class <= 0:
                self._current = []
            clsid = self._current_class
            if pages.slabs.page_class[location >> SLOT_BITS] != walked_page_class:
                continue  # the page moved to another class since the walk began
            view = pages.view_at(location, with_value=False)
            if view is None:
                continue  # the item went since the walk began
            index = clsid * SEGMENTS + view.lru
            counters["crawler_items_checked"][index] += 1
            self._evaluate(clsid, index, location, view)
        return True

    def _evaluate(self, clsid: int, index: int, location: int, view: ItemView) -> None:
        """crawler_expired_eval: reclaim a dead item, or note when a live one will expire."""
        pages = self.pages
        if pages.is_dead(view.exptime, view.last_access, view.cas, strictly=True):
            pages.per_lru["crawler_reclaimed"][index] += 1
            self.class_stats[clsid].reclaimed[view.lru] += 1
            if not view.fetched and not pages.is_flushed(view.last_access, view.cas):
                pages.per_lru["expired_unfetched"][index] += 1
            pages.free_item(location)
            return
        stats = self.class_stats[clsid]
        stats.seen += 1
        stats.examined[view.lru] += 1
        if view.exptime == 0:
            stats.noexp += 1
        elif view.exptime - pages.now <= 3599:
            stats.histogram[(view.exptime - pages.now) // 60] += 1

    def _class_done(self) -> None:
        stats = self.class_stats[self._current_class]
        stats.end_time = self.pages.now
        stats.run_complete = True
        self._current_class = 0

    def metadump_refusal(self) -> Optional[str]:
        """Why ``lru_crawler metadump`` may not run at all (memcached checks this first)."""
        settings = self.pages.settings
        if not settings.lru_crawler:
            return DISABLED
        if not settings.dump_enabled:
            return "ERROR metadump not allowed"
        return None

    def metadump(self, spec: bytes) -> List[bytes]:
        """``lru_crawler metadump`` once allowed: one line per live item, then END (or an
        error line)."""
        pages = self.pages
        if spec == b"hash":
            classes: Optional[List[int]] = list(range(1, MAX_NUMBER_OF_SLAB_CLASSES))
        else:
            classes = self.parse_classes(spec)
            if classes is None:
                return [BADCLASS.encode() + b"\r\n"]
        if self.running:
            return [BUSY.encode() + b"\r\n"]
        lines = []
        started = int(pages.process_started)
        for clsid in classes:
            if clsid >= len(pages.slabs.classes):
                continue
            for location in pages.locations_of_class(clsid):
                view = pages.view_at(location, with_value=False)
                if pages.is_dead(view.exptime, view.last_access, view.cas, strictly=True):
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
