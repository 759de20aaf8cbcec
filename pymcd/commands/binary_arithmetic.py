"""INCREMENT and DECREMENT (and their quiet forms): counters with an initial value.

Unlike the text protocol's incr, a binary increment of a missing key creates it with the
request's initial value, unless the expiration is 0xffffffff, memcached's "do not create".
"""

from __future__ import annotations

import struct

from pymcd.commands.binary_base import BinaryCommand, fail_with_outcome, succeed
from pymcd.event_log import ITEM_EVENTS, log_lookup, log_store
from pymcd.protocol.binary import BinaryRequest, Opcode, Status
from pymcd.store import outcomes

# delta, initial value, expiration.
DELTA_EXTRAS = struct.Struct(">QQI")
SIGNED_DELTA_EXTRAS = struct.Struct(">qQi")
COUNTER = struct.Struct(">Q")
DO_NOT_CREATE = 0xFFFFFFFF
OUT_OF_MEMORY = b"Out of memory incrementing value"


class Delta(BinaryCommand):
    """One counter opcode pair."""

    extras_lengths = (DELTA_EXTRAS.size,)
    key_required = True

    def __init__(self, names: tuple, incr: bool) -> None:
        self.names = names
        self.incr = incr

    def execute(self, session, request: BinaryRequest) -> None:
        delta, initial, expiration = DELTA_EXTRAS.unpack(request.extras)
        server = session.server
        if server.verbose > 1:
            # memcached prints the delta and expiration as signed numbers.
            signed_delta, _, signed_expiration = SIGNED_DELTA_EXTRAS.unpack(request.extras)
            server.trace("incr %s %d, %d, %d" % (
                request.key.decode("latin-1"), signed_delta, initial, signed_expiration))
        key = request.key
        store = session.store
        creates = expiration != DO_NOT_CREATE
        watching = server.event_log.flags & ITEM_EVENTS
        if watching:
            # A counter memcached creates is looked up again and logged as an add.
            creating = creates and store.peek(key) is None
            for _ in range(2 if creating else 1):
                log_lookup(session, key)
        result, number, cas = store.delta(key, self.incr, delta, initial if creates else None,
                                          expiration, request.cas)
        if watching and creating and result == outcomes.DELTA_OK:
            log_store(session, key, outcomes.STORED, outcomes.ADD, 0, expiration,
                      len(b"%d" % initial))
        if result == outcomes.DELTA_OK:
            succeed(session, request, value=COUNTER.pack(number), cas=cas)
        else:
            fail_with_outcome(session, request, result, OUT_OF_MEMORY, Status.KEY_ENOENT)


INCREMENT = Delta((Opcode.INCREMENT, Opcode.INCREMENTQ), incr=True)
DECREMENT = Delta((Opcode.DECREMENT, Opcode.DECREMENTQ), incr=False)
