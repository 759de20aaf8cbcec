"""Throughput of pymcd against memcached -t 1 and the bare-Twisted ceiling, in one run.

Each server is pinned to core 0 and the load generator (Debian's memcaslap, i.e. memaslap, or
pymcd's own pymcd-slap with --client pymcd-slap) to core 1, one server at a time, with the same
workload: 90% get / 10% set, 64-byte keys, 100-byte values, 32 concurrent connections. The
machines are noisy, so the figures that matter are the ratios within one run. ``pymcd`` runs on
its lean reactor (its default); ``pymcd-stock`` is the same server on Twisted's stock epoll
reactor, which the ceiling also uses.

    python bench/throughput.py [--time 10s] [--binary] [--udp] [--rounds 1]
                               [--client memcaslap|pymcd-slap] [--baseline SRC]
                               [--servers a,b,...]

``--baseline SRC`` adds ``pymcd-baseline``: pymcd imported from another source tree (say an
export of main: ``git archive main | tar -x -C /tmp/base``), to measure a change before and
after in one run. ``--servers`` also knows ``pymcd-http`` (pymcd with ``--http``, nobody
looking) and ``pymcd-scraped`` (the same with /metrics fetched every 100 ms during the load).

Writes bench/results/throughput-<protocol>-<timestamp>.json and prints a table.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import urllib.request
from typing import Dict, List, Optional

from harness import (
    MIXED_WORKLOAD,
    ROOT,
    free_port,
    process_cpu_seconds,
    summary_figures,
    wait_for,
    write_results,
)

CEILING = ROOT.parent / "shared" / "bench" / "ceiling_twisted.py"


def server_commands(port: int, udp: bool, binary: bool,
                    baseline: Optional[str] = None, http_port: int = 0) -> Dict[str, List[str]]:
    udp_port = str(port) if udp else "0"
    pymcd = [sys.executable, "-m", "pymcd", "-p", str(port), "-U", udp_port,
             "-l", "127.0.0.1", "-t", "1"]
    commands = {
        "pymcd": pymcd,
        # With the web site on (--http): nobody looking, and a scraper polling /metrics.
        "pymcd-http": pymcd + ["--http", str(http_port)],
        "pymcd-scraped": pymcd + ["--http", str(http_port)],
        # The same pymcd on Twisted's stock reactor, like the ceiling.
        "pymcd-stock": [sys.executable, "-m", "pymcd", "-p", str(port), "-U", udp_port,
                        "-l", "127.0.0.1", "-t", "1", "--stock-reactor"],
        "memcached": [shutil.which("memcached") or "memcached", "-p", str(port), "-U", udp_port,
                      "-l", "127.0.0.1", "-t", "1", "-u", "root"],
    }
    if baseline:
        commands["pymcd-baseline"] = ["env", "PYTHONPATH=" + baseline] + commands["pymcd"]
    # The ceiling speaks only the text protocol over TCP.
    if not udp and not binary and CEILING.exists():
        commands["ceiling"] = [sys.executable, str(CEILING), str(port)]
    return commands


class Poller(threading.Thread):
    """Fetches a URL every ``interval`` seconds until stopped (a Prometheus scraping at 10 Hz)."""

    def __init__(self, url: str, interval: float) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.interval = interval
        self.stopped = threading.Event()
        self.fetches = 0

    def run(self) -> None:
        os.sched_setaffinity(threading.get_native_id(), {1})  # the load generator's core
        while not self.stopped.wait(self.interval):
            with urllib.request.urlopen(self.url, timeout=5) as response:
                response.read()
            self.fetches += 1

    def stop(self) -> int:
        self.stopped.set()
        self.join()
        return self.fetches


# Servers measured with something watching them over --http, and what that is.
OBSERVERS = {"pymcd-scraped": lambda http_port: Poller(
    "http://127.0.0.1:%d/metrics" % http_port, 0.1)}

CLIENTS = {"memcaslap": ["memcaslap"],
           "pymcd-slap": [sys.executable, "-m", "pymcd.slap", "--no-progress"]}


def run_client(client: str, port: int, seconds: str, binary: bool, udp: bool,
               config: str) -> Dict[str, float]:
    """Either load generator: pymcd-slap takes memaslap's options and prints its summary."""
    command = ["taskset", "-c", "1"] + CLIENTS[client] + [
        "-s", "127.0.0.1:%d" % port, "-T", "1", "-c", "32", "-t", seconds, "-F", config]
    if binary:
        command.append("-B")
    if udp:
        command.append("-U")
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    figures = summary_figures(output)
    if figures is None:
        raise RuntimeError("%s produced no summary:\n%s" % (client, output[-2000:]))
    for counter in ("get_misses", "verify_failed", "packet_drop", "udp_timeout"):
        found = re.search(r"%s: (\d+)" % counter, output)
        if found:
            figures[counter] = int(found.group(1))
    return figures


