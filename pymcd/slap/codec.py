"""Requests and reply parsing for the ASCII and binary protocols, sans-IO.

Both codecs offer the same calls so the concurrency state machine does not care which protocol
it speaks. A parser gets everything received for the operation so far and answers ``None`` while
the reply is incomplete; bytes after a complete reply are dropped, as memaslap's reset does.

A get's hits come back as ``(token, value)`` pairs: the key on the text protocol, the request's
position (echoed in the opaque field) on the binary one, so multi-gets match replies to items
whatever order they arrive in.
"""

from __future__ import annotations

import struct
from typing import List, Optional, Sequence, Tuple

from pymcd.replies import INCOMPLETE, PROTOCOL_ERROR, read_values, reply_end
from pymcd.slap.workload import Item

Hits = List[Tuple[object, bytes]]
# (hits, error): error is None for a clean reply, else the server's line or status text.
GetOutcome = Tuple[Hits, Optional[bytes]]

# memcached's binary header: magic, opcode, key length, extras length, data type,
# vbucket/status, body length, opaque, cas.
BINARY_HEADER = struct.Struct(">BBHBBHIIQ")
BINARY_HEADER_SIZE = BINARY_HEADER.size
_REQUEST_MAGIC = 0x80
_RESPONSE_MAGIC = 0x81
_OPCODE_GET = 0x00
_OPCODE_SET = 0x01
_SET_EXTRAS = struct.Struct(">II")
_STATUS_OK = 0
_STATUS_NOT_FOUND = 1
_BINARY_STATUS_TEXT = {
    0x02: b"EXISTS Data exists for key.",
    0x03: b"SERVER_ERROR Too large.",
    0x04: b"CLIENT_ERROR Invalid arguments",
    0x05: b"NOT_STORED Not stored.",
    0x81: b"ERROR Unknown command",
    0x82: b"SERVER_ERROR Out of memory",
}



def error_kind(error: bytes) -> str:
    """The report's name for an error line: its first word (``SERVER_ERROR``, ``EXISTS``...)."""
    word = error.split(b" ", 1)[0]
    return word.decode("ascii", "replace") if word.isupper() else "UNKNOWN_REPLY"


class AsciiCodec:
    """memcached's text protocol, as memaslap speaks it (flags always 0)."""

    binary = False

    @staticmethod
    def get_request(item: Item) -> bytes:
        request = item.get_request
        if not request:
            request = item.get_request = b"get " + item.key + b"\r\n"
        return request

    @staticmethod
    def multiget_request(items: Sequence[Item]) -> Tuple[bytes, List[object]]:
        keys = [item.key for item in items]
        return b"get " + b" ".join(keys) + b"\r\n", keys

    @staticmethod
    def token(item: Item) -> object:
        """What a single get's hit is matched by."""
        return item.key

    @staticmethod
    def set_request(item: Item, value: bytes) -> bytes:
        return b"".join((b"set ", item.key, b" 0 ", b"%d %d\r\n" % (item.exp_time, len(value)),
                         value, b"\r\n"))

    @staticmethod
    def parse_hit(data: bytes, item: Item) -> Optional[bytes]:
        """The value, if ``data`` is exactly the hit the item's last set would give; else None
        (the general parser then decides: a miss, an error, a partial or unexpected reply)."""
        head = item.hit_head
        if not head:
            head = item.hit_head = b"VALUE %s 0 %d\r\n" % (item.key, item.value_size)
        if (len(data) == len(head) + item.value_size + 7 and data.startswith(head)
                and data.endswith(b"\r\nEND\r\n")):
            return data[len(head):-7]
        return None

    @staticmethod
    def parse_store(data: bytes) -> Optional[bytes]:
        """``b""`` for STORED, the line for anything else, None until a line is complete."""
        if data == b"STORED\r\n":
            return b""
        end = data.find(b"\n")
        if end < 0:
            return None
        line = data[:end].rstrip(b"\r")
        return b"" if line == b"STORED" else line

    @staticmethod
    def parse_get(data: bytes, expected: int) -> Optional[GetOutcome]:
        if data == b"END\r\n":
            return [], None
        end = reply_end(data)
        if end == INCOMPLETE:
            return None
        values, error = read_values(data, 0, end)
        return [(key, data[start:stop]) for key, _, start, stop in values], error


class BinaryCodec:
    """memcached's binary protocol: GETs (one per key, opaque = position) and SETs."""

    binary = True

    @staticmethod
    def _get(key: bytes, opaque: int) -> bytes:
        return BINARY_HEADER.pack(_REQUEST_MAGIC, _OPCODE_GET, len(key), 0, 0, 0, len(key),
                                  opaque, 0) + key

    @classmethod
    def get_request(cls, item: Item) -> bytes:
        request = item.get_request
        if not request:
            request = item.get_request = cls._get(item.key, 0)
        return request

    @classmethod
    def multiget_request(cls, items: Sequence[Item]) -> Tuple[bytes, List[object]]:
        # memaslap sends N plain GETs back to back (no GETQ, no NOOP): one reply each.
        return (b"".join(cls._get(item.key, position) for position, item in enumerate(items)),
                list(range(len(items))))

    @staticmethod
    def token(item: Item) -> object:
        """What a single get's hit is matched by (the opaque of the only GET)."""
        return 0

    @staticmethod
    def set_request(item: Item, value: bytes) -> bytes:
        key = item.key
        return b"".join((
            BINARY_HEADER.pack(_REQUEST_MAGIC, _OPCODE_SET, len(key), _SET_EXTRAS.size, 0, 0,
                               _SET_EXTRAS.size + len(key) + len(value), 0, 0),
            _SET_EXTRAS.pack(0, item.exp_time), key, value))

    @staticmethod
    def parse_hit(data: bytes, item: Item) -> Optional[bytes]:
        """No shortcut: the opaque and CAS of a binary reply vary, the general parser it is."""
        return None

    @staticmethod
    def _status_error(status: int, body: bytes) -> bytes:
        return _BINARY_STATUS_TEXT.get(status, b"SERVER_ERROR binary status 0x%02x %s"
                                       % (status, body))

    @classmethod
    def parse_store(cls, data: bytes) -> Optional[bytes]:
        if len(data) < BINARY_HEADER_SIZE:
            return None
        magic, _, _, _, _, status, body_length, _, _ = BINARY_HEADER.unpack_from(data)
        if magic != _RESPONSE_MAGIC:
            return PROTOCOL_ERROR + b" invalid magic 0x%02x" % magic
        if len(data) < BINARY_HEADER_SIZE + body_length:
            return None
        if status == _STATUS_OK:
            return b""
        return cls._status_error(status, data[BINARY_HEADER_SIZE:BINARY_HEADER_SIZE + body_length])

    @classmethod
    def parse_get(cls, data: bytes, expected: int) -> Optional[GetOutcome]:
        hits: Hits = []
        error = None
        position = 0
        size_of_data = len(data)
        for _ in range(expected):
            if size_of_data - position < BINARY_HEADER_SIZE:
                return None
            (magic, _, key_length, extras_length, _, status, body_length, opaque,
             _) = BINARY_HEADER.unpack_from(data, position)
            if magic != _RESPONSE_MAGIC:
                return hits, PROTOCOL_ERROR + b" invalid magic 0x%02x" % magic
            body = position + BINARY_HEADER_SIZE
            end = body + body_length
            if size_of_data < end:
                return None
            if status == _STATUS_OK:
                hits.append((opaque, data[body + extras_length + key_length:end]))
            elif status != _STATUS_NOT_FOUND:
                error = cls._status_error(status, data[body:end])
            position = end
        return hits, error
