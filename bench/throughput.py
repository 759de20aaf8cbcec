"""Throughput of pymcd against memcached -t 1, every workload and runtime in one run.

Each server is pinned to core 0 and the load generator (Debian's memcaslap, i.e. memaslap, or
pymcd's own pymcd-slap with --client pymcd-slap) to core 1, one server at a time, 32 concurrent
connections. Workloads (``--workloads``):

- ``ascii``: 90% get / 10% set, 64-byte keys, 100-byte values, text protocol;
- ``binary``: the same over the binary protocol (memcaslap -B);
- ``udp``: the same over UDP (memcaslap -U);
- ``multiget``: the same with 20-key multi-gets (memcaslap -d 20), counted in keys/s from the
  server's own ``cmd_get + cmd_set``;
- ``4k``: the ascii mix with 4 KB values.

Servers (``--servers``): ``memcached`` (-t 1), ``pymcd`` (the script), ``twistd`` (``twistd -n
pymcd``, as the README starts it), optionally ``pymcd-stock`` (--stock-reactor) and ``ceiling``
(a bare Twisted dict server, ascii only). ``--python pypy3`` adds each pymcd server once more on
that interpreter (needs a venv of it with pymcd installed, e.g. ``--python v/bin/pypy3``); a
PyPy server is first warmed up for ``--warmup`` under the same load. The machines are noisy, so
the figures that matter are the ratios to memcached within one round; the report gives their
median over rounds.

    python bench/throughput.py [--time 10s] [--rounds 2] [--workloads ascii,binary,udp,multiget,4k]
                               [--servers memcached,pymcd,twistd] [--python pypy3] [--warmup 20s]
                               [--client memcaslap|pymcd-slap] [--baseline SRC]

``--baseline SRC`` adds ``pymcd-baseline``: the pymcd script importing pymcd from another source
tree (say an export of main: ``git archive main | tar -x -C /tmp/base``), to measure a change
before and after in one run. ``--servers`` also knows ``pymcd-http`` (pymcd with ``--http``,
nobody looking), ``pymcd-scraped`` (the same with /metrics fetched every 100 ms during the
load) and ``pymcd-dashboard`` (the same with the dashboard's event stream read during the
load). Besides ops/s, each server's own CPU per operation is recorded: its inverse ("capacity")
is steadier than ops/s on a shared machine.

``--twins none,scraper,dashboard`` measures what an observer costs more finely than separate runs
can on a machine whose speed drifts by a third within minutes: two identical ``pymcd --http``
share core 0, each under its own ascii load from core 1, and the observer watches one of them,
changing sides every ``--window`` seconds (each holds items in some twenty slab classes
besides the load's, ``/metrics``'s dearer case); ops are counted from each server's own
``cmd_get + cmd_set`` at the windows' edges. Both twins live through the same moments of the
machine, so its drift cancels in the ratio of their ops/s. The figure is that ratio (observed
over unobserved) per pair of windows, its median and mean over ``--pairs`` pairs. A twin gets
half the core, so an observer costing a share ``c`` of a core shows as about ``2c`` fewer ops/s
here, twice what it costs a server with a core to itself: the figure is an upper bound.
``none`` watches nobody: the control, whose ratio shows the method's own spread. Two workloads
``A/B`` instead (``ascii/binary``, ``ascii/udp``) give twin A one and twin B the other, nobody
observing: B's ops/s over A's is their ratio of cost per request, measured at the same moments.
A side may name its server, ``memcached:ascii/pymcd:ascii`` (``pymcd@pypy:ascii`` with
``--python pypy3``, warmed up for ``--warmup`` first): at equal shares of the core that is the
ratio of the two servers' CPU per request, which a lone memcached does not show when the load
generator, not the server, is what limits it. ``pymcd-baseline:ascii/pymcd:ascii`` with
``--baseline SRC`` weighs a change against the tree it started from, the same way.

Writes bench/results/throughput-<timestamp>.json and prints a table.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from typing import Dict, List, Optional

from pymcd.slap.settings import parse_duration

from harness import (ROOT, fill_slab_classes, free_port, process_cpu_seconds, stats_reply,
                     summary_figures, wait_for, write_results)

CEILING = ROOT.parent / "shared" / "bench" / "ceiling_twisted.py"
WORKLOADS = {
    # name: (value size, memcaslap flags)
    "ascii": (100, []),
    "binary": (100, ["-B"]),
    "udp": (100, ["-U"]),
    "multiget": (100, ["-d", "20"]),
    "4k": (4096, []),
}
CLIENTS = {"memcaslap": ["memcaslap"],
           "pymcd-slap": [sys.executable, "-m", "pymcd.slap", "--no-progress"]}


def workload_config(value_size: int) -> str:
    """memaslap's config format: 64-byte keys, fixed-size values, 90% get / 10% set."""
    return "key\n64 64 1\nvalue\n%d %d 1\ncmd\n0 0.1\n1 0.9\n" % (value_size, value_size)


