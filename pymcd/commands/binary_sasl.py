"""SASL_LIST_MECHS, SASL_AUTH and SASL_STEP: authenticating a binary connection under ``-S``.

As in memcached, every SASL request first drops the connection's authentication (Cyrus starts a
fresh exchange), only a finished exchange authenticates, and without ``-S`` the three opcodes are
unknown commands. A failure answers ``Auth failure.`` and leaves the connection open; it is the
next command needing authentication that closes it. Failures are logged with the user name, never
the password.
"""

from __future__ import annotations

from twisted.logger import Logger
from zope.interface import implementer

from pymcd.auth.sasl import CONTINUE, OK, SaslServer
from pymcd.commands.binary_base import BinaryCommand, fail, succeed
from pymcd.interfaces import IBinaryValueCommand
from pymcd.protocol.binary import BinaryRequest, Opcode, Status, pack_response, respond

log = Logger()

# memcached's MAX_SASL_MECH_LEN: a longer mechanism name is refused before its data is read.
MECHANISM_MAX_LENGTH = 32
AUTHENTICATED = b"Authenticated"


@implementer(IBinaryValueCommand)
class SaslCommand(BinaryCommand):
    """What the three SASL opcodes share: served before authentication, and only under -S."""

    allowed_before_auth = True

    def begin(self, session, request: BinaryRequest):
        """Without -S the SASL opcodes are unknown, and their data is discarded unread."""
        if not session.server.settings.sasl:
            fail(session, request, Status.UNKNOWN_COMMAND)
            session.swallow(request.value_length)
            return None
        return request.value_length if self.reads_value else 0

    @staticmethod
    def restart(session) -> SaslServer:
        """memcached's init_sasl_conn: the connection is unauthenticated until an exchange ends."""
        session.authenticated = False
        if session.sasl is None:
            session.sasl = SaslServer(session.server.settings.sasl_password_file)
        return session.sasl


class ListMechanisms(SaslCommand):
    names = (Opcode.SASL_LIST_MECHS,)
    key_required = False

    def execute(self, session, request: BinaryRequest) -> None:
        succeed(session, request, value=self.restart(session).mechanism_list())


class Authenticate(SaslCommand):
    """SASL_AUTH starts an exchange under the mechanism named by the key; SASL_STEP continues it."""

    key_required = True
    value_allowed = True
    reads_value = True

    def __init__(self, names: tuple, starts: bool) -> None:
        self.names = names
        self.starts = starts

    def begin(self, session, request: BinaryRequest):
        length = super().begin(session, request)
        if length is None:
            return None
        if len(request.key) > MECHANISM_MAX_LENGTH:
            fail(session, request, Status.EINVAL)
            session.swallow(length)
            return None
        # memcached reads the data into an item of its own: what needs a chain of chunks
        # (over 512 KiB) is refused unread, so nobody buffers much before authenticating.
        if not session.store.fits_one_chunk(len(request.key), length + 2):
            fail(session, request, Status.ENOMEM)
            session.swallow(length)
            return None
        return length

    def execute(self, session, request: BinaryRequest) -> None:
        sasl = self.restart(session)
        server = session.server
        mechanism = request.key
        if server.verbose:
            server.trace("mech:  ``%s'' with %d bytes of data"
                         % (mechanism.decode("latin-1"), len(request.value)))
        if self.starts:
            code, data = sasl.start(mechanism, request.value)
        else:
            code, data = sasl.step(request.value)
        if server.verbose:
            server.trace("sasl result code:  %d" % code)
        stats = server.stats
        if code == OK:
            session.authenticated = True
            session.user = sasl.user.decode("utf-8", "replace") if sasl.user else None
            stats.auth_cmds += 1
            succeed(session, request, value=AUTHENTICATED)
        elif code == CONTINUE:
            respond(session, pack_response(request.opcode, request.opaque, Status.AUTH_CONTINUE,
                                           value=data))
        else:
            if server.verbose:
                server.trace("Unknown sasl response:  %d" % code)
            log.warn("SASL {mechanism} authentication failed for user {user!r} on connection "
                     "{conn_id}", mechanism=mechanism.decode("latin-1"),
                     user=(sasl.user or b"").decode("utf-8", "replace"), conn_id=session.conn_id)
            stats.auth_cmds += 1
            stats.auth_errors += 1
            fail(session, request, Status.AUTH_ERROR)


SASL_LIST_MECHS = ListMechanisms()
SASL_AUTH = Authenticate((Opcode.SASL_AUTH,), starts=True)
SASL_STEP = Authenticate((Opcode.SASL_STEP,), starts=False)
