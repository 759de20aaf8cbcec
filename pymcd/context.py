"""What every connection shares: settings, the store, the command table, counters and sessions.

It is the object commands reach through ``session.server``. It holds no sockets and no reactor,
so protocol machines and commands can be driven by tests without Twisted's networking; the
Twisted layer plugs in the few actions that need the reactor (shutdown) as callables.
"""

from __future__ import annotations

import itertools
from typing import Callable, Dict, List, Optional, Set

from pymcd.auth.authfile import AuthTable
from pymcd.commands.registry import CommandRegistry
from pymcd.logger import emit_trace
from pymcd.prefix_stats import PrefixStats
from pymcd.session import Session
from pymcd.settings import Settings, settings_stats
from pymcd.stats import ServerStats, Stat, merge_in_order
from pymcd.store import Store
from pymcd.event_log import EventLog

# memcached's read buffers and response-object bundles are 16 KiB each, and a bundle holds 13
# response objects (each with its 1 KiB write buffer): measured on 1.6.18, a get of 14 keys
# fails at -t 32, of 40 at -t 16 and of 92 at -t 8 under read_buf_mem_limit=1.
READ_BUFFER_SIZE = 16384
RESPONSES_PER_BUNDLE = 13


def reserved_descriptors(threads: int, stream_listeners: int, datagram_listeners: int) -> int:
    """Descriptors memcached 1.6.18 counts against -c besides its clients: 7 of its own, 4 per
    worker thread, each listening socket, and a UDP socket's copy in every thread. Measured:
    ``-c 40 -l 127.0.0.1 -U 0`` admits 28 clients at -t 1, 24 at -t 2, 16 at -t 4, and 12 at
    -t 4 with UDP on; without -l (two sockets) 15."""
    return 7 + 4 * threads + stream_listeners + datagram_listeners * threads


def response_limit(settings: Settings) -> int:
    """How many responses a connection may stack between writes under ``-o
    read_buf_mem_limit`` (0: no limit, memcached's default).

    memcached splits the limit (in MiB) between its worker threads, in 16 KiB buffers that
    serve both as a connection's read buffer and as bundles of response objects; pymcd keeps
    one buffer for reading and gives the rest to responses, as a busy connection finds them.
    """
    if not settings.read_buf_mem_limit:
        return 0
    per_thread = settings.read_buf_mem_limit * 1024 * 1024 // max(1, settings.num_threads)
    buffers = max(1, per_thread // READ_BUFFER_SIZE)
    return max(1, (buffers - 1) * RESPONSES_PER_BUNDLE)


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
        # stats detail; commands record into it while settings.detail_enabled.
        self.prefix_stats = PrefixStats(settings.prefix_delimiter, settings.hash_algorithm)
        self.verbose = settings.verbose
        self.sessions: Dict[int, Session] = {}
        self._conn_ids = itertools.count(1)
        self._client_ids: Set[int] = set()
        self.request_shutdown: Callable[[bool], None] = lambda graceful: None
        self.trace = emit_trace
        self.tls = None  # the ServerTLSContext when -Z is on
        self.event_log = EventLog(store, settings.watcher_logbuf_size)
        # -Y's users; SIGHUP reloads them (see pymcd.server.assembly).
        self.auth_table = AuthTable(settings.auth_file) if settings.auth_file else None
        self.response_limit = response_limit(settings)
        # Set by the assembly once it knows its listeners.
        self.reserved = reserved_descriptors(settings.num_threads, 1, 0)

    def next_conn_id(self) -> int:
        """A new id in the sequence connections get (memcached's fds for listeners and clients)."""
        return next(self._conn_ids)

    def open_session(self, counted: bool = True, **kwargs) -> Session:
        """Register a new connection; ``counted`` ones are clients in the connection stats."""
        session = Session(self, self.next_conn_id(), **kwargs)
        session.last_cmd_time = self.store.now
        self.sessions[session.conn_id] = session
        if counted:
            self._client_ids.add(session.conn_id)
            stats = self.stats
            stats.curr_connections += 1
            stats.total_connections += 1
            stats.connection_structures = max(stats.connection_structures, stats.curr_connections)
        return session

    def open_listener(self, udp: bool = False) -> Session:
        """A listening socket's connection, as memcached lists it in ``stats conns`` (its
        address is filled in once bound); a UDP socket is one connection serving every peer."""
        session = self.open_session(counted=False, udp=udp)
        session.state = "conn_read" if udp else "conn_listening"
        return session

    def close_session(self, session: Session) -> None:
        self.sessions.pop(session.conn_id, None)
        if session.watcher is not None:
            session.watcher.close()
        if session.conn_id in self._client_ids:
            self._client_ids.discard(session.conn_id)
            self.stats.curr_connections -= 1

    def accepting(self) -> bool:
        """Room for one more client under -c, reserving descriptors as memcached does (see
        reserved_descriptors: ``-c 1024`` admits 1000 clients at -t 4), so that capacity
        planning carries over."""
        limit = max(1, self.settings.maxconns - self.reserved)
        return self.stats.curr_connections < limit

    def connection_stats(self, asking: Session) -> List[Stat]:
        """``stats conns``: one block per connection, as memcached lists its fds.

        The asking connection is the one parsing a command right now.
        """
        now = self.store.now
        lines: List[Stat] = []
        for conn_id, session in sorted(self.sessions.items()):
            if session.udp:
                lines.append(("%d:UDP" % conn_id, "UDP"))
            lines.append(("%d:addr" % conn_id, session.peer))
            if session.listen_address:
                lines.append(("%d:listen_addr" % conn_id, session.listen_address))
            state = "conn_parse_cmd" if session is asking else session.state
            lines.append(("%d:state" % conn_id, state))
            lines.append(("%d:secs_since_last_cmd" % conn_id, now - session.last_cmd_time))
        return lines

    def set_verbosity(self, level: int) -> None:
        self.verbose = self.settings.verbose = self.settings.clamp_verbosity(level)

    def general_stats(self) -> List[Stat]:
        """Plain ``stats``: the server's lines and the store's, merged in memcached's order."""
        settings = self.settings
        sources = [
            self.stats.general(settings.maxconns, settings.num_threads, settings.idle_timeout,
                               settings.maxconns_fast),
            self.store.general_stats(),
        ]
        if self.tls is not None:
            sources.append(self.stats.tls(settings.ssl_session_cache, self.tls.loaded_at))
        sources.append(self.event_log.stats())
        return merge_in_order(sources)

    def settings_stats(self) -> List[Stat]:
        return settings_stats(self.settings, self.store.oldest_live)

    def reset_stats(self) -> None:
        self.stats.reset()
        self.prefix_stats.clear()
        self.store.reset_counters()
        self.event_log.reset_stats()
