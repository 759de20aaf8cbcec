"""flush_all, version, verbosity, quit and shutdown: commands about the server, not items."""

from __future__ import annotations

from typing import List, Optional

from pymcd import MEMCACHED_VERSION
from pymcd.commands.base import (
    BAD_FORMAT,
    ERROR,
    INVALID_EXPTIME,
    OK,
    TextCommand,
    wants_noreply,
)
from pymcd.c_numbers import parse_i32, parse_u32

FLUSH_NOT_ALLOWED = b"CLIENT_ERROR flush_all not allowed\r\n"
SHUTDOWN_DISABLED = b"ERROR: shutdown not enabled\r\n"
INVALID_SHUTDOWN_MODE = b"CLIENT_ERROR invalid shutdown mode\r\n"


class FlushAll(TextCommand):
    """``flush_all [delay] [noreply]``: invalidates items without scanning them."""

    names = (b"flush_all",)
    arity = (1, 3)

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        noreply = wants_noreply(session, tokens)
        session.server.stats.cmd_flush += 1
        if not session.server.settings.flush_enabled:
            session.reply(FLUSH_NOT_ALLOWED)
            return
        delay = 0
        if len(tokens) != (2 if noreply else 1):
            delay = parse_i32(tokens[1])
            if delay is None:
                session.reply(INVALID_EXPTIME)
                return
        session.store.flush_all(delay)
        session.reply(OK)


class Version(TextCommand):
    names = (b"version",)

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        session.reply(b"VERSION %s\r\n" % MEMCACHED_VERSION.encode())


class Verbosity(TextCommand):
    """``verbosity <level> [noreply]``: changes the -v level at run time."""

    names = (b"verbosity",)
    arity = (2, 3)

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        wants_noreply(session, tokens)
        level = parse_u32(tokens[1])
        if level is None:
            session.reply(BAD_FORMAT)
            return
        session.server.set_verbosity(level)
        session.reply(OK)


class Quit(TextCommand):
    names = (b"quit",)
    allowed_before_auth = True

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        session.close_reason = "normal"
        session.quit()


class Shutdown(TextCommand):
    """``shutdown [graceful]``, only when the server was started with -A."""

    names = (b"shutdown",)

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        server = session.server
        if not server.settings.shutdown_command:
            session.reply(SHUTDOWN_DISABLED)
            return
        if len(tokens) == 1:
            graceful = False
        elif len(tokens) == 2 and tokens[1] == b"graceful":
            graceful = True
        else:
            session.reply(INVALID_SHUTDOWN_MODE)
            return
        session.close_reason = "shutdown"
        session.close()
        server.request_shutdown(graceful)


class RefreshCerts(TextCommand):
    """``refresh_certs``: reload the TLS certificate and key for new connections."""

    names = (b"refresh_certs",)

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        wants_noreply(session, tokens)
        tls = session.server.tls
        if tls is None:
            session.reply(ERROR)
            return
        problem = tls.refresh()
        if problem is None:
            session.reply(OK)
        else:
            session.error(b"CLIENT_ERROR %s\r\n" % problem.encode())


FLUSH_ALL = FlushAll()
REFRESH_CERTS = RefreshCerts()
VERSION = Version()
VERBOSITY = Verbosity()
QUIT = Quit()
SHUTDOWN = Shutdown()
