"""NOOP, VERSION, QUIT and FLUSH: binary requests about the connection or the server.

memcached 1.6.18 does not serve VERBOSITY over binary (it answers ``Unknown command``), so
neither does pymcd.
"""

from __future__ import annotations

import struct

from pymcd import MEMCACHED_VERSION
from pymcd.commands.binary_base import BinaryCommand, fail, succeed
from pymcd.protocol.binary import BinaryRequest, Opcode, Status

EXPIRATION = struct.Struct(">I")


class Noop(BinaryCommand):
    """A pipeline of quiet requests ends with one: its reply says all before it were served."""

    names = (Opcode.NOOP,)
    key_required = False

    def execute(self, session, request: BinaryRequest) -> None:
        succeed(session, request)
        request.flushes = True


class Version(BinaryCommand):
    names = (Opcode.VERSION,)
    key_required = False
    allowed_before_auth = True

    def execute(self, session, request: BinaryRequest) -> None:
        succeed(session, request, value=MEMCACHED_VERSION.encode())


class Quit(BinaryCommand):
    """QUIT answers, then closes; QUITQ closes silently."""

    names = (Opcode.QUIT, Opcode.QUITQ)
    key_required = False

    def execute(self, session, request: BinaryRequest) -> None:
        succeed(session, request)
        session.close_reason = "normal"
        session.quit()


class Flush(BinaryCommand):
    """FLUSH with an optional delay; under -F memcached answers ``Auth failure.``."""

    names = (Opcode.FLUSH, Opcode.FLUSHQ)
    key_required = False
    extras_lengths = (0, EXPIRATION.size)

    def execute(self, session, request: BinaryRequest) -> None:
        server = session.server
        if not server.settings.flush_enabled:
            fail(session, request, Status.AUTH_ERROR)
            return
        delay = EXPIRATION.unpack(request.extras)[0] if request.extras else 0
        session.store.flush_all(delay)
        server.stats.cmd_flush += 1
        succeed(session, request)


NOOP = Noop()
VERSION = Version()
QUIT = Quit()
FLUSH = Flush()
