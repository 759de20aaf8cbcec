"""Keys, values and the task window, generated up front so the client spends its time on I/O.

Like memaslap, every key is an 8-byte unique prefix followed by a suffix cut from one shared
block of printable characters, and every value is a slice of that block at a random offset: a
value is then known by ``(offset, size)`` alone, which is all verification needs to remember.
Requests for an item are built once per key and kept on the item.
"""

from __future__ import annotations

import bisect
import random
import string
import struct
from typing import List, Optional, Sequence

from pymcd.slap.config import SizeRange, Workload

# memaslap's KEY_PREFIX_MASK: every byte of a prefix has bit 0x10 set, so a prefix never holds
# SP, CR, LF or NUL and keys stay valid on the text protocol while being binary.
KEY_PREFIX_MASK = 0x1010101010101010
KEY_PREFIX_SIZE = 8
_PREFIX = struct.Struct("<Q")
_ALPHABET = (string.digits + string.ascii_letters + ".-").encode()
# Values start at a random offset below this; the block is the largest value plus this much.
_BLOCK_SLACK = 1024 * 1024


class KeyPrefixes:
    """memaslap's global key counter, made unique per worker process.

    memaslap's threads share one counter; pymcd-slap's workers are processes, so each starts
    its counter in its own region (the top bits hold the worker number).
    """

    def __init__(self, worker_index: int) -> None:
        self._next = (worker_index << 57) | KEY_PREFIX_MASK

    def take(self) -> bytes:
        # OR-ing the mask into the running counter (rather than into a copy) keeps the sequence
        # strictly increasing, so no two prefixes are equal.
        value = self._next | KEY_PREFIX_MASK
        self._next = value + 1
        return _PREFIX.pack(value)


class CharBlock:
    """One block of random printable bytes that all key suffixes and values are cut from."""

    # 256 byte values onto 64 characters: four each, so the translation stays uniform.
    _TO_ALPHABET = bytes(_ALPHABET[b % len(_ALPHABET)] for b in range(256))

    def __init__(self, max_value_size: int, rng: random.Random) -> None:
        self.offsets = _BLOCK_SLACK
        self.data = rng.randbytes(max_value_size + _BLOCK_SLACK).translate(self._TO_ALPHABET)


class SizeDistribution:
    """Sizes drawn from memaslap's ``(min, max, proportion)`` ranges."""

    def __init__(self, ranges: Sequence[SizeRange], rng: random.Random) -> None:
        self._ranges = list(ranges)
        total = 0.0
        self._cumulative: List[float] = []
        for _, _, proportion in self._ranges:
            total += proportion
            self._cumulative.append(total)
        self._total = total
        self._rng = rng

    def draw(self) -> int:
        index = bisect.bisect_right(self._cumulative, self._rng.random() * self._total)
        start, end, _ = self._ranges[min(index, len(self._ranges) - 1)]
        return start if start == end else self._rng.randint(start, end)


class Item:
    """One task item of a window: a key, the value last stored under it, and its TTL."""

    __slots__ = ("key", "get_request", "hit_head", "value_offset", "value_size", "exp_time",
                 "set_time", "stored")

    def __init__(self, key: bytes, value_size: int, exp_time: int) -> None:
        self.key = key
        self.get_request: bytes = b""
        # The start of the reply a hit on the current key and value gives (codec's cache).
        self.hit_head: bytes = b""
        self.value_offset = 0
        self.value_size = value_size
        self.exp_time = exp_time
        self.set_time = 0.0
        # True once the server answered STORED for the current key and value.
        self.stored = False


class Window:
    """memaslap's per-concurrency item window and its set cursor.

    Sets walk the window in order (the cursor only advances on STORED); gets pick a random item
    among those set so far. When the cursor wraps, an item gets a fresh key unless it is chosen
    for overwriting (``-o``), in which case the same key is stored again with a new value.
    """

    def __init__(self, size: int, workload: Workload, prefixes: KeyPrefixes, block: CharBlock,
                 expire_proportion: float, expire_time: int, overwrite: float,
                 rng: random.Random) -> None:
        self.size = size
        self.items: List[Item] = []
        self.set_cursor = 0
        self._prefixes = prefixes
        self._block = block
        self._keys = SizeDistribution(workload.key_ranges, rng)
        self._values = SizeDistribution(workload.value_ranges, rng)
        self._expire_proportion = expire_proportion
        self._expire_time = expire_time
        self._expiring = 0
        self._overwrite = overwrite
        self._overwritten = 0
        self._wraps = 0
        self._rng = rng
        self.random = rng.random

    def _new_key(self) -> bytes:
        size = self._keys.draw()
        offset = self._rng.randrange(self._block.offsets)
        return self._prefixes.take() + self._block.data[offset:offset + size - KEY_PREFIX_SIZE]

    def _new_item(self) -> Item:
        index = len(self.items)
        # memaslap spreads TTL items evenly: item i expires when fewer than p*i did so far.
        exp_time = 0
        if self._expiring < self._expire_proportion * index or (
                self._expire_proportion >= 1.0):
            exp_time = self._expire_time
            self._expiring += 1
        return Item(self._new_key(), self._values.draw(), exp_time)

    def next_set(self) -> Item:
        """The item the next set writes (a new one until the window is full)."""
        position = self.set_cursor % self.size
        if position == len(self.items):
            item = self._new_item()
            self.items.append(item)
        else:
            item = self.items[position]
            self._wraps += 1
            if self._overwritten < self._overwrite * self._wraps:
                self._overwritten += 1
            else:
                item.key = self._new_key()
                item.get_request = b""
            item.value_size = self._values.draw()
            item.hit_head = b""
        item.value_offset = self._rng.randrange(self._block.offsets)
        item.stored = False
        return item

    def random_stored(self) -> Optional[Item]:
        """An item set before, or None while nothing has been set yet."""
        items = self.items
        count = self.set_cursor
        if count > len(items):
            count = len(items)
        return items[int(self.random() * count)] if count else None
