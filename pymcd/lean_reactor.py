"""The reactor pymcd runs on (server and pymcd-slap): Twisted's epoll reactor without per-event
logging contexts.

Twisted's ``doPoll`` wraps every readiness event in ``log.callWithLogger`` (a logging context
for the selectable, for the legacy ``twisted.python.log`` prefixes). A cache server and a load
generator handle one event per request and log through ``twisted.logger`` namespaces, which
need no such context; the wrapper cost a fifth of pymcd-slap's time at 80k ops/s (cProfile) and
pymcd serves about 30% more memaslap requests per second without it (bench/throughput.py).
Plain read events also skip ``_doReadOrWrite``'s generic checks; whatever a protocol raises is
still logged (through twisted.python.log, as the stock reactor does) and disconnects it.
"""

from __future__ import annotations

import errno
import sys
from typing import Optional


def install() -> None:
    """Install the lean reactor unless a reactor is already in use (tests, other programs).

    ``twistd --reactor pymcd-epoll`` calls this through the reactor plugin in
    ``twisted/plugins/pymcd_plugin.py``."""
    if "twisted.internet.reactor" in sys.modules:
        return
    try:
        from twisted.internet.epollreactor import EPollReactor
    except ImportError:  # not Linux: Twisted's default reactor
        return
    from select import EPOLLIN

    from twisted.internet.main import installReactor
    from twisted.python import log

    class LeanEPollReactor(EPollReactor):
        def doPoll(self, timeout: Optional[float]) -> None:
            try:
                events = self._poller.poll(-1 if timeout is None else timeout,
                                           len(self._selectables))
            except OSError as error:
                if error.errno == errno.EINTR:
                    return
                raise
            selectables = self._selectables
            handle = self._doReadOrWrite
            for fd, event in events:
                selectable = selectables.get(fd)
                if selectable is None:
                    continue
                if event != EPOLLIN:
                    handle(selectable, fd, event)
                    continue
                # A plain read, the event of nearly every reply: what _doReadOrWrite does
                # for it, without its checks for hang-ups, writes and a closed descriptor.
                try:
                    why = selectable.doRead()
                except BaseException:
                    why = sys.exc_info()[1]
                    log.err()
                if why:
                    self._disconnectSelectable(selectable, why, True)

        # EPollReactor binds its iteration to its own doPoll at class creation.
        doIteration = doPoll

    installReactor(LeanEPollReactor())
