"""The UDP listener: every datagram is a self-contained request with memcached's frame header."""

from __future__ import annotations

from typing import Callable

from twisted.internet import protocol

from pymcd.context import ServerContext
from pymcd.protocol.udp import answer
from pymcd.session import Session


class MemcacheDatagramProtocol(protocol.DatagramProtocol):
    """One UDP socket; like memcached, it is a single "connection" serving every peer."""

    def __init__(self, server: ServerContext, session: Session,
                 on_bound: Callable[[Session, object], None]) -> None:
        self.server = server
        self.session = session  # the listener's connection (``stats conns``), made beforehand
        self.on_bound = on_bound

    def startProtocol(self) -> None:
        self.on_bound(self.session, self.transport.getHost())

    def stopProtocol(self) -> None:
        self.server.close_session(self.session)

    def datagramReceived(self, datagram: bytes, address) -> None:
        frames = answer(self.session, datagram)
        if frames is None:
            return
        stats = self.server.stats
        stats.bytes_read += len(datagram)
        for frame in frames:
            stats.bytes_written += len(frame)
            self.transport.write(frame, address)
