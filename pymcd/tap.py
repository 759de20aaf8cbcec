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

from pymcd.options import EarlyExit, UsageError, help_text, parse_arguments
from pymcd.settings import Settings


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
        except UsageError as error:
            raise usage.UsageError(str(error))

    def getUsage(self, width=None) -> str:
        return help_text()


def makeService(options: Options) -> service.MultiService:
    """The store service, its maintainers and every listener, as one MultiService."""
    from pymcd.server.assembly import build_server

    return build_server(options.settings)
