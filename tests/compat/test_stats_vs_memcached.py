"""``stats`` and ``stats detail`` side by side with Debian's memcached 1.6.18.

Tools count and parse ``stats`` lines (memcached's own suite counts them), so the names and
their order must be memcached's under every set of options; ``stats detail`` must count the
same gets, hits, sets and deletes per key prefix and dump them in memcached's order.
"""

from __future__ import annotations

import re
from typing import Callable, List

import pytest
from support import exchange, have_memcached, start_memcached, start_pymcd

pytestmark = pytest.mark.skipif(not have_memcached(), reason="Debian's memcached is not installed")


def stat_names(start: Callable, flags: List[str]) -> List[bytes]:
    with start(flags) as server, server.connect() as sock:
        reply = exchange(sock, b"stats\r\n", expect_end=b"END\r\n")
    return re.findall(rb"(?m)^STAT (\S+) ", reply)


@pytest.mark.parametrize("flags", [[], ["-o", "no_modern"], ["-o", "idle_timeout=30"],
                                   ["-o", "no_maxconns_fast"],
                                   ["-I", "1024", "-o", "slab_chunk_max=1024,no_lru_crawler,"
                                    "no_lru_maintainer"]],
                         ids=["defaults", "no_modern", "idle_timeout", "no_maxconns_fast",
                              "small_items"])
def test_stats_names_and_order_match_memcached(flags):
    ours, theirs = stat_names(start_pymcd, flags), stat_names(start_memcached, flags)
    assert len(theirs) > 70
    assert ours == theirs


# Many prefixes (their dump order is memcached's hash order), prefixes that begin others
# (memcached matches only the new prefix's length within a bucket), every counted verb and
# some that are not counted (meta commands, incr, touch), refused lines, reset and off.
PREFIXES = [b"p%d" % number for number in range(40)] + [b"", b"a", b"ab", b"abc", b"x y"]
DETAIL_SCRIPT: List[bytes] = [
    b"stats detail dump\r\n",
    b"stats detail\r\nstats detail bogus\r\nstats detail dump extra\r\n",
    b"stats detail on\r\n",
    b"".join(b"set %s:k 0 0 1\r\nv\r\n" % prefix for prefix in PREFIXES if b" " not in prefix),
    b"get p1:k p1:missing p2:k nodelimiter abc:k ab:k a:k :k\r\n",
    b"set sl/ash:k 0 0 1\r\nv\r\nget sl/ash:k sl/x /lead\r\ndelete sl/ash:k\r\n",
    # c52 and c5 share a murmur3 bucket (c95 and c9 a jenkins one): memcached counts c5 as c52
    b"set c52:k 0 0 1\r\nv\r\nget c5:k c52:k\r\nset c95:k 0 0 1\r\nv\r\nget c9:k\r\n",
    b"gets p3:k\r\ngat 0 p4:k p4:x\r\ngats 0 p5:k\r\n",
    b"add p6:k 0 0 1\r\nx\r\nreplace p7:k 0 0 1\r\nx\r\nappend p8:k 0 0 1\r\nx\r\n"
    b"prepend p9:k 0 0 1\r\nx\r\ncas p10:k 0 0 1 1\r\nx\r\n",
    b"set p11:big 0 0 2000000\r\n" + b"b" * 2000000 + b"\r\nset p12:bad 0 x 1\r\nx\r\n",
    b"delete p13:k\r\ndelete p13:k\r\ndelete p14:k noreply\r\ndelete p15:k 5\r\n",
    b"incr p16:k 1\r\ntouch p17:k 10\r\nmg p18:k v\r\nms p19:k 1\r\nx\r\nmd p20:k\r\n",
    b"get " + b"k" * 251 + b"\r\nget p21:k " + b"q:" * 130 + b"\r\n",
    b"stats detail dump\r\n",
    b"stats reset\r\nstats detail dump\r\nget p1:k\r\nstats detail dump\r\n",
    b"stats detail off\r\nget p1:k\r\nset p22:k 0 0 1\r\nx\r\nstats detail dump\r\n",
]


def detail_replies(start: Callable, flags: List[str]) -> List[bytes]:
    with start(flags) as server, server.connect() as sock:
        return [exchange(sock, step + b"mn\r\n", expect_end=b"MN\r\n", timeout=10)
                for step in DETAIL_SCRIPT]


@pytest.mark.parametrize("flags", [[], ["-D", "/"], ["-o", "hash_algorithm=jenkins"],
                                   ["-o", "no_modern"]],
                         ids=["defaults", "delimiter", "jenkins", "no_modern"])
def test_stats_detail_matches_memcached(flags):
    ours, theirs = detail_replies(start_pymcd, flags), detail_replies(start_memcached, flags)
    if not flags:
        assert b"PREFIX p1 get 2 hit 1 set 1 del 0\r\n" in theirs[-3]
        assert b"PREFIX c52 get 2 hit 1 set 1 del 0\r\n" in theirs[-3]
        assert b"PREFIX c5 " not in theirs[-3]
    assert ours == theirs


def vv_trace(start: Callable) -> List[str]:
    server = start(["-vv"])
    with server, server.connect() as sock:
        for step in DETAIL_SCRIPT[:4]:
            exchange(sock, step + b"mn\r\n", expect_end=b"MN\r\n", timeout=10)
        exchange(sock, b"stats detail dump\r\nstats detail off\r\nmn\r\n", expect_end=b"MN\r\n")
    _, err = server.stop()
    lines = err.decode().splitlines()
    # From the conversation's first line on; the start-up probe's connection comes and goes.
    start_at = min(i for i, line in enumerate(lines) if "Client using the ascii" in line)
    return [re.sub(r"^([<>]?)\d+", r"\1N", line) for line in lines[start_at:]
            if re.match(r"^([<>]\d+ |\d+: )", line) and "connection closed" not in line
            and "new auto-negotiating" not in line]


def test_stats_detail_vv_trace_matches_memcached():
    ours, theirs = vv_trace(start_pymcd), vv_trace(start_memcached)
    assert "<N stats detail dump" in theirs and ">N OK" in theirs
    assert ours == theirs
