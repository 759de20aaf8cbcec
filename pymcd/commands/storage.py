"""set, add, replace, append, prepend and cas: the requests that carry a data block."""

from __future__ import annotations

from typing import List, Optional

from pymcd.commands.base import (
    BAD_FORMAT,
    KEY_MAX_LENGTH,
    TextCommand,
    trace_lookup,
)
from pymcd.c_numbers import parse_storage_numbers, parse_u64
from pymcd.store import outcomes
from pymcd.event_log import ITEM_EVENTS, log_lookup, log_store

TOO_LARGE = b"SERVER_ERROR object too large for cache\r\n"
NO_MEMORY = b"SERVER_ERROR out of memory storing object\r\n"

REPLIES = {
    outcomes.STORED: b"STORED\r\n",
    outcomes.NOT_STORED: b"NOT_STORED\r\n",
    outcomes.EXISTS: b"EXISTS\r\n",
    outcomes.NOT_FOUND: b"NOT_FOUND\r\n",
    outcomes.TOO_LARGE: TOO_LARGE,
    outcomes.NO_MEMORY: NO_MEMORY,
}


class Store(TextCommand):
    """One storage verb: ``<verb> <key> <flags> <exptime> <bytes> [<cas>] [noreply]``."""

    takes_value = True

    def __init__(self, name: bytes, mode: int) -> None:
        self.names = (name,)
        self.mode = mode
        self.with_cas = mode == outcomes.CAS
        self.arity = (6, 7) if self.with_cas else (5, 6)

    def begin(self, session, tokens: List[bytes]) -> Optional[int]:
        """Check the line as memcached's process_update_command does before reading data."""
        if tokens[-1] == b"noreply":
            session.noreply = True
        key = tokens[1]
        if len(key) > KEY_MAX_LENGTH:
            session.reply(BAD_FORMAT)
            return None
        numbers = parse_storage_numbers(tokens[2], tokens[3], tokens[4])
        if numbers is None or (self.with_cas and parse_u64(tokens[5]) is None):
            session.reply(BAD_FORMAT)
            return None
        flags, _, length = numbers
        server = session.server
        if server.settings.detail_enabled:
            server.prefix_stats.record_set(key)
        store = session.store
        if not store.item_size_ok(len(key), length, flags):
            store.count_too_large()
            if server.event_log.flags & ITEM_EVENTS:
                log_store(session, key, outcomes.TOO_LARGE, self.mode, flags, 0, 0)
            session.reply(TOO_LARGE)
            session.swallow(length + 2)
            if self.mode == outcomes.SET:
                store.unlink(key)
            return None
        return length

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        key = tokens[1]
        if session.server.verbose > 2:
            trace_lookup(session, key)
        watching = session.server.event_log.flags & ITEM_EVENTS
        if watching:
            log_lookup(session, key)
        flags, exptime, _ = parse_storage_numbers(tokens[2], tokens[3], tokens[4])
        result, _ = session.store.store(
            self.mode, key, flags, exptime, value, parse_u64(tokens[5]) if self.with_cas else 0,
        )
        if watching:
            log_store(session, key, result, self.mode, flags, exptime, len(value))
        session.reply(REPLIES[result])


SET = Store(b"set", outcomes.SET)
ADD = Store(b"add", outcomes.ADD)
REPLACE = Store(b"replace", outcomes.REPLACE)
APPEND = Store(b"append", outcomes.APPEND)
PREPEND = Store(b"prepend", outcomes.PREPEND)
CAS = Store(b"cas", outcomes.CAS)
