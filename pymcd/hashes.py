"""memcached's key hashes (``-o hash_algorithm``), for what must come out in memcached's order.

pymcd's own index is a dict and needs no hash of its own; ``stats detail dump`` lists prefixes
bucket by bucket of memcached's hash table, so the order only matches with memcached's function.
Both are 32-bit, little-endian, seed 0, as memcached calls them.
"""

from __future__ import annotations

from typing import Callable, Dict

MASK = 0xFFFFFFFF


def _rotl(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (32 - bits))) & MASK


def murmur3_32(data: bytes) -> int:
    """MurmurHash3_x86_32, memcached's default since 1.5."""
    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = 0
    whole = len(data) // 4 * 4
    for start in range(0, whole, 4):
        k = int.from_bytes(data[start:start + 4], "little")
        k = _rotl((k * c1) & MASK, 15) * c2 & MASK
        h = (_rotl(h ^ k, 13) * 5 + 0xE6546B64) & MASK
    tail = data[whole:]
    if tail:
        k = int.from_bytes(tail, "little")
        h ^= _rotl((k * c1) & MASK, 15) * c2 & MASK
    h ^= len(data)
    h = ((h ^ (h >> 16)) * 0x85EBCA6B) & MASK
    h = ((h ^ (h >> 13)) * 0xC2B2AE35) & MASK
    return h ^ (h >> 16)


def _mix(a: int, b: int, c: int):
    a = (a - c) & MASK; a ^= _rotl(c, 4); c = (c + b) & MASK
    b = (b - a) & MASK; b ^= _rotl(a, 6); a = (a + c) & MASK
    c = (c - b) & MASK; c ^= _rotl(b, 8); b = (b + a) & MASK
    a = (a - c) & MASK; a ^= _rotl(c, 16); c = (c + b) & MASK
    b = (b - a) & MASK; b ^= _rotl(a, 19); a = (a + c) & MASK
    c = (c - b) & MASK; c ^= _rotl(b, 4); b = (b + a) & MASK
    return a, b, c


def _final(a: int, b: int, c: int) -> int:
    c ^= b; c = (c - _rotl(b, 14)) & MASK
    a ^= c; a = (a - _rotl(c, 11)) & MASK
    b ^= a; b = (b - _rotl(a, 25)) & MASK
    c ^= b; c = (c - _rotl(b, 16)) & MASK
    a ^= c; a = (a - _rotl(c, 4)) & MASK
    b ^= a; b = (b - _rotl(a, 14)) & MASK
    c ^= b; c = (c - _rotl(b, 24)) & MASK
    return c


def jenkins_32(data: bytes) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``, memcached's hash before 1.5 and under no_modern."""
    length = len(data)
    a = b = c = (0xDEADBEEF + length) & MASK
    if length == 0:
        return c
    start = 0
    while length - start > 12:
        a = (a + int.from_bytes(data[start:start + 4], "little")) & MASK
        b = (b + int.from_bytes(data[start + 4:start + 8], "little")) & MASK
        c = (c + int.from_bytes(data[start + 8:start + 12], "little")) & MASK
        a, b, c = _mix(a, b, c)
        start += 12
    last = data[start:].ljust(12, b"\0")
    a = (a + int.from_bytes(last[0:4], "little")) & MASK
    b = (b + int.from_bytes(last[4:8], "little")) & MASK
    c = (c + int.from_bytes(last[8:12], "little")) & MASK
    return _final(a, b, c)


# xxh3 (accepted by -o hash_algorithm) is not reimplemented: murmur3 stands in for it.
HASHES: Dict[str, Callable[[bytes], int]] = {"murmur3": murmur3_32, "jenkins": jenkins_32,
                                             "xxh3": murmur3_32}
