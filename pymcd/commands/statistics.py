"""``stats`` and its sub-statistics."""

from __future__ import annotations

from typing import List, Optional

from pymcd.commands.base import ERROR, TextCommand
from pymcd.stats import render_stats

DETAIL_USAGE = b"CLIENT_ERROR usage: stats detail on|off|dump\r\n"
CACHEDUMP_NOT_ALLOWED = b"CLIENT_ERROR stats cachedump not allowed\r\n"


class Stats(TextCommand):
    """``stats [reset|settings|slabs|items|sizes|conns|detail ...]``."""

    names = (b"stats",)
    writes_at_once = True

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        server = session.server
        store = session.store
        if len(tokens) == 1:
            session.out.append(render_stats(server.general_stats()))
            return
        section = tokens[1]
        if section == b"reset":
            server.reset_stats()
            session.reply(b"RESET\r\n")
        elif section == b"detail":
            self._detail(session, tokens[2] if len(tokens) > 2 else b"")
        elif section == b"settings":
            session.out.append(render_stats(server.settings_stats()))
        elif section == b"slabs":
            session.out.append(render_stats(store.slabs_stats()))
        elif section == b"items":
            session.out.append(render_stats(store.items_stats()))
        elif section == b"sizes":
            session.out.append(render_stats(store.sizes_stats()))
        elif section == b"conns":
            session.out.append(render_stats(server.connection_stats(session)))
        elif section == b"cachedump" and not store.settings.dump_enabled:
            session.reply(CACHEDUMP_NOT_ALLOWED)
        else:
            session.reply(ERROR)

    @staticmethod
    def _detail(session, mode: bytes) -> None:
        settings = session.server.settings
        if mode in (b"on", b"off"):
            settings.detail_enabled = mode == b"on"
            session.reply(b"OK\r\n")
        elif mode == b"dump":
            session.out.append(b"END\r\n")
        else:
            session.reply(DETAIL_USAGE)


STATS = Stats()
