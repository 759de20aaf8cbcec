"""What the benchmarks share: the standard workload, ports, readiness, results files.

Every benchmark here runs as ``python bench/<name>.py`` and writes its figures to
``bench/results/<name>-...-<timestamp>.json``; the machines are noisy, so each compares servers
or clients side by side within one run.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Dict, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"

# memaslap's config format: 64-byte keys, 100-byte values, 90% get / 10% set.
MIXED_WORKLOAD = """key
64 64 1
value
100 100 1
cmd
0 0.1
1 0.9
"""

# The last line of a memaslap (and pymcd-slap) report.
SUMMARY = re.compile(r"Run time: ([\d.]+)s Ops: (\d+) TPS: (\d+) Net_rate: ([\d.]+)M/s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, timeout: float = 20.0) -> None:
    """Return once something accepts connections on ``port``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server on port %d did not start" % port)


def stats_reply(port: int, timeout: float = 5.0) -> bytes:
    """The whole reply to ``stats`` from the server on ``port``, over a connection of its own;
    a server without ``stats`` (the ceiling) answers ``ERROR``."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"stats\r\n")
        data = b""
        while not data.endswith((b"END\r\n", b"ERROR\r\n")):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


def fill_slab_classes(port: int, items: int = 20000) -> None:
    """Items of 50 B to 20 KiB, so that some twenty slab classes have pages (and ``/metrics``
    lists about 1,000 samples): the web observers' dearer case."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for start in range(0, items, 500):
            sock.sendall(b"".join(
                b"set fill%d 0 0 %d noreply\r\n%s\r\n" % (i, 50 + (i * 37) % 20000,
                                                         b"v" * (50 + (i * 37) % 20000))
                for i in range(start, start + 500)))
        sock.sendall(b"version\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            reply += sock.recv(100)


def summary_figures(output: str) -> Optional[Dict[str, float]]:
    """The run time, ops, TPS and net rate of a memaslap-style report, or None."""
    match = SUMMARY.search(output)
    if not match:
        return None
    return {"run_time": float(match.group(1)), "ops": int(match.group(2)),
            "tps": int(match.group(3)), "net_rate_mb": float(match.group(4))}


def write_results(name: str, report: dict) -> Path:
    """``bench/results/<name>-<timestamp>.json``; returns its path relative to the checkout."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("%s-%s.json" % (name, time.strftime("%Y%m%d-%H%M%S")))
    out.write_text(json.dumps(report, indent=2) + "\n")
    return out.relative_to(ROOT)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (any server, whatever it speaks)."""
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
