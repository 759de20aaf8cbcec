"""Shared pieces of commands: the text commands' base class, memcached's limits and fixed replies,
and the observed store fetch both protocols' gets use."""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple

from zope.interface import implementer

from pymcd.event_log import FETCHERS, logged_fetch
from pymcd.interfaces import ITextCommand

KEY_MAX_LENGTH = 250

ERROR = b"ERROR\r\n"
BAD_FORMAT = b"CLIENT_ERROR bad command line format\r\n"
INVALID_EXPTIME = b"CLIENT_ERROR invalid exptime argument\r\n"
NOT_FOUND = b"NOT_FOUND\r\n"
OK = b"OK\r\n"
END = b"END\r\n"
META_NOOP = b"MN\r\n"


@implementer(ITextCommand)
class TextCommand:
    """Base of text commands.

    ``arity`` bounds the number of tokens (verb included) memcached accepts before it answers a
    bare ``ERROR``; the protocol machine checks it so every command need not.
    """

    names: tuple = ()
    takes_value = False
    # memcached sends get-like replies at once (conn_mwrite); only the -vvv trace cares.
    writes_at_once = False
    allowed_before_auth = False
    arity = (1, None)

    def responses(self, tokens: List[bytes]) -> int:
        """How many of memcached's response objects the request needs (a get: one per key)."""
        return 1

    def out_of_responses(self, session) -> None:
        """memcached's answer when the request's response objects cannot all be had: it
        hangs up (a multi-get answers an error instead)."""
        session.close()

    def begin(self, session, tokens: List[bytes]) -> Optional[int]:
        raise NotImplementedError("%s carries no data block" % type(self).__name__)

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return "<%s %s>" % (type(self).__name__, b"/".join(self.names).decode())


def wants_noreply(session, tokens: List[bytes]) -> bool:
    """memcached's set_noreply_maybe: a final ``noreply`` token silences the reply."""
    if tokens[-1] == b"noreply":
        session.noreply = True
    return session.noreply


def replies_still_queued(session) -> bool:
    """Whether memcached would still hold earlier replies of this read unsent (its
    resp_has_stack), which ``watch`` and ``lru_crawler metadump`` refuse to follow.

    memcached writes at once after get-like commands (``session.flushed`` marks how far) and
    after ``mn``, so only replies queued after the last of those count.
    """
    out = session.out
    return len(out) > session.flushed and out[-1] != META_NOOP


def trace_lookup(session, key: bytes) -> None:
    """At -vvv memcached's item lookup prints whether the key exists; pymcd prints the same."""
    if session.server.verbose > 2:
        found = session.store.peek(key) is not None
        session.server.trace(("> FOUND KEY %s" if found else "> NOT FOUND %s") % key.decode("latin-1"))


def key_and_number(
    session, tokens: List[bytes], parse: Callable[[bytes], Optional[int]], invalid: bytes
) -> Optional[Tuple[bytes, int]]:
    """The common start of ``<verb> <key> <number> [noreply]`` (incr, decr, touch).

    Returns (key, number), or None once memcached's error for a long key or a bad number has
    been queued.
    """
    wants_noreply(session, tokens)
    key = tokens[1]
    if len(key) > KEY_MAX_LENGTH:
        session.reply(BAD_FORMAT)
        return None
    number = parse(tokens[2])
    if number is None:
        session.reply(invalid)
        return None
    trace_lookup(session, key)
    return key, number


def observed_fetch(session, fetch: Callable[[bytes], Optional[Tuple]]) -> Callable:
    """``fetch`` (a counted store lookup: get or gat) as a request must run it: wrapped to log
    each key for ``watch fetchers`` and to record it for ``stats detail`` while someone
    observes. The gets test the two conditions themselves first, and call this only when
    one holds: unobserved, a get calls the store's own method with no call here."""
    server = session.server
    if server.event_log.flags & FETCHERS:
        fetch = logged_fetch(session, fetch)
    if server.settings.detail_enabled:
        fetch = server.prefix_stats.recording_fetch(fetch)
    return fetch
