"""One worker: a reactor driving its share of the concurrencies (memaslap's thread).

One CPython process holds one core, so ``-T N`` runs N of these as processes; each hands its
figures out as deltas every tick (the ``-S`` period, else a second) and once at the end, and the
parent merges them. With ``-T 1`` the worker runs in the calling process.
"""

from __future__ import annotations

import gc
import random
import time
from typing import Callable, Dict, List, Optional

from twisted.internet.protocol import ClientFactory
from twisted.logger import Logger
from twisted.python.failure import Failure

from pymcd.slap.codec import AsciiCodec, BinaryCodec
from pymcd.slap.connection import Concurrency, DatagramChannel, StreamChannel
from pymcd.slap.settings import SlapSettings
from pymcd.slap.stats import Delta, Stats
from pymcd.slap.workload import CharBlock, KeyPrefixes, Window

# (worker index, tick number, delta, final report or None)
DeltaSink = Callable[[int, int, Delta, Optional[dict]], None]

# A lost connection is retried at once (almost); a refused one every second.
_RECONNECT_DELAY = 0.1
_RETRY_DELAY = 1.0
# How long a stopping run waits for replies still in flight before it closes the sockets.
_STOP_GRACE = 2.0
_GC_THRESHOLD = 100000

log = Logger()


class _ChannelFactory(ClientFactory):
    """Connects (and with ``-R`` reconnects) one existing StreamChannel."""

    def __init__(self, engine: "Engine", channel: StreamChannel) -> None:
        self.engine = engine
        self.channel = channel

    def buildProtocol(self, addr) -> StreamChannel:
        return self.channel

    def clientConnectionFailed(self, connector, reason: Failure) -> None:
        self.engine.connect_failed(connector, reason)


