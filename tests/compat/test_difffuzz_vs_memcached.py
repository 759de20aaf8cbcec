"""The differential fuzzer (pymcd.difffuzz) with fixed seeds: a few thousand generated requests
per protocol, sent to Debian's memcached 1.6.18 and to pymcd, replies compared byte for byte.

The long runs are ``python bench/difffuzz.py --n N --seed S --protocol P``; this keeps a short
one in the suite so a regression in number parsing, error order or framing shows up at once.
"""

from __future__ import annotations

import pytest
from support import have_memcached, start_memcached, start_pymcd

from pymcd.difffuzz import SERVER_OPTIONS, DiffRunner

pytestmark = pytest.mark.skipif(not have_memcached(), reason="Debian's memcached is not installed")

# memcached's flags after its -p, -U and -l, which start_memcached and start_pymcd give.
EXTRA = SERVER_OPTIONS[SERVER_OPTIONS.index("-o"):]
REQUESTS = 3000


@pytest.mark.parametrize("protocol, seed", [("text", 101), ("meta", 21), ("binary", 303)])
def test_fixed_seed_stream_matches_memcached(protocol, seed):
    with start_memcached(EXTRA) as reference, start_pymcd(EXTRA) as candidate:
        runner = DiffRunner(reference.address, candidate.address, protocol)
        try:
            report = runner.run(seed, REQUESTS)
        finally:
            runner.close()
    assert report.requests == REQUESTS
    assert report.mismatch_count == 0, report.summary()
