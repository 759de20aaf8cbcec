"""Sampled request latency per command, at no cost to the requests that are not sampled.

Timing every request (two clock reads and a histogram update) would cost the hot path a few
percent. Instead, ``LatencySampler.arm()`` runs on a timer (50 times a second) and replaces every
entry of the shared text and binary command tables with a ``TimedCommand``; the first request of
each command after that runs through it, is timed, and puts the plain entry back. Requests that
find the plain entry pay nothing at all, and there is no per-request flag to test.

What is timed is the command's ``execute`` (the store call and rendering of the reply), i.e. the
server's own service time for one request; parsing and the socket write around it are shared by
every request of a read and not attributed. The histogram's count is the number of *samples*;
``memcached_commands_total`` counts the requests.
"""

from __future__ import annotations

from bisect import bisect_left
from time import perf_counter
from typing import Dict, List, Tuple

from pymcd.commands.registry import CommandRegistry
from pymcd.protocol.binary import Opcode

# Upper bounds in seconds: pymcd serves a request in tens of microseconds; the tail is a
# large multi-get, a stats dump, or a page move.
BUCKETS: Tuple[float, ...] = (
    5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 5e-2, 0.25)
SAMPLES_PER_SECOND = 50

_OPCODE_NAMES = {value: name.lower() for name, value in vars(Opcode).items()
                 if not name.startswith("_") and isinstance(value, int)}


def _command_name(command) -> str:
    """A text command's first verb, or a binary command's first opcode by its name."""
    first = command.names[0]
    if isinstance(first, bytes):
        return first.decode("latin-1")
    return _OPCODE_NAMES.get(first, "0x%02x" % first)


class LatencyHistogram:
    """Cumulative-on-read bucket counts of one (protocol, command)."""

    __slots__ = ("counts", "total", "samples")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0
        self.samples = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds
        self.samples += 1

    def cumulative(self) -> List[Tuple[str, int]]:
        """Prometheus's ``le`` buckets: (upper bound, observations at or below it)."""
        running, rows = 0, []
        for bound, count in zip(BUCKETS + (float("inf"),), self.counts):
            running += count
            rows.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return rows


class TimedCommand:
    """A one-shot stand-in for a command: times its next ``execute`` and steps aside."""

    __slots__ = ("command", "table", "name", "plain_entry", "histogram")

    def __init__(self, command, table: dict, name, plain_entry, histogram: LatencyHistogram):
        self.command = command
        self.table = table
        self.name = name
        self.plain_entry = plain_entry
        self.histogram = histogram

    def __getattr__(self, attribute):
        # arity, takes_value, writes_at_once, allowed_before_auth, begin, ...: the command's own.
        return getattr(self.command, attribute)

    def execute(self, *arguments):
        self.table[self.name] = self.plain_entry
        started = perf_counter()
        try:
            return self.command.execute(*arguments)
        finally:
            self.histogram.observe(perf_counter() - started)


class LatencySampler:
    """Arms the command tables on a timer and keeps one histogram per (protocol, command)."""

    def __init__(self, commands: CommandRegistry) -> None:
        self.histograms: Dict[Tuple[str, str], LatencyHistogram] = {}
        # (table, name, plain entry, stand-in entry) for every verb and opcode.
        self._swaps: List[tuple] = []
        # The tables the machines dispatch from: each entry is the command and what the
        # machine checks before calling it.
        for protocol, table in (("text", commands.text_dispatch),
                                ("binary", commands.binary_dispatch)):
            for name, entry in table.items():
                command = entry[0]
                histogram = self._histogram(protocol, _command_name(command))
                stand_in = TimedCommand(command, table, name, entry, histogram)
                self._swaps.append((table, name, entry, (stand_in,) + tuple(entry[1:])))

    def _histogram(self, protocol: str, command: str) -> LatencyHistogram:
        return self.histograms.setdefault((protocol, command), LatencyHistogram())

    def arm(self) -> None:
        """Let the next request of every command be timed."""
        for table, name, plain, stand_in in self._swaps:
            if table.get(name) is plain:
                table[name] = stand_in

    def disarm(self) -> None:
        for table, name, plain, _ in self._swaps:
            table[name] = plain
