"""Where the workers' deltas meet: running totals, ``-S`` tables, the live line, the progress bar.

Workers tick on their own clocks; a period is shown once every worker has handed in that tick,
so the tables always describe all of the load.
"""

from __future__ import annotations

import sys
from typing import Dict, List, Optional, TextIO

from pymcd.slap.report import period_tables
from pymcd.slap.settings import SlapSettings
from pymcd.slap.stats import Delta, empty_delta, merge

_BAR_WIDTH = 30


class Collector:
    """The sink every worker reports to (directly with ``-T 1``, through a pipe otherwise)."""

    def __init__(self, settings: SlapSettings, out: TextIO = sys.stdout,
                 err: TextIO = sys.stderr) -> None:
        self.settings = settings
        self.out = out
        self.err = err
        self.overall = empty_delta()
        self.finals: Dict[int, dict] = {}
        self._ticks: Dict[int, List] = {}
        self._ops = 0
        self._show_bar = settings.progress and not settings.stat_period and err.isatty()

    def __call__(self, worker_index: int, tick: int, delta: Delta,
                 final: Optional[dict]) -> None:
        merge(self.overall, delta)
        counters = delta["counters"]
        self._ops += counters["cmd_get"] + counters["cmd_set"]
        if final is not None:
            self.finals[worker_index] = final
            return
        arrived = self._ticks.setdefault(tick, [empty_delta(), 0])
        merge(arrived[0], delta)
        arrived[1] += 1
        if arrived[1] == self.settings.workers:
            del self._ticks[tick]
            self._period(tick, arrived[0])

    def _period(self, tick: int, period: Delta) -> None:
        settings = self.settings
        length = settings.stat_period or 1.0
        elapsed = tick * length
        if settings.stat_period:
            self.out.write(period_tables(period, length, self.overall, elapsed))
            self.out.flush()
            counters = period["counters"]
            ops = counters["cmd_get"] + counters["cmd_set"]
            self.err.write("pymcd-slap: %.0fs %d ops %.0f ops/s, %d ops in all\n"
                           % (elapsed, ops, ops / length, self._ops))
        elif self._show_bar:
            if settings.execute_number is not None:
                done = self._ops / float(settings.execute_number)
            else:
                done = elapsed / settings.run_time
            done = min(done, 1.0)
            filled = int(done * _BAR_WIDTH)
            self.err.write("\r[%s%s] %3d%% %d ops %.0f ops/s " % (
                "#" * filled, "." * (_BAR_WIDTH - filled), done * 100, self._ops,
                self._ops / max(elapsed, 1e-9)))
            self.err.flush()

    def end_progress(self) -> None:
        if self._show_bar:
            self.err.write("\n")

    @property
    def run_time(self) -> float:
        return max((final["run_time"] for final in self.finals.values()), default=0.0)

    @property
    def failure(self) -> Optional[str]:
        failures = [final["failure"] for final in self.finals.values() if final["failure"]]
        return "; ".join(failures) or None
