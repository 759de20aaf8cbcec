"""The store's operator commands over TCP against a running pymcd, and what they change.

The maintainers run for real here (reactor loops, wall clock), so effects that take a loop turn
are polled for, with a deadline.
"""

from __future__ import annotations

import re
import time
from typing import Callable

import pytest
from support import exchange, start_pymcd, stats

VALUE_1000 = b"v" * 1000  # class 12 with default flags: 885 items a page


def command(sock, line: bytes) -> bytes:
    """One command; ``mn`` marks the end of its reply (which may be empty under noreply)."""
    return exchange(sock, line + b"\r\nmn\r\n", expect_end=b"MN\r\n")[:-4]


def fill(sock, count: int, value: bytes = VALUE_1000, exptime: int = 0, prefix: bytes = b"k") -> None:
    script = b"".join(b"set %s%d 0 %d %d noreply\r\n%s\r\n" % (prefix, number, exptime, len(value), value)
                      for number in range(count))
    assert exchange(sock, script + b"mn\r\n", expect_end=b"MN\r\n", timeout=30) == b"MN\r\n"


def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


@pytest.fixture
def server():
    with start_pymcd() as process:
        with process.connect() as sock:
            yield sock


def test_slabs_reassign_queues_a_move_and_the_mover_carries_it_out(server) -> None:
    fill(server, 3 * 885 + 10)
    assert stats(server, b"slabs")["12:total_pages"] == "4"
    # Two requests in one read: the second finds the first still queued.
    assert exchange(server, b"slabs reassign 12 5\r\nslabs reassign 12 6\r\n", expect_end=b"request\r\n") \
        == b"OK\r\nBUSY currently processing reassign request\r\n"
    assert wait_until(lambda: stats(server)["slabs_moved"] == "1")
    slabs = stats(server, b"slabs")
    assert (slabs["12:total_pages"], slabs["5:total_pages"]) == ("3", "1")
    general = stats(server)
    assert general["slab_reassign_running"] == "0"
    assert int(general["slab_reassign_evictions_nomem"]) + int(general["slab_reassign_rescues"]) == 885
    assert general["curr_items"] == str(3 * 885 + 10 - int(general["slab_reassign_evictions_nomem"]))
    assert command(server, b"slabs reassign 5 12") == b"NOSPARE source class has no spare pages\r\n"
    assert command(server, b"slabs reassign 12 70") == b"BADCLASS invalid src or dst class id\r\n"
    assert command(server, b"slabs reassign 12 12") == b"SAME src and dst class are identical\r\n"
    assert command(server, b"slabs reassign 12 0") == b"OK\r\n"
    assert wait_until(lambda: stats(server)["slab_global_page_pool"] == "1")


def test_slabs_reassign_disabled() -> None:
    with start_pymcd(["-o", "no_slab_reassign"]) as process:
        with process.connect() as sock:
            assert command(sock, b"slabs reassign 1 2") == b"CLIENT_ERROR slab reassignment disabled\r\n"
            assert "slabs_moved" not in stats(sock)


def test_slabs_automove_settings(server) -> None:
    assert command(server, b"slabs automove 2") == b"OK\r\n"
    assert command(server, b"slabs automove ratio 0.5") == b"OK\r\n"
    settings = stats(server, b"settings")
    assert (settings["slab_automove"], settings["slab_automove_ratio"]) == ("2", "0.50")
    assert command(server, b"slabs automove 3") == b"ERROR\r\n"
    assert command(server, b"slabs automove 0 noreply") == b""
    assert stats(server, b"settings")["slab_automove"] == "0"


def test_automove_2_feeds_an_evicting_class_pages_from_the_others() -> None:
    with start_pymcd(["-m", "8", "-o", "slab_automove=2"]) as process:
        with process.connect() as sock:
            fill(sock, 60_000, b"s" * 60, prefix=b"small")  # class 3 takes the whole budget
            pages_before = int(stats(sock, b"slabs")["3:total_pages"])
            # Class 12 gets one page, then asks for another at each eviction; the mover takes
            # one request at a time, so the fill comes in rounds it can keep up with.
            for round_number in range(3):
                fill(sock, 1000, prefix=b"big%d-" % round_number)
                time.sleep(0.3)
            assert wait_until(lambda: int(stats(sock)["slabs_moved"]) >= 2)
            slabs = stats(sock, b"slabs")
            assert int(slabs["3:total_pages"]) < pages_before
            assert int(slabs["12:total_pages"]) > 1


