"""``--http``'s ``/metrics`` scraped from a live server under load, parsed by prometheus_client,
against ``stats`` read just before and just after the scrape."""

from __future__ import annotations

import socket
import time

import pytest

from pymcd import __version__

from support import HOST, stats
from web_support import (
    check_all,
    fetch,
    value_between,
    labels,
    sample_names,
    scrape,
    slap,
    start_with_http,
)

# Every sample name memcached_exporter exports for a memcached without extstore or proxy mode
# (its memcached_slab_temporary_items needs -o temp_lru).
EXPORTER_SAMPLES = """
up version commands_total uptime_seconds time_seconds process_user_cpu_seconds_total
process_system_cpu_seconds_total current_bytes limit_bytes current_items items_total
read_bytes_total written_bytes_total current_connections max_connections connections_total
connections_rejected_total connections_yielded_total connections_listener_disabled_total
items_evicted_total items_reclaimed_total item_too_large_total item_no_memory_total
lru_crawler_enabled lru_crawler_sleep lru_crawler_to_crawl lru_crawler_maintainer_thread
lru_crawler_hot_percent lru_crawler_warm_percent lru_crawler_hot_max_factor
lru_crawler_warm_max_factor lru_crawler_starts_total lru_crawler_reclaimed_total
lru_crawler_items_checked_total lru_crawler_moves_to_cold_total lru_crawler_moves_to_warm_total
lru_crawler_moves_within_lru_total direct_reclaims_total malloced_bytes accepting_connections
slab_current_items slab_items_age_seconds slab_items_crawler_reclaimed_total
slab_items_evicted_total slab_items_evicted_nonzero_total slab_items_evicted_time_seconds
slab_items_evicted_unfetched_total slab_items_expired_unfetched_total
slab_items_outofmemory_total slab_items_reclaimed_total slab_items_tailrepairs_total
slab_items_moves_to_cold slab_items_moves_to_warm slab_items_moves_within_lru slab_hot_items
slab_warm_items slab_cold_items slab_hot_age_seconds slab_warm_age_seconds slab_lru_hits_total
slab_chunk_size_bytes slab_chunks_per_page slab_current_pages slab_current_chunks
slab_chunks_used slab_chunks_free slab_chunks_free_end slab_mem_requested_bytes
slab_commands_total
""".split()

# Plain samples and the `stats` line each must equal.
GENERAL = {
    "uptime_seconds": "uptime", "time_seconds": "time",
    "process_user_cpu_seconds_total": "rusage_user",
    "process_system_cpu_seconds_total": "rusage_system", "current_bytes": "bytes",
    "limit_bytes": "limit_maxbytes", "current_items": "curr_items", "items_total": "total_items",
    "read_bytes_total": "bytes_read", "written_bytes_total": "bytes_written",
    "current_connections": "curr_connections", "connections_total": "total_connections",
    "connections_rejected_total": "rejected_connections",
    "connections_yielded_total": "conn_yields",
    "connections_listener_disabled_total": "listen_disabled_num",
    "items_evicted_total": "evictions", "items_reclaimed_total": "reclaimed",
    "item_too_large_total": "store_too_large", "item_no_memory_total": "store_no_memory",
    "lru_crawler_starts_total": "lru_crawler_starts",
    "lru_crawler_reclaimed_total": "crawler_reclaimed",
    "lru_crawler_items_checked_total": "crawler_items_checked",
    "lru_crawler_moves_to_cold_total": "moves_to_cold",
    "lru_crawler_moves_to_warm_total": "moves_to_warm",
    "lru_crawler_moves_within_lru_total": "moves_within_lru",
    "direct_reclaims_total": "direct_reclaims", "accepting_connections": "accepting_conns",
}
# Counters that only grow while the load runs.
GROWING = ("read_bytes_total", "written_bytes_total", "items_total", "connections_total",
           "process_user_cpu_seconds_total", "uptime_seconds")
SETTINGS = {"max_connections": "maxconns", "lru_crawler_sleep": "lru_crawler_sleep",
            "lru_crawler_to_crawl": "lru_crawler_tocrawl",
            "lru_crawler_hot_percent": "hot_lru_pct", "lru_crawler_warm_percent": "warm_lru_pct",
            "lru_crawler_hot_max_factor": "hot_max_factor",
            "lru_crawler_warm_max_factor": "warm_max_factor"}
PER_ITEMS_CLASS = {"slab_current_items": "number", "slab_hot_items": "number_hot",
                   "slab_warm_items": "number_warm", "slab_cold_items": "number_cold",
                   "slab_items_evicted_total": "evicted", "slab_items_reclaimed_total": "reclaimed",
                   "slab_items_moves_to_cold": "moves_to_cold",
                   "slab_mem_requested_bytes": "mem_requested"}
PER_SLAB_CLASS = {"slab_chunk_size_bytes": "chunk_size", "slab_current_pages": "total_pages",
                  "slab_chunks_used": "used_chunks", "slab_chunks_free": "free_chunks",
                  "slab_current_chunks": "total_chunks"}


