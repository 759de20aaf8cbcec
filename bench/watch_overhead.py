"""What ``watch`` costs pymcd: the same memcaslap load with no watcher, an idle one, a stalled one
and (for reference) one that reads every line.

- none:     nobody watches; the hooks cost one attribute test per request.
- idle:     a connection runs ``watch sysevents`` (no such events happen), so the event flags are
            set but no line is ever rendered.
- stalled:  ``watch fetchers mutations`` on a socket with a 4 KiB receive buffer that is never
            read: after its buffer fills, every event is dropped and counted (``skipped``).
- reading:  ``watch fetchers mutations`` read as fast as this process can; the price of
            actually streaming every request.

Three workloads, each against a fresh pymcd on core 0:

- pipelined: 100,000 sets (100-byte values, noreply) sent by this process in batches of 1,000
  on one connection: the cheapest requests pymcd serves, so the watcher's share is largest;
- set, mixed: memcaslap -T 1 on core 1, 32 connections, 64-byte keys, 100-byte values, 100% set
  or 90% get / 10% set, one request per round trip as real clients send them.

The machine is shared with other work, so wall-clock throughput swings by tens of percent from
one run to the next. The steadier figure is the server's own CPU time per request (``rusage``
from ``stats`` before and after the load): its inverse is the throughput the server can reach.
Both are reported as ratios to ``none``, the median over rounds of per-round ratios.

    python bench/watch_overhead.py [--time 4s] [--rounds 3]

Writes bench/results/watch-overhead-<timestamp>.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import MIXED_WORKLOAD, RESULTS, ROOT, free_port, stats_reply, wait_for  # noqa: E402
from throughput import run_client  # noqa: E402

MEMCASLAP_CONFIGS = {
    "set": "key\n64 64 1\nvalue\n100 100 1\ncmd\n0 1.0\n",
    "mixed": MIXED_WORKLOAD,
}
PIPELINED_SETS = 100_000
PIPELINE_BATCH = 1000
SCENARIOS = ("none", "idle", "stalled", "reading")


class Watcher:
    """A watch connection held open for one run."""

    def __init__(self, port: int, types: bytes, read: bool) -> None:
        self.sock = socket.socket()
        if not read:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(b"watch %s\r\n" % types)
        reply = self.sock.recv(4)
        if reply != b"OK\r\n":
            raise RuntimeError("watch refused: %r" % reply)
        self.received = 0
        self.reader: Optional[threading.Thread] = None
        if read:
            self.reader = threading.Thread(target=self._drain, daemon=True)
            self.reader.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = self.sock.recv(1 << 20)
            except OSError:
                return
            if not chunk:
                return
            self.received += len(chunk)

    def close(self) -> None:
        self.sock.close()


WATCHERS: Dict[str, Callable[[int], Optional[Watcher]]] = {
    "none": lambda port: None,
    "idle": lambda port: Watcher(port, b"sysevents", read=False),
    "stalled": lambda port: Watcher(port, b"fetchers mutations", read=False),
    "reading": lambda port: Watcher(port, b"fetchers mutations", read=True),
}


def server_stats(port: int) -> Dict[str, float]:
    """The log_* counters and the CPU seconds the server has used."""
    data = stats_reply(port)
    figures: Dict[str, float] = {
        name.decode(): int(value) for name, value in re.findall(rb"STAT (log_\w+) (\d+)", data)}
    figures["cpu_seconds"] = sum(
        float(value) for value in re.findall(rb"STAT rusage_(?:user|system) ([\d.]+)", data))
    return figures


def pipelined_sets(port: int) -> Dict[str, float]:
    """100,000 noreply sets in batches on one connection; ``version`` marks the end."""
    batches = [b"".join(b"set pipelined%d 0 0 100 noreply\r\n%s\r\n" % (start + i, b"v" * 100)
                        for i in range(PIPELINE_BATCH))
               for start in range(0, PIPELINED_SETS, PIPELINE_BATCH)]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        started = time.perf_counter()
        for batch in batches:
            sock.sendall(batch)
        sock.sendall(b"version\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            reply += sock.recv(100)
        elapsed = time.perf_counter() - started
    return {"ops": PIPELINED_SETS, "run_time": elapsed, "tps": PIPELINED_SETS / elapsed}


def memcaslap_load(workload: str, seconds: str) -> Callable[[int], Dict[str, float]]:
    def load(port: int) -> Dict[str, float]:
        with tempfile.NamedTemporaryFile("w", suffix=".cnf", delete=False) as handle:
            handle.write(MEMCASLAP_CONFIGS[workload])
        try:
            return run_client("memcaslap", port, seconds, False, False, handle.name)
        finally:
            os.unlink(handle.name)
    return load


def measure(scenario: str, load: Callable[[int], Dict[str, float]]) -> Dict[str, float]:
    port = free_port()
    server = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-m", "pymcd", "-p", str(port), "-U", "0",
         "-l", "127.0.0.1", "-m", "1024"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watcher = None
    try:
        wait_for(port)
        watcher = WATCHERS[scenario](port)
        cpu_before = server_stats(port)["cpu_seconds"]
        figures = load(port)
        figures.update(server_stats(port))
        figures["cpu_us_per_op"] = (figures["cpu_seconds"] - cpu_before) / figures["ops"] * 1e6
        return figures
    finally:
        if watcher is not None:
            watcher.close()
        server.terminate()
        server.wait(timeout=20)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time", default="4s", help="memcaslap run time per scenario")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    report: Dict[str, object] = {"time": args.time, "rounds": args.rounds, "workloads": {}}
    loads = {"pipelined": pipelined_sets}
    loads.update((name, memcaslap_load(name, args.time)) for name in MEMCASLAP_CONFIGS)
    for workload, load in loads.items():
        rounds: List[Dict[str, Dict[str, float]]] = []
        for number in range(args.rounds):
            order = SCENARIOS if number % 2 == 0 else tuple(reversed(SCENARIOS))
            rounds.append({scenario: measure(scenario, load) for scenario in order})
        tps_ratios = {
            scenario: statistics.median(r[scenario]["tps"] / r["none"]["tps"] for r in rounds)
            for scenario in SCENARIOS}
        # Capacity: the inverse of CPU per request, relative to nobody watching.
        capacity_ratios = {
            scenario: statistics.median(
                r["none"]["cpu_us_per_op"] / r[scenario]["cpu_us_per_op"] for r in rounds)
            for scenario in SCENARIOS}
        report["workloads"][workload] = {"rounds": rounds, "tps_ratio_to_none": tps_ratios,
                                         "capacity_ratio_to_none": capacity_ratios}
        print("%s workload, %d rounds:" % (workload, args.rounds))
        for scenario in SCENARIOS:
            cpu = statistics.median(r[scenario]["cpu_us_per_op"] for r in rounds)
            tps = statistics.median(r[scenario]["tps"] for r in rounds)
            ops = min(r[scenario]["ops"] for r in rounds)
            skipped = max(r[scenario].get("log_watcher_skipped", 0) for r in rounds)
            print("  %-8s %6.1f us CPU/op  capacity %.3f  | %7.0f ops/s  tps %.3f  "
                  "(min ops %d, skipped up to %d)"
                  % (scenario, cpu, capacity_ratios[scenario], tps, tps_ratios[scenario], ops,
                     skipped))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("watch-overhead-%s.json" % time.strftime("%Y%m%d-%H%M%S"))
    out.write_text(json.dumps(report, indent=2))
    print("written to %s" % out.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