@functools.lru_cache(maxsize=None)
def is_pypy(python: str) -> bool:
    """Whether ``python`` is PyPy, asked of the interpreter: a venv's is called ``python``
    whatever it runs, so its name said nothing and such a PyPy server went unwarmed."""
    answer = subprocess.run([python, "-c", "import sys; print(hasattr(sys, 'pypy_version_info'))"],
                            capture_output=True, text=True, check=True)
    return answer.stdout.strip() == "True"


def runtime_label(python: str) -> str:
    """How results and ``--twins`` sides name an interpreter: ``pypy`` for any PyPy, else the
    executable's name."""
    return "pypy" if is_pypy(python) else os.path.basename(python)


def script_of(python: str, name: str) -> str:
    """The console script installed beside ``python`` (its venv's bin/)."""
    beside = os.path.join(os.path.dirname(python), name)
    return beside if os.path.exists(beside) else (shutil.which(name) or name)


def server_command(name: str, python: str, port: int, udp: bool, baseline: Optional[str] = None,
                   http_port: int = 0) -> Optional[List[str]]:
    udp_port = str(port) if udp else "0"
    memcached_flags = ["-p", str(port), "-U", udp_port, "-l", "127.0.0.1", "-t", "1"]
    if name == "memcached":
        return [shutil.which("memcached") or "memcached"] + memcached_flags + ["-u", "root"]
    if name == "pymcd":
        return [python, "-m", "pymcd"] + memcached_flags
    if name in ("pymcd-http", "pymcd-scraped", "pymcd-dashboard"):
        # With the web site on (--http): nobody looking, and a scraper polling /metrics.
        return [python, "-m", "pymcd"] + memcached_flags + ["--http", str(http_port)]
    if name == "pymcd-baseline" and baseline:
        # Run from the baseline's tree: ``-m`` puts the working directory ahead of PYTHONPATH,
        # so from this project's root the "baseline" would import this tree's pymcd.
        return ["env", "-C", baseline, "PYTHONPATH=" + baseline, python, "-m",
                "pymcd"] + memcached_flags
    if name == "pymcd-stock":
        return [python, "-m", "pymcd"] + memcached_flags + ["--stock-reactor"]
    if name == "twistd":
        return [script_of(python, "twistd"), "-n", "--pidfile=", "--logfile=/dev/null",
                "pymcd"] + memcached_flags
    if name == "ceiling" and not udp and CEILING.exists():
        return [python, str(CEILING), str(port)]
    return None


class Poller(threading.Thread):
    """Fetches a URL every ``interval`` seconds until stopped: a Prometheus scraping at 10 Hz,
    which keeps its connection open and asks for gzip, as Prometheus does."""

    def __init__(self, url: str, interval: float) -> None:
        super().__init__(daemon=True)
        self.url = urllib.parse.urlsplit(url)
        self.interval = interval
        self.stopped = threading.Event()
        self.fetches = 0

    def run(self) -> None:
        os.sched_setaffinity(threading.get_native_id(), {1})  # the load generator's core
        connection = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=5)
        try:
            while not self.stopped.wait(self.interval):
                connection.request("GET", self.url.path, headers={"Accept-Encoding": "gzip"})
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError("%s answered %d" % (self.url.geturl(), response.status))
                self.fetches += 1
        finally:
            connection.close()

    def stop(self) -> int:
        self.stopped.set()
        self.join()
        return self.fetches


