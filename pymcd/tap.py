"""``twistd pymcd``: the Options and makeService behind the twistd plugin.

The options are memcached's own (see :mod:`pymcd.options`), so ``twistd -n pymcd -m 64 -U 0``
and ``pymcd -m 64 -U 0`` mean the same; ``--port`` also takes Twisted endpoint strings and
repeats.
"""

from __future__ import annotations

import sys
from typing import Sequence

from twisted.application import service
from twisted.python import usage

from pymcd.lean_reactor import install_server_reactor
from pymcd.options import EarlyExit, help_text, parse_arguments
from pymcd.settings import Settings
from pymcd.startup import StartupError, report_under_twistd


class Options(usage.Options):
    """twistd's view of memcached's command line."""

    synopsis = "[memcached options] [--port ENDPOINT ...]"
    longdesc = "A memcached-compatible cache server. Options are memcached 1.6's."

    def parseOptions(self, options: Sequence[str] = None) -> None:
        if options is None:
            options = sys.argv[1:]
        try:
            self.settings: Settings = parse_arguments(options)
        except EarlyExit as early:
            sys.stdout.write(early.text)
            sys.exit(0)
        except StartupError as error:
            # Not usage.UsageError: twistd would print its whole --help above the line.
            _exit_with(error)
        # twistd parses its own options, --reactor included, before ours and installs its
        # default reactor only later, when it first imports one: so pymcd's lean reactor is the
        # default under twistd too, and an explicit --reactor still wins.
        install_server_reactor(self.settings)

    def getUsage(self, width=None) -> str:
        return help_text()


def makeService(options: Options) -> service.MultiService:
    """The store service, its maintainers and every listener, as one MultiService."""
    from pymcd.server.assembly import build_server

    report_under_twistd()
    try:
        server = build_server(options.settings)
    except StartupError as error:
        _exit_with(error)
    parent = getattr(options, "parent", None)
    if parent is not None and not parent.get("nodaemon", True):
        return DaemonStartup(server)
    return server


class DaemonStartup(service.MultiService):
    """A daemonized server's start-up mistake, logged as its line: the daemon's stderr is
    /dev/null and twistd's parent tells the user to look at the log file."""

    def __init__(self, server: service.Service) -> None:
        super().__init__()
        server.setServiceParent(self)

    def privilegedStartService(self) -> None:
        try:
            super().privilegedStartService()
        except StartupError as error:
            from twisted.logger import Logger

            Logger(namespace="pymcd").critical("{line}", line=str(error))
            raise


def _exit_with(error: StartupError) -> None:
    """Before twistd daemonizes: the line on stderr and memcached's exit status."""
    sys.stderr.write(str(error) + "\n")
    sys.exit(error.exit_code)
