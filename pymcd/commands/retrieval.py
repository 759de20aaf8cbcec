"""get, gets, gat, gats (and the ancient bget): the hot path of every cache."""

from __future__ import annotations

from typing import List, Optional

from pymcd.commands.base import (
    BAD_FORMAT, END, INVALID_EXPTIME, KEY_MAX_LENGTH, TextCommand, observed_fetch,
)
from pymcd.event_log import FETCHERS
from pymcd.c_numbers import parse_i32

# pymcd copies values out of its pages into the reply, so unlike memcached (which points at
# its items) a multi-get's reply costs its size in memory: one get may return at most this
# much, past it the client gets memcached's out-of-memory answer instead.
MULTIGET_REPLY_LIMIT = 64 * 1024 * 1024
GET_OUT_OF_MEMORY = b"SERVER_ERROR out of memory writing get response\r\n"
# A hit's lines, for get/gat and (with the CAS unique) gets/gats; the one-key path's END included.
VALUE = b"VALUE %s %d %d\r\n%s\r\n"
VALUE_WITH_CAS = b"VALUE %s %d %d %d\r\n%s\r\n"
VALUE_AND_END = VALUE + END
VALUE_WITH_CAS_AND_END = VALUE_WITH_CAS + END


class Retrieve(TextCommand):
    """Fetch one or many keys; ``with_cas`` adds the CAS unique, ``touch`` makes it gat/gats."""

    arity = (2, None)
    writes_at_once = True

    def __init__(self, names: tuple, with_cas: bool, touch: bool) -> None:
        self.names = names
        self.with_cas = with_cas
        self.touch = touch

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        store = session.store
        server = session.server
        observed = server.event_log.flags & FETCHERS or server.settings.detail_enabled
        if (len(tokens) == 2 and not observed and not self.touch and server.verbose <= 1
                and len(tokens[1]) <= KEY_MAX_LENGTH):
            self._get_one_unobserved(session, store, tokens[1])
            return
        if self.touch:
            exptime = parse_i32(tokens[1])
            if exptime is None:
                session.reply(INVALID_EXPTIME)
                return
            keys = tokens[2:]
        else:
            keys = tokens[1:]
        fetch = (lambda key: store.gat(key, exptime)) if self.touch else store.get
        if observed:
            fetch = observed_fetch(session, fetch)
        out = session.out
        verbose = server.verbose
        size = 0
        for key in keys:
            if len(key) > KEY_MAX_LENGTH:
                # memcached kills every response stacked since the last write, not only this
                # command's: pipelined replies before a bad multi-get are lost with it.
                del out[session.flushed:]
                session.reply(BAD_FORMAT)
                return
            hit = fetch(key)
            if verbose > 1:
                self._trace_key(session, key, hit is not None)
            if hit is not None:
                flags, data, cas = hit
                size += len(data)
                if size > MULTIGET_REPLY_LIMIT:
                    self._reply_too_large(session)
                    return
                if self.with_cas:
                    out.append(VALUE_WITH_CAS % (key, flags, len(data), cas, data))
                else:
                    out.append(VALUE % (key, flags, len(data), data))
        session.reply_bytes += size
        if verbose > 1:
            server.trace(">%d END" % session.conn_id)
        out.append(END)
        session.flushed = len(out)

    def _get_one_unobserved(self, session, store, key: bytes) -> None:
        """The one-key get of nearly every client, with nobody tracing or watching it: the
        reply, END included, formatted as one string. The loop in ``execute`` builds the same
        bytes for any number of keys; this path costs less per request (bench/throughput.py
        --twins against the loop alone, memaslap's 90/10 mix, 12 pairs: 1.03x the ops/s, 95%
        interval 1.024-1.036)."""
        hit = store.get(key)
        out = session.out
        if hit is None:
            out.append(END)
        else:
            flags, data, cas = hit
            if len(data) > MULTIGET_REPLY_LIMIT:
                self._reply_too_large(session)
                return
            if self.with_cas:
                out.append(VALUE_WITH_CAS_AND_END % (key, flags, len(data), cas, data))
            else:
                out.append(VALUE_AND_END % (key, flags, len(data), data))
            session.reply_bytes += len(data)
        session.flushed = len(out)

    def _reply_too_large(self, session) -> None:
        """The values would pass MULTIGET_REPLY_LIMIT: counted and answered as memcached's
        multi-get that runs out of response objects."""
        session.server.stats.response_obj_oom += 1
        self.out_of_responses(session)

    def responses(self, tokens: List[bytes]) -> int:
        return max(1, len(tokens) - (2 if self.touch else 1))

    def out_of_responses(self, session) -> None:
        """memcached's answer when a multi-get runs out of response objects (here also when
        its values would pass MULTIGET_REPLY_LIMIT): the responses stacked so far are dropped."""
        del session.out[session.flushed:]
        session.error(GET_OUT_OF_MEMORY)

    @staticmethod
    def _trace_key(session, key: bytes, found: bool) -> None:
        """memcached's -vvv lookup line and -vv ``sending key`` line for one key."""
        server = session.server
        text = key.decode("latin-1")
        if server.verbose > 2:
            server.trace(("> FOUND KEY %s" if found else "> NOT FOUND %s") % text)
        if found:
            server.trace(">%d sending key %s" % (session.conn_id, text))


GET = Retrieve((b"get", b"bget"), with_cas=False, touch=False)
GETS = Retrieve((b"gets",), with_cas=True, touch=False)
GAT = Retrieve((b"gat",), with_cas=False, touch=True)
GATS = Retrieve((b"gats",), with_cas=True, touch=True)