def measure(name: str, command: List[str], args: argparse.Namespace, config: str,
            port: int, http_port: int) -> Dict[str, float]:
    process = subprocess.Popen(["taskset", "-c", "0"] + command, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    observer = None
    try:
        wait_for(port)
        if name in OBSERVERS:
            wait_for(http_port)
            observer = OBSERVERS[name](http_port)
            observer.start()
        cpu_before = process_cpu_seconds(process.pid)
        figures = run_client(args.client, port, args.time, args.binary, args.udp, config)
        # The server's own CPU per request is steadier than ops/s on a shared machine; its
        # inverse is the throughput the server could reach.
        figures["cpu_us_per_op"] = (process_cpu_seconds(process.pid) - cpu_before) \
            / figures["ops"] * 1e6
        if observer is not None:
            figures["observer_fetches"] = observer.stop()
        return figures
    finally:
        process.terminate()
        process.wait(timeout=20)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time", default="10s", help="memcaslap run time per server (10s, 1m)")
    parser.add_argument("--binary", action="store_true", help="binary protocol (memcaslap -B)")
    parser.add_argument("--udp", action="store_true", help="UDP (memcaslap -U)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole comparison")
    parser.add_argument("--servers", default="pymcd,pymcd-stock,memcached,ceiling")
    parser.add_argument("--baseline", help="source tree of a pymcd to compare (pymcd-baseline)")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="memcaslap",
                        help="load generator (pymcd-slap takes the same options)")
    args = parser.parse_args(argv)
    if args.client == "memcaslap" and shutil.which("memcaslap") is None:
        print("memcaslap not found: apt-get install libmemcached-tools", file=sys.stderr)
        return 2
    wanted = args.servers.split(",")
    if args.baseline and "pymcd-baseline" not in wanted:
        wanted.append("pymcd-baseline")
    protocol = "udp" if args.udp else ("binary" if args.binary else "ascii")
    with tempfile.NamedTemporaryFile("w", suffix=".cnf", delete=False) as handle:
        handle.write(MIXED_WORKLOAD)
        config = handle.name
    rounds: List[Dict[str, Dict[str, float]]] = []
    try:
        for round_number in range(args.rounds):
            figures: Dict[str, Dict[str, float]] = {}
            # Alternate the order so that drift on the machine does not favour one server.
            for name in wanted if round_number % 2 == 0 else list(reversed(wanted)):
                port, http_port = free_port(), free_port()
                command = server_commands(port, args.udp, args.binary, args.baseline,
                                          http_port).get(name)
                if command is not None:
                    figures[name] = measure(name, command, args, config, port, http_port)
            rounds.append(figures)
    finally:
        os.unlink(config)
    summary = {name: sum(r[name]["tps"] for r in rounds) / len(rounds) for name in rounds[0]}
    # Each round measures the servers back to back, so a ratio within a round is the least
    # disturbed figure on a noisy machine; the median over rounds is what is reported.
    ratios, capacity = {}, {}
    for a, b in (("pymcd", "pymcd-baseline"), ("pymcd", "ceiling"), ("pymcd-stock", "ceiling"),
                 ("pymcd", "memcached"), ("pymcd-stock", "memcached"), ("ceiling", "memcached"),
                 ("pymcd-http", "pymcd"), ("pymcd-scraped", "pymcd"),
                 ("pymcd-scraped", "pymcd-http")):
        if a in summary and b in summary:
            ratios["%s/%s" % (a, b)] = statistics.median(r[a]["tps"] / r[b]["tps"] for r in rounds)
            capacity["%s/%s" % (a, b)] = statistics.median(
                r[b]["cpu_us_per_op"] / r[a]["cpu_us_per_op"] for r in rounds)
    report = {"protocol": protocol, "time": args.time, "client": args.client,
              "workload": "90% get / 10% set, 64 B keys, 100 B values, 32 connections, servers "
              "on core 0, " + args.client + " -T 1 on core 1",
              "rounds": rounds, "mean_tps": summary, "ratios": ratios,
              "capacity_ratios": capacity}
    client = "" if args.client == "memcaslap" else "-" + args.client
    out = write_results("throughput-%s%s" % (protocol, client), report)
    print("protocol: %s, client: %s, %d round(s) of %s"
          % (protocol, args.client, args.rounds, args.time))
    for name, tps in summary.items():
        print("  %-10s %10.0f ops/s" % (name, tps))
    for name, ratio in ratios.items():
        print("  %-26s ops/s %.3f, capacity (1 / server CPU per op) %.3f (medians of per-round "
              "ratios)" % (name, ratio, capacity[name]))
    print("written to %s" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
