"""SET, ADD, REPLACE, APPEND, PREPEND and their quiet forms: the binary requests carrying a value.

A request CAS other than 0 turns any of them into a compare-and-swap, as in memcached, so there is
no separate CAS opcode. The value is refused before it is read when it cannot fit (``Too large.``),
and a refused SET drops the old item so stale data does not outlive a failed overwrite.
"""

from __future__ import annotations

import struct

from zope.interface import implementer

from pymcd.commands.binary_base import BinaryCommand, fail, fail_with_outcome, succeed
from pymcd.event_log import ITEM_EVENTS, log_lookup, log_store
from pymcd.interfaces import IBinaryValueCommand
from pymcd.protocol.binary import BinaryRequest, Opcode, Status
from pymcd.store import outcomes

FLAGS_AND_EXPIRATION = struct.Struct(">II")
OUT_OF_MEMORY = b"Out of memory allocating item"

# How memcached's complete_update_bin words a store that did not happen, by mode.
NOT_STORED_STATUS = {
    outcomes.ADD: Status.KEY_EEXISTS,
    outcomes.REPLACE: Status.KEY_ENOENT,
}


@implementer(IBinaryValueCommand)
class Store(BinaryCommand):
    """One storage opcode pair; SET/ADD/REPLACE carry flags and expiration, APPEND/PREPEND not."""

    key_required = True
    value_allowed = True
    reads_value = True

    def __init__(self, names: tuple, mode: int) -> None:
        self.names = names
        self.mode = mode
        self.with_extras = mode not in (outcomes.APPEND, outcomes.PREPEND)
        self.extras_lengths = (FLAGS_AND_EXPIRATION.size,) if self.with_extras else (0,)
        self.verb = {outcomes.SET: "SET", outcomes.ADD: "ADD"}.get(mode, "REPLACE")

    def begin(self, session, request: BinaryRequest):
        """Refuse a value that cannot fit before it is read."""
        length = request.value_length
        server = session.server
        if server.verbose > 1:
            if self.with_extras:
                server.trace("<%d %s %s Value len is %d" % (
                    session.conn_id, self.verb, request.key.decode("latin-1"), length))
            else:
                server.trace("Value len is %d" % length)
        if server.settings.detail_enabled:
            server.prefix_stats.record_set(request.key)
        flags = FLAGS_AND_EXPIRATION.unpack(request.extras)[0] if self.with_extras else 0
        store = session.store
        if not store.item_size_ok(len(request.key), length, flags):
            # Unlike the text protocol, memcached does not count store_too_large here.
            if server.event_log.flags & ITEM_EVENTS:
                log_store(session, request.key, outcomes.TOO_LARGE, self.mode, flags, 0, 0)
            fail(session, request, Status.E2BIG)
            session.swallow(length)
            if self.mode == outcomes.SET:
                store.unlink(request.key)
            return None
        return length

    def execute(self, session, request: BinaryRequest) -> None:
        flags, exptime = (FLAGS_AND_EXPIRATION.unpack(request.extras) if self.with_extras
                          else (0, 0))
        mode = self.mode
        if request.cas and self.with_extras:
            mode = outcomes.CAS
        watching = session.server.event_log.flags & ITEM_EVENTS
        if watching:
            log_lookup(session, request.key)
        result, cas = session.store.store(mode, request.key, flags, exptime, request.value,
                                          request.cas)
        if watching:
            log_store(session, request.key, result, mode, flags, exptime, len(request.value))
        if result == outcomes.STORED:
            succeed(session, request, cas=cas)
        else:
            fail_with_outcome(session, request, result, OUT_OF_MEMORY,
                              NOT_STORED_STATUS.get(mode, Status.NOT_STORED))


SET = Store((Opcode.SET, Opcode.SETQ), outcomes.SET)
ADD = Store((Opcode.ADD, Opcode.ADDQ), outcomes.ADD)
REPLACE = Store((Opcode.REPLACE, Opcode.REPLACEQ), outcomes.REPLACE)
APPEND = Store((Opcode.APPEND, Opcode.APPENDQ), outcomes.APPEND)
PREPEND = Store((Opcode.PREPEND, Opcode.PREPENDQ), outcomes.PREPEND)
