"""memcached's UDP frame: an 8-byte header on every datagram, sans-IO.

Header: request id, sequence number, datagram count, reserved (each 16-bit big-endian). A
request must fit one datagram. pymcd frames the *whole* reply to a request as one message cut
into numbered datagrams (memcached 1.4's framing): memcached 1.6.18 numbers every response object
on its own, which breaks clients that reassemble multi-key replies (memaslap asserts on it), while
single-key replies look the same under both.
"""

from __future__ import annotations

import struct
from typing import List, Optional, Tuple

from pymcd.protocol.negotiate import machine_for
from pymcd.session import Session

HEADER = struct.Struct(">HHHH")
HEADER_SIZE = HEADER.size
MAX_DATAGRAM = 1400
MAX_PAYLOAD = MAX_DATAGRAM - HEADER_SIZE
MULTI_PACKET_REFUSAL = b"SERVER_ERROR multi-packet request not supported\r\n"


def parse_request(datagram: bytes) -> Optional[Tuple[int, bool, bytes]]:
    """``(request_id, single_datagram, payload)``, or None for a datagram memcached drops.

    memcached ignores frames of 8 bytes or less and refuses requests spread over several
    datagrams; the reserved field is ignored (memaslap sends 1 there).
    """
    if len(datagram) <= HEADER_SIZE:
        return None
    request_id, sequence, total, _ = HEADER.unpack_from(datagram)
    return request_id, (sequence == 0 and total == 1), datagram[HEADER_SIZE:]


def frame_reply(request_id: int, reply: bytes) -> List[bytes]:
    """Cut a reply into datagrams numbered 0..n-1 of n, each with its header."""
    if len(reply) <= MAX_PAYLOAD:
        # Nearly every reply: one datagram, without the slicing below.
        return [HEADER.pack(request_id, 0, 1, 0) + reply]
    total = max(1, -(-len(reply) // MAX_PAYLOAD))
    return [
        HEADER.pack(request_id, sequence, total, 0)
        + reply[sequence * MAX_PAYLOAD:(sequence + 1) * MAX_PAYLOAD]
        for sequence in range(total)
    ]


def answer(session: Session, datagram: bytes) -> Optional[List[bytes]]:
    """The datagrams answering one request datagram, or None for one memcached ignores.

    Each datagram gets a fresh protocol machine, so a request cut short by the datagram's end
    leaves nothing behind to corrupt the next one.
    """
    parsed = parse_request(datagram)
    if parsed is None:
        return None
    request_id, single, payload = parsed
    if single:
        machine = machine_for(session, payload)
        replies = []
        while True:
            more = machine.receive(payload)
            replies.append(session.take_output())
            if not more:
                break
            payload = b""
        reply = b"".join(replies)
    else:
        reply = MULTI_PACKET_REFUSAL
    session.close_now = session.close_after_write = False
    session.swallow_bytes = 0
    return frame_reply(request_id, reply) if reply else []
