"""What ``--http`` observers cost the server, as CPU time: a steadier figure than ops/s on a
shared machine.

pymcd (``--http``, on core 0) holds 20,000 items of 50 B to 20 KiB (so ``/metrics`` lists some
twenty slab classes, about 1,000 samples) and no other load; for ``--time`` seconds one observer
watches it:

- ``none``:     nobody;
- ``scraper``:  ``/metrics`` fetched every 100 ms (ten times Prometheus's usual rate, the
                issue's test), by this process on core 1;
- ``dashboard``: the dashboard's event stream (``/api/events``, a snapshot a second) read
                as an open page does.

The server's CPU seconds over the window, less ``none``'s, divided by the window, is the share of
one core the observer takes. A server saturated by memcached clients loses that share of its
requests per second (bench/throughput.py measures the same thing as ops/s, with more noise).

    python bench/web_overhead.py [--time 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import (fill_slab_classes, free_port, process_cpu_seconds, wait_for,  # noqa: E402
                     write_results)
from throughput import WEB_OBSERVERS  # noqa: E402


def measure(observer_name: str, seconds: float) -> Dict[str, float]:
    port, http_port = free_port(), free_port()
    server = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-m", "pymcd", "-p", str(port), "-U", "0",
         "-l", "127.0.0.1", "--http", str(http_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(port)
        wait_for(http_port)
        fill_slab_classes(port)
        time.sleep(1.0)
        observer = WEB_OBSERVERS[observer_name](http_port)
        before = process_cpu_seconds(server.pid)
        observer.start()
        time.sleep(seconds)
        cpu_seconds = process_cpu_seconds(server.pid) - before
        return {"cpu_seconds": cpu_seconds, "fetches": observer.stop()}
    finally:
        server.terminate()
        server.wait(timeout=20)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--observers", default=",".join(WEB_OBSERVERS))
    args = parser.parse_args(argv)
    names = args.observers.split(",")
    rounds = []
    for number in range(args.rounds):
        order = names if number % 2 == 0 else list(reversed(names))
        rounds.append({name: measure(name, args.time) for name in order})
    shares = {name: statistics.median((r[name]["cpu_seconds"] - r["none"]["cpu_seconds"])
                                      / args.time for r in rounds) for name in names}
    write_results("web-overhead", {"time": args.time, "rounds": rounds,
                                   "core_share_over_none": shares})
    for name in names:
        print("  %-8s %.4f of a core beyond none (median of %d rounds; fetches %s)"
              % (name, shares[name], args.rounds,
                 [r[name].get("fetches") for r in rounds]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
