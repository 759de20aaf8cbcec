"""delete and touch: requests that act on an item without a data block."""

from __future__ import annotations

from typing import List, Optional

from pymcd.commands.base import (
    BAD_FORMAT,
    INVALID_EXPTIME,
    KEY_MAX_LENGTH,
    NOT_FOUND,
    TextCommand,
    key_and_number,
    trace_lookup,
    wants_noreply,
)
from pymcd.c_numbers import parse_i32
from pymcd.store import outcomes
from pymcd.event_log import ITEM_EVENTS, log_lookup

DELETED = b"DELETED\r\n"
TOUCHED = b"TOUCHED\r\n"
DELETE_USAGE = b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"


class Delete(TextCommand):
    """``delete <key> [0] [noreply]``: the ``0`` is the long-gone hold time, still accepted."""

    names = (b"delete",)
    arity = (2, 4)

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        count = len(tokens)
        if count > 2:
            hold_is_zero = tokens[2] == b"0"
            noreply = wants_noreply(session, tokens)
            if not (
                (count == 3 and (hold_is_zero or noreply))
                or (count == 4 and hold_is_zero and noreply)
            ):
                session.reply(DELETE_USAGE)
                return
        key = tokens[1]
        if len(key) > KEY_MAX_LENGTH:
            session.reply(BAD_FORMAT)
            return
        server = session.server
        if server.settings.detail_enabled:
            server.prefix_stats.record_delete(key)
        trace_lookup(session, key)
        if server.event_log.flags & ITEM_EVENTS:
            log_lookup(session, key)
        if session.store.delete(key) == outcomes.DELETED:
            session.reply(DELETED)
        else:
            session.reply(NOT_FOUND)


class Touch(TextCommand):
    """``touch <key> <exptime> [noreply]``."""

    names = (b"touch",)
    arity = (3, 4)

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        parsed = key_and_number(session, tokens, parse_i32, INVALID_EXPTIME)
        if parsed is None:
            return
        key, exptime = parsed
        if session.server.event_log.flags & ITEM_EVENTS:
            log_lookup(session, key)
        session.reply(TOUCHED if session.store.touch(key, exptime) else NOT_FOUND)


DELETE = Delete()
TOUCH = Touch()
