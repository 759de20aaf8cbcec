"""Running pymcd-slap as its users do (``python -m pymcd.slap``) and reading its report back."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from support import HOST, ServerProcess, free_port

TINY_SERVER = Path(__file__).with_name("tiny_server.py")
SUMMARY = re.compile(r"^Run time: ([\d.]+)s Ops: (\d+) TPS: (\d+) Net_rate: ([\d.]+)M/s$", re.M)
COUNTER = re.compile(r"^(\w+): (\d+)$", re.M)


@dataclass
class SlapResult:
    returncode: int
    stdout: str
    stderr: str
    counters: Dict[str, int] = field(default_factory=dict)
    run_time: float = 0.0
    ops: int = 0
    tps: int = 0
    report: Optional[dict] = None


def run_slap(server_port: Optional[int], args: Sequence[str], timeout: float = 60.0,
             with_json: bool = True) -> SlapResult:
    """Run pymcd-slap against 127.0.0.1:server_port (or the ``-s`` in args); parse its
    memaslap-style report."""
    json_path = None
    command: List[str] = [sys.executable, "-m", "pymcd.slap"]
    if server_port is not None:
        command += ["-s", "%s:%d" % (HOST, server_port)]
    command += list(args)
    if with_json:
        handle, json_path = tempfile.mkstemp(suffix=".json")
        os.close(handle)
        command += ["--json", json_path]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        result = SlapResult(done.returncode, done.stdout, done.stderr)
        result.counters = {name: int(value) for name, value in COUNTER.findall(done.stdout)}
        summary = SUMMARY.search(done.stdout)
        if summary:
            result.run_time = float(summary.group(1))
            result.ops = int(summary.group(2))
            result.tps = int(summary.group(3))
        if json_path and os.path.getsize(json_path):
            with open(json_path) as report:
                result.report = json.load(report)
        return result
    finally:
        if json_path:
            os.unlink(json_path)


def start_tiny_server(*faults: str) -> ServerProcess:
    port = free_port()
    return ServerProcess([sys.executable, str(TINY_SERVER), str(port)] + list(faults), port)
