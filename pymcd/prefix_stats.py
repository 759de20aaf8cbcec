"""``stats detail``: gets, hits, sets and deletes counted per key prefix (memcached's
stats_prefix.c), recorded only while ``stats detail on`` (or ``-D``) is in effect.

The prefix is what comes before the first delimiter (``-D``, default ``:``); keys without one
are not counted. memcached keeps prefixes in a 256-bucket hash table, newest first in a bucket,
and dumps them bucket by bucket, so the dump order follows its key hash. It also finds a prefix
by comparing only the new prefix's length, so a prefix that begins a longer one already in its
bucket is counted under that one; both are kept here.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

from pymcd.hashes import HASHES

PREFIX_HASH_SIZE = 256
DUMP_LINE = b"PREFIX %s get %d hit %d set %d del %d\r\n"
DUMP_END = b"END\r\n"


class PrefixCounts:
    __slots__ = ("prefix", "gets", "hits", "sets", "deletes")

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self.gets = self.hits = self.sets = self.deletes = 0


class PrefixStats:
    """The per-prefix counters of one server."""

    def __init__(self, delimiter: str = ":", hash_algorithm: str = "murmur3") -> None:
        self.delimiter = delimiter.encode("latin-1")
        self._hash = HASHES.get(hash_algorithm, HASHES["murmur3"])
        self.clear()

    def clear(self) -> None:
        """``stats reset`` forgets every prefix."""
        self._buckets: List[List[PrefixCounts]] = [[] for _ in range(PREFIX_HASH_SIZE)]
        # Prefixes already looked up; a new prefix in a bucket can change what an older
        # lookup finds (see the module docstring), so adding one empties this.
        self._found: Dict[bytes, PrefixCounts] = {}

    def _counts(self, key: bytes) -> Optional[PrefixCounts]:
        end = key.find(self.delimiter)
        if end < 0:
            return None
        prefix = key[:end]
        found = self._found.get(prefix)
        if found is not None:
            return found
        if b"\0" in prefix:  # memcached's scan stops at a NUL byte
            return None
        bucket = self._buckets[self._hash(prefix) % PREFIX_HASH_SIZE]
        for counts in bucket:
            if counts.prefix.startswith(prefix):
                break
        else:
            counts = PrefixCounts(prefix)
            bucket.insert(0, counts)
            self._found.clear()
        self._found[prefix] = counts
        return counts

    def record_get(self, key: bytes, hit: bool) -> None:
        counts = self._counts(key)
        if counts is not None:
            counts.gets += 1
            if hit:
                counts.hits += 1

    def record_set(self, key: bytes) -> None:
        counts = self._counts(key)
        if counts is not None:
            counts.sets += 1

    def record_delete(self, key: bytes) -> None:
        counts = self._counts(key)
        if counts is not None:
            counts.deletes += 1

    def recording_fetch(self, fetch: Callable[[bytes], Optional[Tuple]]) -> Callable:
        """``fetch`` (a store lookup returning None on a miss) that also records the get."""

        def recorded(key: bytes):
            hit = fetch(key)
            self.record_get(key, hit is not None)
            return hit

        return recorded

    def dump(self) -> bytes:
        """``stats detail dump``: one PREFIX line per prefix in memcached's order, then END."""
        lines = [DUMP_LINE % (c.prefix, c.gets, c.hits, c.sets, c.deletes)
                 for bucket in self._buckets for c in bucket]
        lines.append(DUMP_END)
        return b"".join(lines)
