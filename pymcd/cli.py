"""The ``pymcd`` script: memcached's command line, run on Twisted.

It parses exactly memcached's flags, so init scripts and test harnesses written for memcached
start pymcd unchanged, and prints -v traces bare on stderr as memcached does. ``-d`` forks the
process into the background as memcached does (see :mod:`pymcd.daemon`).
"""

from __future__ import annotations

import sys
from typing import List, Optional

from pymcd.daemon import daemonize, remove_pid, save_pid
from pymcd.lean_reactor import install_server_reactor
from pymcd.options import EarlyExit, needs_openssl, parse_arguments
from pymcd.startup import StartupError


def _leave_out_openssl(settings) -> None:
    """Keep OpenSSL's libcrypto out of a server that has no use for it (see
    ``options.needs_openssl``). Twisted imports the standard library's ``ssl`` on its way
    (twisted.python.compat imports http.cookiejar, hence urllib.request and http.client) and
    ``hashlib`` its ``_hashlib``; either loads libcrypto, 4.8 MiB of an idle server's 35 MiB
    of RSS. Without them http.client and urllib go without HTTPS and hashlib uses Python's own
    digests, as those modules are written to. Under twistd, Twisted is imported before the
    options are read, so this is the ``pymcd`` script's saving only."""
    if not needs_openssl(settings):
        for name in ("ssl", "_hashlib"):
            sys.modules.setdefault(name, None)


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
    _leave_out_openssl(settings)
    if settings.daemonize:
        daemonize(change_directory=not settings.core_dumps, keep_stdio=settings.verbose > 0)

    install_server_reactor(settings)
    from twisted.internet import reactor
    from twisted.logger import FilteringLogObserver, globalLogBeginner

    from pymcd.logger import BareLineObserver, only_traces_and_warnings
    from pymcd.server.assembly import build_server

    globalLogBeginner.beginLoggingTo(
        [FilteringLogObserver(BareLineObserver(sys.stderr), [only_traces_and_warnings])],
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
