"""Counters and latencies: recorded cheaply on the hot path, summarised off it.

A worker records into a ``Stats`` and hands out *deltas* (everything since the last hand-out,
then zeroed), so the same figures merge by plain addition across periods and worker processes.
Latencies are kept as ``{microseconds: count}``: one dict update per operation, and the few
hundred distinct values feed the HDR histogram (percentiles) and memaslap's min/max/avg/std/geo
and log2 table exactly.
"""

from __future__ import annotations

import math
from typing import Dict, List

from hdrh.histogram import HdrHistogram

# memaslap's final counters, in its report order; the UDP ones are shown only for UDP runs.
COUNTERS = ("cmd_get", "cmd_set", "get_misses", "verify_misses", "verify_failed",
            "expired_get", "unexpired_unget", "written_bytes", "read_bytes", "object_bytes",
            "packet_disorder", "packet_drop", "udp_timeout")
OPERATIONS = ("get", "set")
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
_HISTOGRAM_MAX_US = 3600 * 1000 * 1000

Delta = dict


class OpStats:
    """One operation type's share of the figures (memaslap's Get/Set tables)."""

    __slots__ = ("ops", "misses", "written", "read", "latencies")

    def __init__(self) -> None:
        self.take()

    def take(self) -> dict:
        """The figures so far, zeroed in place (the hot path keeps a reference to this)."""
        figures = {name: getattr(self, name, 0) for name in self.__slots__}
        self.ops = self.misses = self.written = self.read = 0
        self.latencies: Dict[int, int] = {}
        figures["latencies"] = figures["latencies"] or {}
        return figures


# Counters the operation shares already hold, so the hot path counts them once.
_DERIVED = ("cmd_get", "cmd_set", "get_misses", "written_bytes", "read_bytes")


class Stats:
    """What one worker has counted since its last delta."""

    def __init__(self) -> None:
        self.get = OpStats()
        self.set = OpStats()
        self._zero()

    def _zero(self) -> None:
        for name in COUNTERS:
            if name not in _DERIVED:
                setattr(self, name, 0)
        # Bytes outside the measured operations: warm-up sets, UDP frame headers.
        self.other_written = 0
        self.other_read = 0
        self.errors: Dict[str, int] = {}

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def take_delta(self) -> Delta:
        get, set_ = self.get.take(), self.set.take()
        counters = {name: getattr(self, name, 0) for name in COUNTERS}
        counters.update(
            cmd_get=get["ops"], cmd_set=set_["ops"], get_misses=get["misses"],
            written_bytes=get["written"] + set_["written"] + self.other_written,
            read_bytes=get["read"] + set_["read"] + self.other_read)
        delta = {"counters": counters, "errors": self.errors, "get": get, "set": set_}
        self._zero()
        return delta


def empty_delta() -> Delta:
    return Stats().take_delta()


def merge(into: Delta, other: Delta) -> Delta:
    """Add ``other`` into ``into`` (both deltas) and return ``into``."""
    for name, value in other["counters"].items():
        into["counters"][name] = into["counters"].get(name, 0) + value
    for kind, count in other["errors"].items():
        into["errors"][kind] = into["errors"].get(kind, 0) + count
    for operation in OPERATIONS:
        mine, theirs = into[operation], other[operation]
        for field in ("ops", "misses", "written", "read"):
            mine[field] += theirs[field]
        latencies = mine["latencies"]
        for micros, count in theirs["latencies"].items():
            latencies[micros] = latencies.get(micros, 0) + count
    return into


def total_of(delta: Delta) -> dict:
    """The Get and Set shares added together (memaslap's Total table)."""
    total = {"ops": 0, "misses": 0, "written": 0, "read": 0, "latencies": {}}
    for operation in OPERATIONS:
        part = delta[operation]
        for field in ("ops", "misses", "written", "read"):
            total[field] += part[field]
        for micros, count in part["latencies"].items():
            total["latencies"][micros] = total["latencies"].get(micros, 0) + count
    return total


class LatencySummary:
    """memaslap's latency figures (and HDR percentiles) from ``{microseconds: count}``."""

    def __init__(self, latencies: Dict[int, int]) -> None:
        self.events = sum(latencies.values())
        self.minimum = min(latencies) if latencies else 0
        self.maximum = max(latencies) if latencies else 0
        self.log2_buckets: Dict[int, int] = {}
        self.percentiles: Dict[float, int] = {}
        if not self.events:
            self.average = self.std_dev = self.geometric = 0.0
            return
        total = squares = logs = 0.0
        histogram = HdrHistogram(1, _HISTOGRAM_MAX_US, 3)
        for micros, count in latencies.items():
            total += micros * count
            squares += micros * micros * count
            logs += math.log(max(micros, 1)) * count
            # memaslap's bucket n holds latencies in (2^(n-1), 2^n].
            bucket = (max(micros, 1) - 1).bit_length()
            self.log2_buckets[bucket] = self.log2_buckets.get(bucket, 0) + count
            histogram.record_value(min(max(micros, 1), _HISTOGRAM_MAX_US), count)
        self.average = total / self.events
        self.std_dev = math.sqrt(max(squares / self.events - self.average ** 2, 0.0))
        self.geometric = math.exp(logs / self.events)
        self.percentiles = {p: histogram.get_value_at_percentile(p) for p in PERCENTILES}

    def log2_rows(self) -> List[List[int]]:
        """memaslap's ``Log2 Dist`` rows: four buckets a row, from the first used row."""
        if not self.log2_buckets:
            return []
        first = min(self.log2_buckets) // 4 * 4
        last = max(self.log2_buckets)
        return [[row] + [self.log2_buckets.get(bucket, 0)
                         for bucket in range(row, min(row + 4, last + 1))]
                for row in range(first, last + 1, 4)]

    def to_dict(self) -> dict:
        return {"events": self.events, "min_us": self.minimum, "max_us": self.maximum,
                "avg_us": round(self.average, 2), "std_dev_us": round(self.std_dev, 2),
                "geo_mean_us": round(self.geometric, 2),
                "p50_us": self.percentiles.get(50.0), "p90_us": self.percentiles.get(90.0),
                "p99_us": self.percentiles.get(99.0), "p99_9_us": self.percentiles.get(99.9)}

