"""Backend connections: one kept-open, pipelined Twisted client per backend server.

Requests are written as they come and their reply callbacks queued in order; memcached answers
a connection's requests in order, so the reply framed next (:func:`pymcd.replies.reply_end`)
belongs to the oldest callback. A backend whose connection fails, breaks or stops answering
(read timeout) fails every request it holds, at once, with memcached's proxy error; after
``failurelimit`` failures in a row it is marked down and answers that error without trying,
until ``retrytimeout`` has passed and a new connection is tried. So a request is answered once:
by its reply, or by the failure that took its connection.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable, Deque, List, Optional, Tuple

from twisted.internet import protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from pymcd.proxy.routelib import ConfigError
from pymcd.replies import INCOMPLETE, reply_end

log = Logger()

BACKEND_FAILURE = b"SERVER_ERROR backend failure\r\n"
# What a route gets back: the reply bytes and whether they count as an error.
Done = Callable[[bytes, bool], None]


@dataclass
class BackendOptions:
    """memcached proxy's backend options (seconds), under their Lua names in a config."""

    connect_timeout: float = 5.0
    read_timeout: float = 3.0
    retry_timeout: float = 3.0
    failure_limit: int = 3

    NAMES = {"connecttimeout": "connect_timeout", "readtimeout": "read_timeout",
             "retrytimeout": "retry_timeout", "failurelimit": "failure_limit"}

    def updated(self, options: dict) -> "BackendOptions":
        values = dict(self.__dict__)
        for name, value in options.items():
            attribute = self.NAMES.get(name.replace("backend_", "").replace("_", ""))
            if attribute is None:
                raise ConfigError("unknown backend option %r" % (name,))
            values[attribute] = type(values[attribute])(value)
        return BackendOptions(**values)


@dataclass(frozen=True)
class BackendAddress:
    """Where a backend listens: ``host:port``, ``unix:/path`` or ``tls:host:port``.

    A second word ``_down_`` forces it unavailable, as in memcached's config; any other second
    word is a label.
    """

    kind: str
    host: str = ""
    port: int = 0
    path: str = ""
    forced_down: bool = False

    @classmethod
    def parse(cls, spec) -> "BackendAddress":
        if isinstance(spec, dict):
            if "path" in spec or "unix" in spec:
                return cls("unix", path=spec.get("path") or spec["unix"],
                           forced_down=bool(spec.get("down")))
            return cls("tls" if spec.get("tls") else "tcp", str(spec["host"]), int(spec["port"]),
                       forced_down=bool(spec.get("down")))
        words = str(spec).split()
        if not words:
            raise ConfigError("empty backend")
        forced_down = "_down_" in words[1:]
        text = words[0]
        if text.startswith("unix:"):
            return cls("unix", path=text[len("unix:"):], forced_down=forced_down)
        kind = "tcp"
        if text.startswith("tls:"):
            kind, text = "tls", text[len("tls:"):]
        host, _, port = text.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError("backend %r is not host:port, unix:PATH or tls:host:port" % spec)
        return cls(kind, host.strip("[]"), int(port), forced_down=forced_down)

    @property
    def name(self) -> str:
        return self.path if self.kind == "unix" else "%s:%d" % (self.host, self.port)


class BackendStats:
    __slots__ = ("requests", "errors", "timeouts", "failures", "marked_down", "connects")

    def __init__(self) -> None:
        self.requests = self.errors = self.timeouts = 0
        self.failures = self.marked_down = self.connects = 0


