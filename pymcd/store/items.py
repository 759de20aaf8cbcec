"""The layout of an item inside its chunk, and memcached's size accounting.

Physical layout (little-endian, 36 bytes of header, then the key, then the value)::

    exptime u32 | time u32 | flags u32 | nbytes u32 | cas u64 | nkey u8 | bits u8 | lru u8 |
    clsid u8 | prev i32 | next i32 | key | value

``time`` is the last access (rel time), ``prev``/``next`` are the LRU links (chunk locations,
-1 for none): the LRU costs no Python object per item.

Accounting follows memcached's ITEM_ntotal instead (a 48-byte header, the key with its NUL, a
4-byte flags suffix when flags are non-zero, the value with its CRLF, 8 bytes of CAS), so a value
lands in the same slab class, and ``bytes`` reads the same, as on memcached.
"""

from __future__ import annotations

import struct

from pymcd.store.slabs import ITEM_HEADER_SIZE

HEADER = struct.Struct("<IIIIQBBBBii")
HEADER_SIZE = HEADER.size  # 36
# The fields most reads need, in one unpack.
READ = struct.Struct("<IIIIQB")
# ... and, for a get, the item bits, LRU segment and class as well.
READ_FOR_GET = struct.Struct("<IIIIQBBBB")
# Unsigned, as memcached's rel_time_t: a binary request's 32-bit exptime is an absolute time
# up to 2106.
EXPTIME = struct.Struct("<I")
TIME = struct.Struct("<I")
CAS = struct.Struct("<Q")
LINKS = struct.Struct("<ii")

OFF_EXPTIME = 0
OFF_TIME = 4
OFF_FLAGS = 8
OFF_NBYTES = 12
OFF_CAS = 16
OFF_NKEY = 24
OFF_BITS = 25
OFF_LRU = 26
OFF_CLSID = 27
OFF_LINKS = 28
OFF_PREV = 28
OFF_NEXT = 32

# Item bits (memcached's it_flags that matter here).
FETCHED = 1
ACTIVE = 2
STALE = 4
TOKEN_SENT = 8
KEY_BINARY = 16

# LRU segments, as memcached numbers them.
HOT, WARM, COLD, TEMP = 0, 1, 2, 3
SEGMENTS = 4
# Written into the segment byte of a chunk when its item goes, so that a walk spanning several
# steps (the crawler's) can tell a freed chunk from a live item.
FREE_CHUNK = 255


def accounted_size(nkey: int, flags: int, nbytes: int, use_cas: bool) -> int:
    """memcached's ITEM_ntotal for a value of ``nbytes`` bytes (without its CRLF)."""
    return (
        ITEM_HEADER_SIZE + nkey + 1 + (4 if flags else 0) + nbytes + 2 + (8 if use_cas else 0)
    )


# memcached's sizeof(item_chunk): the header of each chunk of an item over the largest chunk size.
CHUNK_HEADER_SIZE = 48