class EventStreamReader(threading.Thread):
    """Reads /api/events as the dashboard page does (a snapshot a second) until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stopped = threading.Event()
        self.fetches = 0

    def run(self) -> None:
        os.sched_setaffinity(threading.get_native_id(), {1})
        with urllib.request.urlopen(self.url, timeout=30) as response:
            while not self.stopped.is_set():
                line = response.readline()
                if not line:
                    return
                if line.startswith(b"event: snapshot"):
                    self.fetches += 1

    def stop(self) -> int:
        self.stopped.set()
        self.join(timeout=5)
        return self.fetches


# Servers measured with something watching them over --http, and what that is.
OBSERVERS = {
    "pymcd-scraped": lambda http_port: Poller("http://127.0.0.1:%d/metrics" % http_port, 0.1),
    "pymcd-dashboard": lambda http_port: EventStreamReader(
        "http://127.0.0.1:%d/api/events" % http_port),
}


def counted_keys(port: int) -> int:
    """cmd_get + cmd_set from ``stats``: keys, whatever the client counts as an operation."""
    figures = dict(re.findall(rb"STAT (cmd_get|cmd_set) (\d+)", stats_reply(port)))
    return int(figures.get(b"cmd_get", 0)) + int(figures.get(b"cmd_set", 0))


def client_command(client: str, port: int, seconds: str, config: str,
                   flags: List[str]) -> List[str]:
    """Either load generator on core 1: 32 connections of one thread, for ``seconds``."""
    return ["taskset", "-c", "1"] + CLIENTS[client] + [
        "-s", "127.0.0.1:%d" % port, "-T", "1", "-c", "32", "-t", seconds, "-F", config] + flags


def run_client(client: str, port: int, seconds: str, flags: List[str],
               config: str) -> Dict[str, float]:
    """Either load generator: pymcd-slap takes memaslap's options and prints its summary."""
    command = client_command(client, port, seconds, config, flags)
    before = counted_keys(port)
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    figures = summary_figures(output)
    if figures is None:
        raise RuntimeError("%s produced no summary:\n%s" % (client, output[-2000:]))
    figures["keys_per_s"] = (counted_keys(port) - before) / figures["run_time"]
    for counter in ("get_misses", "verify_failed", "packet_drop", "udp_timeout"):
        found = re.search(r"%s: (\d+)" % counter, output)
        if found:
            figures[counter] = int(found.group(1))
    return figures