def number(text: str) -> float:
    return float({"yes": 1, "no": 0}.get(text, text))


def stats_now(sock) -> dict:
    """`stats`, `stats settings`, `stats items` and `stats slabs`, merged (names don't clash)."""
    merged = {}
    for section in (b"", b"settings", b"items", b"slabs"):
        merged.update(("settings:" + k if section == b"settings" else k, v)
                      for k, v in stats(sock, section).items())
    return merged


def comparisons(samples, before: dict, after: dict, names=None):
    """(what, scraped, before, after) for every mapped sample present in both stats reads."""
    rows = []

    def add(what, key, sample_key):
        if key in before and key in after and sample_key in samples:
            rows.append((what, samples[sample_key], number(before[key]), number(after[key])))

    for name, key in GENERAL.items():
        if names is None or name in names:
            add(name, key, ("memcached_" + name, ()))
    if names is not None:
        return rows
    for name, key in SETTINGS.items():
        add(name, "settings:" + key, ("memcached_" + name, ()))
    add("malloced_bytes", "total_malloced", ("memcached_malloced_bytes", ()))
    for op in ("get", "delete", "incr", "decr", "cas", "touch"):
        for status, suffix in (("hit", "_hits"), ("miss", "_misses")):
            add("%s %s" % (op, status), op + suffix,
                ("memcached_commands_total", labels(command=op, status=status)))
    classes = {key.split(":")[1] for key in after if key.startswith("items:")}
    for clsid in classes:
        for name, key in PER_ITEMS_CLASS.items():
            add("%s{%s}" % (name, clsid), "items:%s:%s" % (clsid, key),
                ("memcached_" + name, labels(slab=clsid)))
        add("lru_hits hot{%s}" % clsid, "items:%s:hits_to_hot" % clsid,
            ("memcached_slab_lru_hits_total", labels(slab=clsid, lru="hot")))
        for name, key in PER_SLAB_CLASS.items():
            add("%s{%s}" % (name, clsid), "%s:%s" % (clsid, key),
                ("memcached_" + name, labels(slab=clsid)))
        add("slab get hits{%s}" % clsid, "%s:get_hits" % clsid,
            ("memcached_slab_commands_total", labels(slab=clsid, command="get", status="hit")))
    return rows


def cmd_set_hits(stats_lines: dict) -> float:
    """memcached_exporter's set hits: cmd_set less every CAS outcome."""
    return number(stats_lines["cmd_set"]) - sum(
        number(stats_lines[k]) for k in ("cas_misses", "cas_hits", "cas_badval"))


@pytest.fixture
def loaded_server():
    server, http_port = start_with_http()
    try:
        yield server, http_port
    finally:
        server.stop()


def test_every_exporter_family_agrees_with_stats_under_load_and_at_rest(loaded_server):
    server, http_port = loaded_server
    load = slap(server.port, seconds=8)
    sock = socket.create_connection((HOST, server.port))
    try:
        # Under load means once the load generator has stored items (it may start slowly).
        deadline = time.time() + 30
        while int(stats(sock)["curr_items"]) == 0 and time.time() < deadline:
            time.sleep(0.1)
        assert load.poll() is None, load.communicate()[0]
        before = stats_now(sock)
        types, samples = scrape(http_port)
        after = stats_now(sock)
        missing = [name for name in EXPORTER_SAMPLES
                   if "memcached_" + name not in sample_names(samples)]
        assert not missing
        assert samples[("memcached_up", ())] == 1
        assert samples[("memcached_version", labels(version="1.6.18"))] == 1
        assert types["memcached_commands"] == "counter"
        assert types["memcached_current_items"] == "gauge"
        growing = comparisons(samples, before, after, names=GROWING)
        assert len(growing) == len(GROWING)
        assert number(after["bytes_read"]) > number(before["bytes_read"])  # load is running
        assert not check_all(growing)
        load.communicate(timeout=30)

        # At rest (the LRU maintainer may still move items): every mapped value in bounds.
        before = stats_now(sock)
        _, samples = scrape(http_port)
        after = stats_now(sock)
        rows = comparisons(samples, before, after)
        assert len(rows) > 60
        assert not check_all(rows)
        set_hits = samples[("memcached_commands_total", labels(command="set", status="hit"))]
        assert set_hits == cmd_set_hits(after) > 0
        assert samples[("memcached_commands_total", labels(command="get", status="hit"))] > 0
    finally:
        sock.close()
        if load.poll() is None:
            load.kill()


