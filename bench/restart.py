"""Warm restart (``-e``) against a cold start: 1,000,000 mixed-size items in ``-m 1024``.

Fills a pymcd on a memory file, stops it with SIGUSR1 (timed: signal to exit, metadata written),
starts it again on the same file (timed: exec to serving a get, and the restore's own figure from
its ``[restart] restored N items in S s`` line), checks every item is back, then times a cold start
beside it (the same command after the metadata is gone).

    python bench/restart.py [--items 1000000] [--memory 1024] [--file /dev/shm/pymcd-bench.mem]

Writes bench/results/restart-<timestamp>.json and prints a table.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time

from harness import free_port, write_results

RESTORED = re.compile(r"\[restart\] restored (\d+) items in ([\d.]+) s")


def start(args, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "pymcd", "-p", str(port), "-U", "0", "-l", "127.0.0.1",
               "-m", str(args.memory), "-e", args.file]
    return subprocess.Popen(["taskset", "-c", "0"] + command, stderr=subprocess.PIPE)


def serving(port: int, timeout: float = 120.0) -> socket.socket:
    """A connection once a get is answered (the server listens only after the restore)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            sock.sendall(b"get nothing\r\n")
            if sock.recv(16) == b"END\r\n":
                return sock
        except OSError:
            time.sleep(0.01)
    raise RuntimeError("not serving after %.0f s" % timeout)


def until(sock: socket.socket, marker: bytes) -> bytes:
    received = b""
    while not received.endswith(marker):
        received += sock.recv(1 << 20)
    return received


def fill(sock: socket.socket, items: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    batch = []
    for number in range(items):
        size = int(10 ** rng.uniform(1, 3.3))  # 10 B .. 2 KB, most of them small
        batch.append(b"set key:%08d %d 0 %d noreply\r\n%s\r\n" % (number, number % 7, size,
                                                                   b"v" * size))
        if len(batch) == 5000:
            sock.sendall(b"".join(batch))
            batch = []
    sock.sendall(b"".join(batch) + b"mn\r\n")
    until(sock, b"MN\r\n")


def curr_items(sock: socket.socket) -> int:
    sock.sendall(b"stats\r\n")
    reply = until(sock, b"END\r\n")
    return int(re.search(rb"STAT curr_items (\d+)", reply).group(1))


def stop(process: subprocess.Popen, sig: int) -> float:
    started = time.perf_counter()
    process.send_signal(sig)
    process.wait(timeout=300)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--memory", type=int, default=1024)
    parser.add_argument("--file", default="/dev/shm/pymcd-bench.mem")
    args = parser.parse_args()
    for leftover in (args.file, args.file + ".meta"):
        if os.path.exists(leftover):
            os.unlink(leftover)
    port = free_port()
    first = start(args, port)
    with serving(port) as sock:
        fill(sock, args.items)
        stored = curr_items(sock)
    stop_seconds = stop(first, signal.SIGUSR1)
    first.stderr.read()

    started = time.perf_counter()
    warm = start(args, port)
    with serving(port) as sock:
        warm_seconds = time.perf_counter() - started
        restored = curr_items(sock)
    stop(warm, signal.SIGKILL)  # no metadata: the next start is cold
    match = RESTORED.search(warm.stderr.read().decode())
    restore_items, restore_seconds = (int(match.group(1)), float(match.group(2))) if match else (0, 0.0)

    started = time.perf_counter()
    cold = start(args, port)
    with serving(port) as sock:
        cold_seconds = time.perf_counter() - started
        cold_items = curr_items(sock)
    stop(cold, signal.SIGKILL)
    os.unlink(args.file)

    report = {
        "items_stored": stored,
        "items_restored": restored,
        "stop_seconds": round(stop_seconds, 3),
        "warm_start_to_serving_seconds": round(warm_seconds, 3),
        "restore_seconds": restore_seconds,
        "restore_items_per_second": int(restore_items / restore_seconds) if restore_seconds else 0,
        "cold_start_to_serving_seconds": round(cold_seconds, 3),
        "cold_start_items": cold_items,
        "python": sys.version.split()[0],
        "memory_mb": args.memory,
    }
    path = write_results("restart", report)
    width = max(map(len, report))
    for name, value in report.items():
        print("%-*s  %s" % (width, name, value))
    print("written to %s" % path)


if __name__ == "__main__":
    main()
