"""Proxy client connections: requests in order, answers in order, whatever order they complete.

Each routed request leaves a :class:`Slot` in the session's reply list, where the server's own
commands leave bytes; a slot is filled when its route answers. The connection writes the replies
from the front of the list up to the first slot still empty, so a client always reads answers
in the order it asked, and a backend's batch of replies reaches each client in one write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Set

from pymcd.proxy.commands import Hide
from pymcd.proxy.request import ProxyRequest
from pymcd.server.stream import MemcacheStreamFactory, MemcacheStreamProtocol
from pymcd.protocol.text import TextMachine

if TYPE_CHECKING:  # pragma: no cover
    from pymcd.proxy.service import ProxyService

END = b"END\r\n"
# Connections that got answers since they last wrote; written after each batch of replies.
_ready: Set["ProxyStreamProtocol"] = set()


def write_ready() -> None:
    """Let every connection that got answers write them (once per backend read)."""
    while _ready:
        _ready.pop().write_answers()


class Slot:
    """Where one routed request's answer goes, in the connection's reply order."""

    __slots__ = ("connection", "hide", "reply")

    def __init__(self, connection: "ProxyStreamProtocol", hide: Hide) -> None:
        self.connection = connection
        self.hide = hide
        self.reply: Optional[bytes] = None

    def fill(self, reply: bytes, error: bool) -> None:
        if self.hide is not None and self.hide(reply):
            reply = b""
        self.reply = reply
        connection = self.connection
        connection.outstanding -= 1
        if connection.holding and connection.outstanding <= connection.service.request_limit // 2:
            connection.let_go()
        _ready.add(connection)


class ProxyStreamProtocol(MemcacheStreamProtocol):
    """A client of the proxy: pymcd's text machine over the proxy's dispatch table."""

    def __init__(self, server, clock, service: "ProxyService") -> None:
        super().__init__(server, clock)
        self.service = service
        self.internal_session = None
        # Routed requests not answered yet; at the config's active_request_limit the
        # connection stops reading until half of them are answered.
        self.outstanding = 0
        self.holding = False

    def connectionMade(self) -> None:
        super().connectionMade()
        if self.session is not None:
            self.session.proxy = self
            self.session.protocol_name = "ascii"
            self.machine = TextMachine(self.session, self.service.dispatch)

    # ------------------------------------------------------------------ in-flight limit
    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data)
        self._hold_if_busy()

    def _resume(self) -> None:
        super()._resume()
        self._hold_if_busy()

    def _hold_if_busy(self) -> None:
        if self.outstanding >= self.service.request_limit:
            self.holding = True
            if not self._write_blocked:
                self.pauseProducing()

    def let_go(self) -> None:
        self.holding = False
        if self.transport.connected:
            self.resumeProducing()

    # ------------------------------------------------------------------ routing
    def route(self, command: bytes, key: bytes, tokens: List[bytes], value: Optional[bytes],
              hide: Hide) -> None:
        slot = Slot(self, hide)
        self.session.out.append(slot)
        self.outstanding += 1
        self.service.count(command)
        self.service.handle(ProxyRequest(command, key, tokens, value, self), slot.fill)

    def route_multiget(self, head: List[bytes], keys: List[bytes]) -> None:
        """Each key on its own route; a key whose route failed counts as a miss, unless every
        key failed: then the client gets the first failure, as for a single get."""
        slot = Slot(self, None)
        self.session.out.append(slot)
        self.outstanding += 1
        command = head[0]
        self.service.count(command)
        answers: List[Optional[tuple]] = [None] * len(keys)
        remaining = [len(keys)]

        def part(index: int):
            def answered(reply: bytes, error: bool) -> None:
                answers[index] = (reply, error or not reply.endswith(END))
                remaining[0] -= 1
                if remaining[0] == 0:
                    slot.fill(*_merged(answers))
            return answered

        handle = self.service.handle
        for index, key in enumerate(keys):
            handle(ProxyRequest(command, key, head + [key], None, self), part(index))

    def run_internal(self, request: ProxyRequest) -> bytes:
        """Run a request with the server's own command against pymcd's store (internal())."""
        session = self.internal_session
        if session is None:
            session = self.internal_session = self.server.open_session(
                counted=False, transport_name="internal", peer="internal")
        command = self.server.commands.text[request.command]
        tokens = request.tokens
        if not command.takes_value:
            command.execute(session, tokens, None)
        elif command.begin(session, tokens) is None:
            session.swallow_bytes = 0  # the block was read already
        else:
            command.execute(session, tokens, request.value)
        reply = session.take_output()
        session.noreply = False
        return reply

    # ------------------------------------------------------------------ writing
    def _flush(self) -> None:
        self.write_answers()

    def write_answers(self) -> None:
        session = self.session
        if session is None or not self.transport.connected:
            return
        out = session.out
        if session.close_now:
            del out[session.flushed:]
        ready = []
        taken = 0
        for item in out:
            if item.__class__ is not bytes:
                item = item.reply
                if item is None:
                    break
            ready.append(item)
            taken += 1
        if taken:
            del out[:taken]
            session.flushed = max(0, session.flushed - taken)
            session.reply_bytes = 0
            data = ready[0] if taken == 1 else b"".join(ready)
            if data:
                self.server.stats.bytes_written += len(data)
                self.transport.write(data)
        if session.close_now or (session.close_after_write and not out):
            self.hang_up()
        elif session.watcher is not None and not session.watcher.attached:
            self._become_watcher()

    def connectionLost(self, reason=None) -> None:
        _ready.discard(self)
        if reason is None:
            super().connectionLost()
        else:
            super().connectionLost(reason)
        if self.internal_session is not None:
            self.server.close_session(self.internal_session)
            self.internal_session = None


def _merged(answers: List[tuple]):
    """One get reply from per-key answers: their VALUEs in key order, one END."""
    good = [reply for reply, failed in answers if not failed]
    if not good:
        return answers[0]
    return b"".join(reply[:-5] for reply in good) + END, False


class ProxyStreamFactory(MemcacheStreamFactory):
    def __init__(self, server, service: "ProxyService", clock=None) -> None:
        super().__init__(server, clock)
        self.service = service

    def buildProtocol(self, addr) -> ProxyStreamProtocol:
        proto = ProxyStreamProtocol(self.server, self.clock, self.service)
        proto.factory = self
        return proto
