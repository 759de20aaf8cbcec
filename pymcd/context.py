"""What every connection shares: settings, the store, the command table, counters and sessions.

It is the object commands reach through ``session.server``. It holds no sockets and no reactor,
so protocol machines and commands can be driven by tests without Twisted's networking; the
Twisted layer plugs in the few actions that need the reactor (shutdown) as callables.
"""

from __future__ import annotations

import itertools
from typing import Callable, Dict, List, Optional

from pymcd.commands.registry import CommandRegistry
from pymcd.logger import emit_trace
from pymcd.session import Session
from pymcd.settings import Settings, settings_stats
from pymcd.stats import ServerStats, Stat, merge_in_order
from pymcd.store import Store


class ServerContext:
    """Shared server state, one per running server."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        commands: Optional[CommandRegistry] = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.commands = commands if commands is not None else CommandRegistry.discover()
        self.stats = ServerStats()
        self.verbose = settings.verbose
        self.sessions: Dict[int, Session] = {}
        self._conn_ids = itertools.count(1)
        self.request_shutdown: Callable[[bool], None] = lambda graceful: None
        self.trace = emit_trace

    def open_session(self, **kwargs) -> Session:
        """Register a new connection (counts it as memcached counts accepted connections)."""
        session = Session(self, next(self._conn_ids), **kwargs)
        self.sessions[session.conn_id] = session
        stats = self.stats
        stats.curr_connections += 1
        stats.total_connections += 1
        stats.connection_structures = max(stats.connection_structures, stats.curr_connections)
        return session

    def close_session(self, session: Session) -> None:
        if self.sessions.pop(session.conn_id, None) is not None:
            self.stats.curr_connections -= 1

    def set_verbosity(self, level: int) -> None:
        self.verbose = self.settings.verbose = self.settings.clamp_verbosity(level)

    def general_stats(self) -> List[Stat]:
        """Plain ``stats``: the server's lines and the store's, merged in memcached's order."""
        settings = self.settings
        return merge_in_order(
            [
                self.stats.general(settings.maxconns, settings.num_threads),
                self.store.general_stats(),
            ]
        )

    def settings_stats(self) -> List[Stat]:
        return settings_stats(self.settings, dict(self.store.settings_stats()).get("oldest", 0))

    def reset_stats(self) -> None:
        self.stats.reset()
        self.store.reset_stats()
