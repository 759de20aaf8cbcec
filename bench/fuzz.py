"""Fuzz a live pymcd over TCP, a unix socket and UDP with mutated text, meta and binary requests.

Inputs are generated in batches: a batch of stream inputs goes down one connection, which is
then half-closed so that the server answers what it can and hangs up; a UDP input is one
datagram. Between batches a fresh connection checks that the server still stores and returns a
value correctly. At the end the server's stderr must hold no traceback.

    python bench/fuzz.py [--inputs 1000000] [--batch 500] [--seed 1] [--protocols text,meta,binary,udp]

Prints inputs per protocol and the rate, and writes bench/results/fuzz-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List

from harness import free_port, wait_for, write_results

HEADER = struct.Struct(">BBHBBHIIQ")
UDP_HEADER = struct.Struct(">HHHH")
KEYS = [b"a", b"b", b"key", b"k" * 250, b"k" * 251, b"", b"\x00", b"\xff\xfe"]
NUMBERS = [b"0", b"1", b"-1", b"10", b"4294967295", b"4294967296", b"2147483647",
           b"18446744073709551615", b"x", b"", b"+5", b"1e3"]
TEXT_VERBS = [b"get", b"gets", b"gat", b"gats", b"set", b"add", b"replace", b"append",
              b"prepend", b"cas", b"incr", b"decr", b"delete", b"touch", b"flush_all",
              b"version", b"verbosity", b"stats", b"lru_crawler", b"slabs",
              b"cache_memlimit", b"bogus", b"GET"]  # quit and watch would end a batch at once
META_VERBS = [b"mg", b"ms", b"md", b"ma", b"mn", b"me"]
META_FLAGS = [b"v", b"k", b"f", b"t", b"c", b"s", b"q", b"O123", b"T10", b"F5", b"I", b"N0",
              b"S3", b"MS", b"MA", b"MP", b"D2", b"J1", b"b", b"h", b"l", b"E99", b"R5", b"Z"]


def mutate(rng: random.Random, data: bytes) -> bytes:
    """Flip, drop, duplicate or truncate a few bytes (most inputs stay nearly well-formed)."""
    data = bytearray(data)
    for _ in range(rng.choice((0, 0, 1, 1, 2, 4))):
        if not data:
            break
        where = rng.randrange(len(data))
        action = rng.randrange(4)
        if action == 0:
            data[where] = rng.randrange(256)
        elif action == 1:
            del data[where]
        elif action == 2:
            data[where:where] = data[where:where + rng.randrange(1, 8)]
        else:
            del data[where:]
    return bytes(data)


def text_input(rng: random.Random) -> bytes:
    verb = rng.choice(TEXT_VERBS)
    words = [verb] + [rng.choice(KEYS + NUMBERS) for _ in range(rng.randrange(0, 6))]
    line = b" ".join(words) + rng.choice([b"\r\n", b"\r\n", b"\n", b"", b" noreply\r\n"])
    if verb in (b"set", b"add", b"replace", b"append", b"prepend", b"cas"):
        size = rng.choice((0, 1, 5, 100, 3000))
        line = b"%s %s 0 0 %d\r\n%s\r\n" % (verb, rng.choice(KEYS), size, b"v" * size)
    return mutate(rng, line)


def meta_input(rng: random.Random) -> bytes:
    verb = rng.choice(META_VERBS)
    flags = rng.sample(META_FLAGS, rng.randrange(0, 6))
    key = rng.choice(KEYS)
    if verb == b"ms":
        size = rng.choice((0, 2, 50))
        line = b"ms %s %d %s\r\n%s\r\n" % (key, size, b" ".join(flags), b"m" * size)
    else:
        line = b" ".join([verb, key] + flags) + b"\r\n"
    return mutate(rng, line)


def binary_input(rng: random.Random) -> bytes:
    key = rng.choice(KEYS[:5])
    extras = rng.choice([b"", b"\0" * 4, b"\0" * 8, struct.pack(">QQI", 1, 0, 0)])
    value = b"x" * rng.choice((0, 0, 3, 200))
    bodylen = len(key) + len(extras) + len(value)
    if rng.random() < 0.1:
        bodylen = rng.choice((0, 1, 2**31, 2**32 - 1, bodylen + 3))
    magic = 0x80 if rng.random() < 0.95 else rng.randrange(256)
    header = HEADER.pack(magic, rng.randrange(0x26) if rng.random() < 0.9 else rng.randrange(256),
                         len(key), len(extras), 0, 0, bodylen & 0xFFFFFFFF,
                         rng.randrange(2**32), 0)
    return mutate(rng, header + extras + key + value)


GENERATORS: Dict[str, Callable[[random.Random], bytes]] = {
    "text": text_input, "meta": meta_input, "binary": binary_input,
}


def stream_batch(connect: Callable[[], socket.socket], inputs: List[bytes]) -> int:
    """Send a batch down one connection, half-close it, read until the server hangs up;
    returns the bytes sent."""
    sock = connect()
    sock.settimeout(10)
    data = b"".join(inputs)
    try:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(1 << 16):
            pass
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server hung up on garbage, as it may
    finally:
        sock.close()
    return len(data)


def server_bytes_read(connect: Callable[[], socket.socket]) -> int:
    with connect() as sock:
        sock.settimeout(10)
        sock.sendall(b"stats\r\n")
        reply = b""
        while not reply.endswith(b"END\r\n"):
            reply += sock.recv(1 << 16)
    return int(reply.split(b"STAT bytes_read ")[1].split(b"\r\n")[0])


def udp_batch(address, inputs: List[bytes], rng: random.Random) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for payload in inputs:
            header = UDP_HEADER.pack(rng.randrange(65536), 0, 1, 0) if rng.random() < 0.9 \
                else UDP_HEADER.pack(*(rng.randrange(4) for _ in range(4)))
            try:
                sock.sendto(header + payload, address)
            except BlockingIOError:
                pass
            try:
                while sock.recv(65536):
                    pass
            except BlockingIOError:
                pass


def healthy(connect: Callable[[], socket.socket], rng: random.Random) -> bool:
    """A fresh connection stores and reads back a random value, byte for byte. A fuzzed
    ``flush_all <delay>`` may have scheduled a flush that hides new items for a while, so a
    miss after STORED is healthy too; anything else (an error, a partial reply) is not."""
    value = os.urandom(rng.randrange(1, 2000))
    expected = b"STORED\r\nVALUE fuzzcheck 7 %d\r\n%s\r\nEND\r\n" % (len(value), value)
    with connect() as sock:
        sock.settimeout(10)
        sock.sendall(b"set fuzzcheck 7 0 %d\r\n%s\r\nget fuzzcheck\r\n" % (len(value), value))
        received = b""
        while len(received) < len(expected) and received != b"STORED\r\nEND\r\n":
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            received += chunk
    return received in (expected, b"STORED\r\nEND\r\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="inputs per protocol")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--protocols", default="text,meta,binary,udp")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    port = free_port()
    folder = tempfile.mkdtemp(prefix="pymcd-fuzz-")
    unix_path = os.path.join(folder, "mc.sock")
    stderr_path = os.path.join(folder, "stderr")
    command = [sys.executable, "-m", "pymcd", "-p", str(port), "-U", str(port), "-l",
               "127.0.0.1", "--port", "unix:%s" % unix_path, "-m", "64", "-c", "4096"]
    stderr = open(stderr_path, "wb")
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    wait_for(port)

    def tcp() -> socket.socket:
        return socket.create_connection(("127.0.0.1", port))

    def unix() -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(unix_path)
        return sock

    counts: Dict[str, int] = {}
    seconds: Dict[str, float] = {}
    read_share: Dict[str, float] = {}
    failures = 0
    try:
        for protocol in args.protocols.split(","):
            started = time.perf_counter()
            read_before = server_bytes_read(tcp)
            sent = sent_bytes = 0
            while sent < args.inputs:
                size = min(args.batch, args.inputs - sent)
                if protocol == "udp":
                    inputs = [rng.choice(list(GENERATORS.values()))(rng) for _ in range(size)]
                    udp_batch(("127.0.0.1", port), inputs, rng)
                else:
                    inputs = [GENERATORS[protocol](rng) for _ in range(size)]
                    try:
                        sent_bytes += stream_batch(rng.choice((tcp, unix)), inputs)
                    except socket.timeout:
                        failures += 1  # the server neither answered nor hung up for 10 s
                sent += size
                if server.poll() is not None or not healthy(rng.choice((tcp, unix)), rng):
                    failures += 1
                    if server.poll() is not None:
                        break
            counts[protocol] = sent
            seconds[protocol] = time.perf_counter() - started
            # The share of the stream bytes the server read before it hung up on a batch (the
            # rest of a batch after a close is never parsed); health checks count a little.
            if sent_bytes:
                read_share[protocol] = (server_bytes_read(tcp) - read_before) / sent_bytes
            print("%-7s %9d inputs in %7.1f s: %8.0f inputs/s%s" % (
                protocol, sent, seconds[protocol], sent / seconds[protocol],
                ", %.0f%% of bytes read" % (100 * read_share[protocol])
                if protocol in read_share else ""), flush=True)
    finally:
        alive = server.poll() is None
        server.terminate()
        server.wait(timeout=30)
        stderr.close()
    log = open(stderr_path, "rb").read()
    tracebacks = log.count(b"Traceback")
    print("server alive throughout: %s, failed health checks: %d, tracebacks: %d, exit code %s"
          % (alive, failures, tracebacks, server.returncode))
    write_results("fuzz", {"inputs": counts, "seconds": seconds, "read_share": read_share, "failures": failures,
                           "tracebacks": tracebacks, "alive": alive, "seed": args.seed,
                           "batch": args.batch, "stderr_tail": log[-2000:].decode("latin-1")})
    return 0 if alive and not failures and not tracebacks else 1


if __name__ == "__main__":
    sys.exit(main())