def test_pymcd_families(loaded_server):
    server, http_port = loaded_server
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect((HOST, server.port))
    stalled.sendall(b"watch mutations fetchers\r\n")
    assert stalled.recv(4) == b"OK\r\n"
    sock = socket.create_connection((HOST, server.port))
    load = slap(server.port, seconds=3)
    try:
        assert load.wait(timeout=30) == 0
        before = stats(sock)
        types, samples = scrape(http_port)
        after = stats(sock)
    finally:
        sock.close()
        stalled.close()
    assert types["pymcd_request_duration_seconds"] == "histogram"
    for command in ("get", "set"):
        which = dict(protocol="text", command=command)
        count = samples[("pymcd_request_duration_seconds_count", labels(**which))]
        # Sampled at most 50 times a second for about 3 s, not once per request.
        assert 5 <= count <= 400
        assert count < number(after["cmd_" + command]) / 5
        assert samples[("pymcd_request_duration_seconds_bucket", labels(le="+Inf", **which))] \
            == count
        buckets = sorted((float(dict(key)["le"]), value) for (name, key), value in samples.items()
                         if name == "pymcd_request_duration_seconds_bucket"
                         and dict(key)["command"] == command and dict(key)["protocol"] == "text")
        assert [value for _, value in buckets] == sorted(value for _, value in buckets)
        mean = samples[("pymcd_request_duration_seconds_sum", labels(**which))] / count
        assert 1e-7 < mean < 0.01
    skipped = samples[("pymcd_watch_lines_skipped_total", ())]
    assert skipped > 0
    assert value_between(skipped, number(before["log_watcher_skipped"]),
                         number(after["log_watcher_skipped"]))
    assert value_between(samples[("pymcd_watch_lines_sent_total", ())],
                         number(before["log_watcher_sent"]), number(after["log_watcher_sent"]))
    assert samples[("pymcd_watchers", ())] == 1
    assert ("pymcd_info", labels(version=__version__, memcached_version="1.6.18")) \
        in samples
    assert samples[("process_resident_memory_bytes", ())] > 10e6


def test_binary_requests_are_timed_by_opcode(loaded_server):
    server, http_port = loaded_server
    load = slap(server.port, seconds=3, binary=True)
    assert load.wait(timeout=30) == 0
    _, samples = scrape(http_port)
    for opcode in ("get", "set"):
        which = dict(protocol="binary", command=opcode)
        count = samples[("pymcd_request_duration_seconds_count", labels(**which))]
        assert 5 <= count <= 400
        mean = samples[("pymcd_request_duration_seconds_sum", labels(**which))] / count
        assert 1e-7 < mean < 0.01


def test_metrics_endpoint_is_localhost_only_by_default():
    from pymcd.options import parse_arguments

    assert parse_arguments(["--http", "9150"]).http_endpoint == "tcp:9150:interface=127.0.0.1"
    assert parse_arguments(["--metrics", "tcp:9150"]).http_endpoint == \
        "tcp:9150:interface=127.0.0.1"
    assert parse_arguments(["--http", "tcp:9150:interface=0.0.0.0"]).http_endpoint == \
        "tcp:9150:interface=0.0.0.0"


def test_backpressure_pauses_are_counted(loaded_server):
    server, http_port = loaded_server
    _, samples = scrape(http_port)
    assert samples[("pymcd_backpressure_pauses_total", ())] == 0
    with socket.create_connection((HOST, server.port)) as writer:
        writer.sendall(b"set big 0 0 500000\r\n" + b"b" * 500000 + b"\r\n")
        assert writer.recv(100) == b"STORED\r\n"
    # A client that asks for 20 MB and reads none of it: the server stops reading it.
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect((HOST, server.port))
    stalled.sendall(b"get big\r\n" * 40)
    try:
        time.sleep(1.0)
        _, samples = scrape(http_port)
        assert samples[("pymcd_backpressure_pauses_total", ())] >= 1
    finally:
        stalled.close()


def test_a_scraper_asking_for_gzip_gets_the_same_samples_compressed(loaded_server):
    """Prometheus sends Accept-Encoding: gzip; the body must decompress to the plain one."""
    import gzip

    from prometheus_client.parser import text_string_to_metric_families

    _, http_port = loaded_server
    _, plain_headers, plain = fetch(http_port, "/metrics")
    _, headers, body = fetch(http_port, "/metrics", {"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in plain_headers
    assert headers["Content-Encoding"] == "gzip"
    assert len(body) * 4 < len(plain)
    unpacked = gzip.decompress(body).decode()
    names = {family.name for family in text_string_to_metric_families(unpacked)}
    assert names == {family.name for family in text_string_to_metric_families(plain.decode())}
    assert "memcached_commands" in names


def test_scrapes_share_a_rendering_unless_one_asks_for_a_fresh_one(loaded_server):
    server, http_port = loaded_server
    _, _, first = fetch(http_port, "/metrics")
    with socket.create_connection((HOST, server.port)) as sock:
        sock.sendall(b"set fresh 0 0 1\r\nx\r\n")
        assert sock.recv(100) == b"STORED\r\n"
    _, _, reused = fetch(http_port, "/metrics")
    _, _, fresh = fetch(http_port, "/metrics", {"Cache-Control": "no-cache"})
    assert reused == first
    assert fresh != first
