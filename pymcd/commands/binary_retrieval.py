"""GET, GETK, TOUCH, GAT, GATK and their quiet forms: reading (and touching) items over binary.

memcached serves them all with one handler (``process_bin_get_or_touch``); the variants differ in
three choices, which are the constructor's parameters here. A quiet variant is silent only on a
miss: its hits are always sent, which is what makes GETKQ pipelines closed by a NOOP work.
"""

from __future__ import annotations

import struct

from pymcd.commands.binary_base import BinaryCommand, fail
from pymcd.commands.base import observed_fetch
from pymcd.event_log import FETCHERS
from pymcd.protocol.binary import (
    HEADER_SIZE,
    BinaryRequest,
    Opcode,
    Status,
    pack_response,
    pack_value_response,
    respond,
    trace_header,
)

EXPIRATION = struct.Struct(">I")
# Where the CAS sits in a response header.
CAS_OFFSET = 16


class Retrieve(BinaryCommand):
    """One get-or-touch opcode pair: ``touch`` takes an expiration, ``with_key`` echoes the key,
    ``with_value`` sends the value (all but TOUCH)."""

    key_required = True

    def __init__(self, names: tuple, touch: bool, with_key: bool, with_value: bool = True) -> None:
        self.names = names
        self.touch = touch
        self.with_key = with_key
        self.with_value = with_value
        if touch:
            # memcached does not check the body length of touches: extra bytes are parsed as
            # the next request.
            self.extras_lengths = (EXPIRATION.size,)
            self.value_allowed = True

    def execute(self, session, request: BinaryRequest) -> None:
        key = request.key
        store = session.store
        server = session.server
        if server.verbose > 1:
            server.trace("<%d %s %s" % (session.conn_id, "TOUCH" if self.touch else "GET",
                                         key.decode("latin-1")))
        if self.touch:
            exptime = EXPIRATION.unpack(request.extras)[0]
            fetch = lambda key: store.gat(key, exptime)  # noqa: E731
        else:
            fetch = store.get
        if server.event_log.flags & FETCHERS or server.settings.detail_enabled:
            fetch = observed_fetch(session, fetch)
        hit = fetch(key)
        if hit is None:
            self._miss(session, request)
            return
        flags, value, cas = hit
        session.reply_bytes += len(value)
        packet = pack_value_response(request.opcode, request.opaque, flags,
                                     key if self.with_key else b"",
                                     value if self.with_value else b"", cas)
        if server.verbose > 1:
            # memcached dumps the header before it fills in the item's CAS.
            trace_header(session, False, packet[:CAS_OFFSET] + bytes(HEADER_SIZE - CAS_OFFSET))
        session.out.append(packet)

    def _miss(self, session, request: BinaryRequest) -> None:
        """Quiet misses say nothing; GETK/GATK misses carry the key instead of ``Not found``."""
        if request.quiet:
            return
        if self.with_key:
            respond(session, pack_response(request.opcode, request.opaque, Status.KEY_ENOENT,
                                           key=request.key))
        else:
            fail(session, request, Status.KEY_ENOENT)


GET = Retrieve((Opcode.GET, Opcode.GETQ), touch=False, with_key=False)
GETK = Retrieve((Opcode.GETK, Opcode.GETKQ), touch=False, with_key=True)
GAT = Retrieve((Opcode.GAT, Opcode.GATQ), touch=True, with_key=False)
GATK = Retrieve((Opcode.GATK, Opcode.GATKQ), touch=True, with_key=True)
TOUCH = Retrieve((Opcode.TOUCH,), touch=True, with_key=False, with_value=False)
