"""Expiry without clients (the crawler), metadump, and flush_all's lazy invalidation."""

from __future__ import annotations

from machines import Clock

from pymcd.store import Store, StoreSettings, outcomes

from tests.store.test_eviction import CLASS, fill, present


def test_the_maintainer_step_runs_the_crawler_check(clocked) -> None:
    store = clocked().store
    store.lru_maintainer_step()
    assert store.crawler.running and store.crawler.automatic


def run_crawl(store) -> None:
    while store.crawler.step():
        pass


def test_the_maintainer_crawls_and_reclaims_expired_items_nobody_asked_for(clocked) -> None:
    c = clocked()
    store = c.store
    # The maintainer's once-a-second crawler check (its juggles, which also reclaim expired
    # tails, are left out so that only the crawler can find the items).
    store.crawler.autocrawl_check()  # the first check at start crawls every class (empty here)
    run_crawl(store)
    fill(store, 0, 300, exptime=10)
    fill(store, 1000, 200)
    c.advance(11)
    # The last crawl found nothing: the next comes 65 seconds after the maintainer saw it end.
    store.crawler.autocrawl_check()
    assert not store.crawler.running
    c.advance(65)
    store.crawler.autocrawl_check()
    assert not store.crawler.running
    c.advance(1)
    store.crawler.autocrawl_check()
    assert store.crawler.running
    run_crawl(store)
    assert c.stat("curr_items") == 200
    assert c.stat("crawler_reclaimed") == 300
    assert c.stat("expired_unfetched") == 300
    assert c.stat("crawler_items_checked") == 500
    assert c.stat("get_expired") == 0 and c.stat("get_misses") == 0
    assert c.stat("lru_crawler_starts") == 2
    assert present(store, 1000, 200) == list(range(1000, 1200))


def test_crawls_come_sooner_when_items_are_about_to_expire(clocked) -> None:
    c = clocked()
    store = c.store
    fill(store, 0, 300, exptime=200)
    store.crawler.autocrawl_check()
    run_crawl(store)
    assert c.stat("crawler_reclaimed") == 0
    c.advance(1)
    store.crawler.autocrawl_check()  # schedules from what the crawl saw: all expire within 4 min
    stats = store.crawler.class_stats[CLASS]
    assert stats.next_crawl - store.now <= 65
    assert store.crawler.class_stats[CLASS + 1].next_crawl - store.now == 65


def test_lru_crawler_crawl_replies(clocked) -> None:
    store = clocked().store
    assert store.crawler.crawl(b"all") == "OK"
    assert store.crawler.crawl(b"1,2") == "BUSY currently processing crawler request"
    run_crawl(store)
    assert store.crawler.crawl(b"1,2,63") == "OK"
    run_crawl(store)
    assert store.crawler.crawl(b"0") == "BADCLASS invalid class id"
    assert store.crawler.crawl(b"64") == "BADCLASS invalid class id"
    assert store.crawler.crawl(b"1,x") == "BADCLASS invalid class id"
    assert store.crawler.crawl(b"hash") == "ERROR an unknown error happened"
    store.crawler.disable()
    assert store.crawler.crawl(b"all") == "CLIENT_ERROR lru crawler disabled"
    assert store.crawler.metadump_refusal() == "CLIENT_ERROR lru crawler disabled"
    assert store.crawler.enable() and not store.crawler.enable()


def test_tocrawl_limits_items_checked_per_class(clocked) -> None:
    c = clocked(lru_crawler_tocrawl=50)
    fill(c.store, 0, 300, exptime=5)
    c.advance(6)
    c.store.crawler.crawl(b"all")
    run_crawl(c.store)
    assert c.stat("crawler_items_checked") == 50 and c.stat("curr_items") == 250


def test_metadump_lines(clocked) -> None:
    c = clocked()
    store = c.store
    store.store(outcomes.SET, b"plain", 5, 0, b"abc")
    store.store(outcomes.SET, b"ttl key/%", 0, 100, b"x" * 100)
    store.store(outcomes.SET, b"gone", 0, 1, b"x")
    store.get(b"plain")
    c.advance(2)
    started = int(store.process_started)
    lines = store.crawler.metadump(b"all")
    assert lines[-1] == b"END\r\n"
    body = sorted(line.decode() for line in lines[:-1])
    view = store.peek(b"plain")
    assert body == [
        "key=plain exp=-1 la=%d cas=1 fetch=yes cls=1 size=71\n" % (view.last_access + started),
        "key=ttl%%20key%%2F%%25 exp=%d la=%d cas=2 fetch=no cls=4 size=168\n"
        % (store.peek(b"ttl key/%").exptime + started, store.now - 2 + started),
    ]
    ttl_line = next(line for line in lines if line.startswith(b"key=ttl"))
    assert store.crawler.metadump(b"4") == [ttl_line, b"END\r\n"]
    assert store.crawler.metadump(b"99") == [b"BADCLASS invalid class id\r\n"]


def test_metadump_refused_under_minus_X(clocked) -> None:
    store = clocked(dump_enabled=False).store
    assert store.crawler.metadump_refusal() == "ERROR metadump not allowed"


def test_flush_all_invalidates_without_scanning(clocked) -> None:
    c = clocked()
    store = c.store
    fill(store, 0, 100)
    store.flush_all()
    assert c.stat("curr_items") == 100  # nothing walked: items die when next looked at
    assert store.get(b"k00000") is None
    assert c.stat("get_flushed") == 1 and c.stat("curr_items") == 99
    fill(store, 500, 1)
    assert store.get(b"k00500") is not None  # stored after the flush
    store.crawler.crawl(b"all")
    run_crawl(store)
    assert c.stat("curr_items") == 1 and c.stat("crawler_reclaimed") == 99


def test_flush_all_with_a_delay(clocked) -> None:
    c = clocked()
    store = c.store
    fill(store, 0, 10)
    store.flush_all(30)
    c.advance(10)
    fill(store, 10, 1)
    assert len(present(store, 0, 11)) == 11
    c.advance(21)
    assert present(store, 0, 11) == []


def test_flush_all_at_an_absolute_time_two_seconds_ahead_waits() -> None:
    """memcached's clock starts on a whole second; a fractional start would truncate an
    absolute flush time one second early, flushing at once what t/flush-all.t keeps."""
    clock = Clock(start=1_700_000_000.7)
    store = Store(StoreSettings(), clock=clock)
    store.flush_all(int(clock.now) + 2)
    fill(store, 0, 1)
    assert len(present(store, 0, 1)) == 1
    clock.now += 3
    store.tick()
    assert present(store, 0, 1) == []
