"""Sans-IO parsing of meta command flags (mg, ms, md, ma), as memcached 1.6.18 parses them.

memcached reads every flag token by its first byte only, in one pass shared by the four commands
(``_meta_flag_preparse``): any known flag is accepted by any command, a repeated flag or a byte
above 126 is a "duplicate flag", an unknown one an "invalid flag", and a flag whose number does not
parse records an error but lets the pass go on, so that the *last* such error is the one reported.
The commands then walk the same tokens again, in request order, to build their reply; that is why
:class:`MetaFlags` keeps the tokens.

Two flags that 1.6.18 still rejects as invalid are accepted, as later memcached releases document
them: ``E<cas>`` (the CAS a written item gets: ms, mg's N placeholder, md's x) and ``x`` (md: drop
the value, keep the item). Accepting them changes no reply 1.6.18 gives to a request it accepts.
E does not yet reach md's I or ma, whose store calls pick the new CAS themselves.
"""

from __future__ import annotations

import base64
from typing import List, Optional

from pymcd.c_numbers import parse_i32, parse_u32, parse_u64

# The tokenizer keeps at most 23 tokens plus an empty terminal one; memcached refuses a meta line
# whose token count (terminal included) exceeds 20.
MAX_TOKENS_WITH_TERMINAL = 20
TOKENIZER_MAX_TOKENS = 23
MAX_OPAQUE_LENGTH = 32

BAD_FORMAT = b"CLIENT_ERROR bad command line format"
DUPLICATE_FLAG = b"CLIENT_ERROR duplicate flag"
INVALID_FLAG = b"CLIENT_ERROR invalid flag"
BAD_TOKEN = b"CLIENT_ERROR bad token in command line format"
BAD_KEY_ENCODING = b"CLIENT_ERROR error decoding key"
BAD_M_LENGTH = b"CLIENT_ERROR incorrect length for M token"
BAD_INITIAL = b"CLIENT_ERROR invalid numeric initial value"
BAD_DELTA = b"CLIENT_ERROR invalid numeric delta value"
OPAQUE_TOO_LONG = b"CLIENT_ERROR opaque token too long"

# Flags that only ask for something in the reply, or that routers use (P, L): nothing to parse.
_RETURN_ONLY = frozenset(b"OPLkstcf")


class MetaRequestError(Exception):
    """A meta request memcached refuses; ``reply`` is its error line, without CRLF."""

    def __init__(self, reply: bytes) -> None:
        super().__init__(reply.decode("latin-1"))
        self.reply = reply


class MetaFlags:
    """What the flags of one meta request ask for.

    TTLs are kept as the client sent them (``None`` when absent): the store turns them into its
    own clock when the command runs.
    """

    __slots__ = (
        "tokens", "key", "key_binary", "vivify_ttl", "ttl", "recache_ttl", "locked",
        "no_update", "value", "set_stale", "quiet", "client_flags", "compare_cas", "new_cas",
        "mode", "delta", "initial", "remove_value",
    )

    def __init__(self, tokens: List[bytes], key: bytes) -> None:
        self.tokens = tokens
        self.key = key
        self.key_binary = False
        self.vivify_ttl: Optional[int] = None
        self.ttl: Optional[int] = None
        self.recache_ttl: Optional[int] = None
        # h, l, N, R, T need the item as it was before this request's LRU bump.
        self.locked = False
        self.no_update = False
        self.value = False
        self.set_stale = False
        self.quiet = False
        self.client_flags = 0
        self.compare_cas: Optional[int] = None
        self.new_cas = 0
        self.mode = 0
        self.delta = 1
        self.initial = 0
        self.remove_value = False


def too_many_tokens(tokens: List[bytes]) -> bool:
    """Whether memcached's tokenizer would see more meta tokens than it allows."""
    return min(len(tokens), TOKENIZER_MAX_TOKENS) + 1 > MAX_TOKENS_WITH_TERMINAL


