"""The differential fuzzer's long run: Debian's memcached and pymcd, mismatches by kind.

    python bench/difffuzz.py --n 1000000 --seed 7 --protocol text|meta|binary

Starts both servers (memcached with the flags pymcd gets), feeds them the same generated stream
(``pymcd.difffuzz``) and prints the mismatches by request kind, with examples; the figures go to
``bench/results/difffuzz-<protocol>-<timestamp>.json``. Exit status 1 if anything differed, or if
another process connected to the servers meanwhile (its requests would make their stores differ).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

from harness import free_port, wait_for, write_results

from pymcd.difffuzz import PROTOCOLS, SERVER_OPTIONS, DiffRunner


def start(command):
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100000, help="requests to generate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--protocol", choices=PROTOCOLS, default="text")
    parser.add_argument("--examples", type=int, default=3, help="examples kept per kind")
    args = parser.parse_args()

    memcached_port, pymcd_port = free_port(), free_port()
    common = SERVER_OPTIONS
    memcached = [shutil.which("memcached") or "memcached", "-p", str(memcached_port)] + common
    if os.geteuid() == 0:
        memcached += ["-u", "root"]
    pymcd = [sys.executable, "-m", "pymcd", "-p", str(pymcd_port)] + common
    servers = [start(memcached), start(pymcd)]
    try:
        wait_for(memcached_port)
        wait_for(pymcd_port)
        runner = DiffRunner(("127.0.0.1", memcached_port), ("127.0.0.1", pymcd_port), args.protocol)
        began = time.time()
        report = runner.run(args.seed, args.n, args.examples)
        elapsed = time.time() - began
        runner.close()
    finally:
        for process in servers:
            process.terminate()
            process.wait(10)
    print(report.summary())
    print("%.1fs, %.0f requests/s" % (elapsed, report.requests / elapsed))
    path = write_results("difffuzz-%s" % args.protocol, {
        "protocol": args.protocol, "seed": args.seed, "n": args.n, "requests": report.requests,
        "batches": report.batches, "mismatches": report.mismatch_count,
        "by_kind": dict(report.mismatches.most_common()), "seconds": round(elapsed, 1),
        "foreign_connections": report.foreign_connections,
    })
    print("results: %s" % path)
    return 1 if report.mismatch_count or any(report.foreign_connections) else 0


if __name__ == "__main__":
    sys.exit(main())