def measure(name: str, command: List[str], args: argparse.Namespace, flags: List[str],
            config: str, port: int, http_port: int, warmup: Optional[str]) -> Dict[str, float]:
    process = subprocess.Popen(["taskset", "-c", "0"] + command, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    observer = None
    try:
        wait_for(port)
        if warmup:
            run_client(args.client, port, warmup, flags, config)
        if name in OBSERVERS:
            wait_for(http_port)
            observer = OBSERVERS[name](http_port)
            observer.start()
        cpu_before = process_cpu_seconds(process.pid)
        figures = run_client(args.client, port, args.time, flags, config)
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


class Nobody:
    """The observer of a control run, which shows the method's own spread."""

    def start(self) -> None:
        pass

    def stop(self) -> None:
        """Nothing fetched, so no count."""


# The web site's observers by their short names (--twins, bench/web_overhead.py).
WEB_OBSERVERS = {"none": lambda http_port: Nobody(),
                 "scraper": OBSERVERS["pymcd-scraped"],
                 "dashboard": OBSERVERS["pymcd-dashboard"]}


def twins(spec: str, args: argparse.Namespace) -> Dict[str, object]:
    """Two servers sharing a core at the same moments: see the module's docstring. ``spec``
    is an observer (the twins run the ascii load, the observer changes sides every window) or
    two sides ``A/B`` (nobody observes; the figure is B's ops/s over A's), each a workload
    served by ``pymcd --http``, or ``SERVER:WORKLOAD`` (``memcached:ascii``, and
    ``pymcd@pypy:ascii`` for pymcd on a PyPy given with ``--python``)."""
    two_sides = "/" in spec
    sides = spec.split("/") if two_sides else ["ascii", "ascii"]
    observer = "none" if two_sides else spec
    configs, servers, loads = [], [], []
    warmup = 0.0
    try:
        for side in sides:
            name, _, workload = side.rpartition(":")
            name, _, runtime = (name or "pymcd-http").partition("@")
            python = next((p for p in args.python if runtime_label(p) == runtime),
                          sys.executable) if runtime else sys.executable
            if is_pypy(python):
                warmup = parse_duration(args.warmup)
            with tempfile.NamedTemporaryFile("w", suffix=".cnf", delete=False) as handle:
                handle.write(workload_config(WORKLOADS[workload][0]))
            configs.append((handle.name, workload))
            port, http_port = free_port(), free_port()
            command = server_command(name, python, port, workload == "udp", args.baseline, http_port)
            servers.append((port, http_port if name == "pymcd-http" else None, subprocess.Popen(
                ["taskset", "-c", "0"] + command, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)))
        # Killed once the windows end.
        seconds = "%ds" % (args.window * 2 * args.pairs * 2 + 30 + warmup)
        for (port, http_port, _), (config, workload) in zip(servers, configs):
            wait_for(port)
            if http_port is not None:
                wait_for(http_port)
            fill_slab_classes(port)
            loads.append(subprocess.Popen(
                client_command(args.client, port, seconds, config, WORKLOADS[workload][1]),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        # Connections made, the stores filled, and a PyPy server's JIT warmed up.
        time.sleep(3 + warmup)
        windows: List[Dict[str, object]] = []
        for window in range(2 * args.pairs):
            # An observer changes sides every window, so that one twin being luckier with the
            # scheduler than the other cancels out within a pair; workloads keep their sides.
            observed = 1 if two_sides else window % 2
            watcher = WEB_OBSERVERS[observer](servers[observed][1])
            watcher.start()
            before = [(counted_keys(port), process_cpu_seconds(process.pid))
                      for port, _, process in servers]
            began = time.monotonic()
            time.sleep(args.window)
            elapsed = time.monotonic() - began
            after = [(counted_keys(port), process_cpu_seconds(process.pid))
                     for port, _, process in servers]
            # Each twin's share of the core shows whether both were busy (each near 0.5): a
            # twin starved by its load generator would leave its core time to the other.
            ops, cpu = zip(*[((keys - keys_before) / elapsed, (spent - spent_before) / elapsed)
                             for (keys, spent), (keys_before, spent_before) in zip(after, before)])
            windows.append({"observed": observed, "ops_per_s": list(ops), "cpu_share": list(cpu),
                            "fetches": watcher.stop()})
        if any(load.poll() is not None for load in loads):
            raise RuntimeError("a load generator ended before the windows did")
    finally:
        for load in loads:
            load.kill()
            load.wait()
        for _, _, process in servers:
            process.terminate()
            process.wait(timeout=20)
        for config, _ in configs:
            os.unlink(config)
    # Per pair: the geometric mean of the two windows' observed/unobserved ratios.
    ratios = []
    for first, second in zip(windows[::2], windows[1::2]):
        product = 1.0
        for window in (first, second):
            ops = window["ops_per_s"]
            product *= ops[window["observed"]] / ops[1 - window["observed"]]
        ratios.append(product ** 0.5)
    quartiles = statistics.quantiles(ratios, n=4)
    mean = statistics.fmean(ratios)
    half_width = 1.96 * statistics.stdev(ratios) / len(ratios) ** 0.5
    shares = [statistics.fmean(window["cpu_share"][side] for window in windows)
              for side in (0, 1)]
    return {"observer": spec, "window_s": args.window, "cpu_shares": shares, "pairs": args.pairs,
            "median_ratio": statistics.median(ratios), "quartiles": [quartiles[0], quartiles[2]],
            "mean_ratio": mean, "mean_95": [mean - half_width, mean + half_width],
            "windows": windows}


def report_twins(args: argparse.Namespace) -> int:
    results = [twins(observer, args) for observer in args.twins.split(",")]
    out = write_results("throughput-twins", {"client": args.client, "results": results})
    print("ops/s of the observed twin / the other's (A/B: B's / A's), per pair of %.1f s windows"
          % args.window)
    print("twins         pairs   median  (quartiles)      mean  (95% interval)   core shares")
    for result in results:
        print("%-12s  %5d   %.3f  (%.3f-%.3f)   %.3f  (%.3f-%.3f)   %.2f %.2f" % (
            result["observer"], result["pairs"], result["median_ratio"],
            result["quartiles"][0], result["quartiles"][1], result["mean_ratio"],
            result["mean_95"][0], result["mean_95"][1], *result["cpu_shares"]))
    print("written to %s" % out)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time", default="10s", help="run time per server and workload")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole comparison")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--servers", default="memcached,pymcd,twistd",
                        help="memcached, pymcd, twistd, pymcd-stock, ceiling, pymcd-http, "
                        "pymcd-scraped, pymcd-dashboard")
    parser.add_argument("--python", action="append", default=[],
                        help="also run the pymcd servers on this interpreter (repeatable)")
    parser.add_argument("--warmup", default="20s", help="load before measuring a PyPy server")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="memcaslap",
                        help="load generator (pymcd-slap takes the same options)")
    parser.add_argument("--baseline", help="source tree of a pymcd to compare (pymcd-baseline)")
    parser.add_argument("--twins", help="observers (none, scraper, dashboard) to measure on one "
                        "of two servers sharing a core, swapping sides every window, or "
                        "workloads A/B (ascii/binary) to compare at the same moments")
    parser.add_argument("--window", type=float, default=2.0, help="seconds per --twins window")
    parser.add_argument("--pairs", type=int, default=30, help="window pairs per observer")
    args = parser.parse_args(argv)
    if args.client == "memcaslap" and shutil.which("memcaslap") is None:
        print("memcaslap not found: apt-get install libmemcached-tools", file=sys.stderr)
        return 2
    if args.twins:
        return report_twins(args)
    pythons = [sys.executable] + [shutil.which(p) or p for p in args.python]
    # (label, server, interpreter): memcached once, each pymcd server on each interpreter.
    servers = []
    names = args.servers.split(",") + (["pymcd-baseline"] if args.baseline else [])
    for name in names:
        for python in ([sys.executable] if name == "memcached" else pythons):
            runtime = "" if python == sys.executable else "@" + runtime_label(python)
            servers.append((name + runtime, name, python))
    rounds: List[Dict[str, Dict[str, Dict[str, float]]]] = []
    for round_number in range(args.rounds):
        figures: Dict[str, Dict[str, Dict[str, float]]] = {}
        for workload in args.workloads.split(","):
            size, flags = WORKLOADS[workload]
            with tempfile.NamedTemporaryFile("w", suffix=".cnf", delete=False) as handle:
                handle.write(workload_config(size))
            try:
                # Alternate the order so that drift on the machine does not favour one server.
                order = servers if round_number % 2 == 0 else list(reversed(servers))
                for label, name, python in order:
                    port, http_port = free_port(), free_port()
                    command = server_command(name, python, port, workload == "udp",
                                             args.baseline, http_port)
                    if command is None or (name == "ceiling" and workload != "ascii"):
                        continue
                    warmup = args.warmup if is_pypy(python) else None
                    result = measure(name, command, args, flags, handle.name, port, http_port,
                                     warmup)
                    figures.setdefault(workload, {})[label] = result
                    print("round %d %-9s %-22s %10.0f ops/s %10.0f keys/s"
                          % (round_number + 1, workload, label, result["tps"],
                             result["keys_per_s"]), flush=True)
            finally:
                os.unlink(handle.name)
        rounds.append(figures)
    # The figure of a workload: ops/s, but keys/s for multi-gets (a multi-get is one op).
    unit = {workload: "keys_per_s" if workload == "multiget" else "tps" for workload in WORKLOADS}
    ratios: Dict[str, Dict[str, float]] = {}
    capacity: Dict[str, Dict[str, float]] = {}
    for workload in args.workloads.split(","):
        for label in rounds[0].get(workload, {}):
            if label == "memcached" or "memcached" not in rounds[0][workload]:
                continue
            pairs = [(r[workload][label], r[workload]["memcached"]) for r in rounds
                     if label in r.get(workload, {})]
            ratios.setdefault(workload, {})[label] = statistics.median(
                ours[unit[workload]] / theirs[unit[workload]] for ours, theirs in pairs)
            capacity.setdefault(workload, {})[label] = statistics.median(
                theirs["cpu_us_per_op"] / ours["cpu_us_per_op"] for ours, theirs in pairs)
    report = {"time": args.time, "client": args.client, "rounds": rounds, "ratios": ratios,
              "capacity_ratios": capacity,
              "workload": "90% get / 10% set, 64 B keys, 32 connections, servers on core 0, "
              + args.client + " -T 1 on core 1; multiget in keys/s (cmd_get + cmd_set)"}
    out = write_results("throughput", report)
    labels = [label for label, _, _ in servers if label != "memcached"]
    for title, table in (("ops/s (multiget: keys/s)", ratios),
                         ("capacity, 1 / server CPU per op", capacity)):
        print("\nratio to memcached -t 1, %s: median of per-round ratios, %d round(s) of %s"
              % (title, args.rounds, args.time))
        print("  %-9s" % "" + "".join(" %22s" % label for label in labels))
        for workload, by_label in table.items():
            print("  %-9s" % workload + "".join(
                " %22s" % ("%.2f" % by_label[label] if label in by_label else "-")
                for label in labels))
    print("written to %s" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
