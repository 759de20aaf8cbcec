"""memaslap's connection engine on Twisted: one concurrency, its channels, and its states.

A ``Concurrency`` is memaslap's ``ms_conn``: a window of task items and **one request (or one
multi-get) in flight**. Its states are memaslap's: ``issue`` is ``conn_write`` (pick a task,
build the request, send it), ``receive`` is ``conn_read`` (gather the reply until it is whole,
then count, verify and go back to writing), and a lost channel is ``conn_closing`` (reconnect
with ``-R``, else end the run). Channels only move bytes: ``StreamChannel`` (TCP, one per socket
of ``-n``) and ``DatagramChannel`` (UDP with memcached's 8-byte frame header, reassembling
replies of several datagrams and timing out lost ones).

Hot-path habits: requests come pre-built from the items, a request leaves in one ``send`` on
the socket (falling back to the transport's buffer only when the kernel takes part of it), and
replies are parsed with ``bytes.find`` and slicing.
"""

from __future__ import annotations

import itertools
import sys
from typing import TYPE_CHECKING, Callable, List, Optional

from twisted.internet.protocol import DatagramProtocol, Protocol
from twisted.python.failure import Failure

from pymcd.protocol.udp import HEADER as UDP_HEADER, HEADER_SIZE as UDP_HEADER_SIZE
from pymcd.slap.codec import PROTOCOL_ERROR, GetOutcome, Hits, error_kind
from pymcd.slap.stats import OpStats
from pymcd.slap.workload import Item, Window

if TYPE_CHECKING:
    from pymcd.slap.worker import Engine

_GET = 0
_SET = 1
_MULTIGET = 2
# Room for the header line and END around a value.
_REPLY_SLACK = 1024
# -P: how far behind its schedule a concurrency may catch up (seconds).
_MAX_LAG = 0.05


class StreamChannel(Protocol):
    """A TCP socket of a concurrency."""

    # The start of a reply that has not all arrived yet (a bytearray while it grows).
    pending = b""

    def __init__(self, concurrency: "Concurrency", server_index: int) -> None:
        self.concurrency = concurrency
        self.server_index = server_index
        self._socket = None

    def connectionMade(self) -> None:
        self.transport.setTcpNoDelay(True)
        # Twisted reads 64 KiB at a time; a large value would take many reads (and reactor
        # turns), so the read size grows to hold one whole reply, as memaslap's buffer does.
        largest = self.concurrency.engine.settings.workload.max_value_size + _REPLY_SLACK
        if largest > self.transport.bufferSize:
            self.transport.bufferSize = largest
        self._socket = self.transport.getHandle()
        self.pending = b""
        self.concurrency.channel_ready(self)

    def send(self, data: bytes) -> None:
        # One request is in flight per concurrency, and the server cannot answer before the
        # whole request arrived, so when a reply comes the transport's buffer is empty and a
        # direct send keeps request order. The transport only takes what the kernel refused.
        try:
            sent = self._socket.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            sent = 0  # the transport's own write and read report the failure
        if sent < len(data):
            self.transport.write(data[sent:])

    def dataReceived(self, data: bytes) -> None:
        self.concurrency.receive(self, data)

    def connectionLost(self, reason: Failure = None) -> None:
        self.concurrency.channel_lost(self, reason)


