"""pymcd-slap against real servers: Debian's memcached and pymcd, over ASCII, binary and UDP.

Every run verifies every value it reads back (``-v 1.0``), so a run that counts its operations
right but garbles a key or a value fails here.
"""

from __future__ import annotations

import socket

import pytest
from slap_run import run_slap
from support import exchange, free_port, have_memcached, start_memcached, start_pymcd

needs_memcached = pytest.mark.skipif(not have_memcached(), reason="Debian's memcached is missing")

SMALL_VALUES = ["-X", "100", "-w", "1k"]


@pytest.fixture(scope="module")
def memcached():
    if not have_memcached():
        pytest.skip("Debian's memcached is not installed")
    port = free_port()
    with start_memcached(["-U", str(port)], port=port) as server:
        yield server


@pytest.fixture(scope="module")
def pymcd():
    port = free_port()
    with start_pymcd(["-U", str(port)], port=port) as server:
        yield server


def check_clean(result, gets_expected=None) -> None:
    assert result.returncode == 0, result.stderr
    counters = result.counters
    assert counters["verify_failed"] == 0 and counters["verify_misses"] == 0, result.stdout
    assert counters["get_misses"] == 0, result.stdout
    assert "error " not in result.stdout
    assert result.ops == counters["cmd_get"] + counters["cmd_set"]
    if gets_expected is not None:
        assert counters["cmd_get"] == gets_expected


@pytest.mark.parametrize("server", ["memcached", "pymcd"])
def test_ascii_execute_number(server, request):
    port = request.getfixturevalue(server).port
    result = run_slap(port, ["-c", "4", "-x", "4000", "-v", "1.0"] + SMALL_VALUES)
    check_clean(result)
    counters = result.counters
    assert result.ops == 4000
    assert counters["cmd_set"] == 400 and counters["cmd_get"] == 3600
    # memaslap's byte accounting: "get <64-byte key>\r\n" is 70 bytes, a set of a 100-byte
    # value "set <key> 0 0 100\r\n<value>\r\n" is 4 + 64 + 10 + 102 = 180 bytes.
    assert counters["written_bytes"] == 3600 * 70 + 400 * 180
    assert counters["object_bytes"] == 400 * (64 + 100)
    assert counters["read_bytes"] == 3600 * (len("VALUE  0 100\r\n") + 64 + 102 + 5) + 400 * 8


@needs_memcached
def test_binary_execute_number(memcached):
    result = run_slap(memcached.port, ["-B", "-c", "4", "-x", "4000", "-v", "1.0"] + SMALL_VALUES)
    check_clean(result)
    assert result.ops == 4000
    # A binary GET is a 24-byte header and the key; a SET adds 8 bytes of extras and the value.
    assert result.counters["written_bytes"] == 3600 * (24 + 64) + 400 * (24 + 8 + 64 + 100)


@pytest.mark.parametrize("server", ["memcached", "pymcd"])
def test_udp_execute_number(server, request):
    port = request.getfixturevalue(server).port
    result = run_slap(port, ["-U", "-c", "4", "-x", "4000", "-v", "1.0"] + SMALL_VALUES)
    check_clean(result)
    assert result.counters["udp_timeout"] == 0 and result.counters["packet_drop"] == 0


@needs_memcached
def test_udp_binary_where_memaslap_fails_to_write(memcached):
    result = run_slap(memcached.port, ["-U", "-B", "-c", "4", "-x", "2000", "-v", "1.0"]
                      + SMALL_VALUES)
    check_clean(result)
    assert result.counters["udp_timeout"] == 0


@pytest.mark.parametrize("server, protocol", [
    ("memcached", []), ("memcached", ["-B"]), ("memcached", ["-U"]), ("memcached", ["-a"]),
    ("pymcd", []), ("pymcd", ["-U"]),
])
def test_multiget_division(server, protocol, request):
    """-d 10: ASCII sends one get of ten keys, binary ten GETs; over UDP the replies take
    several datagrams (memcached 1.6.18 frames each value alone, pymcd the whole reply)."""
    port = request.getfixturevalue(server).port
    result = run_slap(port, protocol + ["-c", "4", "-x", "6000", "-d", "10", "-v", "1.0"]
                      + SMALL_VALUES)
    check_clean(result)
    assert result.ops == 6000
    counters = result.counters
    # The mix counts keys: about one set per ten keys read.
    assert 400 <= counters["cmd_set"] <= 700, counters
    if protocol in (["-U"], ["-a"]):
        assert counters["udp_timeout"] == 0 and counters["packet_drop"] == 0
    get = result.report["latency"]["get"]
    # One latency sample per multi-get request of up to ten keys (fewer while the window
    # holds fewer than ten stored items, and at the end of the budget).
    assert get["ops"] == counters["cmd_get"]
    assert get["events"] < get["ops"] / 5


@needs_memcached
def test_worker_processes_merge_their_figures(memcached):
    result = run_slap(memcached.port, ["-T", "2", "-c", "4", "-x", "4000", "-v", "1.0"]
                      + SMALL_VALUES)
    check_clean(result)
    assert result.ops == 4000 and result.counters["cmd_set"] == 400
    assert "threads count: 2" in result.stdout


@needs_memcached
def test_time_bounded_run_with_stat_tables(memcached):
    result = run_slap(memcached.port, ["-c", "2", "-t", "2s", "-S", "1s", "-P", "400"]
                      + SMALL_VALUES)
    assert result.returncode == 0, result.stderr
    assert 1.9 <= result.run_time <= 2.6
    # memaslap's periodic tables, then its closing per-type blocks.
    assert result.stdout.count("Get Statistics\nType     Time(s)  Ops") == 2
    assert "\nPeriod   1        " in result.stdout and "\nGlobal   2        " in result.stdout
    assert "Total Statistics (" in result.stdout and "   Log2 Dist:\n" in result.stdout