def test_lru_tune_mode_and_temp_ttl(server) -> None:
    assert command(server, b"lru tune 10 30 0.5 3") == b"OK\r\n"
    assert command(server, b"lru temp_ttl 30") == b"OK\r\n"
    settings = stats(server, b"settings")
    assert [settings[name] for name in ("hot_lru_pct", "warm_lru_pct", "hot_max_factor",
                                        "warm_max_factor", "temp_lru", "temporary_ttl")] == \
        ["10", "30", "0.50", "3.00", "yes", "30"]
    fill(server, 10, exptime=20)
    fill(server, 5, prefix=b"forever")
    items = stats(server, b"items")
    assert items["items:12:number_temp"] == "10"
    assert int(items["items:12:number_hot"]) + int(items["items:12:number_cold"]) \
        + int(items["items:12:number_warm"]) == 5
    assert command(server, b"lru mode flat") == b"OK\r\n"
    assert stats(server, b"settings")["lru_segmented"] == "no"
    assert wait_until(lambda: stats(server, b"items")["items:12:number_cold"] == "5")
    assert command(server, b"lru temp_ttl -1") == b"OK\r\n"
    assert stats(server, b"settings")["temp_lru"] == "no"


def test_lru_mode_needs_the_maintainer() -> None:
    with start_pymcd(["-o", "no_lru_maintainer"]) as process:
        with process.connect() as sock:
            assert command(sock, b"lru mode segmented") == b"ERROR\r\n"
            assert command(sock, b"lru temp_ttl 10") == b"ERROR\r\n"
            settings = stats(sock, b"settings")
            assert (settings["lru_maintainer_thread"], settings["lru_segmented"]) == ("no", "no")
            assert "lru_maintainer_juggles" not in stats(sock)


def test_crawler_reclaims_expired_items_without_any_client_access() -> None:
    # No maintainer: its juggles also reclaim expired tails, and here only the crawler may.
    with start_pymcd(["-o", "no_lru_maintainer"]) as process:
        with process.connect() as sock:
            fill(sock, 300, exptime=1)
            fill(sock, 200, prefix=b"forever")
            time.sleep(2.1)
            assert command(sock, b"lru_crawler crawl all") == b"OK\r\n"
            assert wait_until(lambda: stats(sock)["curr_items"] == "200")
            general = stats(sock)
            assert (general["crawler_reclaimed"], general["expired_unfetched"]) == ("300", "300")
            assert (general["get_hits"], general["get_misses"], general["get_expired"]) == ("0", "0", "0")
            assert int(general["lru_crawler_starts"]) >= 1


def test_expired_items_go_on_their_own_with_the_default_maintainers(server) -> None:
    fill(server, 300, exptime=1)
    fill(server, 200, prefix=b"forever")
    time.sleep(2.1)
    command(server, b"lru_crawler crawl all")  # OK, or BUSY if the maintainer's crawl runs
    assert wait_until(lambda: stats(server)["curr_items"] == "200")
    general = stats(server)
    assert int(general["reclaimed"]) + int(general["crawler_reclaimed"]) == 300
    assert general["get_misses"] == "0"


def test_lru_crawler_settings_and_switches(server) -> None:
    assert command(server, b"lru_crawler sleep 200") == b"OK\r\n"
    assert command(server, b"lru_crawler tocrawl 50") == b"OK\r\n"
    settings = stats(server, b"settings")
    assert (settings["lru_crawler_sleep"], settings["lru_crawler_tocrawl"]) == ("200", "50")
    assert command(server, b"lru_crawler enable") == b"ERROR failed to start lru crawler thread\r\n"
    assert command(server, b"lru_crawler disable") == b"OK\r\n"
    assert command(server, b"lru_crawler crawl all") == b"CLIENT_ERROR lru crawler disabled\r\n"
    assert stats(server, b"settings")["lru_crawler"] == "no"
    assert "lru_crawler_running" not in stats(server)
    assert command(server, b"lru_crawler enable") == b"OK\r\n"
    assert command(server, b"lru_crawler crawl 1,2,3") in (
        b"OK\r\n", b"BUSY currently processing crawler request\r\n")


