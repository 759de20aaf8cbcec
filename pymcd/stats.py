"""Server-side counters and the rendering of ``STAT`` blocks.

The store counts what happens to items; this module counts what happens to connections and bytes,
and merges both into memcached's order so that tools which parse ``stats`` positionally (or diff
it against a real memcached) see the same layout.
"""

from __future__ import annotations

import os
import resource
import time
from typing import Dict, Iterable, List, Tuple

from pymcd import MEMCACHED_VERSION

# memcached 1.6.18's `stats` order. Names a source provides that are not listed here follow at the
# end, in the order given; names listed here that nobody provides are left out.
GENERAL_STATS_ORDER = """
pid uptime time version libevent pointer_size rusage_user rusage_system max_connections
curr_connections total_connections rejected_connections connection_structures response_obj_oom
response_obj_count response_obj_bytes read_buf_count read_buf_bytes read_buf_bytes_free
read_buf_oom reserved_fds cmd_get cmd_set cmd_flush cmd_touch cmd_meta get_hits get_misses
get_expired get_flushed delete_misses delete_hits incr_misses incr_hits decr_misses decr_hits
cas_misses cas_hits cas_badval touch_hits touch_misses store_too_large store_no_memory auth_cmds
auth_errors idle_kicks bytes_read bytes_written limit_maxbytes accepting_conns listen_disabled_num
time_in_listen_disabled_us threads conn_yields hash_power_level hash_bytes hash_is_expanding
slab_reassign_rescues slab_reassign_chunk_rescues slab_reassign_evictions_nomem
slab_reassign_inline_reclaim slab_reassign_busy_items slab_reassign_busy_deletes
slab_reassign_running slabs_moved lru_crawler_running lru_crawler_starts lru_maintainer_juggles
malloc_fails log_worker_dropped log_worker_written log_watcher_skipped log_watcher_sent
log_watchers ssl_new_sessions ssl_handshake_errors time_since_server_cert_refresh
unexpected_napi_ids round_robin_fallback bytes curr_items total_items slab_global_page_pool
expired_unfetched evicted_unfetched evicted_active evictions reclaimed crawler_reclaimed
crawler_items_checked lrutail_reflocked moves_to_cold moves_to_warm moves_within_lru
direct_reclaims lru_bumps_dropped
""".split()

_ORDER_INDEX = {name: i for i, name in enumerate(GENERAL_STATS_ORDER)}

Stat = Tuple[str, object]


class ServerStats:
    """Counters of the network side (memcached's ``stats``/``stats_state`` minus the store's)."""

    def __init__(self, clock=time.time) -> None:
        self._clock = clock
        self.started = clock()
        self.reset()
        self.curr_connections = 0
        self.connection_structures = 0
        self.accepting_conns = 1
        # Not a memcached stat (only /metrics shows it): reads paused because a client's
        # unsent replies passed the output bound.
        self.backpressure_pauses = 0

    def reset(self) -> None:
        """``stats reset``: zero the counters that memcached zeroes (not gauges)."""
        self.total_connections = 0
        self.rejected_connections = 0
        self.bytes_read = 0
        self.bytes_written = 0
        self.cmd_flush = 0
        self.cmd_meta = 0
        self.auth_cmds = 0
        self.auth_errors = 0
        self.idle_kicks = 0
        self.conn_yields = 0
        self.response_obj_oom = 0
        self.listen_disabled_num = 0
        self.ssl_handshake_errors = 0
        self.ssl_new_sessions = 0
        self.read_buf_oom = 0

    def uptime(self) -> int:
        return int(self._clock() - self.started)

    def tls(self, session_cache: bool, certs_loaded_at: float) -> List[Stat]:
        """The lines memcached adds to ``stats`` when TLS is on (new sessions only counted,
        and shown, with ``-o ssl_session_cache``)."""
        sessions = [("ssl_new_sessions", self.ssl_new_sessions)] if session_cache else []
        return sessions + [
            ("ssl_handshake_errors", self.ssl_handshake_errors),
            ("time_since_server_cert_refresh", int(self._clock() - certs_loaded_at)),
        ]

    def general(self, max_connections: int, threads: int, idle_timeout: int = 0,
                maxconns_fast: bool = True) -> List[Stat]:
        """memcached's own lines of ``stats``, every one of them (tools count and parse them).

        pymcd has no pools of response objects or read buffers, nor NAPI ids or worker threads
        to fall back from: those lines report that (zero), memcached's OOM counters aside.
        """
        usage = resource.getrusage(resource.RUSAGE_SELF)
        optional = [("idle_kicks", self.idle_kicks)] if idle_timeout else []
        if maxconns_fast:
            optional.append(("rejected_connections", self.rejected_connections))
        return optional + [
            ("pid", os.getpid()),
            ("uptime", self.uptime()),
            ("time", int(self._clock())),
            ("version", MEMCACHED_VERSION),
            ("libevent", "twisted"),
            ("pointer_size", 64),
            ("rusage_user", "%.6f" % usage.ru_utime),
            ("rusage_system", "%.6f" % usage.ru_stime),
            ("max_connections", max_connections),
            ("curr_connections", self.curr_connections),
            ("total_connections", self.total_connections),
            ("connection_structures", self.connection_structures),
            ("response_obj_oom", self.response_obj_oom),
            ("response_obj_count", 0),
            ("response_obj_bytes", 0),
            ("read_buf_count", 0),
            ("read_buf_bytes", 0),
            ("read_buf_bytes_free", 0),
            ("read_buf_oom", self.read_buf_oom),
            ("reserved_fds", 20),
            ("cmd_flush", self.cmd_flush),
            ("cmd_meta", self.cmd_meta),
            ("auth_cmds", self.auth_cmds),
            ("auth_errors", self.auth_errors),
            ("bytes_read", self.bytes_read),
            ("bytes_written", self.bytes_written),
            ("accepting_conns", self.accepting_conns),
            ("listen_disabled_num", self.listen_disabled_num),
            ("time_in_listen_disabled_us", 0),
            ("threads", threads),
            ("conn_yields", self.conn_yields),
            ("unexpected_napi_ids", 0),
            ("round_robin_fallback", 0),
        ]


def merge_in_order(sources: Iterable[Iterable[Stat]], order: Dict[str, int] = _ORDER_INDEX) -> List[Stat]:
    """Merge stat lists from several owners into memcached's order (unknown names last)."""
    merged: Dict[str, object] = {}
    for source in sources:
        for name, value in source:
            merged[name] = value
    tail = len(order)
    ranked = sorted(
        enumerate(merged.items()), key=lambda pair: (order.get(pair[1][0], tail), pair[0])
    )
    return [item for _, item in ranked]


def render_stats(stats: Iterable[Stat], end: bool = True) -> bytes:
    """``STAT name value`` lines closed by ``END``, as the text protocol sends them (memcached
    leaves the ``END`` out of a few replies)."""
    lines = [b"STAT %s %s\r\n" % (name.encode(), str(value).encode()) for name, value in stats]
    if end:
        lines.append(b"END\r\n")
    return b"".join(lines)
