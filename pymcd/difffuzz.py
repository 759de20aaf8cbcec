"""A differential fuzzer: random command streams sent to memcached and to pymcd, replies compared.

The generator writes batches of requests for one protocol (``text``, ``meta`` or ``binary``):
valid commands, number fields drawn from the values C parsing treats specially (signs, 64-bit
overflow, 32-bit truncation, whitespace), mutated tokens, bad data blocks, long keys, ``noreply``
and ``q``, meta flags in any order, binary packets with wrong lengths, several requests pipelined
in one write. Each batch ends with a sentinel (``mn`` or a binary NOOP with a reserved opaque) so
the reader knows where its replies end; a batch the generator knows may leave the connection out
of step (a data block shorter than its declared length, a swallowed block, a request that closes
the connection) is read until both servers go quiet, and both connections are then replaced.

What is legitimately different between two correct servers is normalised or never generated:

- CAS uniques (text ``VALUE`` lines, meta ``c`` flags and ``cas=``, the binary header's CAS) are
  renumbered by first appearance on each side; a ``cas``/``C`` token the generator wants to match
  is the last CAS *that* server returned, substituted at send time;
- version strings;
- clock readings: a meta ``t`` (remaining TTL) or ``l`` (seconds since last access) value and
  ``me``'s ``exp=``/``la=``, since the two servers' one-second clocks tick at different moments;
- exptimes that would expire while the run goes on (a few seconds relative, or an absolute time
  near now) are never sent: every exptime is 0, already past, or days away, however it parses;
- both servers run with ``-o no_lru_maintainer`` (``SERVER_OPTIONS``): memcached's maintainer
  thread moves items to the cold LRU on its own schedule, and a hit on a cold item holds it
  until the maintainer drains its bump queue; an incr/decr meanwhile re-creates the counter
  instead of rewriting it in place with space padding, so value lengths would depend on timing;
- ``stats`` (uptime, pids, rusage, memory figures) and ``watch``, ``lru_crawler``, ``slabs`` and
  ``lru`` (background threads' timing) are not generated.

It imports nothing of the server: it is a client of two servers, used by the fixed-seed test in
``tests/compat/`` and by ``bench/difffuzz.py``.
"""

from __future__ import annotations

import base64
import random
import re
import select
import socket
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

PROTOCOLS = ("text", "meta", "binary")
# The flags both servers are started with (see the module docstring).
SERVER_OPTIONS = ["-U", "0", "-l", "127.0.0.1", "-o", "no_lru_maintainer"]
TEXT_SENTINEL = b"mn\r\n"
TEXT_SENTINEL_REPLY = b"MN\r\n"
SENTINEL_OPAQUE = 0xFEEDFACE
BINARY_NOOP = 0x0A
BINARY_SENTINEL = struct.pack(">BBHBBHIIQ", 0x80, BINARY_NOOP, 0, 0, 0, 0, 0, SENTINEL_OPAQUE, 0)
BINARY_SENTINEL_REPLY = struct.pack(">BBHBBHIIQ", 0x81, BINARY_NOOP, 0, 0, 0, 0, 0, SENTINEL_OPAQUE, 0)
HEADER = struct.Struct(">BBHBBHIIQ")
CLOSED = b"<closed>"


class LastCas:
    """A CAS field filled in per server at send time: the last CAS that server returned."""

    def __init__(self, binary: bool) -> None:
        self.binary = binary

    def render(self, cas: int) -> bytes:
        return struct.pack(">Q", cas) if self.binary else b"%d" % cas


Part = Union[bytes, LastCas]
# A text token: bytes, or parts rendered next to each other (a flag letter and a LastCas).
Token = Union[Part, List[Part]]


@dataclass
class Request:
    """One generated request: its bytes (maybe with CAS placeholders) and a kind for reports."""

    kind: str
    parts: List[Token]
    # May leave the connection waiting, swallowing or closed: read until quiet, then reconnect.
    risky: bool = False
    # The key a binary request names (text requests' keys are read from their tokens).
    key: Optional[bytes] = None


@dataclass
class Batch:
    requests: List[Request]

    @property
    def risky(self) -> bool:
        return any(request.risky for request in self.requests)

    @property
    def kind(self) -> str:
        kinds = [request.kind for request in self.requests]
        return kinds[0] if len(kinds) == 1 else "pipeline(%s)" % ",".join(sorted(set(kinds)))


# ---------------------------------------------------------------------------------- generation

