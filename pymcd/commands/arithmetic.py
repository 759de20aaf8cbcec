"""incr and decr: 64-bit unsigned counters stored as decimal text."""

from __future__ import annotations

from typing import List, Optional

from pymcd.commands.base import NOT_FOUND, TextCommand, key_and_number
from pymcd.c_numbers import parse_u64
from pymcd.store import outcomes
from pymcd.event_log import ITEM_EVENTS, log_lookup

INVALID_DELTA = b"CLIENT_ERROR invalid numeric delta argument\r\n"
NON_NUMERIC = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
OUT_OF_MEMORY = b"SERVER_ERROR out of memory\r\n"


class Delta(TextCommand):
    """``incr|decr <key> <delta> [noreply]``."""

    arity = (3, 4)

    def __init__(self, name: bytes, incr: bool) -> None:
        self.names = (name,)
        self.incr = incr

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        parsed = key_and_number(session, tokens, parse_u64, INVALID_DELTA)
        if parsed is None:
            return
        key, delta = parsed
        if session.server.event_log.flags & ITEM_EVENTS:
            log_lookup(session, key)
        result, number, _ = session.store.delta(key, self.incr, delta)
        if result == outcomes.DELTA_OK:
            session.reply(b"%d\r\n" % number)
        elif result == outcomes.DELTA_NON_NUMERIC:
            session.reply(NON_NUMERIC)
        elif result == outcomes.NO_MEMORY:
            session.reply(OUT_OF_MEMORY)
        else:
            session.reply(NOT_FOUND)


INCR = Delta(b"incr", incr=True)
DECR = Delta(b"decr", incr=False)
