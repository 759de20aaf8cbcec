"""The metric families of Prometheus's ``memcached_exporter``, computed in-process at scrape time.

Dashboards and alert rules written for memcached watched by ``memcached_exporter`` (port 9150)
work unchanged against pymcd's own ``/metrics``: the same names, labels, help texts and the same
derivations (``set`` hits are ``cmd_set`` less the CAS outcomes, ``flush`` is ``cmd_flush``,
``lru_crawler_*`` settings only when the crawler is on, per-class families from ``stats items``
and ``stats slabs``). The values are read from the very functions the ``stats`` commands render,
so ``/metrics`` and ``stats`` cannot disagree, and a scrape costs the request path nothing.

Two departures, both forced by ``prometheus_client``: it appends ``_total`` to every counter, so
the exporter's counters whose names lack it (``memcached_uptime_seconds``,
``memcached_slab_items_moves_*``, ``memcached_slab_items_evicted_time_seconds``) are exposed
untyped under their exact names; and families the exporter emits only for extstore or proxy
mode are left out as it leaves them out for a memcached without them.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterator, List, Optional, Tuple

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    UnknownMetricFamily,
)

NAMESPACE = "memcached"
COMMAND_OPS = ("get", "delete", "incr", "decr", "cas", "touch")

# (metric name without the namespace, kind, help, stats key) for plain ``stats`` lines.
GENERAL = [
    ("uptime_seconds", "untyped", "Number of seconds since the server started.", "uptime"),
    ("time_seconds", "gauge", "current UNIX time according to the server.", "time"),
    ("process_user_cpu_seconds_total", "counter", "Accumulated user time for this process.",
     "rusage_user"),
    ("process_system_cpu_seconds_total", "counter", "Accumulated system time for this process.",
     "rusage_system"),
    ("current_bytes", "gauge", "Current number of bytes used to store items.", "bytes"),
    ("limit_bytes", "gauge", "Number of bytes this server is allowed to use for storage.",
     "limit_maxbytes"),
    ("current_items", "gauge", "Current number of items stored by this instance.", "curr_items"),
    ("items_total", "counter", "Total number of items stored during the life of this instance.",
     "total_items"),
    ("read_bytes_total", "counter", "Total number of bytes read by this server from network.",
     "bytes_read"),
    ("written_bytes_total", "counter", "Total number of bytes sent by this server to network.",
     "bytes_written"),
    ("current_connections", "gauge", "Current number of open connections.", "curr_connections"),
    ("connections_total", "counter",
     "Total number of connections opened since the server started running.",
     "total_connections"),
    ("connections_rejected_total", "counter",
     "Total number of connections rejected due to hitting the memcached's -c limit in "
     "maxconns_fast mode.", "rejected_connections"),
    ("connections_yielded_total", "counter",
     "Total number of connections yielded running due to hitting the memcached's -R limit.",
     "conn_yields"),
    ("connections_listener_disabled_total", "counter",
     "Number of times that memcached has hit its connections limit and disabled its listener.",
     "listen_disabled_num"),
    ("items_evicted_total", "counter",
     "Total number of valid items removed from cache to free memory for new items.",
     "evictions"),
    ("items_reclaimed_total", "counter",
     "Total number of times an entry was stored using memory from an expired entry.",
     "reclaimed"),
    ("item_too_large_total", "counter",
     "The number of times an item exceeded the max-item-size when being stored.",
     "store_too_large"),
    ("item_no_memory_total", "counter",
     "The number of times an item could not be stored due to no more memory.",
     "store_no_memory"),
    ("lru_crawler_starts_total", "counter", "Times an LRU crawler was started.",
     "lru_crawler_starts"),
    ("direct_reclaims_total", "counter",
     "Times worker threads had to directly reclaim or evict items.", "direct_reclaims"),
    ("lru_crawler_items_checked_total", "counter", "Total items examined by LRU Crawler.",
     "crawler_items_checked"),
    ("lru_crawler_reclaimed_total", "counter", "Total items freed by LRU Crawler.",
     "crawler_reclaimed"),
    ("lru_crawler_moves_to_cold_total", "counter",
     "Total number of items moved from HOT/WARM to COLD LRU's.", "moves_to_cold"),
    ("lru_crawler_moves_to_warm_total", "counter",
     "Total number of items moved from COLD to WARM LRU.", "moves_to_warm"),
    ("lru_crawler_moves_within_lru_total", "counter",
     "Total number of items reshuffled within HOT or WARM LRU's.", "moves_within_lru"),
    ("malloced_bytes", "gauge", "Number of bytes of memory allocated to slab pages.",
     "total_malloced"),
    ("accepting_connections", "gauge",
     "The Memcached server is currently accepting new connections.", "accepting_conns"),
]

# ``stats settings`` lines; the lru_crawler_* ones only while the crawler is on, as the exporter.
MAX_CONNECTIONS = ("max_connections", "gauge", "Maximum number of clients allowed.", "maxconns")
LRU_CRAWLER_SETTINGS = [
    ("lru_crawler_enabled", "gauge", "Whether the LRU crawler is enabled.", "lru_crawler"),
    ("lru_crawler_sleep", "gauge", "Microseconds to sleep between LRU crawls.",
     "lru_crawler_sleep"),
    ("lru_crawler_to_crawl", "gauge", "Max items to crawl per slab per run.",
     "lru_crawler_tocrawl"),
    ("lru_crawler_maintainer_thread", "gauge", "Split LRU mode and background threads.",
     "lru_maintainer_thread"),
    ("lru_crawler_hot_percent", "gauge", "Percent of slab memory reserved for HOT LRU.",
     "hot_lru_pct"),
    ("lru_crawler_warm_percent", "gauge", "Percent of slab memory reserved for WARM LRU.",
     "warm_lru_pct"),
    ("lru_crawler_hot_max_factor", "gauge", "Set idle age of HOT LRU to COLD age * this",
     "hot_max_factor"),
    ("lru_crawler_warm_max_factor", "gauge", "Set idle age of WARM LRU to COLD age * this",
     "warm_max_factor"),
]

# ``stats items`` per class (``items:<class>:<key>``), labelled ``slab``.
ITEMS = [
    ("slab_current_items", "gauge", "Number of items currently stored in this slab class.",
     "number"),
    ("slab_items_age_seconds", "gauge",
     "Number of seconds the oldest item has been in the slab class.", "age"),
    ("slab_items_crawler_reclaimed_total", "counter",
     "Number of items freed by the LRU Crawler.", "crawler_reclaimed"),
    ("slab_items_evicted_total", "counter",
     "Total number of times an item had to be evicted from the LRU before it expired.",
     "evicted"),
    ("slab_items_evicted_nonzero_total", "counter",
     "Total number of times an item which had an explicit expire time set had to be evicted "
     "from the LRU before it expired.", "evicted_nonzero"),
    ("slab_items_evicted_time_seconds", "untyped",
     "Seconds since the last access for the most recent item evicted from this class.",
     "evicted_time"),
    ("slab_items_evicted_unfetched_total", "counter",
     "Total nmber of items evicted and never fetched.", "evicted_unfetched"),
    ("slab_items_expired_unfetched_total", "counter",
     "Total number of valid items evicted from the LRU which were never touched after being "
     "set.", "expired_unfetched"),
    ("slab_items_outofmemory_total", "counter",
     "Total number of items for this slab class that have triggered an out of memory error.",
     "outofmemory"),
    ("slab_items_reclaimed_total", "counter", "Total number of items reclaimed.", "reclaimed"),
    ("slab_items_tailrepairs_total", "counter",
     "Total number of times the entries for a particular ID need repairing.", "tailrepairs"),
    ("slab_items_moves_to_cold", "untyped", "Number of items moved from HOT or WARM into COLD.",
     "moves_to_cold"),
    ("slab_items_moves_to_warm", "untyped", "Number of items moves from COLD into WARM.",
     "moves_to_warm"),
    ("slab_items_moves_within_lru", "untyped",
     "Number of times active items were bumped within HOT or WARM.", "moves_within_lru"),
    ("slab_hot_items", "gauge", "Number of items presently stored in the HOT LRU.",
     "number_hot"),
    ("slab_warm_items", "gauge", "Number of items presently stored in the WARM LRU.",
     "number_warm"),
    ("slab_cold_items", "gauge", "Number of items presently stored in the COLD LRU.",
     "number_cold"),
    ("slab_temporary_items", "gauge", "Number of items presently stored in the TEMPORARY LRU.",
     "number_temp"),
    # memcached 1.6 reports it in ``stats items``, no longer in ``stats slabs``.
    ("slab_mem_requested_bytes", "gauge",
     "Number of bytes of memory actual items take up within a slab.", "mem_requested"),
    ("slab_hot_age_seconds", "gauge", "Age of the oldest item in HOT LRU.", "age_hot"),
    ("slab_warm_age_seconds", "gauge", "Age of the oldest item in HOT LRU.", "age_warm"),
]
LRU_HITS = (("hits_to_hot", "hot"), ("hits_to_warm", "warm"), ("hits_to_cold", "cold"),
            ("hits_to_temp", "temporary"))

# ``stats slabs`` per class (``<class>:<key>``), labelled ``slab``.
SLABS = [
    ("slab_chunk_size_bytes", "gauge",
     "Number of bytes allocated to each chunk within this slab class.", "chunk_size"),
    ("slab_chunks_per_page", "gauge", "Number of chunks within a single page for this slab "
     "class.", "chunks_per_page"),
    ("slab_current_pages", "gauge", "Number of pages allocated to this slab class.",
     "total_pages"),
    ("slab_current_chunks", "gauge", "Number of chunks allocated to this slab class.",
     "total_chunks"),
    ("slab_chunks_used", "gauge", "Number of chunks allocated to an item.", "used_chunks"),
    ("slab_chunks_free", "gauge", "Number of chunks not yet allocated items.", "free_chunks"),
    ("slab_chunks_free_end", "gauge",
     "Number of free chunks at the end of the last allocated page.", "free_chunks_end"),
]

FAMILY_TYPES = {"gauge": GaugeMetricFamily, "counter": CounterMetricFamily,
                "untyped": UnknownMetricFamily}

Stats = Dict[str, str]


def _number(text: object) -> float:
    """A stats value as a float: ``yes``/``no`` are 1/0, as the exporter reads booleans."""
    if text == "yes":
        return 1.0
    if text == "no":
        return 0.0
    return float(text)


def _family(name: str, kind: str, doc: str, labels: Tuple[str, ...] = ()) -> Metric:
    return FAMILY_TYPES[kind]("%s_%s" % (NAMESPACE, name), doc, labels=list(labels))


def per_class(stats: List[Tuple[str, object]], prefix: str = "") -> Dict[str, Stats]:
    """``[prefix]<class>:<key> value`` lines grouped by class; lines without a class dropped."""
    classes: Dict[str, Stats] = {}
    for name, value in stats:
        if not name.startswith(prefix):
            continue
        clsid, _, key = name[len(prefix):].partition(":")
        if key and clsid.isdigit():
            classes.setdefault(clsid, {})[key] = str(value)
    return classes


class MemcachedExporterCollector:
    """A ``prometheus_client`` collector reading a live server's stats when scraped.

    ``stats_source`` returns (general, settings, items, slabs) as the ``stats`` commands do.
    """

    def __init__(self, stats_source: Callable[[], tuple]) -> None:
        self.stats_source = stats_source

    def collect(self) -> Iterator[Metric]:
        general_lines, settings_lines, items_lines, slabs_lines = self.stats_source()
        general = {name: str(value) for name, value in general_lines}
        # gomemcache folds the class-less ``stats slabs`` lines (total_malloced) into ``stats``.
        general.update((name, str(value)) for name, value in slabs_lines if ":" not in name)
        settings = {name: str(value) for name, value in settings_lines}
        yield _single("up", "gauge", "Could the memcached server be reached.", 1)
        version = _family("version", "gauge", "The version of this memcached server.",
                          ("version",))
        version.add_metric([general["version"]], 1)
        yield version
        yield self._commands(general)
        for spec in GENERAL:
            if spec[3] in general:
                yield _single(spec[0], spec[1], spec[2], _number(general[spec[3]]))
        yield _single(*MAX_CONNECTIONS[:3], _number(settings[MAX_CONNECTIONS[3]]))
        if settings.get("lru_crawler") == "yes":
            for name, kind, doc, key in LRU_CRAWLER_SETTINGS:
                yield _single(name, kind, doc, _number(settings[key]))
        items = per_class(items_lines, "items:")
        yield from _per_class_families(ITEMS, items)
        hits = _family("slab_lru_hits_total", "counter", "Number of get_hits to the LRU.",
                       ("slab", "lru"))
        for clsid, values in items.items():
            for key, lru in LRU_HITS:
                if key in values:
                    hits.add_metric([clsid, lru], _number(values[key]))
        yield hits
        slabs = per_class(slabs_lines)
        yield from _per_class_families(SLABS, slabs)
        yield self._slab_commands(slabs)

    @staticmethod
    def _commands(general: Stats) -> Metric:
        commands = _family("commands_total", "counter", "Total number of all requests broken "
                           "down by command (get, set, etc.) and status.", ("command", "status"))
        for op in COMMAND_OPS:
            commands.add_metric([op, "hit"], _number(general[op + "_hits"]))
            commands.add_metric([op, "miss"], _number(general[op + "_misses"]))
        commands.add_metric(["cas", "badval"], _number(general["cas_badval"]))
        commands.add_metric(["flush", "hit"], _number(general["cmd_flush"]))
        # memcached counts CAS commands in cmd_set too.
        cas = sum(_number(general[key]) for key in ("cas_misses", "cas_hits", "cas_badval"))
        commands.add_metric(["set", "hit"], _number(general["cmd_set"]) - cas)
        return commands

    @staticmethod
    def _slab_commands(slabs: Dict[str, Stats]) -> Metric:
        commands = _family("slab_commands_total", "counter", "Total number of all requests "
                           "broken down by command (get, set, etc.) and status per slab.",
                           ("slab", "command", "status"))
        for clsid, values in slabs.items():
            for op in COMMAND_OPS:
                commands.add_metric([clsid, op, "hit"], _number(values[op + "_hits"]))
            commands.add_metric([clsid, "cas", "badval"], _number(values["cas_badval"]))
            cas = _number(values["cas_hits"]) + _number(values["cas_badval"])
            commands.add_metric([clsid, "set", "hit"], _number(values["cmd_set"]) - cas)
        return commands


def _single(name: str, kind: str, doc: str, value: float) -> Metric:
    family = _family(name, kind, doc)
    family.add_metric([], value)
    return family


def _per_class_families(specs: list, classes: Dict[str, Stats]) -> Iterator[Metric]:
    for name, kind, doc, key in specs:
        family = _family(name, kind, doc, ("slab",))
        for clsid, values in classes.items():
            if key in values:
                family.add_metric([clsid], _number(values[key]))
        yield family
