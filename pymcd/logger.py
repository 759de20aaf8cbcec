"""Verbose traces (-v/-vv/-vvv) in memcached's own line formats, through twisted.logger.

Operators grep memcached's stderr for lines like ``<24 get foo`` and ``>24 END``; pymcd emits the
same text as the event's whole message under the ``pymcd.trace`` namespace, so the ``pymcd``
script can print it bare on stderr and twistd logs it with its usual timestamp prefix.
"""

from __future__ import annotations

import sys
from typing import IO

from twisted.logger import ILogObserver, Logger, LogLevel, PredicateResult, formatEvent
from zope.interface import implementer

TRACE_NAMESPACE = "pymcd.trace"
trace_log = Logger(namespace=TRACE_NAMESPACE)


def emit_trace(line: str) -> None:
    """Log one verbose line exactly as memcached would print it."""
    trace_log.info("{line}", line=line)


def only_traces_and_warnings(event: dict) -> PredicateResult:
    """What the ``pymcd`` script shows on stderr: memcached-style traces and real problems,
    not Twisted's start-up chatter."""
    if event.get("log_namespace") == TRACE_NAMESPACE:
        return PredicateResult.yes
    level = event.get("log_level")
    if level is not None and level >= LogLevel.warn:
        return PredicateResult.yes
    return PredicateResult.no


@implementer(ILogObserver)
class BareLineObserver:
    """Writes each event's message alone on a line, as memcached writes to stderr."""

    def __init__(self, stream: IO[str] = sys.stderr) -> None:
        self.stream = stream

    def __call__(self, event: dict) -> None:
        text = formatEvent(event)
        if event.get("log_failure") is not None:
            text = "%s\n%s" % (text, event["log_failure"].getTraceback())
        self.stream.write(text + "\n")
        self.stream.flush()
