"""Soak: mixed load on pymcd with hostile clients mixed in, RSS held to -m + 150 B/item + 40 MiB.

Well-behaved clients (text, meta and binary) set and get values derived from their keys, so
every hit is checked byte for byte, over a keyspace about three times -m, for the whole of
--time; at least --writes-factor x -m of values must have been written by then. Meanwhile,
hostile clients: stalled readers (pipelined ``get``, ``mg ... v`` and binary GETK of a 500 KB
value, never read, a new one every 20 s), slowloris clients trickling a byte a second (closed
by ``-o idle_timeout``), a garbage client sending bench/fuzz.py's mutated requests, and a
flood opening and dropping 200 connections at a time. A probe times ``version`` throughout.

Every second the server's RSS and ``curr_items`` are sampled and each sample is checked
against that moment's bound. The server runs pinned to one core and the load to the other
(``--server-cpu``, ``--load-cpu``), as the other benchmarks do.

    python bench/soak.py [--time 30m] [--memory 256] [--writes-factor 10]

The garbage client leaves out an operator's commands (``flush_all``, ``cache_memlimit``,
``verbosity`` and their binary opcodes): a flush would hide the well-behaved clients' values,
a memory limit would move the bound, and traces would flood stderr; none is a client's way to
exhaust memory. Prints a table and writes bench/results/soak-<timestamp>.json; exits 1 if a
sample passed the bound, fewer than the factor's writes were made, any well-behaved request got
a wrong answer, a hostile client was refused or stalled the server, or the server logged a
traceback. (The issue's run is 30 minutes; anything CI runs uses less.)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

from harness import free_port, wait_for, write_results

import fuzz
from pymcd.protocol.binary import (HEADER, RESPONSE_MAGIC, BinaryRequest, Opcode, Status,
                                   pack_request)
from pymcd.slap.settings import parse_duration

MIB = 1024 * 1024
BIG_VALUE = 500_000
MEAN_VALUE = 2150  # 100 to 4100 bytes, uniform
OPERATOR_WORDS = (b"flush_all", b"cache_memlimit", b"verbosity")
OPERATOR_OPCODES = (Opcode.FLUSH, Opcode.FLUSHQ, Opcode.VERBOSITY)
STALL_SECONDS = 20.0


def value_for(key: bytes, size: int) -> bytes:
    seed = hashlib.blake2b(key, digest_size=16).digest()
    return (seed * (size // len(seed) + 1))[:size]


def size_for(key: bytes) -> int:
    return 100 + int.from_bytes(hashlib.blake2b(key, digest_size=2).digest(), "big") % 4001


def rss(pid: int) -> int:
    with open("/proc/%d/status" % pid) as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


class Reader:
    """Replies off one socket: up to a terminator, or an exact byte count."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buffer += chunk

    def until(self, end: bytes) -> bytes:
        while True:
            at = self.buffer.find(end)
            if at >= 0:
                return self.take(at + len(end))
            self._fill()

    def exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            self._fill()
        return self.take(count)

    def take(self, count: int) -> bytes:
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data


