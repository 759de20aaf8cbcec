"""Every run-time setting of the server, named and defaulted as memcached 1.6.18 names them.

One object holds them so that the twistd plugin, the memcached-flag ``pymcd`` script and the
``stats settings`` command agree; the store's part is handed to the store as a
:class:`pymcd.store.StoreSettings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from pymcd.store import StoreSettings

MAX_VERBOSITY_LEVEL = 2
PAGE_SIZE = 1024 * 1024


@dataclass
class Settings:
    """Server settings (memcached's ``struct settings``, minus what a Python server has no use for)."""

    ports: List[str] = field(default_factory=list)  # Twisted endpoint strings for stream listeners
    tcp_port: int = 11211
    tcp_port_given: bool = False
    slab_chunk_max_given: bool = False  # -o slab_chunk_max was on the command line
    udp_port: int = 0
    interface: Optional[str] = None
    unix_socket: Optional[str] = None
    unix_mask: int = 0o700
    maxconns: int = 1024
    maxconns_fast: bool = True
    verbose: int = 0
    num_threads: int = 4
    reqs_per_event: int = 20
    backlog: int = 1024
    binding_protocol: str = "auto"  # auto | ascii | binary
    shutdown_command: bool = False
    sasl: bool = False
    sasl_password_file: Optional[str] = None
    http_endpoint: Optional[str] = None  # --http: the web site (/metrics, dashboard)
    stock_reactor: bool = False  # the pymcd script: Twisted's epoll reactor instead of pymcd's lean one
    auth_file: Optional[str] = None
    watch_enabled: bool = True
    flush_enabled: bool = True
    idle_timeout: int = 0
    proxy_config: Optional[str] = None  # --proxy-config: run as a proxy (pymcd.proxy)
    tail_repair_time: int = 0
    hash_algorithm: str = "murmur3"
    prefix_delimiter: str = ":"
    detail_enabled: bool = False
    watcher_logbuf_size: int = 256 * 1024
    worker_logbuf_size: int = 64 * 1024
    read_buf_mem_limit: int = 0
    pidfile: Optional[str] = None
    port_file: Optional[str] = None  # MEMCACHED_PORT_FILENAME (see pymcd.environment)
    daemonize: bool = False
    core_dumps: bool = False  # -r: a daemon keeps its working directory
    user: Optional[str] = None
    memory_file: Optional[str] = None
    napi_ids: int = 0
    ssl_enabled: bool = False
    ssl_chain_cert: Optional[str] = None
    ssl_key: Optional[str] = None
    ssl_verify_mode: int = 0
    ssl_keyformat: int = 1
    ssl_ciphers: Optional[str] = None
    ssl_ca_cert: Optional[str] = None
    ssl_wbuf_size: int = 16 * 1024
    ssl_session_cache: bool = False
    ssl_min_version: str = "tlsv1.2"
    store: StoreSettings = field(default_factory=StoreSettings)

    def clamp_verbosity(self, level: int) -> int:
        """memcached caps verbosity at 2 internally (the `verbosity` command and -vvv alike)."""
        return level if level <= MAX_VERBOSITY_LEVEL else MAX_VERBOSITY_LEVEL


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _or_null(value: Optional[str], null: str = "NULL") -> str:
    return value if value else null


# Debian's memcached is built with extstore and reports its defaults; pymcd has no extstore.
EXTSTORE_DEFAULTS: List[Tuple[str, object]] = [
    ("ext_item_size", 512), ("ext_item_age", 4294967295), ("ext_low_ttl", 0),
    ("ext_recache_rate", 2000), ("ext_wbuf_size", 4194304), ("ext_compact_under", 0),
    ("ext_drop_under", 0), ("ext_max_sleep", 1000000), ("ext_max_frag", "0.80"),
]


def settings_stats(settings: Settings, oldest_live: int) -> List[Tuple[str, object]]:
    """The lines of ``stats settings`` in memcached 1.6.18's order and formats."""
    s, st = settings, settings.store
    protocol_names = {"auto": "auto-negotiate", "ascii": "ascii", "binary": "binary"}
    return [
        ("maxbytes", st.memory_limit),
        ("maxconns", s.maxconns),
        ("tcpport", s.tcp_port),
        ("udpport", s.udp_port),
        ("inter", _or_null(s.interface)),
        ("verbosity", s.verbose),
        ("oldest", oldest_live),
        ("evictions", "on" if st.evict_to_free else "off"),
        ("domain_socket", _or_null(s.unix_socket)),
        ("umask", "%o" % s.unix_mask),
        ("shutdown_command", _yes_no(s.shutdown_command)),
        ("growth_factor", "%.2f" % st.growth_factor),
        ("chunk_size", st.chunk_size),
        ("num_threads", s.num_threads),
        ("num_threads_per_udp", s.num_threads),
        ("stat_key_prefix", s.prefix_delimiter),
        ("detail_enabled", _yes_no(s.detail_enabled)),
        ("reqs_per_event", s.reqs_per_event),
        ("cas_enabled", _yes_no(st.use_cas)),
        ("tcp_backlog", s.backlog),
        ("binding_protocol", protocol_names[s.binding_protocol]),
        ("auth_enabled_sasl", _yes_no(s.sasl)),
        ("auth_enabled_ascii", s.auth_file if s.auth_file else "no"),
        ("item_size_max", st.item_size_max),
        ("maxconns_fast", _yes_no(s.maxconns_fast)),
        ("hashpower_init", s.store.hashpower_init),
        ("slab_reassign", _yes_no(st.slab_reassign)),
        ("slab_automove", st.slab_automove),
        ("slab_automove_ratio", "%.2f" % st.slab_automove_ratio),
        ("slab_automove_window", st.slab_automove_window),
        ("slab_chunk_max", st.slab_chunk_max),
        ("lru_crawler", _yes_no(st.lru_crawler)),
        ("lru_crawler_sleep", st.lru_crawler_sleep),
        ("lru_crawler_tocrawl", st.lru_crawler_tocrawl),
        ("tail_repair_time", s.tail_repair_time),
        ("flush_enabled", _yes_no(s.flush_enabled)),
        ("dump_enabled", _yes_no(st.dump_enabled)),
        ("hash_algorithm", s.hash_algorithm),
        ("lru_maintainer_thread", _yes_no(st.lru_maintainer)),
        ("lru_segmented", _yes_no(st.lru_segmented)),
        ("hot_lru_pct", st.hot_lru_pct),
        ("warm_lru_pct", st.warm_lru_pct),
        ("hot_max_factor", "%.2f" % st.hot_max_factor),
        ("warm_max_factor", "%.2f" % st.warm_max_factor),
        ("temp_lru", _yes_no(st.temp_lru)),
        ("temporary_ttl", st.temporary_ttl),
        ("idle_timeout", s.idle_timeout),
        ("watcher_logbuf_size", s.watcher_logbuf_size),
        ("worker_logbuf_size", s.worker_logbuf_size),
        ("read_buf_mem_limit", s.read_buf_mem_limit),
        ("track_sizes", _yes_no(st.track_sizes)),
        ("inline_ascii_response", "no"),
    ] + EXTSTORE_DEFAULTS + [
        ("slab_automove_freeratio", "%.3f" % st.slab_automove_freeratio),
        ("ext_drop_unread", "no"),
        ("ssl_enabled", _yes_no(s.ssl_enabled)),
        ("ssl_chain_cert", _or_null(s.ssl_chain_cert, "(null)")),
        ("ssl_key", _or_null(s.ssl_key, "(null)")),
        ("ssl_verify_mode", s.ssl_verify_mode),
        ("ssl_keyformat", s.ssl_keyformat),
        ("ssl_ciphers", _or_null(s.ssl_ciphers)),
        ("ssl_ca_cert", _or_null(s.ssl_ca_cert)),
        ("ssl_wbuf_size", s.ssl_wbuf_size),
        ("ssl_session_cache", _yes_no(s.ssl_session_cache)),
        ("ssl_kernel_tls", "no"),
        ("ssl_min_version", s.ssl_min_version),
        ("num_napi_ids", "(null)"),
        ("memory_file", _or_null(s.memory_file, "(null)")),
    ]