@needs_memcached
def test_json_report_fields(memcached):
    result = run_slap(memcached.port, ["-c", "2", "-x", "1000", "-v", "0.5"] + SMALL_VALUES)
    check_clean(result)
    report = result.report
    assert set(report) == {"counters", "errors", "failure", "latency", "net_rate_mb", "ops",
                           "run_time", "settings", "tps"}
    assert report["ops"] == 1000 and report["failure"] is None and report["errors"] == {}
    assert report["counters"] == {name: result.counters.get(name, 0) for name in (
        "cmd_get", "cmd_set", "get_misses", "verify_misses", "verify_failed", "expired_get",
        "unexpired_unget", "written_bytes", "read_bytes", "object_bytes", "packet_disorder",
        "packet_drop", "udp_timeout")}
    for table in ("get", "set", "total"):
        figures = report["latency"][table]
        assert set(figures) == {"events", "ops", "misses", "min_us", "max_us", "avg_us",
                                "std_dev_us", "geo_mean_us", "p50_us", "p90_us", "p99_us",
                                "p99_9_us"}
        assert figures["min_us"] <= figures["p50_us"] <= figures["p90_us"] <= figures["p99_us"]
        assert figures["p99_us"] <= figures["p99_9_us"] <= figures["max_us"] * 1.01
    assert report["latency"]["total"]["events"] == 1000
    assert report["settings"]["servers"] == ["127.0.0.1:%d" % memcached.port]
    assert report["settings"]["value_ranges"] == [[100, 100, 1.0]]
    assert report["tps"] == pytest.approx(1000 / report["run_time"])


def stat(port: int, name: str) -> int:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        reply = exchange(sock, b"stats\r\n", expect_end=b"END\r\n").decode()
    return int(reply.split("STAT %s " % name)[1].split("\r\n")[0])


@needs_memcached
def test_replicated_writes_reach_every_replica():
    """-p 2 with two servers: every set goes to both, each concurrency reads its own."""
    with start_memcached() as first, start_memcached() as second:
        servers = "127.0.0.1:%d,127.0.0.1:%d" % (first.port, second.port)
        result = run_slap(None, ["-s", servers, "-p", "2", "-c", "2", "-x", "2000", "-v", "1.0"]
                          + SMALL_VALUES)
        check_clean(result)
        sets = result.counters["cmd_set"]
        assert stat(first.port, "cmd_set") == sets == stat(second.port, "cmd_set")
        gets = stat(first.port, "cmd_get") + stat(second.port, "cmd_get")
        assert gets == result.counters["cmd_get"]
        assert stat(first.port, "cmd_get") > 0 and stat(second.port, "cmd_get") > 0


@needs_memcached
def test_server_errors_are_counted_by_kind_and_the_run_goes_on():
    """memcached -M with 2 MB refuses most 50 kB sets: SERVER_ERROR, counted, shown once."""
    with start_memcached(["-m", "2", "-M"]) as server:
        result = run_slap(server.port, ["-c", "2", "-x", "3000", "-X", "50000", "-w", "1k",
                                        "-v", "1.0"])
    assert result.returncode == 0, result.stderr
    refused = result.report["errors"]["SERVER_ERROR"]
    assert 100 < refused < result.counters["cmd_set"]
    assert "error SERVER_ERROR: %d\n" % refused in result.stdout
    assert result.ops == 3000 and result.counters["verify_failed"] == 0
    # The message is logged, but only its first occurrences.
    logged = "SERVER_ERROR from the server: SERVER_ERROR out of memory storing object"
    assert 1 <= result.stderr.count(logged) <= 3


@needs_memcached
@pytest.mark.parametrize("protocol", [[], ["-B"]])
def test_large_values_over_many_reads(protocol):
    """300 kB values, three to a multi-get: replies span many reads and still verify."""
    with start_memcached(["-m", "256", "-I", "2m"]) as server:
        result = run_slap(server.port, protocol + ["-c", "2", "-x", "600", "-X", "300000",
                                                   "-w", "20", "-d", "3", "-v", "1.0"])
    check_clean(result)
    assert result.ops == 600
    assert result.counters["read_bytes"] > 300000 * result.counters["cmd_get"]


@needs_memcached
def test_sockets_per_concurrency():
    # -vv shows each connection (and each command: few, so its pipe does not fill up).
    server = start_memcached(["-vv"])
    try:
        result = run_slap(server.port, ["-c", "2", "-n", "3", "-x", "120", "-v", "1.0"]
                          + SMALL_VALUES)
    finally:
        _, log = server.stop()
    check_clean(result)
    # Two concurrencies of three sockets each, and the probe that saw the server start.
    assert log.count(b"new auto-negotiating client connection") == 2 * 3 + 1


@needs_memcached
@pytest.mark.parametrize("overwrite, distinct_keys", [("1.0", 10), ("0", 500)])
def test_overwrite_proportion(tmp_path, overwrite, distinct_keys):
    """-o: a set that comes round the window again rewrites its key instead of a fresh one."""
    config = tmp_path / "half-sets.cnf"
    config.write_text("value\n100 100 1\ncmd\n0 0.5\n1 0.5\n")
    with start_memcached() as server:
        result = run_slap(server.port, ["-c", "1", "-x", "1000", "-w", "10", "-o", overwrite,
                                        "-v", "1.0", "-F", str(config)])
        check_clean(result)
        assert result.counters["cmd_set"] == 500
        assert stat(server.port, "curr_items") == distinct_keys
