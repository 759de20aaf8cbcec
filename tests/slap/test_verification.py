"""Verification (-v), expiry checks (-e), pacing (-P) and a server that goes away.

The faulty servers are tiny_server.py; the honest ones are Debian's memcached and pymcd.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from slap_run import run_slap, start_tiny_server
from support import have_memcached, start_memcached, start_pymcd

needs_memcached = pytest.mark.skipif(not have_memcached(), reason="Debian's memcached is missing")


def test_corrupted_value_is_caught_and_shown_with_its_key():
    with start_tiny_server("--corrupt", "3") as server:
        result = run_slap(server.port, ["-c", "1", "-x", "3000", "-v", "1.0", "-b", "-w", "50",
                                        "-X", "100"])
    assert result.returncode == 0, result.stderr
    # Only the third key is corrupted: every read of it fails verification, nothing else does.
    failed = result.counters["verify_failed"]
    assert 0 < failed < 200, result.stdout
    assert result.report["counters"]["verify_failed"] == failed
    assert result.stderr.count("data verification failed") == failed
    # -b prints the key (hex: its 8-byte prefix is binary) and what was received.
    assert "\tkey len: 64\n\tkey: 1210101010101010" in result.stderr
    assert "\texpected data len: 100\n\treceived data len: 100\n" in result.stderr


def test_honest_server_verifies_clean():
    with start_tiny_server() as server:
        result = run_slap(server.port, ["-c", "2", "-x", "3000", "-v", "1.0", "-w", "50",
                                        "-X", "100"])
    assert result.returncode == 0, result.stderr
    assert result.counters["verify_failed"] == 0 and result.counters["verify_misses"] == 0


# Items with a 2-second TTL, read for 5 seconds at a gentle pace while sets are rare, so many
# gets come long after their item's TTL; the expiry slack of 1.5 s absorbs memcached's
# one-second clock.
EXPIRY_RUN = ["-c", "2", "-t", "5s", "-P", "200", "-w", "100", "-X", "100", "-e", "1.0",
              "--expire-time", "2", "--expire-slack", "1.5", "-F"]


@pytest.fixture
def rare_sets(tmp_path):
    config = tmp_path / "rare-sets.cnf"
    config.write_text("key\n64 64 1\nvalue\n100 100 1\ncmd\n0 0.03\n1 0.97\n")
    return str(config)


@needs_memcached
def test_expiry_honoured_by_memcached(rare_sets):
    with start_memcached() as server:
        result = run_slap(server.port, EXPIRY_RUN + [rare_sets])
    assert result.returncode == 0, result.stderr
    counters = result.counters
    assert counters["expired_get"] == 0 and counters["unexpired_unget"] == 0, result.stdout
    # The check was exercised: many reads came after the TTL and missed.
    assert counters["get_misses"] > counters["cmd_get"] / 4, result.stdout


def test_expiry_ignored_by_a_server_is_caught(rare_sets):
    with start_tiny_server("--ignore-ttl") as server:
        result = run_slap(server.port, EXPIRY_RUN + [rare_sets])
    assert result.returncode == 0, result.stderr
    assert result.counters["expired_get"] > 0, result.stdout
    assert result.counters["get_misses"] == 0


def test_items_lost_before_their_ttl_are_caught(rare_sets):
    with start_tiny_server("--forget") as server:
        result = run_slap(server.port, EXPIRY_RUN + [rare_sets])
    assert result.returncode == 0, result.stderr
    assert result.counters["unexpired_unget"] > 0, result.stdout
    assert result.counters["expired_get"] == 0


@needs_memcached
@pytest.mark.parametrize("concurrency, rate", [(8, 3000), (1, 2000)])
def test_target_rate_is_held(concurrency, rate):
    """-P (memaslap's has no effect): a modest rate, held within 10% over the run, also when
    one concurrency's interval (0.5 ms) is finer than the reactor's timers (1 ms)."""
    with start_memcached() as server:
        result = run_slap(server.port, ["-c", str(concurrency), "-t", "3s", "-P", str(rate),
                                        "-X", "100", "-w", "1k"])
    assert result.returncode == 0, result.stderr
    assert 0.9 * rate <= result.tps <= 1.1 * rate, result.stdout
    total = result.report["latency"]["total"]
    assert 0 < total["p50_us"] <= total["p99_us"] <= total["p99_9_us"]
    assert "Total latency (us): p50 " in result.stdout


def test_server_going_away_ends_the_run_with_the_figures_so_far():
    server = start_pymcd()
    try:
        started = time.time()
        slap = subprocess.Popen([sys.executable, "-m", "pymcd.slap", "-s",
                                 "127.0.0.1:%d" % server.port, "-c", "2", "-t", "30s", "-X",
                                 "100", "-P", "500"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
    finally:
        server.stop()
    out, err = slap.communicate(timeout=30)
    assert slap.returncode == 1
    assert time.time() - started < 15
    assert "connection to 127.0.0.1:%d lost" % server.port in err
    assert "use -R to reconnect" in err
    assert "Run time: " in out and "cmd_get: 0\n" not in out


def test_reconnect_carries_on_after_the_server_comes_back():
    server = start_pymcd()
    port = server.port
    slap = subprocess.Popen([sys.executable, "-m", "pymcd.slap", "-s", "127.0.0.1:%d" % port,
                             "-c", "2", "-t", "5s", "-X", "100", "-P", "400", "-R"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        server.stop()
        time.sleep(1.0)
        server = start_pymcd(port=port)
        out, err = slap.communicate(timeout=30)
    finally:
        server.stop()
    assert slap.returncode == 0, err
    assert "error CONNECTION_LOST: 2\n" in out
    assert "reconnecting" in err
    # 400 ops/s for 1.5 s before the loss; then the run went on against the new, empty server
    # (its misses are the proof: the first server had every item that was read).
    ops = int(out.split("Ops: ")[1].split()[0])
    assert ops > 800, out
    assert int(out.split("get_misses: ")[1].split()[0]) > 0, out


def test_udp_replies_out_of_order_are_reassembled():
    """Multi-get replies of two datagrams each, sent last first: reordered by sequence number,
    counted as disorder, and every value still verifies."""
    with start_tiny_server("--udp-reverse") as server:
        result = run_slap(server.port, ["-U", "-c", "2", "-x", "3000", "-d", "10", "-v", "1.0",
                                        "-X", "100", "-w", "1k"])
    assert result.returncode == 0, result.stderr
    counters = result.counters
    assert counters["packet_disorder"] > 100, result.stdout
    assert counters["verify_failed"] == 0 and counters["get_misses"] == 0
    assert counters["udp_timeout"] == 0 and counters["packet_drop"] == 0


def test_udp_losses_count_as_misses_and_the_run_goes_on():
    with start_tiny_server("--udp-drop", "50") as server:
        result = run_slap(server.port, ["-U", "-c", "4", "-x", "2000", "-v", "1.0", "-X", "100",
                                        "-w", "1k", "--udp-timeout", "0.2"])
    assert result.returncode == 0, result.stderr
    counters = result.counters
    assert result.ops == 2000
    assert 10 <= counters["udp_timeout"] <= 100, result.stdout
    assert counters["packet_drop"] == counters["udp_timeout"]
    # A lost set is an error; a lost get a miss, as memaslap counts it.
    lost_sets = result.report["errors"].get("UDP_TIMEOUT", 0)
    assert counters["get_misses"] + lost_sets == counters["udp_timeout"]
    assert counters["verify_failed"] == 0
