"""Does ``-m`` bound pymcd's memory? Fill pymcd -m 64 and memcached -m 64 with the same items.

The fill is 1,000,000 ``set``s (keys ``k0000000``...; value sizes log-uniform between 10 B and
10 KB from a fixed seed, so every run and both servers see the same bytes), pipelined with
``noreply`` and synchronised by ``mn`` every batch. After the fill it reads each server's RSS
from /proc and its ``stats`` / ``stats slabs``, and prints them side by side, with:

- pymcd's RSS against the goal ``64 MiB + 150 B x curr_items + 40 MiB``;
- the Python overhead per resident item outside the pages, measured from outside as
  (RSS after the fill - RSS of the idle server - total_malloced) / curr_items;
- the same overhead measured inside one process with tracemalloc on a bare Store (the index and
  whatever else the store keeps per item, nothing of Twisted or of connection buffers).

    python bench/memory.py [--items 1000000] [--memory 64] [--python pypy3]

Writes bench/results/memory-<timestamp>.json, and the printed table beside it as .txt.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import tracemalloc
from typing import Dict, List, Tuple

from harness import ROOT, free_port, wait_for, write_results

sys.path.insert(0, str(ROOT))

MIB = 1024 * 1024
SMALLEST, LARGEST = 10, 10_000
BATCH = 2000
SEED = 3
GOAL_PER_ITEM = 150
GOAL_SLACK = 40 * MIB
# Long enough for the maintainers to settle and pymcd's heap trim (every 10 s) to have run.
SETTLE_SECONDS = 11


def value_sizes(count: int) -> List[int]:
    """Log-uniform sizes: as many 10-100 B values as 1-10 KB ones, as caches tend to see."""
    rng = random.Random(SEED)
    low, high = math.log(SMALLEST), math.log(LARGEST)
    return [int(math.exp(rng.uniform(low, high))) for _ in range(count)]


def start(name: str, memory: int, python: str) -> Tuple[subprocess.Popen, int]:
    port = free_port()
    if name == "pymcd":
        command = [python, "-m", "pymcd"]
    else:
        command = [shutil.which("memcached") or "memcached"]
        if os.geteuid() == 0:
            command += ["-u", "root"]
    command += ["-p", str(port), "-U", "0", "-l", "127.0.0.1", "-m", str(memory)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(port)
    except RuntimeError:
        process.kill()
        raise
    return process, port


def rss(pid: int) -> int:
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS for %d" % pid)


def read_until(sock: socket.socket, end: bytes) -> bytes:
    data = b""
    while not data.endswith(end):
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise RuntimeError("connection closed")
        data += chunk
    return data


def stats(sock: socket.socket, section: str = "") -> Dict[str, str]:
    sock.sendall(("stats %s\r\n" % section).strip().encode() + b"\r\n")
    lines = read_until(sock, b"END\r\n").decode().split("\r\n")
    return {line.split()[1]: line.split()[2] for line in lines if line.startswith("STAT ")}


def fill(port: int, sizes: List[int]) -> float:
    """Pipelined noreply sets, ``mn`` after each batch; returns seconds taken."""
    payload = b"v" * LARGEST
    started = time.time()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for first in range(0, len(sizes), BATCH):
            parts = []
            for number in range(first, min(first + BATCH, len(sizes))):
                size = sizes[number]
                parts.append(b"set k%07d 0 0 %d noreply\r\n" % (number, size))
                parts.append(payload[:size])
                parts.append(b"\r\n")
            parts.append(b"mn\r\n")
            sock.sendall(b"".join(parts))
            read_until(sock, b"MN\r\n")
    return time.time() - started


def measure_server(name: str, memory: int, sizes: List[int], python: str) -> Dict[str, object]:
    process, port = start(name, memory, python)
    try:
        time.sleep(0.5)
        idle_rss = rss(process.pid)
        seconds = fill(port, sizes)
        time.sleep(SETTLE_SECONDS)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            general, slabs = stats(sock), stats(sock, "slabs")
        after_rss = rss(process.pid)
    finally:
        process.terminate()
        process.wait()
    curr_items = int(general["curr_items"])
    malloced = int(slabs["total_malloced"])
    return {
        "fill_seconds": round(seconds, 1),
        "sets_per_second": round(len(sizes) / seconds),
        "idle_rss": idle_rss,
        "rss": after_rss,
        "bytes": int(general["bytes"]),
        "curr_items": curr_items,
        "total_items": int(general["total_items"]),
        "evictions": int(general["evictions"]),
        "total_malloced": malloced,
        "active_slabs": int(slabs["active_slabs"]),
        "overhead_per_item": round((after_rss - idle_rss - malloced) / max(curr_items, 1), 1),
    }


def store_overhead(count: int = 200_000) -> Dict[str, float]:
    """Bytes Python allocates per item outside the pages, in a bare Store (tracemalloc)."""
    from pymcd.store import Store, StoreSettings, outcomes

    tracemalloc.start()
    store = Store(StoreSettings(memory_limit=1024 * MIB))
    empty = tracemalloc.get_traced_memory()[0]
    for number in range(count):
        store.store(outcomes.SET, b"k%07d" % number, 0, 0, b"0123456789")
    traced = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    pages = store.slabs.malloced
    return {
        "items": store.curr_items,
        "per_item_outside_pages": round((traced - empty - pages) / store.curr_items, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--memory", type=int, default=64, help="-m in megabytes")
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter pymcd runs on (the tracemalloc figure is always "
                             "this script's: PyPy has no tracemalloc)")
    args = parser.parse_args()
    sizes = value_sizes(args.items)
    results: Dict[str, object] = {
        "items_sent": args.items,
        "value_bytes_sent": sum(sizes),
        "memory_mb": args.memory,
        "python": args.python,
        "servers": {name: measure_server(name, args.memory, sizes, args.python)
                    for name in ("pymcd", "memcached")},
        "store_index": store_overhead(),
    }
    pymcd = results["servers"]["pymcd"]
    goal = args.memory * MIB + GOAL_PER_ITEM * pymcd["curr_items"] + GOAL_SLACK
    results["goal_rss"] = goal
    results["goal_met"] = pymcd["rss"] <= goal
    path = write_results("memory", results)
    text = summary(results)
    (ROOT / path).with_suffix(".txt").write_text(text + "\n")
    print(text)
    print("written to %s and .txt" % path)


def summary(results: Dict[str, object]) -> str:
    servers = results["servers"]
    rows = [
        ("RSS idle (MiB)", lambda s: "%.1f" % (s["idle_rss"] / MIB)),
        ("RSS after fill (MiB)", lambda s: "%.1f" % (s["rss"] / MIB)),
        ("total_malloced (MiB)", lambda s: "%.1f" % (s["total_malloced"] / MIB)),
        ("stats bytes", lambda s: "%d" % s["bytes"]),
        ("curr_items (kept)", lambda s: "%d" % s["curr_items"]),
        ("evictions", lambda s: "%d" % s["evictions"]),
        ("active_slabs", lambda s: "%d" % s["active_slabs"]),
        ("overhead B/item (RSS)", lambda s: "%.1f" % s["overhead_per_item"]),
        ("fill sets/s", lambda s: "%d" % s["sets_per_second"]),
    ]
    lines = ["%d sets, %.1f MiB of values, -m %d" % (
        results["items_sent"], results["value_bytes_sent"] / MIB, results["memory_mb"]),
        "%-24s %14s %14s" % ("", "pymcd", "memcached")]
    for label, render in rows:
        lines.append("%-24s %14s %14s" % (label, render(servers["pymcd"]), render(servers["memcached"])))
    index = results["store_index"]
    lines.append("bare Store, %d items: %.1f B per item outside the pages (tracemalloc)"
                 % (index["items"], index["per_item_outside_pages"]))
    lines.append("goal: pymcd RSS %.1f MiB <= %.1f MiB (-m + 150 B x curr_items + 40 MiB): %s"
                 % (servers["pymcd"]["rss"] / MIB, results["goal_rss"] / MIB,
                    "met" if results["goal_met"] else "NOT met"))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