def test_metadump(server) -> None:
    exchange(server, b"set alpha 3 0 2\r\nhi\r\nset beta 0 500 300\r\n" + b"b" * 300 + b"\r\nget alpha\r\n",
             expect_end=b"END\r\n")
    dump = exchange(server, b"lru_crawler metadump all\r\n", expect_end=b"END\r\n")
    lines = sorted(dump[:-5].decode().splitlines())
    now = int(stats(server)["time"])
    pattern = r"key=(\w+) exp=(-?\d+) la=(\d+) cas=(\d+) fetch=(yes|no) cls=(\d+) size=(\d+)"
    parsed = [re.fullmatch(pattern, line).groups() for line in lines]
    assert [(key, exp == "-1", cas, fetch, cls, size) for key, exp, _, cas, fetch, cls, size in parsed] == \
        [("alpha", True, "1", "yes", "1", "70"), ("beta", False, "2", "no", "7", "363")]
    assert abs(int(parsed[1][1]) - (now + 500)) <= 2 and abs(int(parsed[0][2]) - now) <= 2
    assert exchange(server, b"lru_crawler metadump 7\r\n", expect_end=b"END\r\n").startswith(b"key=beta ")


def test_metadump_refused_under_minus_X() -> None:
    with start_pymcd(["-X"]) as process:
        with process.connect() as sock:
            assert command(sock, b"lru_crawler metadump all") == b"ERROR metadump not allowed\r\n"


def test_cache_memlimit_grows_the_budget_at_once() -> None:
    with start_pymcd(["-m", "8"]) as process:
        with process.connect() as sock:
            fill(sock, 8 * 885 + 100)
            assert stats(sock)["evictions"] == "100"
            assert command(sock, b"cache_memlimit 16") == b"OK\r\n"
            assert stats(sock)["limit_maxbytes"] == str(16 * 1024 * 1024)
            assert stats(sock, b"settings")["maxbytes"] == str(16 * 1024 * 1024)
            fill(sock, 885, prefix=b"more")
            general, slabs = stats(sock), stats(sock, b"slabs")
            assert general["evictions"] == "100" and slabs["12:total_pages"] == "9"
            assert command(sock, b"cache_memlimit 4") == \
                b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n"


def test_minus_M_and_too_large_replies() -> None:
    with start_pymcd(["-M", "-m", "8"]) as process:
        with process.connect() as sock:
            fill(sock, 8 * 885)
            assert command(sock, b"set one-more 0 0 1000\r\n" + VALUE_1000) == \
                b"SERVER_ERROR out of memory storing object\r\n"
            big = b"x" * (1024 * 1024)
            assert command(sock, b"set big 0 0 %d\r\n%s" % (len(big), big)) == \
                b"SERVER_ERROR object too large for cache\r\n"
            general = stats(sock)
            assert [general[name] for name in ("evictions", "store_no_memory", "store_too_large")] == \
                ["0", "1", "1"]
            assert stats(sock, b"items")["items:12:outofmemory"] == "1"


def test_stats_slabs_items_sizes_and_reset() -> None:
    with start_pymcd(["-o", "track_sizes"]) as process:
        with process.connect() as sock:
            fill(sock, 20)
            exchange(sock, b"get k1\r\nget k1\r\n", expect_end=b"END\r\nEND\r\n")
            slabs = stats(sock, b"slabs")
            assert [slabs["12:" + name] for name in ("chunk_size", "chunks_per_page", "total_pages",
                                                     "used_chunks", "free_chunks", "get_hits", "cmd_set")] \
                == ["1184", "885", "1", "20", "865", "2", "20"]
            assert (slabs["active_slabs"], slabs["total_malloced"]) == ("1", str(1024 * 1024))
            items = stats(sock, b"items")
            # 48-byte header, key and NUL, value and CRLF, CAS: 1061 bytes for k0-k9, 1062 after.
            assert (items["items:12:number"], items["items:12:mem_requested"]) == \
                ("20", str(10 * 1061 + 10 * 1062))
            assert stats(sock, b"sizes") == {"1088": "20"}
            assert exchange(sock, b"stats sizes_disable\r\n", settle=0.3) == b"STAT sizes_status disabled\r\n"
            assert stats(sock, b"sizes") == {"sizes_status": "disabled"}
            assert exchange(sock, b"stats reset\r\n", expect_end=b"RESET\r\n") == b"RESET\r\n"
            general = stats(sock)
            assert (general["total_items"], general["get_hits"], general["cmd_set"]) == ("0", "0", "0")
            assert general["curr_items"] == "20"
