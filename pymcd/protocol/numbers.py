"""memcached's strict number parsing (util.c's safe_strto*), shared by every text command.

Python's int() is too lenient for a wire protocol (it takes ``1_000``, surrounding spaces and
non-ASCII digits), so each parser accepts exactly what memcached accepts and returns None
otherwise.
"""

from __future__ import annotations

from typing import Optional, Tuple

UINT32_MAX = 0xFFFFFFFF
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1
# The largest data block memcached reads: its length plus the CRLF must fit an int.
MAX_DATA_LENGTH = INT32_MAX - 2


def _digits(token: bytes) -> Optional[int]:
    if token[:1] == b"+":
        token = token[1:]
    if token.isdigit():
        return int(token)
    return None


def parse_u32(token: bytes) -> Optional[int]:
    """safe_strtoul into a 32-bit field: memcached parses an unsigned long (64 bits on the
    platforms it ships on) and stores its low 32 bits, so ``4294967296`` is accepted as 0 while
    a number past 2**64-1 is refused."""
    value = _digits(token)
    if value is None or value > UINT64_MAX:
        return None
    return value & UINT32_MAX


def parse_u64(token: bytes) -> Optional[int]:
    """safe_strtoull: unsigned 64-bit, no minus sign."""
    value = _digits(token)
    if value is None or value > UINT64_MAX:
        return None
    return value


def parse_i32(token: bytes) -> Optional[int]:
    """safe_strtol as memcached uses it for exptimes: a signed 32-bit number."""
    if token[:1] == b"-":
        value = _digits(token[1:])
        if value is None:
            return None
        value = -value
    else:
        value = _digits(token)
        if value is None:
            return None
    if value < INT32_MIN or value > INT32_MAX:
        return None
    return value


def parse_data_length(token: bytes) -> Optional[int]:
    """A storage line's data length as memcached reads it: safe_strtol parses a long (64 bits)
    and stores it into an int32, so ``4294967297`` is a 1-byte block; the result must lie in
    0..MAX_DATA_LENGTH."""
    negative = token[:1] == b"-"
    value = _digits(token[1:] if negative else token)
    if value is None:
        return None
    if negative:
        value = -value
    if value < INT64_MIN or value > INT64_MAX:
        return None
    value = (value + 2**31) % 2**32 - 2**31
    return value if 0 <= value <= MAX_DATA_LENGTH else None


def parse_storage_numbers(flags: bytes, exptime: bytes, length: bytes) -> Optional[Tuple[int, int, int]]:
    """The flags, exptime and length of a storage line, or None if any is malformed.

    The common case (plain digits) is checked in one pass; anything else (signs) goes through
    the strict parsers.
    """
    if flags.isdigit() and exptime.isdigit() and length.isdigit():
        numbers = int(flags), int(exptime), int(length)
        if numbers[0] <= UINT32_MAX and numbers[1] <= INT32_MAX and numbers[2] <= MAX_DATA_LENGTH:
            return numbers
    parsed = parse_u32(flags), parse_i32(exptime), parse_data_length(length)
    return None if None in parsed else parsed
