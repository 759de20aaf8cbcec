"""Soak: mixed load on pymcd with hostile clients mixed in, RSS held to -m + 150 B/item + 40 MiB.

Well-behaved clients set and get values derived from their keys (so every hit is checked byte
for byte) until 10x -m worth of values has been written, or --time runs out; meanwhile a client
pipelines gets of a large value and never reads, a slowloris trickles a line, a fuzzer sends
garbage and a churner opens and drops connections. Every second the server's RSS is sampled.

    python bench/soak.py [--time 1800] [--memory 64] [--clients 4] [--writes-factor 10]

Prints a table and writes bench/results/soak-<timestamp>.json; exits 1 if RSS passed the bound
or any well-behaved request got a wrong answer. (The issue's run is 30 minutes; CI uses less.)
"""

from __future__ import annotations

import argparse
import hashlib
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List

from harness import free_port, wait_for, write_results

import fuzz

MIB = 1024 * 1024


def value_for(key: bytes, size: int) -> bytes:
    seed = hashlib.blake2b(key, digest_size=16).digest()
    return (seed * (size // len(seed) + 1))[:size]


def rss(pid: int) -> int:
    with open("/proc/%d/status" % pid) as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


def read_reply(sock: socket.socket, buffer: bytearray, end: bytes) -> bytes:
    while True:
        at = buffer.find(end)
        if at >= 0:
            reply = bytes(buffer[:at + len(end)])
            del buffer[:at + len(end)]
            return reply
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("server closed a well-behaved connection")
        buffer += chunk


class Totals:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sets = self.gets = self.hits = self.errors = self.written = 0
        self.error_samples: List[str] = []

    def error(self, what: str) -> None:
        with self.lock:
            self.errors += 1
            if len(self.error_samples) < 5:
                self.error_samples.append(what)


def well_behaved(port: int, totals: Totals, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(30)
    buffer = bytearray()
    keyspace = 400_000
    try:
        while not stop.is_set():
            key = b"soak:%d" % rng.randrange(keyspace)
            size = 100 + (int.from_bytes(hashlib.blake2b(key, digest_size=2).digest(), "big")
                          % 4000)
            if rng.random() < 0.5:
                sock.sendall(b"set %s 0 0 %d\r\n%s\r\n" % (key, size, value_for(key, size)))
                reply = read_reply(sock, buffer, b"\r\n")
                with totals.lock:
                    totals.sets += 1
                    totals.written += size
                if reply != b"STORED\r\n":
                    totals.error("set %r: %r" % (key, reply[:60]))
            else:
                sock.sendall(b"get %s\r\n" % key)
                reply = read_reply(sock, buffer, b"END\r\n")
                with totals.lock:
                    totals.gets += 1
                if reply == b"END\r\n":
                    continue
                expected = b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (key, size, value_for(key, size))
                if reply != expected:
                    totals.error("get %r: %r" % (key, reply[:60]))
                else:
                    with totals.lock:
                        totals.hits += 1
    except (OSError, ConnectionError) as error:
        totals.error("connection: %r" % error)
    finally:
        sock.close()


def stalled_reader(port: int, stop: threading.Event) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    value = b"s" * 500_000
    sock.sendall(b"set soak:big 0 0 %d\r\n%s\r\n" % (len(value), value))
    sock.settimeout(0.5)
    try:
        while not stop.is_set():
            sock.sendall(b"get soak:big\r\n" * 1000)
    except OSError:
        pass  # paused by the server, as it should be
    stop.wait()
    sock.close()


def slowloris(port: int, stop: threading.Event) -> None:
    while not stop.is_set():
        sock = socket.create_connection(("127.0.0.1", port))
        try:
            for byte in b"get " + b"x" * 200:
                if stop.wait(1.0):
                    break
                sock.sendall(bytes([byte]))
        except OSError:
            pass  # closed by idle_timeout
        sock.close()


def fuzzer(port: int, stop: threading.Event) -> None:
    rng = random.Random(7)
    connect = lambda: socket.create_connection(("127.0.0.1", port))  # noqa: E731
    while not stop.is_set():
        generator = rng.choice(list(fuzz.GENERATORS.values()))
        try:
            fuzz.stream_batch(connect, [generator(rng) for _ in range(50)])
        except OSError:
            pass  # a hostile client's troubles are its own; the server is checked elsewhere
        stop.wait(0.05)


def churner(port: int, stop: threading.Event) -> None:
    while not stop.is_set():
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
        for sock in socks:
            sock.close()
        stop.wait(0.2)


def server_stats(port: int) -> Dict[str, int]:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(10)
        sock.sendall(b"stats\r\n")
        reply = read_reply(sock, bytearray(), b"END\r\n")
    found = {}
    for line in reply.split(b"\r\n"):
        parts = line.split(b" ")
        if len(parts) == 3 and parts[2].isdigit():
            found[parts[1].decode()] = int(parts[2])
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time", type=float, default=1800.0, help="seconds at most")
    parser.add_argument("--memory", type=int, default=64, help="-m in MiB")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--writes-factor", type=float, default=10.0)
    args = parser.parse_args(argv)
    port = free_port()
    # stderr to a file: a fuzzed ``verbosity`` makes the server trace, and an unread pipe
    # would block it.
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(
        [sys.executable, "-m", "pymcd", "-p", str(port), "-U", "0", "-l", "127.0.0.1",
         "-m", str(args.memory), "-c", "4096", "-o", "idle_timeout=5"],
        stdout=subprocess.DEVNULL, stderr=log)
    wait_for(port)
    totals = Totals()
    stop = threading.Event()
    threads = [threading.Thread(target=well_behaved, args=(port, totals, stop, n), daemon=True)
               for n in range(args.clients)]
    threads += [threading.Thread(target=hostile, args=(port, stop), daemon=True)
                for hostile in (stalled_reader, slowloris, fuzzer, churner)]
    for thread in threads:
        thread.start()
    target = args.writes_factor * args.memory * MIB
    started = time.time()
    samples = []
    peak = 0
    while time.time() - started < args.time and totals.written < target:
        time.sleep(1.0)
        current = rss(server.pid)
        peak = max(peak, current)
        samples.append((round(time.time() - started, 1), current))
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
    found = server_stats(port)
    server.terminate()
    server.wait(timeout=30)
    log.seek(0)
    err = log.read()
    elapsed = time.time() - started
    items = found.get("curr_items", 0)
    bound = args.memory * MIB + 150 * items + 40 * MIB
    rows = [
        ("run time", "%.0f s" % elapsed),
        ("values written", "%.0f MiB (%.1fx -m)" % (totals.written / MIB,
                                                     totals.written / (args.memory * MIB))),
        ("sets / gets / hits", "%d / %d / %d" % (totals.sets, totals.gets, totals.hits)),
        ("request errors", "%d" % totals.errors),
        ("evictions", "%d" % found.get("evictions", 0)),
        ("items at the end", "%d" % items),
        ("idle kicks (slowloris)", "%d" % found.get("idle_kicks", 0)),
        ("peak RSS", "%.1f MiB" % (peak / MIB)),
        ("bound (-m + 150 B/item + 40 MiB)", "%.1f MiB" % (bound / MIB)),
        ("tracebacks in stderr", "%d" % err.count(b"Traceback")),
    ]
    for name, value in rows:
        print("%-34s %s" % (name, value))
    for sample in totals.error_samples:
        print("  error:", sample)
    write_results("soak", {"rows": dict(rows), "samples": samples, "memory": args.memory,
                           "errors": totals.error_samples})
    ok = peak <= bound and totals.errors == 0 and b"Traceback" not in err
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