class DatagramChannel(DatagramProtocol):
    """A UDP socket of a concurrency: frames requests, reassembles replies in sequence order.

    Replies framed whole (memcached 1.4, pymcd: datagrams 0..n-1 of n) and framed per response
    object (memcached 1.6.18: every datagram "0 of 1") both reassemble, since payloads are
    handed on in order as a stream and the concurrency's parser decides when the reply ends.
    """

    pending = b""
    _request_ids = itertools.count()

    def __init__(self, concurrency: "Concurrency", server_index: int, address: tuple) -> None:
        self.concurrency = concurrency
        self.server_index = server_index
        self.address = address
        self.request_id = -1
        self.sent_at = 0.0
        self.awaiting = False
        self._next_sequence = 0
        self._group_size = 1
        self._early: dict = {}
        self._received = 0

    def startProtocol(self) -> None:
        self.transport.connect(*self.address)
        self.concurrency.channel_ready(self)

    def send(self, data: bytes) -> None:
        # memaslap's header: request id, sequence 0, total 1, and 1 in the reserved field.
        self.request_id = next(self._request_ids) & 0xFFFF
        self._next_sequence = 0
        self._group_size = 1
        self._early = {}
        self._received = 0
        self.pending = b""
        self.awaiting = True
        self.sent_at = self.concurrency.clock()
        self.concurrency.stats.other_written += UDP_HEADER_SIZE
        try:
            self.transport.write(UDP_HEADER.pack(self.request_id, 0, 1, 1) + data)
        except OSError as error:
            self.concurrency.engine.stats.error("UDP_SEND_FAILED")
            self.concurrency.engine.log_once("UDP send failed: %s" % error)

    def datagramReceived(self, datagram: bytes, address: tuple) -> None:
        if len(datagram) < UDP_HEADER_SIZE:
            return
        request_id, sequence, total, _ = UDP_HEADER.unpack_from(datagram)
        if request_id != self.request_id or not self.awaiting:
            return  # a late datagram of a request already given up on
        stats = self.concurrency.engine.stats
        stats.other_read += UDP_HEADER_SIZE
        self._received += 1
        payload = datagram[UDP_HEADER_SIZE:]
        if sequence != self._next_sequence:
            stats.packet_disorder += 1
            self._early[sequence] = payload
            return
        self._group_size = total
        self._deliver(payload)
        while self.awaiting and self._next_sequence in self._early:
            self._deliver(self._early.pop(self._next_sequence))

    def _deliver(self, payload: bytes) -> None:
        self._next_sequence += 1
        if self._next_sequence >= self._group_size:
            self._next_sequence = 0  # a group ended; per-object framing starts the next at 0
        request_id = self.request_id
        self.concurrency.receive(self, payload)
        if self.request_id == request_id and not self.concurrency.in_flight:
            self.awaiting = False  # the reply was whole (and no new request left from here)

    def give_up(self) -> None:
        """The reply did not come in time: count what was lost, as memaslap's timeout does."""
        stats = self.concurrency.engine.stats
        stats.udp_timeout += 1
        stats.packet_drop += max(self._group_size - self._received, 1)
        self.awaiting = False
        self.concurrency.reply_lost(self)

    def connectionRefused(self) -> None:
        self.concurrency.engine.stats.error("UDP_REFUSED")


