"""The UDP listener: every datagram is a self-contained request with memcached's frame header."""

from __future__ import annotations

from typing import Callable

from twisted.internet import protocol

from pymcd.context import ServerContext
from pymcd.protocol.negotiate import machine_for
from pymcd.protocol.udp import MULTI_PACKET_REFUSAL, frame_reply, parse_request
from pymcd.session import Session


class MemcacheDatagramProtocol(protocol.DatagramProtocol):
    """One UDP socket; like memcached, it is a single "connection" serving every peer.

    Each datagram gets a fresh protocol machine, so a request cut short by the datagram's end
    leaves nothing behind to corrupt the next one.
    """

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
        parsed = parse_request(datagram)
        if parsed is None:
            return
        request_id, single, payload = parsed
        server = self.server
        server.stats.bytes_read += len(datagram)
        session = self.session
        if single:
            machine = machine_for(session, payload)
            replies = []
            while True:
                more = machine.receive(payload)
                replies.append(session.take_output())
                if not more:
                    break
                payload = b""
            reply = b"".join(replies)
        else:
            reply = MULTI_PACKET_REFUSAL
        session.close_now = session.close_after_write = False
        session.swallow_bytes = 0
        if reply:
            for frame in frame_reply(request_id, reply):
                server.stats.bytes_written += len(frame)
                self.transport.write(frame, address)
