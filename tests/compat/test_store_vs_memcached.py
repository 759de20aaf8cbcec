"""The store side by side with Debian's memcached 1.6.18: same workload, same memory outcome.

A deterministic fill (seeded sizes, unique keys, some overwrites, deletes and gets) overflows
``-m 8`` on both servers; the slab classes used, their chunk sizes, pages, used chunks and the
item counts must be equal, and evictions within 1% (memcached's maintainer thread runs a
thousand times a second, pymcd's at most ten, so which segment an item sits in when memory runs
out can differ). The operators' commands are compared byte for byte, and so are ``stats
settings``, ``stats sizes`` and the metadump lines (times aside).
"""

from __future__ import annotations

import random
import time
from typing import Dict, List, Sequence, Tuple

import pytest
from support import exchange, have_memcached, start_memcached, start_pymcd, stats

pytestmark = pytest.mark.skipif(not have_memcached(), reason="memcached not installed")

SIZES_SEED = 11
FILL_COUNT = 30_000
EVICTION_TOLERANCE = 0.01
# Fields that depend on the process or the moment, not on the store.
MOMENTARY_SETTINGS = {"tcpport"}


def fill_script() -> bytes:
    rng = random.Random(SIZES_SEED)
    parts: List[bytes] = []
    for number in range(FILL_COUNT):
        size = int(10 ** rng.uniform(1, 3.6))  # 10 B .. ~4 KB
        parts.append(b"set key%06d %d 0 %d noreply\r\n%s\r\n" % (number, number % 3, size, b"x" * size))
        if number % 10 == 9:
            parts.append(b"set key%06d 0 0 %d noreply\r\n%s\r\n" % (number - 5, size, b"y" * size))
        if number % 50 == 49:
            parts.append(b"delete key%06d noreply\r\n" % (number - 20))
    return b"".join(parts) + b"mn\r\n"


def run_fill(server) -> Tuple[Dict[str, str], Dict[str, str]]:
    with server:
        with server.connect(timeout=30) as sock:
            assert exchange(sock, fill_script(), expect_end=b"MN\r\n", timeout=60) == b"MN\r\n"
            return stats(sock), stats(sock, b"slabs")


@pytest.fixture(scope="module")
def fills():
    flags = ["-m", "8"]
    return run_fill(start_pymcd(flags)), run_fill(start_memcached(flags))


def test_fill_uses_the_same_classes_pages_and_chunks(fills) -> None:
    (_, pymcd_slabs), (_, memcached_slabs) = fills
    fields = ("chunk_size", "chunks_per_page", "total_pages", "used_chunks")

    def by_class(slabs: Dict[str, str]) -> Dict[str, Tuple[str, ...]]:
        classes = {name.split(":")[0] for name in slabs if ":" in name}
        return {clsid: tuple(slabs["%s:%s" % (clsid, f)] for f in fields) for clsid in classes}

    assert by_class(pymcd_slabs) == by_class(memcached_slabs)
    assert pymcd_slabs["active_slabs"] == memcached_slabs["active_slabs"]
    assert pymcd_slabs["total_malloced"] == memcached_slabs["total_malloced"]


def test_fill_keeps_the_same_items(fills) -> None:
    (pymcd, _), (memcached, _) = fills
    for name in ("curr_items", "total_items", "bytes", "cmd_set", "delete_hits", "delete_misses"):
        assert (name, pymcd[name]) == (name, memcached[name])
    evictions = int(memcached["evictions"])
    assert evictions > FILL_COUNT // 10  # the workload really overflowed -m 8
    assert abs(int(pymcd["evictions"]) - evictions) <= EVICTION_TOLERANCE * evictions


