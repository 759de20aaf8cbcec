"""``pymcd-slap``: parse memaslap's options, run the workers, print memaslap's report.

``-T 1`` runs the worker in this process; ``-T N`` forks N workers (one reactor, one core each)
that send their deltas back over pipes. The exit status is 0 for a clean run, 1 when the run
could not start or ended early (the report then shows the figures so far), 2 for bad options.
"""

from __future__ import annotations

import multiprocessing
import sys
from multiprocessing.connection import wait
from typing import List, Optional, Sequence

from twisted.logger import FileLogObserver, LogLevel, formatEvent, globalLogBeginner

from pymcd.slap.collector import Collector
from pymcd.slap.options import parse_options
from pymcd.slap.report import final_report, header, write_json
from pymcd.slap.settings import SettingsError, SlapSettings
from pymcd.slap.worker import run_worker


def _start_logging() -> None:
    def format_line(event: dict) -> Optional[str]:
        if event.get("log_level", LogLevel.info) < LogLevel.warn:
            return None
        return "pymcd-slap: %s\n" % formatEvent(event)

    globalLogBeginner.beginLoggingTo([FileLogObserver(sys.stderr, format_line)],
                                     redirectStandardIO=False)


def _worker_process(settings: SlapSettings, worker_index: int, pipe) -> None:
    try:
        run_worker(settings, worker_index, lambda *message: pipe.send(message))
    finally:
        pipe.close()


def _run_processes(settings: SlapSettings, collector: Collector) -> None:
    context = multiprocessing.get_context("fork")
    readers = []
    processes = []
    for index in range(settings.workers):
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(target=_worker_process, args=(settings, index, writer),
                                  daemon=True)
        process.start()
        writer.close()
        readers.append(reader)
        processes.append((index, process))
    open_readers: List = list(readers)
    while open_readers:
        for reader in wait(open_readers):
            try:
                collector(*reader.recv())
            except EOFError:
                open_readers.remove(reader)
    for index, process in processes:
        process.join()
        if index not in collector.finals:
            collector.finals[index] = {"run_time": 0.0, "failure": "worker %d died with exit "
                                       "status %s" % (index, process.exitcode)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        settings = parse_options(argv)
    except SettingsError as error:
        sys.stderr.write("pymcd-slap: %s\n" % error)
        return 2
    _start_logging()
    sys.stdout.write(header(settings))
    sys.stdout.flush()
    collector = Collector(settings)
    if settings.workers == 1:
        run_worker(settings, 0, collector)
    else:
        _run_processes(settings, collector)
    collector.end_progress()
    run_time = collector.run_time
    sys.stdout.write(final_report(settings, collector.overall, run_time))
    sys.stdout.flush()
    failure = collector.failure
    if settings.json_path:
        write_json(settings.json_path, settings, collector.overall, run_time, failure)
    if failure:
        sys.stderr.write("pymcd-slap: %s\n" % failure)
        return 1
    return 0
