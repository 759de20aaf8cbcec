"""The ``pymcd`` script: memcached's command line, run on Twisted.

It parses exactly memcached's flags, so init scripts and test harnesses written for memcached
start pymcd unchanged, and prints -v traces bare on stderr as memcached does. ``-d`` forks the
process into the background as memcached does (see :mod:`pymcd.daemon`).
"""

from __future__ import annotations

import sys
from typing import List, Optional

from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    PredicateResult,
    globalLogBeginner,
)

from pymcd.daemon import daemonize, remove_pid, save_pid
from pymcd.lean_reactor import install_server_reactor
from pymcd.logger import TRACE_NAMESPACE, BareLineObserver
from pymcd.options import EarlyExit, parse_arguments
from pymcd.startup import StartupError


def _only_traces_and_warnings(event: dict) -> PredicateResult:
    """Show memcached-style traces and real problems, not Twisted's start-up chatter."""
    if event.get("log_namespace") == TRACE_NAMESPACE:
        return PredicateResult.yes
    level = event.get("log_level")
    if level is not None and level >= LogLevel.warn:
        return PredicateResult.yes
    return PredicateResult.no


def main(argv: Optional[List[str]] = None) -> int:
    """Serve until stopped; a start-up mistake is one line on stderr and memcached's status."""
    args = sys.argv[1:] if argv is None else argv
    try:
        return _serve(args)
    except EarlyExit as early:
        sys.stdout.write(early.text)
        return 0
    except StartupError as error:
        sys.stderr.write(str(error) + "\n")
        return error.exit_code


def _serve(args: List[str]) -> int:
    settings = parse_arguments(args)
    if settings.daemonize:
        daemonize(change_directory=not settings.core_dumps, keep_stdio=settings.verbose > 0)

    install_server_reactor(settings)
    from twisted.internet import reactor

    from pymcd.server.assembly import build_server

    globalLogBeginner.beginLoggingTo(
        [FilteringLogObserver(BareLineObserver(sys.stderr), [_only_traces_and_warnings])],
        redirectStandardIO=False,
    )
    server = build_server(settings)
    server.privilegedStartService()
    server.startService()
    reactor.addSystemEventTrigger("before", "shutdown", server.stopService)
    if settings.pidfile:
        save_pid(settings.pidfile)
        if settings.daemonize:
            reactor.addSystemEventTrigger("after", "shutdown", remove_pid, settings.pidfile)
    reactor.run()
    return 0




if __name__ == "__main__":
    sys.exit(main())