KEYS = [b"k%d" % i for i in range(12)] + [b"n%d" % i for i in range(4)]
VALUE_ALPHABET = b"abcdefghijklmnopqrstuvwxyz0123456789"
# Number tokens C's strtol/strtoul treat specially, for every unsigned field (flags, verbosity).
ODD_UNSIGNED = [
    b"0", b"1", b"-0", b"+0", b"+7", b"-1", b"-7", b"4294967295", b"4294967296", b"4294967297",
    b"9223372036854775807", b"9223372036854775808", b"18446744073709551615",
    b"18446744073709551616", b"-18446744073709551615", b"-18446744073709551616",
    b"-9223372036854775808", b"-9223372036854775809", b"99999999999999999999999",
    b"\t5", b"5\t", b"5\tjunk", b"\x0b6", b"6\x0c", b"x", b"5x", b"0x10", b"1e3", b"1.5", b"-",
    b"+", b"+-1", b"--1", b"00000000000000000000000000042", b"\xd9\xa3", b"1_000",
]
DELTAS = [b"1", b"2", b"10", b"0", b"1000"]
# Exptime tokens whose value, however memcached truncates it, is 0, already past, or days
# away: never a time that passes during a run (see the module docstring).
EXPTIMES = [b"0", b"1000000", b"2000000", b"2592000", b"2000000000"]
ODD_EXPTIMES = [
    b"-1", b"-0", b"+0", b"+1000000", b"\t1000000", b"1000000\t", b"2592001", b"99999999999",
    b"4294967295", b"4294967296", b"4295967296", b"2147483647", b"2147483648", b"-2147483648",
    b"-2147483649", b"4102444800", b"-4294967296", b"9223372036854775807",
    b"9223372036854775808", b"-9223372036854775808", b"-9223372036854775809",
    b"18446744073709551615", b"99999999999999999999999", b"-99999999999", b"x", b"1x",
    b"0x10", b"1e6", b"", b"-", b"1000000junk", b"1000000\tjunk",
]
RECACHE_TIMES = [b"0", b"-1", b"1", b"100", b"2500000", b"99999999999", b"x", b""]
BINARY_EXPTIMES = [0, 1000000, 2592001, 2000000000, 0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, 4102444800]
OPAQUES = [b"O", b"O1", b"Oabc", b"O" + b"9" * 31, b"O" + b"7" * 32, b"O" + b"x" * 40]


