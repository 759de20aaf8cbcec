"""Stream connections (TCP, unix sockets, TLS): bytes from the reactor into a protocol machine.

The first byte of a connection picks its protocol, as memcached's auto-negotiation does (0x80 is
the binary request magic); ``-B`` can pin one. Replies a read produced are written with one
``transport.write``; a machine that used up its per-read request budget (``-R``) yields to other
connections by pausing its reads and resuming on the next reactor turn.

Backpressure: each connection is a streaming producer of its own transport. When the replies
the kernel did not take pass the transport's buffer mark (Twisted's 64 KiB), the transport pauses
it, and it stops reading (and stops running requests it has already read) until the transport
has drained, as memcached stops reading a connection whose replies it cannot send; one read's
batch of replies is itself about ``OUTPUT_BOUND`` (the machines yield there). A client that
never reads costs a bounded amount of memory, and the other connections are served meanwhile.
The mark is left at Twisted's: raised to 2 MiB it let a stalled reader hold 2 MiB of replies
on top of a batch, and under Twisted's own ``doRead`` (the stock reactor) it is also the read
size, so each read of a pipelining client was 2 MiB of requests held in memory (over TLS, 2 MiB
of ciphertext decrypted at once): 6-8 MiB of RSS per stalled reader instead of 1-4.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from twisted.internet import protocol
from zope.interface import implementer
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.error import ConnectionDone
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.protocols.policies import ProtocolWrapper
from twisted.python.failure import Failure

from pymcd.context import ServerContext
from pymcd.event_log import CONNEVENTS
from pymcd.protocol.negotiate import machine_for
from pymcd.protocol.states import StateTrace
from pymcd.session import Session

try:
    from OpenSSL.SSL import Error as TLSError
except ImportError:  # a server without TLS runs without pyOpenSSL (see pymcd.cli)
    TLSError = None

TOO_MANY_CONNECTIONS = b"ERROR Too many open connections\r\n"
# How long a stopping server's connection waits for its client to close after the replies
# are out (see MemcacheStreamProtocol.stop).
LINGER = 1.0
# The most replies a TLS connection hands its transport in one reactor turn. Encrypting is the
# costly part of a TLS write (pyOpenSSL, a 16 KiB record at a time, the ciphertext copied out of
# OpenSSL's buffer), and one 500 KB reply encrypted at once kept other connections waiting
# 3-5 ms of CPU, more on a busy core; 64 KiB a turn is a fraction of a millisecond, and is
# Twisted's write mark, so a paused connection holds at most a batch of plaintext (in
# ``_unsent``) and a mark's worth of ciphertext. At 64,000 bytes or more Twisted's TLS
# transport encrypts a write at once instead of aggregating it to the next turn.
TLS_WRITE_CHUNK = 64 * 1024
NEW_CONNECTION_TRACES = {
    "auto": "<%d new auto-negotiating client connection",
    "ascii": "<%d new ascii client connection.",
    "binary": "<%d new binary client connection.",
}


@implementer(IPushProducer)
class MemcacheStreamProtocol(protocol.Protocol):
    """One client connection over a stream transport.

    Reads stop while the machine has requests left over (it used its ``-R`` budget or its
    reply bound, and continues on a later reactor turn), while a TLS connection still has
    replies to hand over (``TLS_WRITE_CHUNK`` a turn), or while the transport's write buffer
    is over its mark (it continues when the transport says it drained).
    """

    session: Optional[Session] = None
    machine = None
    # Why the server hung up, for watchers' conn_close lines (memcached's close reasons).
    close_reason: Optional[str] = None

    def __init__(self, server: ServerContext, clock: IReactorTime) -> None:
        self.server = server
        self.clock = clock
        # The connection's one scheduled call: _resume on a later turn, or a stop's linger.
        self._next_call = None
        # Something to do on a later reactor turn (requests left over, input held, replies not
        # handed over yet), once the transport's buffer is under its mark.
        self._work_left = False
        # The machine yielded with requests it has read but not run.
        self._requests_left = False
        # Over TLS, replies not yet handed to the transport (see TLS_WRITE_CHUNK).
        self._unsent: Optional[memoryview] = None
        self._write_chunk = 0
        # The transport's write buffer is over the bound.
        self._write_blocked = False
        # Input that arrived while paused (see dataReceived), for _resume.
        self._held: List[bytes] = []
        self.closed_waiters: List[Deferred] = []

    def connectionMade(self) -> None:
        server = self.server
        if not server.accepting():
            # memcached's maxconns_fast: tell the client why, then hang up.
            server.stats.rejected_connections += 1
            self.transport.write(TOO_MANY_CONNECTIONS)
            self.transport.loseConnection()
            return
        peer = self.transport.getPeer()
        self.session = server.open_session(
            transport_name=type(peer).__name__,
            peer=format_address(peer),
            listen_address=format_address(self.transport.getHost()),
        )
        self.factory.connections[self.session.conn_id] = self
        socket_transport = _socket_transport(self.transport)
        if socket_transport is not self.transport:
            self._write_chunk = TLS_WRITE_CHUNK
        if isinstance(peer, (IPv4Address, IPv6Address)):
            # memcached's TCP sockets: no Nagle delay for a reply's last segment, and keepalive
            # probes to find peers that vanished (it sets both on its listener; Linux hands
            # them to each accepted socket). A UNIX transport claims ITCPTransport too.
            socket_transport.setTcpNoDelay(True)
            socket_transport.setTcpKeepAlive(True)
        self.transport.registerProducer(self, True)
        if server.event_log.flags & CONNEVENTS:
            self._log_connection(True)
        if server.verbose > 1:
            server.trace(NEW_CONNECTION_TRACES[server.settings.binding_protocol]
                         % self.session.conn_id)
        if server.verbose > 2:
            StateTrace(self.session).connected()
        else:
            self.session.state = "conn_waiting"

    def dataReceived(self, data: bytes) -> None:
        if self.session is None:
            return
        server = self.server
        server.stats.bytes_read += len(data)
        if self._work_left or self._write_blocked:
            # Paused, yet handed more: TLS delivers all it has decrypted after a pause (up to
            # a socket read's worth); running it would start another batch of replies for
            # each 32 KiB it hands over, on top of the one that paused. It waits with the
            # requests left over.
            self._held.append(data)
            self._work_left = True
            return
        machine = self.machine
        if machine is None:
            machine = self.machine = machine_for(self.session, data)
        yielded = machine.receive(data)
        self._flush()
        if yielded or self._unsent is not None:
            self._note_work_left(yielded)
            if self._work_left:
                self.transport.pauseProducing()
                if not self._write_blocked:
                    self._next_call = self.clock.callLater(0, self._resume)

    def _note_work_left(self, yielded: bool) -> None:
        self._requests_left = yielded and not self.session.close_now
        self._work_left = self._requests_left or self._unsent is not None

    def _resume(self) -> None:
        """Hand over more of the replies not sent yet; once they are all out, run requests left
        over from an earlier read."""
        self._next_call = None
        if not self.transport.connected:
            return
        self._hand_over()
        if self._unsent is None:
            held = self._held
            if self._requests_left or held:
                data = b"".join(held)
                del held[:]
                yielded = self.machine.receive(data)
                self._flush()
                self._note_work_left(yielded)
            else:
                self._work_left = False
        if self._work_left:
            if not self._write_blocked:
                self._next_call = self.clock.callLater(0, self._resume)
        elif not self._write_blocked:
            self.transport.resumeProducing()

    def _hand_over(self, everything: bool = False) -> None:
        """Give the transport the next ``TLS_WRITE_CHUNK`` of the replies not sent yet, or
        ``everything`` left when the connection is closing or becoming a watcher."""
        unsent = self._unsent
        if unsent is None:
            return
        chunk = self._write_chunk
        if not everything and len(unsent) > chunk:
            self._unsent = unsent[chunk:]
            unsent = unsent[:chunk]
        else:
            self._unsent = None
        self.transport.write(bytes(unsent))

    def pauseProducing(self) -> None:
        """The transport holds more unsent bytes than its mark: stop reading."""
        self._write_blocked = True
        self.server.stats.backpressure_pauses += 1
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        """The transport drained: run what is left over, or read again."""
        self._write_blocked = False
        if self._work_left:
            if self._next_call is None:
                self._next_call = self.clock.callLater(0, self._resume)
        else:
            self.transport.resumeProducing()

    def stopProducing(self) -> None:
        """The connection is going away; connectionLost cleans up."""

    def stop(self) -> None:
        """The server is stopping: run nothing more, close once the replies written are sent.

        Closing a socket with unread input makes the kernel reset the connection, and a reset
        can destroy replies the client had not read yet; so the connection keeps reading (and
        discarding) while its replies drain, sends FIN once they are out, and closes when the
        client has closed too or LINGER seconds later (TLS, which has no half-close, closes
        after its close_notify).
        """
        if self._next_call is not None and self._next_call.active():
            self._next_call.cancel()
        self._next_call = None
        self._work_left = self._requests_left = False
        self._hand_over(everything=True)
        # Requests arriving from now on are read and dropped; nothing on the hot path tests
        # for a stop, so the method itself is replaced.
        self.dataReceived = _discard
        transport = self.transport
        if _socket_transport(transport) is not transport:
            self.hang_up()
            return
        transport.unregisterProducer()
        transport.resumeProducing()
        transport.loseWriteConnection()
        self._next_call = self.clock.callLater(LINGER, transport.loseConnection)

    def hang_up(self) -> None:
        """Close once the replies written so far are sent.

        A transport does not close while a streaming producer is registered and paused (it
        would resume the producer instead), so the connection stops being one first.
        """
        self._hand_over(everything=True)
        self.transport.unregisterProducer()
        self.transport.loseConnection()

    def _flush(self) -> None:
        session = self.session
        out = session.out
        if session.close_now:
            # conn_closing: memcached drops what it had queued and closes.
            del out[session.flushed:]
        # conn_swallow writes nothing more: memcached sends a refused block's error (and what was
        # queued since the last get) once the whole block has been read and discarded.
        count = session.flushed if session.swallow_bytes else len(out)
        if count:
            data = session.take_output(count)
            self.server.stats.bytes_written += len(data)
            if self._write_chunk and len(data) > self._write_chunk:
                # Over TLS: the first chunk now, the rest on later turns (_resume).
                self._unsent = memoryview(data)
                self._hand_over()
            else:
                self.transport.write(data)
        else:
            session.reply_bytes = 0
        if session.close_after_write or session.close_now:
            self.hang_up()
        elif session.watcher is not None and not session.watcher.attached:
            self._become_watcher()

    def _become_watcher(self) -> None:
        """A ``watch`` connection reads no more requests: its watcher takes over as the
        transport's producer (a watcher that stops reading drops events at the transport's
        mark)."""
        self._hand_over(everything=True)
        self.transport.unregisterProducer()
        self.session.watcher.attach(self.transport, self.clock)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        if TLSError is not None and reason.check(TLSError) and self.machine is None:
            self.server.stats.ssl_handshake_errors += 1
        if self._next_call is not None and self._next_call.active():
            self._next_call.cancel()
        self._unsent = None
        session = self.session
        if session is not None:
            self.factory.connections.pop(session.conn_id, None)
            if self.server.verbose > 2:
                StateTrace(session).closed()
            elif self.server.verbose > 1:
                self.server.trace("<%d connection closed." % session.conn_id)
            self.server.close_session(session)
            if self.server.event_log.flags & CONNEVENTS:
                if self.close_reason is None:
                    self.close_reason = self._why_closed(reason)
                self._log_connection(False)
        for waiter in self.closed_waiters:
            waiter.callback(None)


    def _why_closed(self, reason: Failure) -> str:
        """The server's reason when it closed; else "normal" for a client's clean close and
        "error" for a reset."""
        session = self.session
        if session.close_now or session.close_after_write:
            return session.close_reason
        return "normal" if reason.check(ConnectionDone) else "error"

    def _log_connection(self, opened: bool) -> None:
        """conn_new / conn_close for watchers, with memcached's remote address fields."""
        peer = self.transport.getPeer()
        host = getattr(peer, "host", None)
        self.server.event_log.connection(
            opened, self.session.conn_id, host or "unix", getattr(peer, "port", 0),
            "tcp" if host is not None else "local", self.close_reason or "normal",
        )


