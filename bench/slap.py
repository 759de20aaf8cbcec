"""pymcd-slap against Debian's memcaslap, as load generators, in one run.

Debian's memcached -t 1 is pinned to core 0 and each client in turn to core 1 (-T 1), with the
same workload: 90% get / 10% set, 64-byte keys, 100-byte values, 32 connections. Rounds
alternate which client goes first, since the machine is noisy; the figure that matters is the
median of the per-round ratios. A last run holds pymcd-slap at -P 10000 and reports its
percentiles at that rate.

    python bench/slap.py [--time 10s] [--rounds 5] [--rate 10000]

Writes bench/results/slap-<timestamp>.json and prints both clients' ops/s and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

from harness import MIXED_WORKLOAD, free_port, summary_figures, wait_for, write_results


def client_command(client: str, port: int, seconds: str, config: str,
                   extra: List[str]) -> List[str]:
    program = ["memcaslap"] if client == "memcaslap" else [sys.executable, "-m", "pymcd.slap"]
    return (["taskset", "-c", "1"] + program + ["-s", "127.0.0.1:%d" % port, "-T", "1", "-c",
                                                "32", "-t", seconds, "-F", config] + extra)


def run_client(client: str, port: int, seconds: str, config: str,
               extra: Optional[List[str]] = None) -> Dict[str, object]:
    extra = list(extra or [])
    json_path = None
    if client == "pymcd-slap":
        handle, json_path = tempfile.mkstemp(suffix=".json")
        os.close(handle)
        extra += ["--json", json_path, "--no-progress"]
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = subprocess.run(client_command(client, port, seconds, config, extra),
                                capture_output=True, text=True, timeout=900)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        output = result.stdout + result.stderr
        figures: Optional[Dict[str, object]] = summary_figures(output)
        if figures is None:
            raise RuntimeError("%s produced no summary:\n%s" % (client, output[-2000:]))
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        # The client's own CPU time per operation: what it costs whatever limits the run.
        figures["cpu_us_per_op"] = 1e6 * cpu / max(int(figures["ops"]), 1)
        for counter in ("get_misses", "verify_failed"):
            found = re.search(r"%s: (\d+)" % counter, output)
            if found:
                figures[counter] = int(found.group(1))
        if json_path:
            with open(json_path) as report:
                figures["latency_us"] = json.load(report)["latency"]["total"]
        return figures
    finally:
        if json_path:
            os.unlink(json_path)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time", default="10s", help="run time of each client run (10s, 1m)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--rate", type=int, default=10000, help="pymcd-slap's -P run (0: skip)")
    args = parser.parse_args(argv)
    for tool in ("memcaslap", "memcached", "taskset"):
        if shutil.which(tool) is None:
            print("%s not found: apt-get install memcached libmemcached-tools util-linux" % tool,
                  file=sys.stderr)
            return 2
    port = free_port()
    server = subprocess.Popen(["taskset", "-c", "0", shutil.which("memcached"), "-p", str(port),
                               "-U", "0", "-l", "127.0.0.1", "-t", "1", "-u", "root"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with tempfile.NamedTemporaryFile("w", suffix=".cnf", delete=False) as handle:
        handle.write(MIXED_WORKLOAD)
        config = handle.name
    clients = ["memcaslap", "pymcd-slap"]
    rounds: List[Dict[str, Dict[str, object]]] = []
    paced = None
    try:
        wait_for(port)
        for number in range(args.rounds):
            figures = {}
            for client in clients if number % 2 == 0 else list(reversed(clients)):
                figures[client] = run_client(client, port, args.time, config)
                print("round %d %-10s %8d ops/s" % (number + 1, client, figures[client]["tps"]),
                      flush=True)
            rounds.append(figures)
        if args.rate:
            paced = run_client("pymcd-slap", port, args.time, config, ["-P", str(args.rate)])
    finally:
        server.terminate()
        server.wait(timeout=20)
        os.unlink(config)
    ratios = [r["pymcd-slap"]["tps"] / r["memcaslap"]["tps"] for r in rounds]
    cpu_ratios = [r["memcaslap"]["cpu_us_per_op"] / r["pymcd-slap"]["cpu_us_per_op"]
                  for r in rounds]
    mean_tps = {client: statistics.mean(r[client]["tps"] for r in rounds) for client in clients}
    report = {
        "workload": "90% get / 10% set, 64 B keys, 100 B values, 32 connections, -T 1; "
                    "memcached -t 1 on core 0, client on core 1",
        "time": args.time, "rounds": rounds, "mean_tps": mean_tps,
        "ratio_pymcd_slap_to_memcaslap": statistics.median(ratios), "per_round_ratios": ratios,
        "cpu_per_op_ratio_memcaslap_to_pymcd_slap": statistics.median(cpu_ratios),
        "paced": {"target_tps": args.rate, "figures": paced} if paced else None,
    }
    out = write_results("slap", report)
    for client, tps in mean_tps.items():
        cpu = statistics.median(r[client]["cpu_us_per_op"] for r in rounds)
        print("  %-12s %10.0f ops/s (mean of %d rounds), %.1f us of client CPU per op"
              % (client, tps, len(rounds), cpu))
    print("  pymcd-slap/memcaslap %.3f (median of per-round ratios %s)"
          % (report["ratio_pymcd_slap_to_memcaslap"], ", ".join("%.3f" % r for r in ratios)))
    print("  client CPU per op, memcaslap/pymcd-slap %.3f (median of per-round ratios; "
          "includes pymcd-slap's start-up)" % statistics.median(cpu_ratios))
    if paced:
        latency = paced["latency_us"]
        print("  pymcd-slap -P %d: %d ops/s (%.1f%% of target), p50 %sus p90 %sus p99 %sus "
              "p99.9 %sus" % (args.rate, paced["tps"], 100.0 * paced["tps"] / args.rate,
                              latency["p50_us"], latency["p90_us"], latency["p99_us"],
                              latency["p99_9_us"]))
    print("written to %s" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
