"""Reading memcached's text and meta replies, sans-IO: where one reply ends, and a get's VALUEs.

Two clients in pymcd read replies from a server: the load generator (``pymcd.slap``) and the
proxy's backend connections (``pymcd.proxy``). Both frame them here, so a reply shape learned by
one (a ``VA`` block, a ``STAT`` list) is learned by both. Nothing here imports Twisted or the
server.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

INCOMPLETE = -1
CRLF = b"\r\n"
PROTOCOL_ERROR = b"PROTOCOL_ERROR"
# Lines after which the reply goes on until END: get hits, stats and cachedump lines.
_CONTINUED = (b"STAT ", b"ITEM ")
# One VALUE of a get reply: (key, offset of its VALUE line, value start, value end).
Value = Tuple[bytes, int, int, int]


def reply_end(data: bytes, start: int = 0) -> int:
    """The offset just past the reply that begins at ``start``, or INCOMPLETE.

    A reply is one line, except a ``VA <n>`` line (its block follows) and VALUE, STAT and ITEM
    lines (more follow until ``END``). A VALUE line whose length does not parse ends the reply
    there; :func:`read_values` reports it as a protocol error.
    """
    position = start
    while True:
        eol = data.find(b"\n", position)
        if eol < 0:
            return INCOMPLETE
        if data.startswith(b"VALUE ", position):
            fields = data[position + 6:eol].split(b" ")
            if len(fields) < 3 or not fields[2].rstrip(b"\r").isdigit():
                return eol + 1
            position = eol + 1 + int(fields[2]) + 2
            if position > len(data):
                return INCOMPLETE
        elif data.startswith(b"VA ", position):
            fields = data[position + 3:eol].split(b" ", 1)
            length = fields[0].rstrip(b"\r")
            if not length.isdigit():
                return eol + 1
            end = eol + 1 + int(length) + 2
            return end if end <= len(data) else INCOMPLETE
        elif data.startswith(_CONTINUED, position):
            position = eol + 1
        else:
            return eol + 1


def read_values(data: bytes, start: int, end: int) -> Tuple[List[Value], Optional[bytes]]:
    """The VALUEs of the get reply ``data[start:end]`` and its error line (None after END)."""
    values: List[Value] = []
    position = start
    while position < end:
        eol = data.find(b"\n", position)
        if eol < 0 or eol >= end:
            return values, PROTOCOL_ERROR + b" unterminated line"
        if data.startswith(b"VALUE ", position):
            fields = data[position + 6:eol].rstrip(b"\r").split(b" ")
            if len(fields) < 3 or not fields[2].isdigit():
                return values, PROTOCOL_ERROR + b" bad VALUE line"
            value_start = eol + 1
            value_end = value_start + int(fields[2])
            if data[value_end:value_end + 2] != CRLF:
                return values, PROTOCOL_ERROR + b" value not terminated by CRLF"
            values.append((fields[0], position, value_start, value_end))
            position = value_end + 2
        elif data.startswith(b"END\r\n", position):
            return values, None
        else:
            return values, data[position:eol].rstrip(b"\r")
    return values, PROTOCOL_ERROR + b" no END"