class MemcacheStreamFactory(protocol.Factory):
    """Builds a protocol per connection; all share one ServerContext.

    It also knows every live connection, for what needs to reach them from outside a read: the
    idle-timeout sweep and a graceful shutdown.
    """

    def __init__(self, server: ServerContext, clock: Optional[IReactorTime] = None) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self.server = server
        self.clock = clock
        self.connections: Dict[int, MemcacheStreamProtocol] = {}

    def kick_idle(self, idle_timeout: int) -> None:
        """Close clients idle longer than ``idle_timeout`` seconds (not those mid-request)."""
        now = self.server.store.now
        for proto in list(self.connections.values()):
            session = proto.session
            if session.state == "conn_waiting" and now - session.last_cmd_time > idle_timeout:
                self.server.stats.idle_kicks += 1
                proto.close_reason = "idle_timeout"
                if self.server.verbose > 1:
                    self.server.trace("Closing idle fd %d" % session.conn_id)
                proto.hang_up()

    def close_all(self, timeout: float) -> Deferred:
        """Close every connection once the replies it was sent are written; fires when all are
        gone. Requests read but not yet run are dropped (their replies were never begun), and a
        connection still holding unsent replies after ``timeout`` seconds (a client that stopped
        reading) is aborted, so that a stop takes bounded time."""
        waiting = []
        for proto in list(self.connections.values()):
            done = Deferred()
            proto.closed_waiters.append(done)
            proto.close_reason = "shutdown"
            waiting.append(done)
            proto.stop()
        finished = DeferredList(waiting)
        if waiting:
            deadline = self.clock.callLater(timeout, self._abort_all)
            finished.addBoth(_cancel_call, deadline)
        return finished

    def _abort_all(self) -> None:
        for proto in list(self.connections.values()):
            proto.transport.abortConnection()

    def buildProtocol(self, addr) -> MemcacheStreamProtocol:
        proto = MemcacheStreamProtocol(self.server, self.clock)
        proto.factory = self
        return proto