def _value(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.25:
        return b"%d" % rng.choice([0, 1, 9, 99, 2**32, 2**64 - 1, 2**64 - 2, rng.randrange(10**6)])
    if roll < 0.27:
        return b"%d" % (2**64 + rng.randrange(3))  # beyond 64 bits: non-numeric for incr
    if roll < 0.29:
        return b" 12" if rng.random() < 0.5 else b"12 "
    if roll < 0.291:
        return b"v" * rng.choice([1024 * 1024 - 100, 1024 * 1024 + 1, 2 * 1024 * 1024])
    if roll < 0.30:
        return bytes(rng.choice(VALUE_ALPHABET) for _ in range(rng.randrange(1000, 20000)))
    return bytes(rng.choice(VALUE_ALPHABET) for _ in range(rng.randrange(0, 40)))


def _key(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.93:
        return rng.choice(KEYS)
    if roll < 0.95:
        return b"L" * rng.choice([249, 250, 251, 300])
    if roll < 0.97:
        return b"k\x01\x7f\x80\xff"[: rng.randrange(2, 6)]
    return bytes(rng.choice(b"abcdefgh\t\x0b") for _ in range(rng.randrange(1, 8)))


def _unsigned(rng: random.Random, usual: Sequence[bytes]) -> bytes:
    return rng.choice(ODD_UNSIGNED) if rng.random() < 0.25 else rng.choice(usual)


def _exptime(rng: random.Random) -> bytes:
    return rng.choice(ODD_EXPTIMES) if rng.random() < 0.3 else rng.choice(EXPTIMES)


def _line_end(rng: random.Random) -> bytes:
    return b"\n" if rng.random() < 0.05 else b"\r\n"


def _length_token(rng: random.Random, size: int) -> Tuple[bytes, bool]:
    """A storage line's length token for a block of ``size`` bytes, and whether it is risky:
    the server may wait for more than the block (which would take the sentinel) or swallow."""
    roll = rng.random()
    if roll < 0.85:
        return b"%d" % size, False
    in_step = [b"+%d" % size, b"\t%d" % size, b"%d\t" % size, b"%d" % (size + 2**32),
               b"%d" % max(size - 1, 0)]
    if roll < 0.94:
        return rng.choice(in_step), False
    # Refused before any data is read: the block is then read as a command line, which is
    # only safe while it is short (a long line's fate depends on how much of it has arrived).
    refused = [b"-1", b"-%d" % (size + 1), b"2147483646", b"2147483647", b"2147483648",
               b"4294967295", b"x", b"", b"%dx" % size, b"9223372036854775807",
               b"%d" % (size + 2**64), b"%d" % (size - 2**64)]
    if roll < 0.985:
        return rng.choice(refused), size > 1000
    return rng.choice([b"%d" % (size + 1), b"2147483645", b"1048577"]), True


def _data_block(rng: random.Random, value: bytes, end: bytes) -> Tuple[bytes, bool]:
    """The block after a storage line; sometimes with a bad terminator, risky when it is
    shorter than the length the line declared."""
    if rng.random() < 0.93:
        return value + b"\r\n", False
    block = rng.choice([value + b"\n", value + b"xx", value + b"\r\r\n", value + b"\n\r", value]) + end
    if not value:
        # An empty value's bad terminator read with a length of 1 or 2 stores a value that is
        # only whitespace, and memcached's incr of such a value reads past the item (a bug of
        # memcached's, docs/compat.md): the block of an empty value stays exact.
        return b"\r\n", False
    return block, len(block) < len(value) + 2


class TextGenerator:
    """Classic text commands."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def request(self) -> Request:
        rng = self.rng
        roll = rng.random()
        if roll < 0.40:
            return self._storage()
        if roll < 0.62:
            return self._retrieval()
        if roll < 0.72:
            return self._arith()
        if roll < 0.80:
            return self._key_command(b"delete", [[], [b"0"], [b"5"], [b"noreply"], [b"0", b"noreply"],
                                                 [b"x", b"noreply"], [b"0", b"0"]])
        if roll < 0.88:
            return self._key_command(b"touch", [[_exptime(rng)], [_exptime(rng), b"noreply"], [],
                                                [_exptime(rng), b"x"]])
        return self._other()

    def _line(self, kind: str, tokens: List[Token], end: Optional[bytes] = None, **kw) -> Request:
        parts: List[Token] = []
        for index, token in enumerate(tokens):
            if index:
                parts.append(b" " * (2 if self.rng.random() < 0.03 else 1))
            parts.append(token)
        parts.append(end or _line_end(self.rng))
        return Request(kind, parts, **kw)

    def _noreply(self) -> List[bytes]:
        roll = self.rng.random()
        return [b"noreply"] if roll < 0.15 else ([b"noreplyx"] if roll < 0.17 else [])

    def _storage(self) -> Request:
        rng = self.rng
        verb = rng.choice([b"set", b"set", b"add", b"replace", b"append", b"prepend", b"cas"])
        value = _value(rng)
        length, risky_length = _length_token(rng, len(value))
        flags = _unsigned(rng, [b"0", b"0", b"1", b"65535", b"4294967295"])
        tokens: List[Part] = [verb, _key(rng), flags, _exptime(rng), length]
        if verb == b"cas":
            tokens.append(LastCas(False) if rng.random() < 0.6 else _unsigned(rng, [b"1", b"999999"]))
        tokens += self._noreply()
        shifted = rng.random() < 0.03
        if shifted:  # another token may become the length
            tokens.insert(rng.randrange(1, len(tokens) + 1), rng.choice([b"extra", b"0"]))
        end = _line_end(rng)
        block, risky_block = _data_block(rng, value, end)
        request = self._line(verb.decode(), tokens, end)
        request.parts.append(block)
        request.risky = shifted or risky_length or risky_block or len(value) > 1024 * 1024 - 200
        return request

    def _retrieval(self) -> Request:
        rng = self.rng
        verb = rng.choice([b"get", b"get", b"gets", b"gat", b"gats", b"bget"])
        count = rng.choice([0, 1, 1, 1, 2, 3, 5]) if rng.random() < 0.97 else rng.randrange(20, 120)
        keys: List[Part] = [_key(rng) for _ in range(count)]
        if verb in (b"gat", b"gats") and rng.random() < 0.95:
            keys.insert(0, _exptime(rng))
        return self._line(verb.decode(), [verb] + keys)

    def _arith(self) -> Request:
        rng = self.rng
        verb = rng.choice([b"incr", b"decr"])
        tokens: List[Part] = [verb, _key(rng)]
        roll = rng.random()
        if roll < 0.95:
            tokens.append(_unsigned(rng, DELTAS))
        tokens += self._noreply()
        if roll > 0.98:
            tokens.append(b"extra")
        return self._line(verb.decode(), tokens)

    def _key_command(self, verb: bytes, tails: List[List[bytes]]) -> Request:
        return self._line(verb.decode(), [verb, _key(self.rng)] + self.rng.choice(tails))

    def _other(self) -> Request:
        rng = self.rng
        roll = rng.random()
        if roll < 0.12:
            # No delay: memcached keeps one flush time, and a delayed flush_all replaces an
            # earlier immediate one, so the items it hid come back unless a lookup or the LRU
            # crawler has reclaimed them meanwhile; timing again (docs/compat.md).
            arguments = rng.choice([[], [b"0"], [b"noreply"], [b"0", b"noreply"], [b"-1"],
                                    [b"x"], [b"0", b"0", b"0"]])
            return self._line("flush_all", [b"flush_all"] + arguments)
        if roll < 0.22:
            arguments = rng.choice([[b"0"], [b"1"], [], [b"x"], [_unsigned(rng, [b"0"])],
                                    [b"0", b"noreply"], [b"1", b"2", b"3"]])
            return self._line("verbosity", [b"verbosity"] + arguments)
        if roll < 0.30:
            return self._line("version", [b"version"] + rng.choice([[], [b"x"]]))
        if roll < 0.36:
            return self._line("shutdown", [b"shutdown"] + rng.choice([[], [b"graceful"], [b"x"]]))
        if roll < 0.40:
            return self._line("quit", [b"quit"], risky=True)
        if roll < 0.55:
            verb = rng.choice([b"bogus", b"GET", b"Set", b"g", b"m", b"s", b"mz", b"gett", b"sets",
                               b"incr2", b"\x00get", b"get\x00", b"\xff\xfe", b"me"])
            return self._line("unknown", [verb] + [_key(rng)] * rng.randrange(0, 3))
        if roll < 0.62:
            return Request("empty", [rng.choice([b"\r\n", b"\n", b" \r\n", b"   \n", b"\r\r\n"])])
        if roll < 0.72:
            count = rng.choice([22, 23, 24, 25, 30])
            verb = rng.choice([b"set", b"get", b"delete", b"incr", b"touch", b"mg"])
            return self._line("many_tokens", [verb] + [b"t%d" % i for i in range(count)])
        if roll < 0.76:
            return self._line("http", [b"GET", b"/", b"HTTP/1.1"], risky=True)
        if roll < 0.80:
            return Request("long_line", [b"get " + b"a" * rng.choice([1000, 2040, 2100, 5000])],
                           risky=True)
        if roll < 0.85:
            return self._line("nul", [b"get", b"k1\x00k2"] if rng.random() < 0.5
                              else [b"set", b"k1", b"0", b"0\x00", b"1"])
        return self._line("me", [b"me", _key(rng)] + rng.choice([[], [b"x"]]))


# Meta flags each command takes, and the argument generators for the ones that take one.
# Left out where pymcd differs on purpose (docs/compat.md): E and x, which pymcd takes as later
# releases do where 1.6.18 answers "invalid flag", and ma's T, which 1.6.18 loses when the new
# number no longer fits the old item.
MG_FLAGS = b"bcfhklOqstuvNRT"
MS_FLAGS = b"bcCFIkOqsSTMN"
MD_FLAGS = b"bCIkOqT"
MA_FLAGS = b"bCNJDMqOtcvk"
ALL_FLAGS = b"bcfhklOPLqstuvNRTFCMJDIXWZaz"


class MetaGenerator(TextGenerator):
    """Meta commands (mg, ms, md, ma, mn, me), with a share of classic ones between them."""

    def request(self) -> Request:
        rng = self.rng
        roll = rng.random()
        if roll < 0.15:
            return TextGenerator.request(self)
        if roll < 0.45:
            return self._ms()
        if roll < 0.75:
            return self._meta(b"mg", MG_FLAGS)
        if roll < 0.87:
            return self._meta(b"ma", MA_FLAGS)
        if roll < 0.97:
            return self._meta(b"md", MD_FLAGS)
        return self._line("me", [b"me", _key(rng)])

    def _flag(self, flag: int) -> Token:
        """One flag token: bytes, or [letter, LastCas] rendered as one token."""
        rng = self.rng
        name = bytes([flag])
        if flag == ord("O"):
            return rng.choice(OPAQUES)
        if flag in b"NT":
            return name + _exptime(rng)
        if flag == ord("R"):
            # Recache when the TTL left is below R: never as close to an item's TTL as the
            # second that separates the two servers' clocks.
            return name + rng.choice(RECACHE_TIMES)
        if flag in b"FJ":
            return name + _unsigned(rng, [b"0", b"5", b"42"])
        if flag == ord("D"):
            return name + _unsigned(rng, DELTAS)
        if flag == ord("C"):
            if rng.random() < 0.6:
                return [name, LastCas(False)]
            return name + _unsigned(rng, [b"1", b"123456"])
        if flag == ord("M"):
            return name + rng.choice([b"S", b"E", b"A", b"P", b"R", b"I", b"D", b"+", b"-",
                                      b"s", b"x", b"", b"SS"])
        if flag == ord("S"):
            return name + rng.choice([b"3", b"x", b""])
        if rng.random() < 0.05:
            return name + b"junk"
        return name

    def _flags(self, allowed: bytes) -> List[Token]:
        rng = self.rng
        pool = allowed if rng.random() < 0.92 else ALL_FLAGS
        chosen = rng.sample(list(pool), rng.randrange(0, min(len(pool), 7)))
        if rng.random() < 0.03 and chosen:
            chosen.append(chosen[0])
        return [self._flag(flag) for flag in chosen]

    def _meta_key(self, flags: List[Token]) -> bytes:
        key = _key(self.rng)
        if b"b" in flags:
            roll = self.rng.random()
            if roll < 0.8:
                return base64.b64encode(key)
            return self.rng.choice([b"!!!", b"a", b"abc", b"a==="])
        return key

    def _meta(self, verb: bytes, allowed: bytes) -> Request:
        flags = self._flags(allowed)
        tokens: List[Token] = [verb]
        if self.rng.random() < 0.98:
            tokens.append(self._meta_key(flags))
        return self._line(verb.decode(), tokens + flags)

    def _ms(self) -> Request:
        rng = self.rng
        flags = self._flags(MS_FLAGS)
        value = _value(rng)
        length, risky_length = _length_token(rng, len(value))
        tokens: List[Token] = [b"ms", self._meta_key(flags)]
        if rng.random() < 0.98:
            tokens.append(length)
        else:
            risky_length = True
        end = _line_end(rng)
        block, risky_block = _data_block(rng, value, end)
        request = self._line("ms", tokens + flags, end)
        request.parts.append(block)
        request.risky = risky_length or risky_block or len(value) > 1024 * 1024 - 200
        return request


# Binary opcodes (the stat opcode 0x10 is left out: its values are the server's figures).
BIN_GET, BIN_SET, BIN_ADD, BIN_REPLACE, BIN_DELETE, BIN_INCR, BIN_DECR = range(7)
BIN_OPCODES = {
    0x00: "get", 0x09: "getq", 0x0C: "getk", 0x0D: "getkq",
    0x01: "set", 0x02: "add", 0x03: "replace", 0x11: "setq", 0x12: "addq", 0x13: "replaceq",
    0x0E: "append", 0x0F: "prepend", 0x19: "appendq", 0x1A: "prependq",
    0x04: "delete", 0x14: "deleteq", 0x05: "incr", 0x06: "decr", 0x15: "incrq", 0x16: "decrq",
    0x08: "flush", 0x18: "flushq", 0x0A: "noop", 0x0B: "version", 0x1B: "verbosity",
    0x1C: "touch", 0x1D: "gat", 0x1E: "gatq", 0x23: "gatk", 0x24: "gatkq",
    0x07: "quit", 0x17: "quitq", 0x20: "sasl_list", 0x21: "sasl_auth", 0x22: "sasl_step",
}
CLOSING_OPCODES = {0x07, 0x17}
# Opcodes 1.6.18 answers "Unknown command" (SASL ones too, without -S).
UNKNOWN_OPCODES = {0x1B, 0x20, 0x21, 0x22, 0x25, 0x30, 0x3F, 0x40, 0x80, 0xFF}
UNKNOWN_OR_CLOSING = CLOSING_OPCODES | UNKNOWN_OPCODES
STORAGE_OPCODES = {0x01, 0x02, 0x03, 0x11, 0x12, 0x13}
CONCAT_OPCODES = {0x0E, 0x0F, 0x19, 0x1A}
ARITH_OPCODES = {0x05, 0x06, 0x15, 0x16}
TOUCH_OPCODES = {0x1C, 0x1D, 0x1E, 0x23, 0x24}


class BinaryGenerator:
    """Binary protocol requests, sometimes with wrong lengths, opcodes or magic."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def request(self) -> Request:
        rng = self.rng
        opcode = rng.choice(list(BIN_OPCODES)) if rng.random() < 0.97 else rng.choice(
            [0x10 + 0x30, 0x25, 0x30, 0x3F, 0x80, 0xFF])
        kind = BIN_OPCODES.get(opcode, "unknown_opcode")
        key = _key(rng) if rng.random() < 0.97 else b""
        extras, value = self._body(opcode)
        cas: Part = struct.pack(">Q", 0)
        if opcode in STORAGE_OPCODES | CONCAT_OPCODES | {0x04, 0x14} | ARITH_OPCODES and rng.random() < 0.3:
            cas = LastCas(True) if rng.random() < 0.7 else struct.pack(">Q", rng.choice([1, 2**64 - 1]))
        magic, datatype, vbucket = 0x80, 0, 0
        keylen, extlen, bodylen = len(key), len(extras), len(extras) + len(key) + len(value)
        # quit closes; an opcode 1.6.18 does not know (SASL ones too, without -S) answers
        # "Unknown command" and then swallows the body, key included, into what follows.
        risky = opcode in UNKNOWN_OR_CLOSING or len(value) > 1024 * 1024 - 200
        # Wrong lengths make the server read the stream differently from how it was written:
        # such a request is risky (sent alone, read until quiet).
        roll = rng.random()
        if roll < 0.01:
            extlen = rng.choice([0, 4, 8, 20, 255])
            kind += "+extlen"
            risky = True
        elif roll < 0.02:
            keylen = rng.choice([0, 1, 250, 251, 0xFFFF, max(keylen - 1, 0)])
            kind += "+keylen"
            risky = True
        elif roll < 0.03:
            bodylen = rng.choice([0, max(bodylen - 1, 0), extlen + keylen])
            kind += "+bodylen_short"
            risky = True
        elif roll < 0.035:
            bodylen += rng.choice([1, 5, 2**20])
            kind += "+bodylen_long"
            risky = True
        elif roll < 0.045:
            datatype = rng.choice([1, 0xFF])
            kind += "+datatype"
        elif roll < 0.055:
            vbucket = rng.choice([1, 0xFFFF])
            kind += "+vbucket"
        elif roll < 0.06:
            magic = rng.choice([0x00, 0x81, 0x82, ord("g")])
            kind += "+magic"
            risky = True
        opaque = rng.randrange(2**32)
        while opaque == SENTINEL_OPAQUE:
            opaque = rng.randrange(2**32)
        header = struct.pack(">BBHBBHII", magic, opcode, keylen & 0xFFFF, extlen & 0xFF, datatype,
                             vbucket, bodylen & 0xFFFFFFFF, opaque)
        body = extras + key + value
        if bodylen < len(body):
            # The stream continues right after the declared body: the rest reads as a header.
            risky = True
        elif (opcode in UNKNOWN_OPCODES and magic == 0x80 and len(value) < 1024 * 1024 - 200
              and (extlen, keylen, bodylen) == (len(extras), len(key), len(body))
              and rng.random() < 0.8):
            # After "Unknown command" the server swallows the declared body length once more
            # past the extras and key it has read: filler of that size keeps the stream in
            # step, so the request need not be sent alone and read until quiet (most are).
            body += b"\0" * (extlen + keylen)
            kind += "+filler"
            risky = False
        return Request(kind, [header, cas, body], risky=risky, key=key)

    def _body(self, opcode: int) -> Tuple[bytes, bytes]:
        rng = self.rng
        if opcode in STORAGE_OPCODES:
            flags = rng.choice([0, 1, 0xFFFFFFFF])
            return struct.pack(">II", flags, rng.choice(BINARY_EXPTIMES)), _value(rng)
        if opcode in CONCAT_OPCODES:
            return b"", _value(rng)
        if opcode in ARITH_OPCODES:
            delta = rng.choice([0, 1, 5, 2**63, 2**64 - 1])
            initial = rng.choice([0, 7, 2**64 - 1])
            return struct.pack(">QQI", delta, initial, rng.choice(BINARY_EXPTIMES)), b""
        if opcode in TOUCH_OPCODES:
            return struct.pack(">I", rng.choice(BINARY_EXPTIMES)), b""
        if opcode in (0x08, 0x18):
            # A delay of 0 only, as for text flush_all.
            return (struct.pack(">I", 0) if rng.random() < 0.5 else b""), b""
        if opcode == 0x1B:
            return struct.pack(">I", rng.choice([0, 1, 5])), b""
        return b"", b"x" if rng.random() < 0.05 else b""


def generator(protocol: str, seed: int):
    rng = random.Random(seed)
    return {"text": TextGenerator, "meta": MetaGenerator, "binary": BinaryGenerator}[protocol](rng)


def batches(protocol: str, seed: int, count: int) -> Iterator[Batch]:
    """``count`` requests for ``protocol`` in batches: mostly one request, sometimes a pipeline
    of several in one write.

    A risky request is a batch of its own: what memcached has written of the replies before it
    when it stops to wait or swallow depends on where its socket reads happened to end.
    """
    source = generator(protocol, seed)
    rng = random.Random(seed ^ 0x5EED)
    holding, counters = HOLDING_KINDS[protocol], COUNTER_KINDS[protocol]
    made = 0
    pending: Optional[Request] = None
    while made < count:
        size = 1 if rng.random() < 0.6 else rng.randrange(2, 9)
        requests: List[Request] = []
        held: set = set()
        while len(requests) < size and made < count:
            request = pending or source.request()
            pending = None
            kind = _base_kind(request)
            if requests and (request.risky or (kind in counters and _keys(request) & held)):
                pending = request
                break
            requests.append(request)
            made += 1
            if kind in holding:
                held |= _keys(request)
            if request.risky:
                break
        yield Batch(requests)


# memcached rewrites a counter in place only while no unsent reply holds the item. An mg
# reply, and a binary get/getq/getk/getkq/touch/gat/gatq/gatk/gatkq reply, hold it until written,
# which is once memcached has parsed all it read (a text get/gets/gat writes its reply at once
# and holds nothing): in one pipeline, an incr/decr after such a fetch of the same key
# re-creates the counter (no space padding, no binary-key mark), while the same two requests in
# separate reads rewrite it in place. pymcd's replies are copies, so it always rewrites in place;
# the generator does not pipeline the two (docs/compat.md).
HOLDING_KINDS = {
    "text": frozenset(),
    "meta": frozenset({"mg"}),
    "binary": frozenset({"get", "getq", "getk", "getkq", "touch", "gat", "gatq", "gatk", "gatkq"}),
}
COUNTER_KINDS = {
    "text": frozenset(),
    "meta": frozenset({"incr", "decr", "ma"}),
    "binary": frozenset({"incr", "decr", "incrq", "decrq"}),
}


def _base_kind(request: Request) -> str:
    """The command a request's kind names, without its mutations (``getq+vbucket``)."""
    return request.kind.split("+", 1)[0]


def _keys(request: Request) -> set:
    """The key a request names: a binary request's, or a text request's key token and what it
    decodes to as base64."""
    if request.key is not None:
        return {request.key}
    token = request.parts[2] if len(request.parts) > 2 else None
    if not isinstance(token, bytes):
        return set()
    keys = {token}
    try:
        keys.add(base64.b64decode(token, validate=True))
    except ValueError:
        pass
    return keys


# ----------------------------------------------------------------------------- normalisation

TEXT_CAS = re.compile(rb"(?m)^(VALUE \S+ \d+ \d+ )(\d+)(\r?)$")
META_LINE = re.compile(rb"(?m)^(HD|VA|EN|NF|NS|EX)( [^\r\n]*)?\r$")
META_CAS = re.compile(rb"(?<= c)\d+")
META_CLOCKS = re.compile(rb"(?<= )([tl])(\d+)")
ME_FIELDS = re.compile(rb"(?m)^ME [^\r\n]*")
VERSION_LINE = re.compile(rb"(?m)^VERSION [^\r\n]*")


class Normaliser:
    """One server's view: renumbers its CAS values by first appearance within a batch's replies
    (so one divergence does not shift every later number) and remembers the last one for
    LastCas, which carries the check across batches."""

    def __init__(self) -> None:
        self.numbers: Dict[int, int] = {}
        self.last_cas = 0

    def batch_done(self) -> None:
        self.numbers.clear()

    def _label(self, cas: int) -> int:
        if cas == 0:
            return 0
        self.last_cas = cas
        return self.numbers.setdefault(cas, len(self.numbers) + 1)

    def text(self, reply: bytes) -> bytes:
        reply = TEXT_CAS.sub(lambda m: m.group(1) + b"#%d" % self._label(int(m.group(2))) + m.group(3), reply)

        def meta_line(match) -> bytes:
            line = META_CAS.sub(lambda m: b"#%d" % self._label(int(m.group(0))), match.group(0))
            return META_CLOCKS.sub(lambda m: m.group(1) + (m.group(2) if m.group(2) == b"0" and m.group(1) == b"t" else b"*"), line)

        reply = META_LINE.sub(meta_line, reply)
        reply = ME_FIELDS.sub(self._me_line, reply)
        return VERSION_LINE.sub(b"VERSION *", reply)

    def _me_line(self, match) -> bytes:
        line = re.sub(rb"(exp|la)=-?\d+", lambda m: m.group(1) + b"=*", match.group(0))
        return re.sub(rb"cas=(\d+)", lambda m: b"cas=#%d" % self._label(int(m.group(1))), line)

    def binary(self, reply: bytes) -> bytes:
        """Each response packet with its CAS renumbered (and a version's body blanked); bytes
        that do not parse as packets are kept as they are."""
        out: List[bytes] = []
        pos = 0
        while pos + HEADER.size <= len(reply):
            magic, opcode, keylen, extlen, datatype, status, bodylen, opaque, cas = HEADER.unpack_from(reply, pos)
            end = pos + HEADER.size + bodylen
            if magic != 0x81 or end > len(reply):
                break
            body = reply[pos + HEADER.size:end]
            if opcode == 0x0B and status == 0:
                body = b"*"
            out.append(HEADER.pack(magic, opcode, keylen, extlen, datatype, status, len(body),
                                   opaque, self._label(cas)) + body)
            pos = end
        out.append(reply[pos:])
        return b"".join(out)


# ---------------------------------------------------------------------------------- running

@dataclass
class Mismatch:
    kind: str
    request: bytes
    reference: bytes
    candidate: bytes

    def lines(self, width: int) -> List[str]:
        """The request, and both replies from a little before where they first differ."""
        same = 0
        for same, (a, b) in enumerate(zip(self.reference, self.candidate)):
            if a != b:
                break
        start = max(0, same - width // 3)
        return ["      sent      %r" % self.request[:width],
                "      memcached %r%r" % (b"..." if start else b"", self.reference[start:start + width]),
                "      pymcd     %r%r" % (b"..." if start else b"", self.candidate[start:start + width])]


@dataclass
class Report:
    protocol: str
    seed: int
    requests: int = 0
    batches: int = 0
    mismatches: Counter = field(default_factory=Counter)
    examples: Dict[str, List[Mismatch]] = field(default_factory=dict)
    # The first mismatches in the order they happened: a store that diverged once makes
    # later batches differ too, so the first ones are where to look.
    first: List[Mismatch] = field(default_factory=list)
    # Connections each server accepted that the runner did not open: another process (a test
    # whose server lost its port to these) talking to them makes their stores differ.
    foreign_connections: List[int] = field(default_factory=list)

    @property
    def mismatch_count(self) -> int:
        return sum(self.mismatches.values())

    def summary(self) -> str:
        lines = ["%s seed=%d requests=%d batches=%d mismatches=%d" % (
            self.protocol, self.seed, self.requests, self.batches, self.mismatch_count)]
        if any(self.foreign_connections):
            lines.append("  foreign connections (memcached, pymcd): %s: the results are not "
                         "the fuzzer's alone" % self.foreign_connections)
        for index, example in enumerate(self.first):
            lines.append("  first #%d (%s)" % (index + 1, example.kind))
            lines += example.lines(600)
        for kind, count in self.mismatches.most_common():
            lines.append("  %6d  %s" % (count, kind))
            for example in self.examples[kind][:2]:
                lines += example.lines(300)
        return "\n".join(lines)


class _Side:
    """One server's connection and normaliser."""

    def __init__(self, address: Tuple[str, int], binary: bool) -> None:
        self.address = address
        self.binary = binary
        self.normaliser = Normaliser()
        self.sock: Optional[socket.socket] = None
        self.opened = 0
        self.connect()

    def connect(self) -> None:
        if self.sock is not None:
            self.hang_up()
        self.opened += 1
        self.sock = socket.create_connection(self.address, timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.received = b""
        self.closed = False
        self.last_data = time.monotonic()

    def hang_up(self, timeout: float = 5.0) -> None:
        """Close the connection once the server has closed its end too.

        A server left waiting (for a block, a swallow) may hold replies that pin items, and
        memcached's worker thread frees them only when it sees the connection end; an incr on
        the next connection would otherwise find the item held or not by chance. The server
        closes its end after that clean-up, so its EOF is the sign to go on."""
        sock = self.sock
        try:
            sock.shutdown(socket.SHUT_WR)
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                if select.select([sock], [], [], end - time.monotonic())[0] and not sock.recv(1 << 20):
                    break
        except OSError:
            pass
        sock.close()

    def render(self, batch: Batch) -> bytes:
        chunks: List[bytes] = []

        def add(part) -> None:
            if isinstance(part, LastCas):
                chunks.append(part.render(self.normaliser.last_cas))
            elif isinstance(part, list):
                for inner in part:
                    add(inner)
            else:
                chunks.append(part)

        for request in batch.requests:
            for part in request.parts:
                add(part)
        return b"".join(chunks)

    def send(self, data: bytes) -> None:
        """Write ``data``; a server that closes before taking it all may still have written
        replies first, so a failed write leaves the reading (and the closed flag) to pump."""
        self.sock.setblocking(True)
        try:
            self.sock.sendall(data)
        except OSError:
            pass
        self.sock.setblocking(False)

    def pump(self) -> bool:
        """Read what is there; False once the peer closed."""
        try:
            chunk = self.sock.recv(1 << 20)
        except BlockingIOError:
            return True
        except OSError:
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.received += chunk
        self.last_data = time.monotonic()
        return True

    def progress(self) -> Tuple[int, bool]:
        """How far the reply has come, in units both servers share whatever their CAS values
        and version strings: complete response packets, or lines; and whether it closed."""
        if not self.binary:
            return self.received.count(b"\n"), self.closed
        packets = pos = 0
        while pos + HEADER.size <= len(self.received):
            pos += HEADER.size + HEADER.unpack_from(self.received, pos)[6]
            if pos <= len(self.received):
                packets += 1
        return packets, self.closed

    def done(self, sentinel: bytes) -> bool:
        return self.closed or self.received.endswith(sentinel)


class DiffRunner:
    """Sends each batch to both servers and compares their normalised replies."""

    def __init__(self, reference: Tuple[str, int], candidate: Tuple[str, int], protocol: str,
                 quiet: float = 0.1, deadline: float = 5.0) -> None:
        self.protocol = protocol
        binary = protocol == "binary"
        self.sentinel = BINARY_SENTINEL if binary else TEXT_SENTINEL
        self.sentinel_reply = BINARY_SENTINEL_REPLY if binary else TEXT_SENTINEL_REPLY
        self.accepted_before = [total_connections(reference), total_connections(candidate)]
        self.sides = [_Side(reference, binary), _Side(candidate, binary)]
        self.quiet = quiet
        self.deadline = deadline

    def close(self) -> None:
        for side in self.sides:
            side.sock.close()

    def exchange(self, batch: Batch) -> List[bytes]:
        """Both servers' raw replies to ``batch`` (then its sentinel)."""
        start = time.monotonic()
        for side in self.sides:
            side.received = b""
            side.send(side.render(batch) + self.sentinel)
        sent = time.monotonic()
        for side in self.sides:
            side.last_data = sent
        while True:
            waiting = [side for side in self.sides if not side.done(self.sentinel_reply)]
            if not waiting:
                break
            now = time.monotonic()
            if now - start > self.deadline or (batch.risky and self._settled(now)):
                break
            readable, _, _ = select.select([side.sock for side in waiting], [], [], self.quiet / 3)
            for side in waiting:
                if side.sock in readable:
                    side.pump()
        replies = []
        for side in self.sides:
            reply = side.received
            if reply.endswith(self.sentinel_reply):
                reply = reply[:-len(self.sentinel_reply)]
            elif side.closed:
                reply += CLOSED
            replies.append(reply)
        if batch.risky or any(side.closed or not side.received.endswith(self.sentinel_reply)
                              for side in self.sides):
            for side in self.sides:
                side.connect()
        return replies

    def _settled(self, now: float) -> bool:
        """A risky batch's replies are over when both servers have been quiet a while and have
        come equally far: a server that is merely slow (a loaded machine, a 2 MiB value in
        Python) is waited for, up to the deadline, instead of being cut short."""
        if any(now - side.last_data < self.quiet for side in self.sides):
            return False
        return len({side.progress() for side in self.sides}) == 1

    def normalise(self, replies: List[bytes]) -> List[bytes]:
        normalised = []
        for side, reply in zip(self.sides, replies):
            normaliser = side.normaliser
            normalised.append(normaliser.binary(reply) if self.protocol == "binary" else normaliser.text(reply))
            normaliser.batch_done()
        return normalised

    def run(self, seed: int, count: int, examples_per_kind: int = 3) -> Report:
        report = Report(self.protocol, seed)
        for batch in batches(self.protocol, seed, count):
            sent = self.sides[0].render(batch)
            replies = self.normalise(self.exchange(batch))
            report.batches += 1
            report.requests += len(batch.requests)
            if replies[0] != replies[1]:
                kind = batch.kind
                report.mismatches[kind] += 1
                mismatch = Mismatch(kind, sent, replies[0], replies[1])
                kept = report.examples.setdefault(kind, [])
                if len(kept) < examples_per_kind:
                    kept.append(mismatch)
                if len(report.first) < 3:
                    report.first.append(mismatch)
        # Each reading counts its own connection.
        report.foreign_connections = [
            total_connections(side.address) - before - side.opened - 1
            for side, before in zip(self.sides, self.accepted_before)]
        return report


def total_connections(address: Tuple[str, int]) -> int:
    """The server's ``total_connections`` (this reading's own connection included)."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(b"stats\r\n")
        reply = b""
        while not reply.endswith(b"END\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    match = re.search(rb"STAT total_connections (\d+)", reply)
    return int(match.group(1)) if match else 0