class BackendProtocol(protocol.Protocol):
    """One open connection to a backend; matches replies to the queued callbacks in order."""

    def __init__(self, backend: "Backend") -> None:
        self.backend = backend
        self.pending: Deque[Done] = deque()
        self.buffer = b""

    def connectionMade(self) -> None:
        self.backend.connected(self)

    def dataReceived(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        pending = self.pending
        position = 0
        while pending:
            end = reply_end(buffer, position)
            if end == INCOMPLETE:
                break
            reply = buffer[position:end] if position or end != len(buffer) else buffer
            position = end
            pending.popleft()(reply, reply.startswith(b"SERVER_ERROR"))
        if not pending:
            position = len(buffer)  # bytes no request asked for are dropped
        self.buffer = buffer[position:] if position < len(buffer) else b""
        self.backend.progressed()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self.backend.lost(self, "disconnected")


class BackendFactory(protocol.ClientFactory):
    def __init__(self, backend: "Backend") -> None:
        self.backend = backend

    def buildProtocol(self, addr) -> BackendProtocol:
        return BackendProtocol(self.backend)

    def clientConnectionFailed(self, connector, reason: Failure) -> None:
        self.backend.connect_failed(reason)


class Backend:
    """One backend server: its connection, its health and its counters."""

    def __init__(self, address: BackendAddress, options: BackendOptions, clock,
                 events: Callable[..., None], after_replies: Callable[[], None]) -> None:
        self.address = address
        self.name = address.name
        self.options = options
        self.clock = clock
        self.events = events
        # Runs after each batch of replies: the clients they completed write once.
        self.after_replies = after_replies
        self.protocol: Optional[BackendProtocol] = None
        self.connector = None
        self.waiting: List[Tuple[bytes, Done]] = []
        self.failures = 0
        self.down = address.forced_down
        self.down_until = float("inf") if address.forced_down else 0.0
        self.last_progress = 0.0
        self.stats = BackendStats()
        # Dropped by a reload: answers what it holds, then hangs up.
        self.retiring = False

    def send(self, raw: bytes, done: Done) -> None:
        self.stats.requests += 1
        connection = self.protocol
        if connection is not None:
            if not connection.pending:
                self.last_progress = self.clock.seconds()
            connection.pending.append(done)
            connection.transport.write(raw)
            return
        if self.down and self.clock.seconds() < self.down_until:
            self.stats.errors += 1
            done(BACKEND_FAILURE, True)
            return
        self.waiting.append((raw, done))
        if self.connector is None:
            self._connect()

    def _connect(self) -> None:
        from twisted.internet import reactor

        factory = BackendFactory(self)
        timeout = self.options.connect_timeout
        address = self.address
        self.stats.connects += 1
        if address.kind == "unix":
            self.connector = reactor.connectUNIX(address.path, factory, timeout=timeout)
        elif address.kind == "tls":
            from twisted.internet import ssl

            self.connector = reactor.connectSSL(address.host, address.port, factory,
                                                ssl.CertificateOptions(), timeout=timeout)
        else:
            self.connector = reactor.connectTCP(address.host, address.port, factory,
                                                timeout=timeout)

    def connected(self, connection: BackendProtocol) -> None:
        self.connector = None
        self.protocol = connection
        if self.down:
            self.down = False
            self.events("backend_up", self)
        waiting, self.waiting = self.waiting, []
        if waiting:
            self.last_progress = self.clock.seconds()
            connection.transport.write(b"".join(raw for raw, _ in waiting))
            connection.pending.extend(done for _, done in waiting)

    def connect_failed(self, reason: Failure) -> None:
        self.connector = None
        self._failed("connect failed: %s" % reason.getErrorMessage(), self.waiting)
        self.waiting = []

    def progressed(self) -> None:
        self.failures = 0
        self.last_progress = self.clock.seconds()
        self.after_replies()
        if self.retiring and self.idle:
            self.close()

    @property
    def idle(self) -> bool:
        """Nothing asked and not answered yet (nor waiting for a connection)."""
        return not self.waiting and (self.protocol is None or not self.protocol.pending)

    def retire(self) -> None:
        """A reload no longer uses this backend: hang up once what it holds is answered."""
        self.retiring = True
        if self.idle:
            self.close()

    def lost(self, connection: BackendProtocol, why: str) -> None:
        if connection is not self.protocol:
            return
        self.protocol = None
        pending = list(connection.pending)
        connection.pending.clear()
        if pending:
            self._failed(why, [(b"", done) for done in pending])

    def check_timeout(self, now: float) -> None:
        """The read timeout: a connection with requests and no reply for read_timeout fails."""
        connection = self.protocol
        if connection is not None and connection.pending and \
                now - self.last_progress > self.options.read_timeout:
            self.stats.timeouts += 1
            self.lost(connection, "read timeout")
            connection.transport.abortConnection()

    def _failed(self, why: str, requests: List[Tuple[bytes, Done]]) -> None:
        self.failures += 1
        self.stats.failures += 1
        self.events("backend_error", self, why)
        if self.failures >= self.options.failure_limit and not self.down:
            self.down = True
            self.stats.marked_down += 1
            self.events("backend_down", self, why)
        if self.down:
            self.down_until = self.clock.seconds() + self.options.retry_timeout
        self.stats.errors += len(requests)
        for _, done in requests:
            done(BACKEND_FAILURE, True)
        self.after_replies()

    def close(self) -> None:
        """Hang up now, failing whatever it still holds."""
        connection = self.protocol
        if connection is not None:
            self.lost(connection, "closed")
            connection.transport.loseConnection()
        if self.connector is not None:
            self.connector.disconnect()