def parse_meta_flags(key: bytes, flag_tokens: List[bytes]) -> MetaFlags:
    """Parse the flag tokens of a meta request whose key token is ``key``.

    Raises :class:`MetaRequestError` with the message memcached would send.
    """
    flags = MetaFlags(flag_tokens, key)
    seen = set()
    error: Optional[bytes] = None
    failed = False
    for token in flag_tokens:
        flag = token[0]
        if flag >= 127 or flag in seen:
            raise MetaRequestError(DUPLICATE_FLAG)
        seen.add(flag)
        argument = token[1:]
        if flag in _RETURN_ONLY:
            continue
        if flag == 0x62:  # b
            decoded = decode_base64_key(key)
            flags.key_binary = True
            if decoded is None:
                error, failed = BAD_KEY_ENCODING, True
                flags.key = b""
            else:
                flags.key = decoded
        elif flag in (0x4E, 0x54, 0x52):  # N, T, R
            flags.locked = True
            seconds = parse_i32(argument)
            if seconds is None:
                error, failed = BAD_TOKEN, True
            elif flag == 0x4E:
                flags.vivify_ttl = seconds
            elif flag == 0x54:
                flags.ttl = seconds
            else:
                flags.recache_ttl = seconds
        elif flag in (0x6C, 0x68):  # l, h
            flags.locked = True
        elif flag == 0x76:  # v
            flags.value = True
        elif flag == 0x75:  # u
            flags.no_update = True
        elif flag == 0x71:  # q
            flags.quiet = True
        elif flag == 0x46:  # F: a bad number fails without a message of its own
            client_flags = parse_u32(argument)
            if client_flags is None:
                failed = True
            else:
                flags.client_flags = client_flags
        elif flag in (0x43, 0x45):  # C, E
            cas = parse_u64(argument)
            if cas is None:
                error, failed = BAD_TOKEN, True
            elif flag == 0x43:
                flags.compare_cas = cas
            else:
                flags.new_cas = cas
        elif flag == 0x4D:  # M
            if len(token) != 2:
                error, failed = BAD_M_LENGTH, True
            else:
                flags.mode = token[1]
        elif flag in (0x4A, 0x44):  # J, D
            number = parse_u64(argument)
            if number is None:
                error, failed = (BAD_INITIAL if flag == 0x4A else BAD_DELTA), True
            elif flag == 0x4A:
                flags.initial = number
            else:
                flags.delta = number
        elif flag == 0x49:  # I
            flags.set_stale = True
        elif flag == 0x78:  # x
            flags.remove_value = True
        else:
            raise MetaRequestError(INVALID_FLAG)
    if failed:
        raise MetaRequestError(error or BAD_FORMAT)
    return flags


def check_opaque(token: bytes) -> bytes:
    """An ``O`` token to echo back, or memcached's error when it is too long."""
    if len(token) > MAX_OPAQUE_LENGTH:
        raise MetaRequestError(OPAQUE_TOO_LONG)
    return token


# memcached decodes keys with a permissive base64 decoder: bytes outside the alphabet are
# skipped, the remaining count must be a multiple of four, and decoding stops after the first
# block that holds padding.
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_DECODE = {symbol: index for index, symbol in enumerate(_ALPHABET)}
_DECODE[ord("=")] = 0


def decode_base64_key(encoded: bytes) -> Optional[bytes]:
    """The binary key a ``b`` flag announces, or None when memcached fails to decode it."""
    symbols = [symbol for symbol in encoded if symbol in _DECODE]
    if not symbols or len(symbols) % 4:
        return None
    out = bytearray()
    for start in range(0, len(symbols), 4):
        block = symbols[start:start + 4]
        a, b, c, d = (_DECODE[symbol] for symbol in block)
        out += bytes(((a << 2 | b >> 4) & 0xFF, (b << 4 | c >> 2) & 0xFF, (c << 6 | d) & 0xFF))
        padding = block.count(0x3D)
        if padding:
            if padding > 2:
                return None
            del out[len(out) - padding:]
            break
    return bytes(out)


def key_text(key: bytes, binary: bool) -> bytes:
    """A key as memcached prints it: binary keys in base64."""
    return base64.b64encode(key) if binary else key


def encode_key(key: bytes, binary: bool) -> bytes:
    """A key as the ``k`` flag returns it: binary keys in base64 followed by a ``b`` flag."""
    return base64.b64encode(key) + b" b" if binary else key