class Tally:
    """One client type's operations and errors (threads of a type share one)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.threads = self.ops = self.errors = 0
        self.samples: List[str] = []

    def add(self, ops: int = 1) -> None:
        with self.lock:
            self.ops += ops

    def error(self, what: str) -> None:
        with self.lock:
            self.errors += 1
            if len(self.samples) < 5:
                self.samples.append(what)


class Written:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bytes = self.sets = self.gets = self.hits = 0


def connect(port: int, timeout: float = 30.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


# A well-behaved protocol is (set, get): each sends one request and returns True for a good
# reply (get: True for a hit, False for a miss), raising ValueError on a wrong one.
def stored_with(sock, reader, request: bytes, answer: bytes, key: bytes) -> None:
    """Send a one-line storage request and check its one-line answer."""
    sock.sendall(request)
    reply = reader.until(b"\r\n")
    if reply != answer:
        raise ValueError("%s %r: %r" % (request.split(b" ", 1)[0].decode(), key, reply[:60]))


def text_set(sock, reader, key, value):
    stored_with(sock, reader, b"set %s 0 0 %d\r\n%s\r\n" % (key, len(value), value),
                b"STORED\r\n", key)


def text_get(sock, reader, key, value):
    sock.sendall(b"get %s\r\n" % key)
    reply = reader.until(b"END\r\n")
    if reply == b"END\r\n":
        return False
    if reply != b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (key, len(value), value):
        raise ValueError("get %r: %r" % (key, reply[:60]))
    return True


def meta_set(sock, reader, key, value):
    stored_with(sock, reader, b"ms %s %d\r\n%s\r\n" % (key, len(value), value), b"HD\r\n", key)


def meta_get(sock, reader, key, value):
    sock.sendall(b"mg %s v\r\n" % key)
    head = reader.until(b"\r\n")
    if head == b"EN\r\n":
        return False
    if head != b"VA %d\r\n" % len(value) or reader.exactly(len(value) + 2) != value + b"\r\n":
        raise ValueError("mg %r: %r" % (key, head[:60]))
    return True


def binary_request(opcode: int, key: bytes, extras: bytes = b"", value: bytes = b"") -> bytes:
    return pack_request(BinaryRequest(opcode, extras, key, value))


def binary_reply(reader) -> Tuple[int, bytes]:
    header = HEADER.unpack(reader.exactly(HEADER.size))
    if header[0] != RESPONSE_MAGIC:
        raise ValueError("binary reply magic %#x" % header[0])
    return header[5], reader.exactly(header[6])


def binary_set(sock, reader, key, value):
    sock.sendall(binary_request(Opcode.SET, key, struct.pack(">II", 0, 0), value))
    status, body = binary_reply(reader)
    if status != Status.SUCCESS:
        raise ValueError("binary set %r: status %d %r" % (key, status, body[:60]))


def binary_get(sock, reader, key, value):
    sock.sendall(binary_request(Opcode.GET, key))
    status, body = binary_reply(reader)
    if status == Status.KEY_ENOENT:
        return False
    if status != Status.SUCCESS or body != b"\0\0\0\0" + value:
        raise ValueError("binary get %r: status %d %r" % (key, status, body[:60]))
    return True


WELL_BEHAVED = {"text": (text_set, text_get), "meta": (meta_set, meta_get),
                "binary": (binary_set, binary_get)}


def well_behaved(port: int, protocol: str, keyspace: int, written: Written, tally: Tally,
                 stop: threading.Event) -> None:
    store, fetch = WELL_BEHAVED[protocol]
    rng = random.Random()
    sock = connect(port)
    reader = Reader(sock)
    try:
        while not stop.is_set():
            key = b"soak:%d" % rng.randrange(keyspace)
            value = value_for(key, size_for(key))
            try:
                if rng.random() < 0.5:
                    store(sock, reader, key, value)
                    with written.lock:
                        written.sets += 1
                        written.bytes += len(value)
                else:
                    hit = fetch(sock, reader, key, value)
                    with written.lock:
                        written.gets += 1
                        written.hits += hit
                tally.add()
            except ValueError as error:
                tally.error(str(error))
    except (OSError, ConnectionError) as error:
        tally.error("connection: %r" % error)
    finally:
        sock.close()


STALLED_REQUESTS = {
    "text": lambda key: b"get %s\r\n" % key,
    "meta": lambda key: b"mg %s v\r\n" % key,
    "binary": lambda key: binary_request(Opcode.GETK, key),
}


def stalled_reader(port: int, tally: Tally, stop: threading.Event) -> None:
    """A connection per protocol in turn pipelines requests for a big value until the server
    stops reading it, holds it STALL_SECONDS without reading, and hangs up."""
    value = b"s" * BIG_VALUE
    kinds = sorted(STALLED_REQUESTS)
    turn = 0
    while not stop.is_set():
        kind = kinds[turn % len(kinds)]
        turn += 1
        key = b"soak:big:%s" % kind.encode()
        try:
            with connect(port) as setup:
                setup.sendall(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(value), value))
                if Reader(setup).until(b"\r\n") != b"STORED\r\n":
                    tally.error("big set refused")
            sock = connect(port)
        except (OSError, ConnectionError) as error:
            tally.error("connect: %r" % error)
            stop.wait(1.0)
            continue
        sock.settimeout(0.5)
        chunk = STALLED_REQUESTS[kind](key) * 1000
        deadline = time.time() + STALL_SECONDS
        try:
            while time.time() < deadline and not stop.is_set():
                sock.sendall(chunk)
        except OSError:
            pass  # the server stopped reading this connection, as it should
        tally.add()
        stop.wait(max(0.0, deadline - time.time()))
        sock.close()


def slowloris(port: int, tally: Tally, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            sock = connect(port)
        except OSError as error:
            tally.error("connect: %r" % error)
            stop.wait(1.0)
            continue
        try:
            for byte in b"get " + b"x" * 200:
                if stop.wait(1.0):
                    break
                sock.sendall(bytes([byte]))
        except OSError:
            pass  # closed by idle_timeout
        tally.add()
        sock.close()


def client_input(rng: random.Random) -> bytes:
    """One of bench/fuzz.py's mutated requests that is not an operator's command."""
    while True:
        data = rng.choice(list(fuzz.GENERATORS.values()))(rng)
        if any(word in data for word in OPERATOR_WORDS):
            continue
        if data[:1] == b"\x80" and len(data) > 1 and data[1] in OPERATOR_OPCODES:
            continue
        return data


def garbage(port: int, tally: Tally, stop: threading.Event) -> None:
    rng = random.Random(7)
    while not stop.is_set():
        try:
            fuzz.stream_batch(lambda: connect(port, 10), [client_input(rng) for _ in range(50)])
            tally.add(50)
        except socket.timeout:
            tally.error("the server neither answered nor hung up for 10 s")
        except OSError:
            tally.add(50)  # a reset after garbage is the server's right
        stop.wait(0.05)


def flood(port: int, tally: Tally, stop: threading.Event) -> None:
    while not stop.is_set():
        socks = []
        try:
            for _ in range(200):
                socks.append(connect(port, 10))
        except OSError as error:
            tally.error("connect: %r" % error)
        for sock in socks:
            sock.close()
        tally.add(len(socks))
        stop.wait(0.2)


class Probe:
    """``version`` round trips on one connection, every 50 ms."""

    def __init__(self) -> None:
        self.latencies: List[float] = []

    def run(self, port: int, tally: Tally, stop: threading.Event) -> None:
        try:
            with connect(port, 10) as sock:
                reader = Reader(sock)
                while not stop.wait(0.05):
                    started = time.perf_counter()
                    sock.sendall(b"version\r\n")
                    if not reader.until(b"\r\n").startswith(b"VERSION "):
                        tally.error("version")
                    self.latencies.append(time.perf_counter() - started)
                    tally.add()
        except (OSError, ConnectionError) as error:
            tally.error("probe: %r" % error)


def server_stats(sock: socket.socket, reader: Reader) -> Dict[str, int]:
    sock.sendall(b"stats\r\n")
    found = {}
    for line in reader.until(b"END\r\n").split(b"\r\n"):
        parts = line.split(b" ")
        if len(parts) == 3 and parts[2].isdigit():
            found[parts[1].decode()] = int(parts[2])
    return found


def bound_for(memory: int, items: int) -> int:
    return memory * MIB + 150 * items + 40 * MIB


def percentile(values: List[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else 0.0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time", type=parse_duration, default=1800.0,
                        help="how long: seconds, or 90s / 30m / 1h")
    parser.add_argument("--memory", type=int, default=256, help="-m in MiB")
    parser.add_argument("--clients", type=int, default=2,
                        help="well-behaved clients per protocol (text, meta, binary)")
    parser.add_argument("--slowloris", type=int, default=4)
    parser.add_argument("--writes-factor", type=float, default=10.0)
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--load-cpu", type=int, default=1)
    args = parser.parse_args(argv)
    port = free_port()
    # stderr to a file: an unread pipe would block the server.
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(
        ["taskset", "-c", args.server_cpu, sys.executable, "-m", "pymcd", "-p", str(port),
         "-U", "0", "-l", "127.0.0.1", "-m", str(args.memory), "-c", "4096",
         "-o", "idle_timeout=5"],
        stdout=subprocess.DEVNULL, stderr=log)
    os.sched_setaffinity(0, {args.load_cpu})
    wait_for(port)
    keyspace = 3 * args.memory * MIB // MEAN_VALUE
    written = Written()
    stop = threading.Event()
    probe = Probe()
    tallies: Dict[str, Tally] = {}
    threads = []

    def spawn(name: str, target: Callable, *extra) -> None:
        """A thread running ``target(port, *extra, tally, stop)``."""
        tally = tallies.setdefault(name, Tally(name))
        tally.threads += 1
        threads.append(threading.Thread(target=target, args=(port,) + extra + (tally, stop),
                                        daemon=True))

    for protocol in sorted(WELL_BEHAVED):
        for n in range(args.clients):
            spawn("well-behaved %s" % protocol, well_behaved, protocol, keyspace, written)
    spawn("probe (version)", probe.run)
    spawn("stalled reader", stalled_reader)
    for _ in range(args.slowloris):
        spawn("slowloris", slowloris)
    spawn("garbage (fuzz.py)", garbage)
    spawn("flood (200 conns)", flood)
    for thread in threads:
        thread.start()
    started = time.time()
    samples = []
    worst = None  # the sample closest to (or furthest past) its bound
    stats_sock = connect(port)
    stats_reader = Reader(stats_sock)
    while time.time() - started < args.time:
        time.sleep(1.0)
        current = rss(server.pid)
        items = server_stats(stats_sock, stats_reader)["curr_items"]
        sample = (round(time.time() - started, 1), current, items, bound_for(args.memory, items))
        samples.append(sample)
        if worst is None or sample[3] - sample[1] < worst[3] - worst[1]:
            worst = sample
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    found = server_stats(stats_sock, stats_reader)
    stats_sock.close()
    server.terminate()
    server.wait(timeout=30)
    log.seek(0)
    err = log.read()
    elapsed = time.time() - started
    peak = max(samples, key=lambda sample: sample[1])
    over = [sample for sample in samples if sample[1] > sample[3]]
    factor = written.bytes / (args.memory * MIB)
    latencies = probe.latencies
    rows = [
        ("run time", "%.0f s (-m %d, keyspace %d)" % (elapsed, args.memory, keyspace)),
        ("values written", "%.0f MiB (%.1fx -m)" % (written.bytes / MIB, factor)),
        ("sets / gets / hits", "%d / %d / %d" % (written.sets, written.gets, written.hits)),
        ("evictions", "%d" % found.get("evictions", 0)),
        ("items at the end", "%d" % found.get("curr_items", 0)),
        ("idle kicks (slowloris)", "%d" % found.get("idle_kicks", 0)),
        ("peak RSS", "%.1f MiB at %.0f s (%d items, bound %.1f MiB)"
         % (peak[1] / MIB, peak[0], peak[2], peak[3] / MIB)),
        ("least headroom", "%.1f MiB at %.0f s (RSS %.1f MiB, bound %.1f MiB)"
         % ((worst[3] - worst[1]) / MIB, worst[0], worst[1] / MIB, worst[3] / MIB)),
        ("samples over the bound", "%d of %d" % (len(over), len(samples))),
        ("version p50 / p99 / max", "%.2f / %.2f / %.2f ms" % (
            percentile(latencies, 0.5) * 1e3, percentile(latencies, 0.99) * 1e3,
            max(latencies, default=0) * 1e3)),
        ("tracebacks in stderr", "%d" % err.count(b"Traceback")),
    ]
    for name, value in rows:
        print("%-26s %s" % (name, value))
    print()
    print("%-26s %7s %12s %7s" % ("client type", "threads", "operations", "errors"))
    for tally in tallies.values():
        print("%-26s %7d %12d %7d" % (tally.name, tally.threads, tally.ops, tally.errors))
        for sample in tally.samples:
            print("    error:", sample)
    write_results("soak", {
        "rows": dict(rows), "memory": args.memory, "time": args.time,
        "clients": {t.name: {"threads": t.threads, "ops": t.ops, "errors": t.errors,
                             "samples": t.samples} for t in tallies.values()},
        "samples": [{"t": t, "rss": r, "items": i, "bound": b} for t, r, i, b in samples]})
    errors = sum(tally.errors for tally in tallies.values())
    ok = (not over and errors == 0 and b"Traceback" not in err
          and factor >= args.writes_factor)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
