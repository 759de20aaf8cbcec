"""STAT: the text protocol's ``stats`` as a series of key/value packets ended by an empty one.

The key/values come from the same sources as the text command's (the server's general stats and
:data:`pymcd.commands.statistics.SECTIONS`), so the two protocols cannot disagree. As in memcached
1.6.18, ``conns`` and ``cachedump`` are text-only and answer ``Not found`` here.
"""

from __future__ import annotations

from typing import Iterable

from pymcd.commands.binary_base import BinaryCommand, fail
from pymcd.commands.statistics import SECTIONS
from pymcd.protocol.binary import BinaryRequest, Opcode, Status, pack_response
from pymcd.stats import Stat


class Statistics(BinaryCommand):
    """The key names the sub-statistics; memcached does not check the body past it."""

    names = (Opcode.STAT,)
    value_allowed = True

    def execute(self, session, request: BinaryRequest) -> None:
        server = session.server
        section = request.key
        if server.verbose > 1:
            server.trace("<%d STATS %s" % (session.conn_id, section.decode("latin-1")))
        if not section:
            self._send(session, request, server.general_stats())
        elif section.startswith(b"reset"):
            server.reset_stats()
            self._send(session, request, ())
        elif section.startswith(b"detail"):
            self._detail(session, request, section[len(b"detail"):])
        elif section.startswith(b"settings"):
            self._send(session, request, server.settings_stats())
        elif section in SECTIONS:
            self._send(session, request, SECTIONS[section](server))
        else:
            fail(session, request, Status.KEY_ENOENT)

    def _detail(self, session, request: BinaryRequest, mode: bytes) -> None:
        server = session.server
        settings = server.settings
        if mode.startswith(b" dump"):
            dump = server.prefix_stats.dump().decode("latin-1")
            self._send(session, request, (("detailed", dump),))
        elif mode.startswith(b" on") or mode.startswith(b" off"):
            settings.detail_enabled = mode.startswith(b" on")
            self._send(session, request, ())
        else:
            fail(session, request, Status.KEY_ENOENT)

    @staticmethod
    def _send(session, request: BinaryRequest, stats: Iterable[Stat]) -> None:
        packets = [
            pack_response(request.opcode, request.opaque, key=name.encode(),
                          value=str(value).encode("latin-1"))
            for name, value in stats
        ]
        packets.append(pack_response(request.opcode, request.opaque))
        # memcached writes stat packets without its header trace.
        session.out.append(b"".join(packets))


STAT = Statistics()
