"""Warm restart with ``-e``: items survive a graceful stop, and nothing survives anything else.

Each test runs real ``pymcd`` processes on one memory file (under /dev/shm when there is one) and
looks at what the next process serves: flags, CAS, remaining TTL, LRU segment, class and whole
values after SIGUSR1 or SIGTERM; a cold start, with the reason on stderr, after SIGKILL, a change
of ``-m``, or a metadata file cut short or edited; no start at all on an empty one (memcached's
behaviour, which its t/restart.t checks).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Dict, List

import pytest
from support import exchange, start_pymcd, stats

SHM = "/dev/shm" if os.path.isdir("/dev/shm") else None


@pytest.fixture
def memory_file(tmp_path):
    base = SHM or str(tmp_path)
    path = os.path.join(base, "pymcd-test-%d-%d.mem" % (os.getpid(), time.monotonic_ns()))
    yield path
    for leftover in (path, path + ".meta", path + ".meta.tmp"):
        if os.path.exists(leftover):
            os.unlink(leftover)


def meta_get(sock, key: bytes) -> bytes:
    return exchange(sock, b"mg %s s v f c t\r\n" % key, expect_end=b"\r\n", settle=0.3)


def run(memory_file: str, script: bytes, flags: List[str] = (), stop=signal.SIGUSR1,
        expect_end: bytes = b"MN\r\n") -> str:
    """Start on the memory file, send ``script`` (ending in mn), stop with ``stop``: stderr."""
    server = start_pymcd(["-m", "64", "-e", memory_file] + list(flags))
    with server.connect(timeout=20) as sock:
        assert exchange(sock, script + b"mn\r\n", expect_end=expect_end, timeout=20).endswith(expect_end)
    _, err = server.stop(stop)
    return err.decode()


def fill_script() -> bytes:
    parts = [b"set small%d %d 0 10 noreply\r\n%s\r\n" % (n, n, b"%010d" % n) for n in range(2000)]
    parts.append(b"set ttl 7 600 3 noreply\r\nttl\r\nset short 0 2 3 noreply\r\nbye\r\n")
    parts.append(b"set big 9 0 700000 noreply\r\n" + bytes(range(250)) * 2800 + b"\r\n")
    parts.append(b"get small1 small1\r\n")  # fetched twice: active, it moves to WARM
    return b"".join(parts)


def snapshot(sock) -> Dict[bytes, bytes]:
    return {key: meta_get(sock, key) for key in (b"small0", b"small1", b"small1999", b"ttl")}


def test_items_come_back_with_flags_cas_ttl_segment_and_class(memory_file) -> None:
    server = start_pymcd(["-m", "64", "-e", memory_file])
    with server.connect(timeout=20) as sock:
        exchange(sock, fill_script() + b"mn\r\n", expect_end=b"MN\r\n", timeout=20)
        time.sleep(1.2)  # the maintainer moves the items it must, as it would have anyway
        before_items = stats(sock, b"items")  # before the reads below bump anything
        before = snapshot(sock)
        before_stats = stats(sock)
    _, err = server.stop(signal.SIGUSR1)
    assert "[restart] saved %s items" % before_stats["curr_items"] in err.decode()
    time.sleep(2.1)  # "short" expires while the server is down
    with start_pymcd(["-m", "64", "-e", memory_file]) as server:
        with server.connect(timeout=20) as sock:
            items = stats(sock, b"items")
            after = snapshot(sock)
            assert after[b"small1"].startswith(b"VA 10 s10 f1 c2 t-1")
            ttl_before, ttl_after = before.pop(b"ttl"), after.pop(b"ttl")
            assert after == before
            assert ttl_after.startswith(b"VA 3 s3 f7 c2001 t")
            remaining = int(ttl_after.split(b" t")[1].split(b"\r\n")[0])
            assert int(ttl_before.split(b" t")[1].split(b"\r\n")[0]) - 10 < remaining < 600
            assert meta_get(sock, b"short") == b"EN\r\n"
            reply = exchange(sock, b"get big\r\n", expect_end=b"END\r\n", timeout=10)
            assert reply == b"VALUE big 9 700000\r\n" + bytes(range(250)) * 2800 + b"\r\nEND\r\n"
            for name in ("items:1:number_warm", "items:39:number"):
                assert (name, items.get(name)) == (name, before_items.get(name))
            # "short" (class 1) expired meanwhile and is gone.
            assert int(items["items:1:number"]) == int(before_items["items:1:number"]) - 1
            general = stats(sock)
            assert int(general["curr_items"]) == int(before_stats["curr_items"]) - 1
            assert int(general["uptime"]) >= int(before_stats["uptime"]) + 2
            # The CAS sequence goes on (memcached takes one id at the stop).
            set_reply = exchange(sock, b"ms new 1 c\r\nx\r\n", expect_end=b"\r\n")
            assert set_reply == b"HD c%d\r\n" % (2000 + 3 + 1 + 1)


def test_sigterm_saves_too_and_the_ttl_keeps_running(memory_file) -> None:
    err = run(memory_file, b"set k 3 100 1\r\nv\r\n", stop=signal.SIGTERM,
              expect_end=b"STORED\r\nMN\r\n")
    assert "[restart] saved 1 items" in err
    time.sleep(1.1)
    with start_pymcd(["-m", "64", "-e", memory_file]) as server:
        with server.connect() as sock:
            reply = meta_get(sock, b"k")
            assert reply.startswith(b"VA 1 s1 f3 c1 t")
            assert int(reply.split(b" t")[1].split(b"\r\n")[0]) <= 99


def cold_start_reason(memory_file: str, flags: List[str] = ()) -> str:
    server = start_pymcd(["-m", "64", "-e", memory_file] + list(flags))
    with server.connect() as sock:
        assert meta_get(sock, b"k") == b"EN\r\n"  # never a torn or stale item
        assert stats(sock)["curr_items"] == "0"
    _, err = server.stop(signal.SIGKILL)
    return err.decode()


def test_sigkill_leaves_nothing_to_restore(memory_file) -> None:
    run(memory_file, b"set k 0 0 1 noreply\r\nv\r\n", stop=signal.SIGKILL)
    assert "no metadata save file, starting with a clean cache" in cold_start_reason(memory_file)


def test_a_changed_memory_limit_starts_cold(memory_file) -> None:
    run(memory_file, b"set k 0 0 1 noreply\r\nv\r\n")
    reason = cold_start_reason(memory_file, ["-m", "65"])
    assert "restart incompatible due to setting for [maxbytes] [old value: 67108864]" in reason
    assert "failed to validate metadata, starting with a clean cache" in reason


@pytest.mark.parametrize("damage", ["truncate", "edit_meta", "edit_page"])
def test_damaged_metadata_or_pages_start_cold(memory_file, damage) -> None:
    run(memory_file, b"set k 0 0 1 noreply\r\nv\r\n")
    meta = memory_file + ".meta"
    if damage == "truncate":
        with open(meta, "rb+") as stream:
            stream.truncate(os.path.getsize(meta) // 2)
        expected = "metadata file truncated"
    elif damage == "edit_meta":
        text = open(meta).read().replace("Kcurrent_cas 2", "Kcurrent_cas 9")
        open(meta, "w").write(text)
        expected = "metadata checksum does not match"
    else:
        with open(memory_file, "rb+") as stream:  # the first page holds class 1's items
            stream.seek(100)
            stream.write(b"torn")
        expected = "changed since the stop"
    reason = cold_start_reason(memory_file)
    assert expected in reason and "starting with a clean cache" in reason


def test_an_empty_metadata_file_refuses_to_start(memory_file) -> None:
    open(memory_file + ".meta", "w").close()
    server = start_pymcd(["-m", "64", "-e", memory_file], wait=False)
    assert server.process.wait(timeout=20) != 0
    _, err = server.stop()
    assert "[restart] Failed to read a tag from metadata file" in err.decode()


def test_memory_file_as_an_extended_option(memory_file) -> None:
    with start_pymcd(["-m", "64", "-o", "memory_file=%s" % memory_file]) as server:
        with server.connect() as sock:
            assert stats(sock, b"settings")["memory_file"] == memory_file
            slabs = stats(sock, b"slabs")
            # As memcached with -e: the memory is all there, a page per class, the rest pooled.
            assert slabs["total_malloced"] == str(64 << 20)
            assert stats(sock)["slab_global_page_pool"] == str(64 - int(slabs["active_slabs"]))
            assert exchange(sock, b"cache_memlimit 100\r\n", expect_end=b"\r\n") == \
                b"MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust\r\n"


def test_under_twistd_a_stop_saves_and_a_start_restores(memory_file) -> None:
    import sys

    from support import ServerProcess, free_port

    twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
    port = free_port()
    command = [twistd, "-n", "--pidfile=", "pymcd", "-p", str(port), "-m", "64", "-e", memory_file]
    server = ServerProcess(command, port)
    with server.connect() as sock:
        assert exchange(sock, b"set tw 4 0 2\r\nhi\r\n", expect_end=b"\r\n") == b"STORED\r\n"
    out, _ = server.stop(signal.SIGTERM)  # twistd's own stop
    assert b"[restart] saved 1 items" in out
    with ServerProcess(command, port) as server:
        with server.connect() as sock:
            assert exchange(sock, b"get tw\r\n", expect_end=b"END\r\n") == \
                b"VALUE tw 4 2\r\nhi\r\nEND\r\n"
