"""``watch [fetchers|mutations|evictions|connevents|sysevents|rawcmds|proxy*]...``.

The connection stops being a request/reply connection: after ``OK`` it only receives event
lines (see :mod:`pymcd.event_log`) until it disconnects. As memcached takes a watcher's socket
away from its worker, anything the client sends afterwards, even later in the same read, is
ignored.
"""

from __future__ import annotations

import sys
from typing import List, Optional

from pymcd.commands.base import ERROR, OK, TextCommand, replies_still_queued, wants_noreply
from pymcd.event_log import FETCHERS, WATCH_FLAGS

WATCH_NOT_ALLOWED = b"CLIENT_ERROR watch commands not allowed\r\n"
PIPELINED = b"ERROR cannot pipeline other commands before watch\r\n"
TOO_MANY = b"WATCHER_TOO_MANY log watcher limit reached\r\n"


class Watch(TextCommand):
    names = (b"watch",)

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        wants_noreply(session, tokens)
        server = session.server
        if not server.settings.watch_enabled:
            session.reply(WATCH_NOT_ALLOWED)
            return
        if replies_still_queued(session):
            session.reply(PIPELINED)
            return
        flags = 0
        for name in tokens[1:]:
            flag = WATCH_FLAGS.get(name)
            if flag is None:
                session.reply(ERROR)
                return
            flags |= flag
        watcher = server.event_log.add_watcher(flags or FETCHERS)
        if watcher is None:
            session.reply(TOO_MANY)
            return
        session.reply(OK)
        # The OK is written at once, though all input is swallowed from now on.
        session.flushed = len(session.out)
        session.watcher = watcher
        session.state = "conn_watch"
        # Whatever the client sends from now on is read and dropped.
        session.swallow(sys.maxsize)


WATCH = Watch()