ADMIN_SCRIPT: Sequence[bytes] = (
    b"slabs reassign 1 2", b"slabs reassign 1 1", b"slabs reassign 99 1", b"slabs reassign x 1",
    b"slabs reassign -1 5", b"slabs reassign 0 5", b"slabs reassign 1 0", b"slabs reassign 1",
    b"slabs automove 0", b"slabs automove 1", b"slabs automove 2", b"slabs automove 3",
    b"slabs automove x", b"slabs automove ratio 0.5", b"slabs automove ratio", b"slabs automove",
    b"slabs foo", b"slabs",
    b"lru tune 10 20 0.1 2.0", b"lru tune 50 50 0.1 2", b"lru tune 10 20 0 2", b"lru tune x 1 1 1",
    b"lru tune 1 2", b"lru mode flat", b"lru mode segmented", b"lru mode bogus", b"lru mode",
    b"lru temp_ttl 30", b"lru temp_ttl -1", b"lru temp_ttl x", b"lru foo", b"lru",
    b"lru_crawler crawl 0", b"lru_crawler crawl hash", b"lru_crawler crawl 64",
    b"lru_crawler crawl 1,x", b"lru_crawler metadump 99", b"lru_crawler metadump x",
    b"lru_crawler sleep 100", b"lru_crawler sleep 2000000", b"lru_crawler sleep x",
    b"lru_crawler tocrawl 10", b"lru_crawler tocrawl x", b"lru_crawler tocrawl 0",
    b"lru_crawler enable", b"lru_crawler foo", b"lru_crawler",
    # memcached refuses a metadump behind replies it still holds.
    b"mg foo v\r\nlru_crawler metadump all",
    b"cache_memlimit 100", b"cache_memlimit 5", b"cache_memlimit 2000000000", b"cache_memlimit x",
    b"cache_memlimit 64 noreply", b"cache_memlimit", b"lru mode flat noreply",
    b"slabs automove 1 noreply", b"lru_crawler disable", b"lru_crawler crawl all",
    b"lru_crawler metadump all", b"stats sizes", b"stats sizes_enable", b"stats sizes",
    b"stats sizes_disable", b"stats sizes",
)


def admin_replies(server) -> List[Tuple[bytes, bytes]]:
    with server:
        with server.connect() as sock:
            replies = []
            for command in ADMIN_SCRIPT:
                # mn marks the end of every reply, empty ones (noreply) included.
                reply = exchange(sock, command + b"\r\nmn\r\n", expect_end=b"MN\r\n")
                replies.append((command, reply))
                if command == b"lru_crawler disable":
                    time.sleep(0.2)  # memcached's crawler thread stops in the background
            return replies


def test_admin_commands_reply_as_memcached() -> None:
    assert admin_replies(start_pymcd()) == admin_replies(start_memcached())


@pytest.mark.parametrize("flags", [["-o", "no_lru_maintainer,no_lru_crawler"], ["-C"]],
                         ids=["no_maintainer", "no_cas"])
def test_admin_commands_with_other_settings(flags) -> None:
    assert admin_replies(start_pymcd(flags)) == admin_replies(start_memcached(flags))


SMALL_SCRIPT = (
    b"set a 0 0 1\r\n1\r\nset bb 7 0 100\r\n" + b"b" * 100 + b"\r\n"
    b"set c%2F 0 3600 2000\r\n" + b"c" * 2000 + b"\r\nset gone 0 1 1\r\nx\r\n"
    b"get a\r\nset big 0 0 300000\r\n" + b"z" * 300000 + b"\r\n"
)


def small_state(server) -> Tuple[Dict[str, str], Dict[str, str], List[bytes], List[str], List[str]]:
    with server:
        with server.connect() as sock:
            exchange(sock, SMALL_SCRIPT, settle=0.3)
            time.sleep(2.1)  # "gone" expires
            settings = stats(sock, b"settings")
            sizes = stats(sock, b"sizes")
            # Which counters exist depends on the settings; their values on the maintainer's pace.
            item_names, slab_names = list(stats(sock, b"items")), list(stats(sock, b"slabs"))
            dump = exchange(sock, b"lru_crawler metadump all\r\n", expect_end=b"END\r\n")
    lines = sorted(
        b" ".join(field for field in line.split(b" ") if not field.startswith((b"exp=", b"la=")))
        for line in dump.split(b"\n") if line.startswith(b"key=")
    )
    for name in MOMENTARY_SETTINGS:
        settings.pop(name)
    return settings, sizes, lines, item_names, slab_names


@pytest.mark.parametrize("flags", [[], ["-o", "track_sizes", "-f", "1.5", "-n", "64", "-M"],
                                   ["-o", "temporary_ttl=30,no_slab_reassign,lru_crawler_tocrawl=5",
                                    "-I", "2m", "-m", "100"],
                                   ["-o", "no_lru_maintainer,no_lru_crawler"],
                                   ["-o", "no_modern,lru_crawler,slab_automove,slab_chunk_max=65536"],
                                   ["-o", "no_modern", "-I", "2m", "-m", "100"]],
                         ids=["defaults", "track_sizes", "options", "no_maintainer",
                              "no_modern_then_more", "no_modern_big_items"])
