"""Which backend of a pool a key goes to: jump consistent hashing, or libmemcached's ketama.

``jump`` (the default, as in memcached's proxy) hashes the key to 64 bits with XXH3 and picks a
bucket with Lamping and Veach's jump consistent hash. ``ketama`` builds libmemcached's continuum
(100 points per server named ``host:port-N``, or ``host-N`` on port 11211, hashed with Jenkins'
one-at-a-time) so a key lands where pylibmc with ``behaviors={"ketama": True}`` puts it for the
same server list.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Callable, List, Sequence

import xxhash

MASK64 = (1 << 64) - 1
MASK32 = (1 << 32) - 1
KETAMA_POINTS_PER_SERVER = 100
MEMCACHED_DEFAULT_PORT = 11211

key_hash64: Callable[[bytes], int] = xxhash.xxh3_64_intdigest


def jump_bucket(key_hash: int, buckets: int) -> int:
    """Lamping and Veach's jump consistent hash of a 64-bit hash into ``buckets``."""
    bucket, candidate = -1, 0
    while candidate < buckets:
        bucket = candidate
        key_hash = (key_hash * 2862933555777941757 + 1) & MASK64
        candidate = int((bucket + 1) * (float(1 << 31) / float((key_hash >> 33) + 1)))
    return bucket


def one_at_a_time(data: bytes) -> int:
    """Jenkins' one-at-a-time hash, libmemcached's default key hash."""
    value = 0
    for byte in data:
        value = (value + byte) & MASK32
        value = (value + (value << 10)) & MASK32
        value ^= value >> 6
    value = (value + (value << 3)) & MASK32
    value ^= value >> 11
    return (value + (value << 15)) & MASK32


class KetamaContinuum:
    """libmemcached's consistent-hashing ring for ``(host, port)`` servers, in list order."""

    def __init__(self, servers: Sequence[tuple]) -> None:
        points = []
        for index, (host, port) in enumerate(servers):
            for point in range(KETAMA_POINTS_PER_SERVER):
                if port == MEMCACHED_DEFAULT_PORT:
                    name = "%s-%d" % (host, point)
                else:
                    name = "%s:%d-%d" % (host, port, point)
                points.append((one_at_a_time(name.encode()), index))
        points.sort()
        self.values: List[int] = [value for value, _ in points]
        self.indexes: List[int] = [index for _, index in points]

    def server_for(self, key: bytes) -> int:
        """The first point at or after the key's hash, wrapping round the ring."""
        position = bisect_left(self.values, one_at_a_time(key))
        if position == len(self.values):
            position = 0
        return self.indexes[position]