class Engine:
    """What a worker's concurrencies share: settings, data, figures, and the run's life cycle."""

    def __init__(self, settings: SlapSettings, worker_index: int, reactor,
                 sink: DeltaSink) -> None:
        self.settings = settings
        self.worker_index = worker_index
        self.reactor = reactor
        self.sink = sink
        self.clock = time.perf_counter
        self.stats = Stats()
        rng = random.Random(worker_index * 7919 + 1)
        self.rng = rng
        self.block = CharBlock(settings.workload.max_value_size, rng)
        self.codec = BinaryCodec if settings.binary else AsciiCodec
        self.prefixes = KeyPrefixes(worker_index)
        self.concurrencies: List[Concurrency] = []
        self.datagram_channels: List[DatagramChannel] = []
        self.stopping = False
        self.failure: Optional[str] = None
        self.started_at: Optional[float] = None
        self.ended_at: Optional[float] = None
        self._ready = 0
        self._finished = 0
        self._tick = 0
        self._logged: Dict[str, int] = {}
        self._connectors: list = []
        self._ended = False

    def call_later(self, delay: float, function: Callable[[], None]) -> None:
        self.reactor.callLater(delay, function)

    def log_once(self, message: str) -> None:
        """Report an error's first few occurrences, not one line per operation."""
        seen = self._logged.get(message, 0)
        self._logged[message] = seen + 1
        if seen < 3:
            log.warn("{message}", message=message)

    # -- building ----------------------------------------------------------------------------

    def build(self) -> None:
        settings = self.settings
        workers = settings.workers
        share = settings.concurrency // workers
        first = self.worker_index * share
        total = settings.concurrency
        for global_index in range(first, first + share):
            budget = None
            if settings.execute_number is not None:
                budget = settings.execute_number // total + (
                    1 if global_index < settings.execute_number % total else 0)
            window = Window(settings.window, settings.workload, self.prefixes, self.block,
                            settings.expire_verify, settings.expire_time, settings.overwrite,
                            self.rng)
            concurrency = Concurrency(self, global_index, window, budget,
                                      settings.target_tps / total)
            self._wire(concurrency, global_index % len(settings.servers))
            self.concurrencies.append(concurrency)

    def _wire(self, concurrency: Concurrency, home: int) -> None:
        """Give a concurrency its sockets: -n per server, UDP with -U, both kinds with -a."""
        settings = self.settings
        servers = settings.servers

        def streams(server_index: int) -> list:
            return [self._stream(concurrency, server_index)
                    for _ in range(settings.sockets_per_concurrency)]

        def datagrams(server_index: int) -> list:
            return [self._datagram(concurrency, server_index)
                    for _ in range(settings.sockets_per_concurrency)]

        reads = datagrams(home) if settings.uses_udp else streams(home)
        if settings.udp:
            writes = reads
        elif settings.facebook:
            writes = streams(home)
        else:
            writes = reads
        if settings.replicated_writes > 1 and not settings.udp:
            # -p: sets go to the home server and the next (n-1) servers.
            writes = writes[:1] + [self._stream(concurrency, (home + offset) % len(servers))
                                   for offset in range(1, settings.replicated_writes)]
        concurrency.add_channels(reads, writes)

    def _stream(self, concurrency: Concurrency, server_index: int) -> StreamChannel:
        channel = StreamChannel(concurrency, server_index)
        host, port = self.settings.servers[server_index]
        self._connectors.append((host, port, _ChannelFactory(self, channel)))
        return channel

    def _datagram(self, concurrency: Concurrency, server_index: int) -> DatagramChannel:
        channel = DatagramChannel(concurrency, server_index, self.settings.servers[server_index])
        self.datagram_channels.append(channel)
        return channel

    # -- running -----------------------------------------------------------------------------

    def start(self) -> None:
        self.build()
        for host, port, factory in self._connectors:
            self.reactor.connectTCP(host, port, factory, timeout=10)
        for channel in self.datagram_channels:
            self.reactor.listenUDP(0, channel)

    def concurrency_ready(self, concurrency: Concurrency) -> None:
        self._ready += 1
        if self._ready < len(self.concurrencies):
            return
        self.started_at = self.clock()
        settings = self.settings
        if settings.execute_number is None:
            self.reactor.callLater(settings.run_time, self.stop)
        self._schedule_tick()
        if self.datagram_channels:
            self._schedule_udp_sweep()
        for each in self.concurrencies:
            each.start()

    def _schedule_tick(self) -> None:
        period = self.settings.stat_period or 1.0
        due = self.started_at + period * (self._tick + 1)
        self.reactor.callLater(max(due - self.clock(), 0), self._on_tick)

    def _on_tick(self) -> None:
        self._tick += 1
        self.sink(self.worker_index, self._tick, self.stats.take_delta(), None)
        self._schedule_tick()

    def _schedule_udp_sweep(self) -> None:
        timeout = self.settings.udp_timeout
        self.reactor.callLater(timeout / 4, self._udp_sweep)

    def _udp_sweep(self) -> None:
        deadline = self.clock() - self.settings.udp_timeout
        for channel in self.datagram_channels:
            if channel.awaiting and channel.sent_at < deadline:
                channel.give_up()
        self._schedule_udp_sweep()

    def concurrency_finished(self, concurrency: Concurrency) -> None:
        self._finished += 1
        if self._finished == len(self.concurrencies):
            self._end()

    def stop(self) -> None:
        """The run time is up: let operations in flight finish, then end."""
        if self.stopping:
            return
        self.stopping = True
        self.ended_at = self.clock()
        for concurrency in self.concurrencies:
            if not concurrency.in_flight:
                concurrency.issue()
        if not self._ended:
            self.reactor.callLater(_STOP_GRACE, self._end)

    def fail(self, message: str) -> None:
        if self.failure is None:
            self.failure = message
        self.stopping = True
        self._end()

    def _end(self) -> None:
        if self._ended:
            return
        self._ended = True
        if self.ended_at is None:
            self.ended_at = self.clock()
        self.stopping = True
        self.reactor.stop()

    # -- trouble -----------------------------------------------------------------------------

    def connect_failed(self, connector, reason: Failure) -> None:
        address = connector.getDestination()
        if self.settings.reconnect and self.started_at is not None and not self.stopping:
            self.log_once("reconnecting to %s:%d failed, retrying" % (address.host, address.port))
            self.reactor.callLater(_RETRY_DELAY, connector.connect)
            return
        self.fail("can't connect to server %s:%d: %s"
                  % (address.host, address.port, reason.getErrorMessage()))

    def channel_lost(self, concurrency: Concurrency, channel: object,
                     reason: Optional[Failure]) -> None:
        host, port = self.settings.servers[channel.server_index]
        why = reason.getErrorMessage() if reason is not None else "closed"
        if not self.settings.reconnect:
            self.fail("connection to %s:%d lost (%s); use -R to reconnect" % (host, port, why))
            return
        self.log_once("connection to %s:%d lost (%s), reconnecting" % (host, port, why))
        factory = _ChannelFactory(self, channel)
        self.reactor.callLater(_RECONNECT_DELAY, self.reactor.connectTCP, host, port, factory, 10)

    # -- the end -----------------------------------------------------------------------------

    def final_figures(self) -> dict:
        started = self.started_at if self.started_at is not None else self.clock()
        ended = self.ended_at if self.ended_at is not None else self.clock()
        return {"run_time": max(ended - started, 0.0), "failure": self.failure}


def run_worker(settings: SlapSettings, worker_index: int, sink: DeltaSink) -> None:
    """Run one worker to the end on this process's reactor; the last delta carries the
    worker's run time and failure, if any."""
    from pymcd import lean_reactor

    lean_reactor.install()
    from twisted.internet import reactor

    engine = Engine(settings, worker_index, reactor, sink)
    reactor.callWhenRunning(engine.start)
    # The run's garbage is acyclic (bytes, floats, small tuples) and goes with its last
    # reference; what lives long (buffers, window items) would only be traversed again and
    # again by the cyclic collector, which cost ~8% of the client's CPU time. Collect rarely.
    gc.collect()
    gc.freeze()
    gc.set_threshold(_GC_THRESHOLD)
    reactor.run()
    sink(worker_index, -1, engine.stats.take_delta(), engine.final_figures())
