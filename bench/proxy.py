"""Proxy throughput: pymcd's proxy and nutcracker in front of one memcached, in one run.

Four targets under the same load (90% get / 10% set, 64 B keys, 100 B values, 32 connections):
the pymcd proxy routing to one memcached, that memcached directly, a plain pymcd server, and
nutcracker (twemproxy) routing to the same memcached. The server or proxy under test is pinned
to core 0; the backend memcached and the load generator share core 1. The machine is noisy, so
only the ratios within one round mean something; the pymcd proxy is expected to reach at least
0.6x a pymcd server's ops/s.

    python bench/proxy.py [--time 10s] [--rounds 1] [--client memcaslap|pymcd-slap]

Writes bench/results/proxy-<timestamp>.json and prints a table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

from harness import MIXED_WORKLOAD, free_port, wait_for, write_results
from throughput import CLIENTS, run_client

ROUTES = """from pymcd.proxy import pools, routes, route_direct
pools(main={"backends": ["127.0.0.1:%d"]})
routes(default=route_direct(child="main"))
"""
TWEMPROXY = """bench:
  listen: 127.0.0.1:%d
  hash: fnv1a_64
  distribution: ketama
  timeout: 2000
  servers:
   - 127.0.0.1:%d:1
"""


def targets(port: int, backend: int, folder: str) -> Dict[str, Optional[List[str]]]:
    """The command for each target on ``port`` (None: the backend itself, already running)."""
    routes = os.path.join(folder, "routes.py")
    with open(routes, "w") as handle:
        handle.write(ROUTES % backend)
    twemproxy = os.path.join(folder, "nutcracker.yml")
    with open(twemproxy, "w") as handle:
        handle.write(TWEMPROXY % (port, backend))
    pymcd = [sys.executable, "-m", "pymcd", "-p", str(port), "-U", "0", "-l", "127.0.0.1"]
    return {
        "pymcd-proxy": pymcd + ["--proxy-config", routes],
        "memcached": None,
        "pymcd": pymcd,
        "nutcracker": ["nutcracker", "-c", twemproxy, "-s", str(free_port()), "-a", "127.0.0.1"],
    }


def measure(command: Optional[List[str]], port: int, backend: int, args, config: str):
    if command is None:
        return run_client(args.client, backend, args.time, False, False, config)
    process = subprocess.Popen(["taskset", "-c", "0"] + command, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_for(port)
        return run_client(args.client, port, args.time, False, False, config)
    finally:
        process.terminate()
        process.wait(timeout=20)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time", default="10s", help="load time per target (10s, 1m)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole comparison")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="memcaslap")
    args = parser.parse_args(argv)
    for tool in ("memcached", "nutcracker") + (("memcaslap",) if args.client == "memcaslap"
                                               else ()):
        if shutil.which(tool) is None:
            print("%s not found: apt-get install memcached nutcracker libmemcached-tools" % tool,
                  file=sys.stderr)
            return 2
    folder = tempfile.mkdtemp(prefix="pymcd-bench-proxy-")
    config = os.path.join(folder, "workload.cnf")
    with open(config, "w") as handle:
        handle.write(MIXED_WORKLOAD)
    backend_port = free_port()
    backend = subprocess.Popen(["taskset", "-c", "1", shutil.which("memcached"), "-p",
                                str(backend_port), "-U", "0", "-l", "127.0.0.1", "-t", "1",
                                "-u", "root"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    rounds: List[Dict[str, Dict[str, float]]] = []
    try:
        wait_for(backend_port)
        for round_number in range(args.rounds):
            figures: Dict[str, Dict[str, float]] = {}
            names = list(targets(0, backend_port, folder))
            order = names if round_number % 2 == 0 else list(reversed(names))
            for name in order:
                port = free_port()
                figures[name] = measure(targets(port, backend_port, folder)[name], port,
                                        backend_port, args, config)
            rounds.append(figures)
    finally:
        backend.terminate()
        backend.wait(timeout=20)
        shutil.rmtree(folder, ignore_errors=True)
    mean = {name: statistics.mean(r[name]["tps"] for r in rounds) for name in rounds[0]}
    ratios = {}
    for a, b in (("pymcd-proxy", "pymcd"), ("nutcracker", "pymcd"),
                 ("pymcd-proxy", "memcached"), ("nutcracker", "memcached")):
        ratios["%s/%s" % (a, b)] = statistics.median(r[a]["tps"] / r[b]["tps"] for r in rounds)
    report = {"time": args.time, "client": args.client, "rounds": rounds, "mean_tps": mean,
              "ratios": ratios,
              "workload": "90% get / 10% set, 64 B keys, 100 B values, 32 connections; target "
              "on core 0, backend memcached -t 1 and " + args.client + " -T 1 on core 1"}
    out = write_results("proxy", report)
    print("%d round(s) of %s, client %s" % (args.rounds, args.time, args.client))
    for name, tps in mean.items():
        print("  %-12s %10.0f ops/s" % (name, tps))
    print("  pymcd-proxy/pymcd      %.3f   (goal >= 0.6)   nutcracker/pymcd      %.3f"
          % (ratios["pymcd-proxy/pymcd"], ratios["nutcracker/pymcd"]))
    print("  pymcd-proxy/memcached  %.3f                   nutcracker/memcached  %.3f"
          % (ratios["pymcd-proxy/memcached"], ratios["nutcracker/memcached"]))
    print("written to %s" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
