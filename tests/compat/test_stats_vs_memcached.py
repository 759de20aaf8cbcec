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