def _discard(data: bytes) -> None:
    """dataReceived of a connection the stopping server no longer serves."""


def _cancel_call(result, call):
    if call.active():
        call.cancel()
    return result


def _socket_transport(transport):
    """The transport that owns the socket's write buffer: TLS wraps one and writes its
    ciphertext there, so that is where the bound applies."""
    while isinstance(transport, ProtocolWrapper):
        transport = transport.transport
    return transport


# memcached reads a listening socket's own address into a sockaddr_in6: 28 bytes, 26 of them for
# a unix path, so ``stats conns`` cuts a listener's longer path there.
LISTENER_PATH_LIMIT = 26


def format_address(address, listening: bool = False) -> str:
    """memcached's spelling of an address in ``stats conns`` (a unix client has no name: memcached
    shows the empty address's family, 0)."""
    host = getattr(address, "host", None)
    if host is not None:
        kind = getattr(address, "type", "TCP").lower()
        if ":" in host:
            return "%s6:[%s]:%d" % (kind, host, address.port)
        return "%s:%s:%d" % (kind, host, address.port)
    name = getattr(address, "name", None)
    if name:
        path = name if isinstance(name, bytes) else name.encode()
        if listening:
            path = path[:LISTENER_PATH_LIMIT]
        return "unix:%s" % path.decode(errors="replace")
    return "?:<AF 0>"
