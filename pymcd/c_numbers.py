"""memcached's number parsing (util.c's safe_strto*), shared by every text command.

memcached hands each token to C's strtol/strtoul/strtoull (64-bit ``long`` on the platforms it
ships on) and then stores the result in the field's own C type. Clients rely on what that
accepts, so each parser here accepts exactly the same and returns None where memcached refuses:

- leading C whitespace (``\\t\\v\\f\\r``) is skipped and a ``+`` or ``-`` sign taken;
- the number ends at the first non-digit, which must be C whitespace or the end of the token
  (``5\\tx`` is 5, ``5x`` is refused);
- a magnitude beyond 64 bits is refused (ERANGE);
- the unsigned parsers negate a ``-`` number modulo 2**64 and refuse it only if the result looks
  negative as a signed 64-bit number (``-0`` is 0, ``-18446744073709551615`` is 1);
- a 32-bit field keeps the low 32 bits of the 64-bit result, the C way: flags ``4294967296`` are
  0, exptime ``99999999999`` is 1215752191 and ``4294967295`` is -1.

Python's int() is no model: it takes ``1_000`` and non-ASCII digits.
"""

from __future__ import annotations

from typing import Optional, Tuple

UINT32_MAX = 0xFFFFFFFF
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1
# The largest data block memcached reads: its length plus the CRLF must fit an int.
MAX_DATA_LENGTH = INT32_MAX - 2
_C_SPACE = b" \t\n\v\f\r"
# Where a number may end: C whitespace, or the end of the C string.
_ENDS = _C_SPACE + b"\0"
_DIGITS = b"0123456789"


def _c_number(token: bytes) -> Optional[int]:
    """What strtol/strtoul read from ``token`` as a signed Python int, or None when they read no
    digits, stop at something other than whitespace, or overflow 64 bits."""
    text = token.lstrip(_C_SPACE)
    negative = text[:1] == b"-"
    if negative or text[:1] == b"+":
        text = text[1:]
    end = len(text) - len(text.lstrip(_DIGITS))
    if end == 0 or (end < len(text) and text[end] not in _ENDS):
        return None
    magnitude = int(text[:end])
    if magnitude > UINT64_MAX:
        return None
    return -magnitude if negative else magnitude


def _to_int32(value: int) -> int:
    value &= UINT32_MAX
    return value - 2**32 if value > INT32_MAX else value


def parse_u64(token: bytes) -> Optional[int]:
    """safe_strtoull: an unsigned 64-bit number (CAS, deltas, initial values)."""
    if token.isdigit():
        value = int(token)
        return value if value <= UINT64_MAX else None
    value = _c_number(token)
    if value is None:
        return None
    if value < 0:
        value &= UINT64_MAX
        if value > INT64_MAX:
            return None
    return value


def parse_u32(token: bytes) -> Optional[int]:
    """safe_strtoul into a 32-bit field (flags, verbosity): strtoull's rules, low 32 bits kept."""
    value = parse_u64(token)
    return None if value is None else value & UINT32_MAX


def parse_i64(token: bytes) -> Optional[int]:
    """safe_strtoll: a signed 64-bit number."""
    value = _c_number(token)
    if value is None or value < INT64_MIN or value > INT64_MAX:
        return None
    return value


def parse_i32(token: bytes) -> Optional[int]:
    """safe_strtol into an int32_t (exptimes, lengths): strtol's 64-bit range, low 32 bits kept
    as a signed number."""
    if token.isdigit():
        value = int(token)
        if value <= INT32_MAX:
            return value
        return _to_int32(value) if value <= INT64_MAX else None
    value = parse_i64(token)
    return None if value is None else _to_int32(value)


def parse_data_length(token: bytes) -> Optional[int]:
    """A storage line's data length: safe_strtol's int32, which must lie in 0..MAX_DATA_LENGTH
    (``4294967297`` is a 1-byte block, ``2147483646`` is refused)."""
    value = parse_i32(token)
    return value if value is not None and 0 <= value <= MAX_DATA_LENGTH else None


def parse_storage_numbers(flags: bytes, exptime: bytes, length: bytes) -> Optional[Tuple[int, int, int]]:
    """The flags, exptime and length of a storage line as memcached reads them, or None if any
    is refused (a length outside 0..MAX_DATA_LENGTH included).

    The common case (small plain digits) is checked in one pass; anything else goes through
    the parsers above.
    """
    if flags.isdigit() and exptime.isdigit() and length.isdigit():
        numbers = int(flags), int(exptime), int(length)
        if numbers[0] <= UINT32_MAX and numbers[1] <= INT32_MAX and numbers[2] <= MAX_DATA_LENGTH:
            return numbers
    parsed = parse_u32(flags), parse_i32(exptime), parse_data_length(length)
    return None if None in parsed else parsed
