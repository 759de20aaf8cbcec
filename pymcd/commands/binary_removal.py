"""DELETE and DELETEQ: a request CAS other than 0 deletes only that version of the item."""

from __future__ import annotations

from pymcd.commands.binary_base import BinaryCommand, fail, succeed
from pymcd.event_log import ITEM_EVENTS, log_lookup
from pymcd.protocol.binary import BinaryRequest, Opcode, Status
from pymcd.store import outcomes


class Delete(BinaryCommand):
    names = (Opcode.DELETE, Opcode.DELETEQ)
    key_required = True

    def execute(self, session, request: BinaryRequest) -> None:
        server = session.server
        if server.verbose > 1:
            server.trace("Deleting %s" % request.key.decode("latin-1"))
        if server.settings.detail_enabled:
            server.prefix_stats.record_delete(request.key)
        if server.event_log.flags & ITEM_EVENTS:
            log_lookup(session, request.key)
        result = session.store.delete(request.key, request.cas)
        if result == outcomes.DELETED:
            succeed(session, request)
        elif result == outcomes.EXISTS:
            fail(session, request, Status.KEY_EEXISTS)
        else:
            fail(session, request, Status.KEY_ENOENT)


DELETE = Delete()