def test_settings_sizes_and_metadump_match(flags) -> None:
    assert small_state(start_pymcd(flags)) == small_state(start_memcached(flags))


def test_metadump_refused_under_minus_X() -> None:
    for server in (start_pymcd(["-X"]), start_memcached(["-X"])):
        with server:
            with server.connect() as sock:
                assert exchange(sock, b"lru_crawler metadump all\r\n", settle=0.3) == \
                    b"ERROR metadump not allowed\r\n"


BIG_SCRIPT = b"".join(
    b"set big%d 0 0 %d\r\n%s\r\n" % (number, size, bytes([65 + number]) * size)
    for number, size in enumerate([600_000, 524_288, 1_000_000, 1_048_000, 700_000, 524_241])
) + b"get big2 big5\r\ndelete big1\r\n"


def big_items(server) -> Tuple[bytes, Dict[str, str], Dict[str, str]]:
    with server:
        with server.connect() as sock:
            replies = exchange(sock, BIG_SCRIPT, expect_end=b"DELETED\r\n", timeout=10)
            return replies, stats(sock, b"slabs"), stats(sock, b"items")


def test_items_over_the_largest_chunk_use_the_same_chunks() -> None:
    """Header chunk, full chunks and a last smaller chunk, in the same classes as memcached."""
    pymcd_replies, pymcd_slabs, pymcd_items = big_items(start_pymcd())
    memcached_replies, memcached_slabs, memcached_items = big_items(start_memcached())
    assert pymcd_replies == memcached_replies
    used = {name: value for name, value in memcached_slabs.items()
            if name.endswith((":used_chunks", ":total_pages", ":chunk_size"))}
    assert {name: pymcd_slabs.get(name) for name in used} == used
    assert pymcd_items["items:39:number"] == memcached_items["items:39:number"] == "5"


def flat_lru_replies(server) -> List[bytes]:
    """Under no_modern every store first reclaims a dead tail: a flushed item is counted as
    reclaimed when the next set of its class allocates, not when it is read."""
    with server:
        with server.connect() as sock:
            replies = [exchange(sock, b"set key 0 0 1\r\n1\r\nset other 0 0 1\r\n2\r\n",
                                expect_end=b"STORED\r\nSTORED\r\n")]
            time.sleep(1.1)  # flush_all takes items stored before the current second
            for request in (b"flush_all\r\n", b"set key 0 0 1\r\n1\r\n", b"set new 0 0 1\r\n1\r\n",
                            b"set k 0 1 1\r\n1\r\n"):
                replies.append(exchange(sock, request, expect_end=b"\r\n"))
                counters = stats(sock)
                replies.append(b"reclaimed=%s items=%s" % (counters["reclaimed"].encode(),
                                                         counters["curr_items"].encode()))
    return replies


def test_flat_lru_reclaims_before_every_store() -> None:
    ours, theirs = flat_lru_replies(start_pymcd(["-o", "no_modern"])), \
        flat_lru_replies(start_memcached(["-o", "no_modern"]))
    assert b"reclaimed=2 items=2" in theirs
    assert ours == theirs


def fake_malloced_replies(server) -> List[bytes]:
    """T_MEMD_INITIAL_MALLOC: memcached counts that many bytes as allocated already, so a limit
    of 4098 MB leaves room for the first page of a class and one more."""
    value = b"a" * 400 * 1024
    with server:
        with server.connect() as sock:
            replies = [stats(sock, b"slabs")["total_malloced"].encode()]
            for number in range(6):
                replies.append(exchange(sock, b"set big%d 0 0 %d\r\n%s\r\n" % (number, len(value), value),
                                        expect_end=b"\r\n"))
            slabs = stats(sock, b"slabs")
            replies += [slabs["total_malloced"].encode(), slabs["active_slabs"].encode()]
    return replies


def test_initial_malloc_from_the_environment_counts_against_the_limit() -> None:
    env = {"T_MEMD_INITIAL_MALLOC": "4294967328"}
    flags = ["-m", "4098", "-M"]
    ours = fake_malloced_replies(start_pymcd(flags, env=env))
    theirs = fake_malloced_replies(start_memcached(flags, env=env))
    assert theirs[0] == b"4294967328" and b"SERVER_ERROR out of memory storing object\r\n" in theirs
    assert ours == theirs
