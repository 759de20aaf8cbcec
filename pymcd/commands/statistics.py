"""``stats`` and its sub-statistics."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from pymcd.commands.base import BAD_FORMAT, ERROR, TextCommand
from pymcd.c_numbers import parse_u32
from pymcd.stats import Stat, render_stats

DETAIL_USAGE = b"CLIENT_ERROR usage: stats detail on|off|dump\r\n"
CACHEDUMP_NOT_ALLOWED = b"CLIENT_ERROR stats cachedump not allowed\r\n"
MAX_CLASS_ID = 64


# ``stats <section>``'s key/values for the sub-statistics both protocols serve: one source for
# the text and binary STAT commands.
SECTIONS: Dict[bytes, Callable[[Any], List[Stat]]] = {
    b"settings": lambda server: server.settings_stats(),
    b"slabs": lambda server: server.store.slabs_stats(),
    b"items": lambda server: server.store.items_stats(),
    b"sizes": lambda server: server.store.sizes_stats(),
    b"sizes_enable": lambda server: server.store.enable_size_tracking(),
    b"sizes_disable": lambda server: server.store.disable_size_tracking(),
}
# memcached 1.6.18 answers these without the closing END.
UNTERMINATED_SECTIONS = (b"sizes_enable", b"sizes_disable")


class Stats(TextCommand):
    """``stats [reset|settings|slabs|items|sizes|conns|detail ...]``."""

    names = (b"stats",)
    writes_at_once = True

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        server = session.server
        if len(tokens) == 1:
            session.out.append(render_stats(server.general_stats()))
            return
        section = tokens[1]
        if section == b"reset":
            server.reset_stats()
            session.reply(b"RESET\r\n")
        elif section == b"detail":
            self._detail(session, tokens[2] if len(tokens) > 2 else b"")
        elif section in SECTIONS:
            session.out.append(render_stats(SECTIONS[section](server),
                                            end=section not in UNTERMINATED_SECTIONS))
        elif section == b"conns":
            session.out.append(render_stats(server.connection_stats(session)))
        elif section == b"cachedump":
            self._cachedump(session, tokens)
        else:
            session.reply(ERROR)

    @staticmethod
    def _cachedump(session, tokens: List[bytes]) -> None:
        """``stats cachedump <class> <limit>``: keys at the head of a class's COLD LRU."""
        store = session.store
        if not store.settings.dump_enabled:
            session.reply(CACHEDUMP_NOT_ALLOWED)
            return
        if len(tokens) < 4:
            session.reply(b"CLIENT_ERROR bad command line\r\n")
            return
        clsid, limit = parse_u32(tokens[2]), parse_u32(tokens[3])
        if clsid is None or limit is None:
            session.reply(BAD_FORMAT)
            return
        if clsid >= MAX_CLASS_ID:
            session.reply(b"CLIENT_ERROR Illegal slab id\r\n")
            return
        lines = [
            b"ITEM %s [%d b; %d s]\r\n" % (view.key, view.nbytes, view.exptime and view.exptime + int(store.process_started))
            for view in store.cold_items(clsid, limit)
        ]
        lines.append(b"END\r\n")
        session.out.append(b"".join(lines))

    @staticmethod
    def _detail(session, mode: bytes) -> None:
        server = session.server
        if mode in (b"on", b"off"):
            server.settings.detail_enabled = mode == b"on"
            session.reply(b"OK\r\n")
        elif mode == b"dump":
            # Written as it is, without a -vv line (memcached's write_and_free).
            session.out.append(server.prefix_stats.dump())
        else:
            session.reply(DETAIL_USAGE)


STATS = Stats()