class Concurrency:
    """One of memaslap's concurrencies: a task window and one operation in flight."""

    def __init__(self, engine: "Engine", index: int, window: Window, budget: Optional[int],
                 rate: float) -> None:
        settings = engine.settings
        self.engine = engine
        self.index = index
        self.window = window
        self.codec = engine.codec
        self.clock = engine.clock
        self.stats = engine.stats
        self.block = engine.block
        self.budget = budget
        self.get_channels: List[object] = []
        self.set_channels: List[object] = []
        self.finished = False
        self._ready = 0
        self._channel_count = 0
        self._started = False
        self._turn = 0
        self._operations = 0
        self._sets = 0
        self._set_proportion = settings.workload.set_proportion
        self._warmup = window.size if self._set_proportion <= 0.0 else 0
        self._verify_credit = 0.0
        self._verify = settings.verify
        self._check_expiry = settings.expire_verify > 0.0
        self._expire_slack = settings.expire_slack
        self._multiget = settings.multiget
        self._verbose = settings.verbose
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._phase = index / float(settings.concurrency)
        self._next_due = 0.0
        self._parse_get = self.codec.parse_get
        self._parse_hit = self.codec.parse_hit
        self._parse_store = self.codec.parse_store
        self._get_stats = self.stats.get
        self._set_stats = self.stats.set
        self._random = window.random
        self._token_of = self.codec.token
        self._checks_hits = bool(self._verify) or self._check_expiry
        self._send_get: Optional[Callable[[bytes], None]] = None  # set by add_channels
        # The operation in flight.
        self._in_flight = False
        self._kind = _GET
        self._item: Optional[Item] = None
        self._items: List[Item] = []
        self._tokens: List[object] = []
        self._counted = True
        self._written = 0
        self._sent_at = 0.0
        self._replies_due = 0
        self._first_error: Optional[bytes] = None

    @property
    def in_flight(self) -> bool:
        return self._in_flight

    # -- channels ----------------------------------------------------------------------------

    def add_channels(self, get_channels: List[object], set_channels: List[object]) -> None:
        self.get_channels = get_channels
        self.set_channels = set_channels
        if len(get_channels) == 1:
            self._send_get = get_channels[0].send
        else:
            self._send_get = lambda request: self._send_by_turns(get_channels, request)
        self._channel_count = len({id(c) for c in get_channels + set_channels})

    def channel_ready(self, channel: object) -> None:
        self._ready += 1
        if self._ready != self._channel_count:
            return
        if self._started:
            self.issue()  # reconnected (-R): carry on where the lost channel left off
        else:
            self.engine.concurrency_ready(self)

    def channel_lost(self, channel: object, reason: Optional[Failure]) -> None:
        self._ready -= 1
        if self.finished or self.engine.stopping:
            return
        self.stats.error("CONNECTION_LOST")
        self._in_flight = False
        self.engine.channel_lost(self, channel, reason)

    # -- conn_write --------------------------------------------------------------------------

    def start(self) -> None:
        self._started = True
        # -P: concurrencies start spread over one interval, so their requests interleave
        # evenly instead of leaving in bursts of all of them at once.
        self._next_due = self.clock() + self._interval * self._phase
        self.issue()

    def _on_schedule(self) -> bool:
        """-P: False (and a call back when due) if this concurrency is ahead of its rate."""
        now = self.clock()
        if self._next_due > now:
            self.engine.call_later(self._next_due - now, self.issue)
            return False
        # Timers fire late (epoll waits in whole milliseconds, and the machine may be busy):
        # a late request is made up for by sending at once until the schedule is caught up,
        # but a stall longer than _MAX_LAG is written off rather than paid back in a burst.
        self._next_due = max(self._next_due, now - _MAX_LAG) + self._interval
        return True

    def issue(self) -> None:
        if self._in_flight or self._ready != self._channel_count:
            return  # a paced call that a reconnect overtook, or a channel still connecting
        if self.engine.stopping or self.budget == 0:
            self._finish()
            return
        if self._interval and not self._on_schedule():
            return
        window = self.window
        if self._warmup:
            # A get-only mix first stores the whole window (memaslap's warm-up), uncounted.
            self._warmup -= 1
            self._send_set(window.next_set(), counted=False)
            return
        # The mix is exact over the run: a set whenever fewer were sent than the proportion
        # of the operations so far asks for. A set forced by an empty window counts too, but
        # never puts sets more than one ahead (while sets keep failing, say).
        self._operations += 1
        sets_due = int(self._operations * self._set_proportion + 1e-9)
        if self._sets < sets_due or not window.set_cursor:
            self._sets = min(self._sets + 1, sets_due + 1)
            self._send_set(window.next_set(), counted=True)
            return
        if self._multiget > 1:
            self._send_multiget()
            return
        # The single get, memaslap's commonest task: inlined, it is most of the client's time.
        items = window.items
        count = window.set_cursor
        if count > len(items):
            count = len(items)
        item = items[int(self._random() * count)]
        self._kind = _GET
        self._item = item
        request = item.get_request or self.codec.get_request(item)
        budget = self.budget
        if budget is not None:
            self.budget = budget - 1
        self._in_flight = True
        self._written = len(request)
        self._sent_at = self.clock()
        self._send_get(request)

    def _send(self, channels: List[object], request: bytes, operations: int) -> None:
        budget = self.budget
        if budget is not None:
            self.budget = budget - operations if budget > operations else 0
        self._in_flight = True
        self._written = len(request)
        self._sent_at = self.clock()
        if len(channels) == 1:
            channels[0].send(request)
        elif self._kind == _SET and self._replies_due > 1:
            for channel in channels:
                channel.send(request)
        else:
            self._send_by_turns(channels, request)

    def _send_by_turns(self, channels: List[object], request: bytes) -> None:
        """-n: the concurrency's sockets take turns."""
        self._turn += 1
        channels[self._turn % len(channels)].send(request)

    def _send_set(self, item: Item, counted: bool) -> None:
        self._kind = _SET
        self._item = item
        self._counted = counted
        self._first_error = None
        # -p: a set goes to every replica and ends with the last reply.
        self._replies_due = len(self.set_channels) if self.engine.settings.replicated_writes > 1 \
            else 1
        offset = item.value_offset
        value = self.block.data[offset:offset + item.value_size]
        if counted:
            self.stats.object_bytes += len(item.key) + item.value_size
        self._send(self.set_channels, self.codec.set_request(item, value), 1 if counted else 0)

    def _send_multiget(self) -> None:
        window = self.window
        wanted = self._multiget if self.budget is None else min(self._multiget, self.budget)
        items: List[Item] = []
        seen = set()
        for _ in range(wanted * 2):
            item = window.random_stored()
            if id(item) not in seen:
                seen.add(id(item))
                items.append(item)
                if len(items) == wanted:
                    break
        self._kind = _MULTIGET
        self._items = items
        # The get/set mix counts keys, so a multi-get of n keys weighs n operations.
        self._operations += len(items) - 1
        request, self._tokens = self.codec.multiget_request(items)
        self._send(self.get_channels, request, len(items))

    # -- conn_read ---------------------------------------------------------------------------

    def receive(self, channel, data: bytes) -> None:
        if not self._in_flight:
            return  # bytes nobody asked for: memaslap drops them with its buffer reset
        if channel.pending:
            data = self._gather(channel, data)
            if data is None:
                return
        if self._kind != _GET:
            self._receive_other(channel, data)
            return
        item = self._item
        value = self._parse_hit(data, item)
        if value is None:
            outcome = self._parse_get(data, 1)
            if outcome is None:
                channel.pending = bytearray(data)
                return
        self._in_flight = False
        operation = self._get_stats
        operation.ops += 1
        operation.written += self._written
        operation.read += len(data)
        micros = int((self.clock() - self._sent_at) * 1000000.0)
        latencies = operation.latencies
        latencies[micros] = latencies.get(micros, 0) + 1
        if value is None:
            self._get_done(*outcome)
        elif self._checks_hits and item.stored:
            self._check_hit(item, value, self._verify_this())
        self.issue()

    def _gather(self, channel, data: bytes) -> Optional[bytes]:
        """A reply spread over several reads, gathered in a bytearray (adding a 1 MiB value's
        64 KiB reads up as bytes would copy it over and over): the whole reply, once it is."""
        pending = channel.pending
        pending += data
        kind = self._kind
        if kind == _SET:
            whole = self._parse_store(pending) is not None
        else:
            whole = self._parse_get(pending, 1 if kind == _GET else len(self._items)) is not None
        if not whole:
            return None
        channel.pending = b""
        return bytes(pending)

    def _receive_other(self, channel, data: bytes) -> None:
        """conn_read for sets and multi-gets."""
        kind = self._kind
        if kind == _SET:
            outcome = self._parse_store(data)
        else:
            outcome = self._parse_get(data, len(self._items))
        if outcome is None:
            channel.pending = bytearray(data)
            return
        if kind == _SET:
            if outcome and self._first_error is None:
                self._first_error = outcome
            self._replies_due -= 1
            if self._replies_due > 0:
                return
            self._in_flight = False
            self._set_done(len(data))
        else:
            self._in_flight = False
            self._multiget_done(outcome, len(data))
        self.issue()

    def _count(self, operation: OpStats, operations: int, received: int) -> None:
        operation.ops += operations
        operation.written += self._written
        operation.read += received
        micros = int((self.clock() - self._sent_at) * 1000000.0)
        latencies = operation.latencies
        latencies[micros] = latencies.get(micros, 0) + 1

    def _set_done(self, received: int) -> None:
        item = self._item
        error = self._first_error
        if self._counted:
            self._count(self._set_stats, 1, received)
        else:
            self.stats.other_written += self._written
            self.stats.other_read += received
        if error is None:
            item.stored = True
            item.set_time = self.clock()
            self.window.set_cursor += 1
        else:
            self._report_error(error)
            if not self._counted:
                self.engine.log_once("key %s didn't set success" % item.key.hex())

    def _get_done(self, hits: Hits, error: Optional[bytes]) -> None:
        """A single get's reply beyond the plain hit (counted already): errors, misses, checks."""
        item = self._item
        if error is not None:
            self._report_error(error)
        if hits:
            token, value = hits[0]
            if token != self._token_of(item):
                self._report_error(PROTOCOL_ERROR + b" reply for another key")
            elif item.stored:
                self._check_hit(item, value, self._verify_this())
        elif error is None:
            self._get_stats.misses += 1
            if item.stored:
                self._check_miss(item, self._verify_this())

    def _multiget_done(self, outcome: GetOutcome, received: int) -> None:
        hits, error = outcome
        operation = self._get_stats
        items = self._items
        self._count(operation, len(items), received)
        if error is not None:
            self._report_error(error)
        waiting = dict(zip(self._tokens, items))
        for token, value in hits:
            item = waiting.pop(token, None)
            if item is None:
                self._report_error(PROTOCOL_ERROR + b" reply for a key not asked for")
            elif item.stored:
                self._check_hit(item, value, self._verify_this())
        if error is None:
            for item in waiting.values():
                operation.misses += 1
                if item.stored:
                    self._check_miss(item, self._verify_this())

    def _verify_this(self) -> bool:
        """-v p: every 1/p-th get is verified (evenly spread, as memaslap's counters do)."""
        if not self._verify:
            return False
        self._verify_credit += self._verify
        if self._verify_credit >= 1.0:
            self._verify_credit -= 1.0
            return True
        return False

    def _check_hit(self, item: Item, value: bytes, verify: bool) -> None:
        if self._check_expiry and item.exp_time:
            age = self.clock() - item.set_time
            if age > item.exp_time + self._expire_slack:
                self.stats.expired_get += 1
                if self._verbose:
                    self._dump("expire time verification failed, object expired but get it now",
                               item, value, "set %.1fs ago, expire time %d" % (age, item.exp_time))
            return
        if verify:
            offset = item.value_offset
            if value != self.block.data[offset:offset + item.value_size]:
                self.stats.verify_failed += 1
                if self._verbose:
                    self._dump("data verification failed", item, value,
                               "expected data len: %d" % item.value_size)

    def _check_miss(self, item: Item, verify: bool) -> None:
        if self._check_expiry and item.exp_time:
            if self.clock() - item.set_time < item.exp_time - self._expire_slack:
                self.stats.unexpired_unget += 1
        elif verify:
            self.stats.verify_misses += 1

    def _dump(self, what: str, item: Item, value: bytes, detail: str) -> None:
        # -b: memaslap's verbose verification report, with the key in hex (it is binary).
        sys.stderr.write("\n<%d %s\n\tkey len: %d\n\tkey: %s\n\t%s\n\treceived data len: %d\n"
                         "\treceived data: %s\n" % (
                             self.index, what, len(item.key), item.key.hex(), detail,
                             len(value), value[:64].decode("ascii", "replace")))

    def _report_error(self, error: bytes) -> None:
        kind = error_kind(error)
        self.stats.error(kind)
        self.engine.log_once("%s from the server: %s" % (kind, error.decode("ascii", "replace")))

    def reply_lost(self, channel: DatagramChannel) -> None:
        """A UDP reply timed out: its gets count as misses (memaslap's way) and the run goes on."""
        if not self._in_flight:
            return
        self._in_flight = False
        if self._kind == _SET:
            self.stats.error("UDP_TIMEOUT")
            if self._counted:
                self._set_stats.ops += 1
                self._set_stats.written += self._written
        else:
            lost = 1 if self._kind == _GET else len(self._items)
            self._get_stats.ops += lost
            self._get_stats.misses += lost
            self._get_stats.written += self._written
        self.issue()

    def _finish(self) -> None:
        if not self.finished:
            self.finished = True
            self.engine.concurrency_finished(self)
