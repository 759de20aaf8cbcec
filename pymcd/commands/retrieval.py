"""get, gets, gat, gats (and the ancient bget): the hot path of every cache."""

from __future__ import annotations

from typing import List, Optional

from pymcd.commands.base import BAD_FORMAT, END, INVALID_EXPTIME, KEY_MAX_LENGTH, TextCommand
from pymcd.protocol.numbers import parse_i32


class Retrieve(TextCommand):
    """Fetch one or many keys; ``with_cas`` adds the CAS unique, ``touch`` makes it gat/gats."""

    arity = (2, None)
    writes_at_once = True

    def __init__(self, names: tuple, with_cas: bool, touch: bool) -> None:
        self.names = names
        self.with_cas = with_cas
        self.touch = touch

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        out = session.out
        store = session.store
        verbose = session.server.verbose
        if self.touch:
            exptime = parse_i32(tokens[1])
            if exptime is None:
                session.reply(INVALID_EXPTIME)
                return
            keys = tokens[2:]
        else:
            keys = tokens[1:]
        with_cas = self.with_cas
        replies = []
        for key in keys:
            if len(key) > KEY_MAX_LENGTH:
                session.reply(BAD_FORMAT)
                return
            hit = store.gat(key, exptime) if self.touch else store.get(key)
            if verbose > 2:
                session.server.trace(
                    ("> FOUND KEY %s" if hit else "> NOT FOUND %s") % key.decode("latin-1")
                )
            if hit is not None:
                flags, data, cas = hit
                if with_cas:
                    replies.append(b"VALUE %s %d %d %d\r\n%s\r\n" % (key, flags, len(data), cas, data))
                else:
                    replies.append(b"VALUE %s %d %d\r\n%s\r\n" % (key, flags, len(data), data))
                if verbose > 1:
                    session.server.trace(">%d sending key %s" % (session.conn_id, key.decode("latin-1")))
        if verbose > 1:
            session.server.trace(">%d END" % session.conn_id)
        out.extend(replies)
        out.append(END)


GET = Retrieve((b"get", b"bget"), with_cas=False, touch=False)
GETS = Retrieve((b"gets",), with_cas=True, touch=False)
GAT = Retrieve((b"gat",), with_cas=False, touch=True)
GATS = Retrieve((b"gats",), with_cas=True, touch=True)
