"""What the web tests share: pymcd with ``--http``, a scrape parsed by prometheus_client, load."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from typing import Dict, List, Sequence, Tuple

from prometheus_client.parser import text_string_to_metric_families

from support import HOST, ServerProcess, free_port, start_pymcd, wait_for_port

Samples = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]


def start_with_http(args: Sequence[str] = ()) -> Tuple[ServerProcess, int]:
    """pymcd with its web site on another ephemeral port: (server, http port)."""
    http_port = free_port()
    server = start_pymcd(["--http", str(http_port)] + list(args))
    wait_for_port(http_port, process=server.process)
    return server, http_port


def fetch(port: int, path: str, headers: Dict[str, str] = None, timeout: float = 10.0):
    request = urllib.request.Request("http://%s:%d%s" % (HOST, port, path), headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, dict(response.headers), response.read()


def scrape(port: int) -> Tuple[Dict[str, str], Samples]:
    """``/metrics`` parsed by prometheus_client: ({family: type}, {(sample, labels): value}),
    rendered for this request (the site reuses a rendering for other scrapes)."""
    _, _, body = fetch(port, "/metrics", {"Cache-Control": "no-cache"})
    types: Dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return types, samples


def sample_names(samples: Samples) -> set:
    return {name for name, _ in samples}


def slap(port: int, seconds: int, concurrency: int = 8, binary: bool = False) -> subprocess.Popen:
    """pymcd-slap's default workload (90% get / 10% set) for ``seconds``, in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "pymcd.slap", "--no-progress", "-s", "%s:%d" % (HOST, port),
         "-c", str(concurrency), "-t", "%ds" % seconds] + (["-B"] if binary else []),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def labels(**pairs: str) -> Tuple[Tuple[str, str], ...]:
    return tuple(sorted(pairs.items()))


def value_between(value: float, before: float, after: float) -> bool:
    return min(before, after) <= value <= max(before, after)


def check_all(checks: List[Tuple[str, float, float, float]]) -> List[str]:
    """(what, scraped, stats before, stats after) rows whose scraped value is out of bounds."""
    return ["%s: scraped %r, stats %r .. %r" % row for row in checks
            if not value_between(row[1], row[2], row[3])]
