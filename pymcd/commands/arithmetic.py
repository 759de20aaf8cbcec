"""incr and decr: 64-bit unsigned counters stored as decimal text."""

from __future__ import annotations

from typing import List, Optional

from pymcd.commands.base import (
    BAD_FORMAT,
    KEY_MAX_LENGTH,
    NOT_FOUND,
    TextCommand,
    trace_lookup,
    wants_noreply,
)
from pymcd.protocol.numbers import parse_u64
from pymcd.store import outcomes

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
        wants_noreply(session, tokens)
        key = tokens[1]
        if len(key) > KEY_MAX_LENGTH:
            session.reply(BAD_FORMAT)
            return
        delta = parse_u64(tokens[2])
        if delta is None:
            session.reply(INVALID_DELTA)
            return
        trace_lookup(session, key)
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
