"""A server without sockets for protocol tests: the real store and commands on a clock the test
moves, with connections that feed bytes to a protocol machine and return its replies."""

from __future__ import annotations

from pymcd.context import ServerContext
from pymcd.protocol.binary import BinaryMachine
from pymcd.protocol.text import TextMachine
from pymcd.settings import Settings
from pymcd.store import Store

START = 1_000_000.0


class Clock:
    """Wall-clock seconds that only move when a test says so."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class MachineConnection:
    """One connection: ``raw(data)`` runs a read through the machine and returns its replies."""

    def __init__(self, context: ServerContext, binary: bool = False) -> None:
        self.session = context.open_session()
        if binary:
            self.machine = BinaryMachine(self.session, context.commands.binary_dispatch)
        else:
            self.machine = TextMachine(self.session, context.commands.text_dispatch)

    def raw(self, data: bytes) -> bytes:
        """The replies to ``data``, drained after every yield as the stream layer writes them."""
        replies = []
        while True:
            more = self.machine.receive(data)
            replies.append(self.session.take_output())
            if not more:
                return b"".join(replies)
            data = b""

    __call__ = raw


class MachineServer:
    """One store and its ServerContext on a test clock; any number of connections."""

    def __init__(self, **overrides) -> None:
        self.settings = Settings(**overrides)
        self.clock = Clock()
        self.store = Store(self.settings.store, clock=self.clock)
        self.context = ServerContext(self.settings, self.store)

    def connect(self, binary: bool = False) -> MachineConnection:
        return MachineConnection(self.context, binary)

    def text(self, data: bytes) -> bytes:
        """Replies to ``data`` on a new text connection."""
        return MachineConnection(self.context).raw(data)

    def advance(self, seconds: int) -> None:
        self.clock.now += seconds
        self.store.tick()
