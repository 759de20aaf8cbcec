"""Operators' commands on the store: slabs, lru, lru_crawler and cache_memlimit.

Each answers exactly as memcached 1.6.18 does; the work itself is the store's.
"""

from __future__ import annotations

from typing import List, Optional

from pymcd.commands.base import (
    BAD_FORMAT,
    ERROR,
    OK,
    TextCommand,
    replies_still_queued,
    wants_noreply,
)
from pymcd.c_numbers import parse_i32, parse_u32

REASSIGN_DISABLED = b"CLIENT_ERROR slab reassignment disabled\r\n"
METADUMP_PIPELINED = b"ERROR cannot pipeline other commands before metadump\r\n"


def _line(text: str) -> bytes:
    return text.encode() + b"\r\n"


def _parse_float(token: bytes) -> Optional[float]:
    try:
        return float(token)
    except ValueError:
        return None


class Slabs(TextCommand):
    """``slabs reassign <src> <dst>`` and ``slabs automove <0|1|2>`` / ``slabs automove ratio``."""

    names = (b"slabs",)

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        store = session.store
        if len(tokens) == 4 and tokens[1] == b"reassign":
            if not store.settings.slab_reassign:
                session.reply(REASSIGN_DISABLED)
                return
            src, dst = parse_i32(tokens[2]), parse_i32(tokens[3])
            if src is None or dst is None:
                session.reply(BAD_FORMAT)
                return
            session.reply(_line(store.slabs_reassign(src, dst)))
        elif len(tokens) >= 3 and tokens[1] == b"automove":
            self._automove(session, tokens)
        else:
            session.reply(ERROR)

    @staticmethod
    def _automove(session, tokens: List[bytes]) -> None:
        wants_noreply(session, tokens)
        settings = session.store.settings
        if tokens[2] == b"ratio":
            ratio = _parse_float(tokens[3]) if len(tokens) > 3 else None
            if ratio is None:
                session.reply(ERROR)
                return
            settings.slab_automove_ratio = ratio
        else:
            level = parse_u32(tokens[2])
            if level is None:
                session.reply(BAD_FORMAT)
                return
            if level > 2:
                session.reply(ERROR)
                return
            settings.slab_automove = level
        session.reply(OK)


class Lru(TextCommand):
    """``lru tune <hot%> <warm%> <hot factor> <warm factor>``, ``lru mode flat|segmented``,
    ``lru temp_ttl <ttl>``."""

    names = (b"lru",)
    arity = (2, None)

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        wants_noreply(session, tokens)
        settings = session.store.settings
        sub = tokens[1]
        if sub == b"tune" and len(tokens) >= 6:
            hot, warm = parse_u32(tokens[2]), parse_u32(tokens[3])
            hot_factor, warm_factor = _parse_float(tokens[4]), _parse_float(tokens[5])
            if None in (hot, warm, hot_factor, warm_factor):
                session.reply(ERROR)
            elif hot + warm > 80:
                session.reply(b"ERROR hot and warm pcts must not exceed 80\r\n")
            elif hot_factor <= 0 or warm_factor <= 0:
                session.reply(b"ERROR hot/warm age factors must be greater than 0\r\n")
            else:
                settings.hot_lru_pct, settings.warm_lru_pct = hot, warm
                settings.hot_max_factor, settings.warm_max_factor = hot_factor, warm_factor
                session.reply(OK)
        elif sub == b"mode" and len(tokens) >= 3 and settings.lru_maintainer:
            if tokens[2] in (b"flat", b"segmented"):
                settings.lru_segmented = tokens[2] == b"segmented"
                session.reply(OK)
            else:
                session.reply(ERROR)
        elif sub == b"temp_ttl" and len(tokens) >= 3 and settings.lru_maintainer:
            ttl = parse_i32(tokens[2])
            if ttl is None:
                session.reply(ERROR)
                return
            settings.temp_lru = ttl >= 0
            if ttl >= 0:
                settings.temporary_ttl = ttl
            session.reply(OK)
        else:
            session.reply(ERROR)


class LruCrawler(TextCommand):
    """``lru_crawler crawl|metadump <classes|all|hash>``, ``enable``, ``disable``,
    ``sleep <usec>``, ``tocrawl <n>``."""

    names = (b"lru_crawler",)

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        store = session.store
        crawler = store.crawler
        count = len(tokens)
        sub = tokens[1] if count > 1 else b""
        if count == 3 and sub == b"crawl":
            session.reply(_line(crawler.crawl(tokens[2])))
        elif count == 3 and sub == b"metadump":
            refusal = crawler.metadump_refusal()
            if refusal is not None:
                session.reply(_line(refusal))
            elif replies_still_queued(session):
                session.reply(METADUMP_PIPELINED)
            else:
                session.out.extend(crawler.metadump(tokens[2]))
        elif count == 3 and sub in (b"tocrawl", b"sleep"):
            number = parse_u32(tokens[2])
            if number is None:
                session.reply(BAD_FORMAT)
            elif sub == b"sleep" and number > 1_000_000:
                session.reply(b"CLIENT_ERROR sleep must be one second or less\r\n")
            else:
                setattr(store.settings, "lru_crawler_" + sub.decode(), number)
                session.reply(OK)
        elif count == 2 and sub == b"enable":
            session.reply(OK if crawler.enable() else b"ERROR failed to start lru crawler thread\r\n")
        elif count == 2 and sub == b"disable":
            crawler.disable()
            session.reply(OK)
        else:
            session.reply(ERROR)


class CacheMemlimit(TextCommand):
    """``cache_memlimit <megabytes> [noreply]``: change -m while running."""

    names = (b"cache_memlimit",)
    arity = (2, 3)

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        wants_noreply(session, tokens)
        megabytes = parse_u32(tokens[1])
        if megabytes is None:
            session.reply(ERROR)
        elif megabytes < 8:
            session.reply(b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n")
        elif megabytes > 1_000_000_000:
            session.reply(b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n")
        elif session.store.set_memory_limit(megabytes * 1024 * 1024):
            if session.server.verbose > 0:
                session.server.trace("maxbytes adjusted to %dm" % megabytes)
            session.reply(OK)
        else:
            session.reply(b"MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust\r\n")


SLABS = Slabs()
LRU = Lru()
LRU_CRAWLER = LruCrawler()
CACHE_MEMLIMIT = CacheMemlimit()
