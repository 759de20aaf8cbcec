"""Stream connections (TCP, unix sockets, TLS): bytes from the reactor into a protocol machine.

The first byte of a connection picks its protocol, as memcached's auto-negotiation does (0x80 is
the binary request magic); ``-B`` can pin one. Replies a read produced are written with one
``transport.write``; a machine that used up its per-read request budget (``-R``) yields to other
connections by pausing its reads and resuming on the next reactor turn.
"""

from __future__ import annotations

from typing import Optional

from twisted.internet import protocol
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from pymcd.context import ServerContext
from pymcd.protocol.negotiate import machine_for
from pymcd.session import Session


class MemcacheStreamProtocol(protocol.Protocol):
    """One client connection over a stream transport."""

    session: Session
    machine = None

    def __init__(self, server: ServerContext, clock: IReactorTime) -> None:
        self.server = server
        self.clock = clock
        self._resume_call = None

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        host = self.transport.getHost()
        self.session = self.server.open_session(
            transport_name=type(peer).__name__,
            peer=_address(peer),
            listen_address=_address(host),
        )
        if self.server.verbose > 1:
            self.server.trace("<%d new auto-negotiating client connection" % self.session.conn_id)

    def dataReceived(self, data: bytes) -> None:
        server = self.server
        server.stats.bytes_read += len(data)
        machine = self.machine
        if machine is None:
            machine = self.machine = machine_for(self.session, data)
        yielded = machine.receive(data)
        self._flush()
        if yielded and not self.session.close_now:
            self.transport.pauseProducing()
            self._resume_call = self.clock.callLater(0, self._resume)

    def _resume(self) -> None:
        self._resume_call = None
        if not self.transport.connected:
            return
        yielded = self.machine.receive(b"")
        self._flush()
        if yielded and not self.session.close_now:
            self._resume_call = self.clock.callLater(0, self._resume)
        else:
            self.transport.resumeProducing()

    def _flush(self) -> None:
        session = self.session
        out = session.out
        if out:
            data = out[0] if len(out) == 1 else b"".join(out)
            del out[:]
            self.server.stats.bytes_written += len(data)
            self.transport.write(data)
        if session.close_now:
            self.transport.abortConnection()
        elif session.close_after_write:
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        if self._resume_call is not None and self._resume_call.active():
            self._resume_call.cancel()
        session = getattr(self, "session", None)
        if session is not None:
            if self.server.verbose > 1:
                self.server.trace("<%d connection closed." % session.conn_id)
            self.server.close_session(session)


class MemcacheStreamFactory(protocol.Factory):
    """Builds a protocol per connection; all share one ServerContext."""

    def __init__(self, server: ServerContext, clock: Optional[IReactorTime] = None) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self.server = server
        self.clock = clock

    def buildProtocol(self, addr) -> MemcacheStreamProtocol:
        proto = MemcacheStreamProtocol(self.server, self.clock)
        proto.factory = self
        return proto


def _address(address) -> str:
    """memcached's spelling of an address in ``stats conns``."""
    host = getattr(address, "host", None)
    if host is not None:
        kind = getattr(address, "type", "TCP").lower()
        if ":" in host:
            return "%s:[%s]:%d" % (kind, host, address.port)
        return "%s:%s:%d" % (kind, host, address.port)
    name = getattr(address, "name", None)
    if name is not None:
        return "unix:%s" % (name.decode() if isinstance(name, bytes) else name)
    return str(address)
