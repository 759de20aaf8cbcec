"""``watch``: live streams of what the server does, in memcached 1.6.18's logger line formats.

memcached's workers write binary log entries that a logger thread renders into each watcher's
bounded buffer, dropping lines for a watcher that cannot keep up and telling it ``skipped=N``
before the next line that fits. pymcd runs on one reactor thread, so :class:`EventLog` renders
a line straight into each interested :class:`Watcher`'s buffer, and the watcher hands its
buffer to the connection's transport once per reactor turn.

Costs are arranged around the common case of nobody watching: a command tests
``server.event_log.flags`` (0 without watchers) once and does nothing more; the store's eviction
callback is only installed while someone watches evictions. A watcher whose buffer is full
costs a counter increment per event: its line is not even rendered.

The hooks commands call (any protocol, including binary) are the ``log_*`` functions at the
end of this module; each takes the session the request came on.
"""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple
from urllib.parse import quote_from_bytes

from twisted.internet.interfaces import IPushProducer, IReactorTime
from zope.interface import implementer

from pymcd.store import outcomes
from pymcd.store.items import accounted_size

if TYPE_CHECKING:  # pragma: no cover
    from pymcd.session import Session
    from pymcd.store import Store
    from pymcd.store.store import ItemView

# memcached's LOG_* event flags (logger.h).
SYSEVENTS = 1 << 1
FETCHERS = 1 << 2
MUTATIONS = 1 << 3
CONNEVENTS = 1 << 5
EVICTIONS = 1 << 6
RAWCMDS = 1 << 9
PROXYREQS = 1 << 10
PROXYEVENTS = 1 << 11
PROXYUSER = 1 << 12

# The names ``watch`` accepts in 1.6.18 (no ``deletions``, no ``syserrors``). memcached 1.6.18
# logs nothing for rawcmds, nor for the proxy streams without its proxy, and pymcd matches;
# sysevents are the maintainer's LRU crawler results and the automover's page moves.
WATCH_FLAGS: Dict[bytes, int] = {
    b"rawcmds": RAWCMDS,
    b"evictions": EVICTIONS,
    b"fetchers": FETCHERS,
    b"mutations": MUTATIONS,
    b"sysevents": SYSEVENTS,
    b"connevents": CONNEVENTS,
    b"proxyreqs": PROXYREQS,
    b"proxyevents": PROXYEVENTS,
    b"proxyuser": PROXYUSER,
}

# What the item hooks (log_lookup, logged_fetch, log_store) can log: commands call them only
# when someone watches one of these, so a watcher of other kinds costs requests nothing.
ITEM_EVENTS = FETCHERS | MUTATIONS
FETCHERS_SLOT, MUTATIONS_SLOT = FETCHERS.bit_length(), MUTATIONS.bit_length()
KIND_SLOTS = PROXYUSER.bit_length() + 1

WATCHER_LIMIT = 20
# A watcher's kernel send buffer: without a cap Linux lets several MiB of lines pile up in the
# kernel for a client that stopped reading, all rendered for nothing.
WATCHER_SOCKET_BUFFER = 64 * 1024
# Room memcached insists on beyond a line before it writes one (for a ``skipped=`` line).
LINE_HEADROOM = 128

FOUND, NOT_FOUND, FLUSHED, EXPIRED = b"found", b"not_found", b"flushed", b"expired"

STORE_STATUS = {
    outcomes.NOT_STORED: b"not_stored",
    outcomes.STORED: b"stored",
    outcomes.EXISTS: b"exists",
    outcomes.NOT_FOUND: b"not_found",
    outcomes.TOO_LARGE: b"too_large",
    outcomes.NO_MEMORY: b"no_memory",
}
STORE_COMMAND = {
    outcomes.ADD: b"add",
    outcomes.SET: b"set",
    outcomes.REPLACE: b"replace",
    outcomes.APPEND: b"append",
    outcomes.PREPEND: b"prepend",
    outcomes.CAS: b"cas",
}
TRANSPORTS = {"local": b"local", "tcp": b"tcp", "udp": b"udp"}


UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def encode_key(key: bytes) -> bytes:
    """memcached's uriencode: letters, digits and ``-._~`` stay, every other byte is %XX."""
    if not key.translate(None, UNRESERVED):
        return key  # the usual key needs no encoding: skip the slow path
    return quote_from_bytes(key, safe="").encode("ascii")


@implementer(IPushProducer)
class Watcher:
    """One watching connection: its event filter and its bounded buffer of rendered lines.

    Lines wait in ``pending`` (about ``capacity`` bytes) while the transport is paused; the
    transport pauses us when its own buffer is full, i.e. when the client stopped reading. Lines
    that do not fit are counted and announced as ``skipped=N`` before the next line that fits.
    """

    def __init__(self, log: "EventLog", flags: int, min_gid: int, capacity: int) -> None:
        self.log = log
        self.flags = flags
        self.min_gid = min_gid
        self.capacity = capacity
        self.pending: List[bytes] = []
        self.pending_size = 0
        self.skipped = 0
        self.transport = None
        self.clock: Optional[IReactorTime] = None
        self.paused = False
        self._flush_call = None

    @property
    def attached(self) -> bool:
        return self.transport is not None

    def attach(self, transport, clock: IReactorTime) -> None:
        """Start streaming to ``transport`` (after the ``OK`` reply has been written)."""
        self.transport = transport
        self.clock = clock
        handle = transport.getHandle() if hasattr(transport, "getHandle") else None
        if isinstance(handle, socket.socket):
            handle.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, WATCHER_SOCKET_BUFFER)
        transport.registerProducer(self, True)
        self._schedule_flush()

    def has_room(self) -> bool:
        """Whether one more line may be queued (the buffer may overshoot by that one line)."""
        return self.pending_size + LINE_HEADROOM < self.capacity

    def offer(self, line: bytes) -> None:
        """Queue ``line``, after the ``skipped=N`` notice if lines were dropped before it."""
        if self.skipped:
            notice = b"skipped=%d\n" % self.skipped
            self.pending.append(notice)
            self.pending_size += len(notice)
            self.skipped = 0
        self.pending.append(line)
        self.pending_size += len(line)
        if self._flush_call is None:
            self._schedule_flush()
        if not self.has_room():
            self.log.refresh_full()

    def _schedule_flush(self) -> None:
        if self.clock is not None and not self.paused and self._flush_call is None:
            self._flush_call = self.clock.callLater(0, self.flush)

    def flush(self) -> None:
        """Hand everything pending to the transport in one write."""
        self._flush_call = None
        if self.transport is None or self.paused or not self.pending:
            return
        data = b"".join(self.pending)
        self.pending = []
        self.pending_size = 0
        if self.log.full:
            self.log.refresh_full()
        self.transport.write(data)

    # IPushProducer: the transport tells us when its buffer fills and drains.
    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self.flush()

    def stopProducing(self) -> None:
        self.close()

    def close(self) -> None:
        """Forget the watcher at once (its connection is gone)."""
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        self.pending = []
        self.pending_size = 0
        self.log.remove_watcher(self)


class EventLog:
    """The server's event stream: global ids, the watchers and the ``log_*`` counters."""

    def __init__(self, store: "Store", capacity: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.capacity = capacity
        self._clock = clock
        self.watchers: List[Watcher] = []
        self.flags = 0  # every watcher's flags together: 0 means nobody listens
        # The kinds of event whose every watcher is full, and how many events of each were
        # skipped since: counted once here, told to the watchers when one has room again.
        self.full = 0
        self.skipped_while_full = [0] * KIND_SLOTS  # indexed by a kind's bit_length()
        self._gid = 0
        self.worker_written = 0
        self.watcher_sent = 0
        self.watcher_skipped = 0

    # ------------------------------------------------------------------ watchers
    def add_watcher(self, flags: int) -> Optional[Watcher]:
        """A new watcher, or None past memcached's limit of 20."""
        if len(self.watchers) >= WATCHER_LIMIT:
            return None
        # memcached spends a global id on the watcher: it sees only later events.
        watcher = Watcher(self, flags, self._next_gid(), self.capacity)
        self.watchers.append(watcher)
        self._update_flags()
        return watcher

    def remove_watcher(self, watcher: Watcher) -> None:
        if watcher in self.watchers:
            self.watchers.remove(watcher)
            self._update_flags()

    def _update_flags(self) -> None:
        flags = 0
        for watcher in self.watchers:
            flags |= watcher.flags
        self.flags = flags
        self.store.eviction_listener = self._evicted if flags & EVICTIONS else None
        self.store.system_event_listener = self._system_event if flags & SYSEVENTS else None
        self.refresh_full()

    def refresh_full(self) -> None:
        """Hand the skips counted while full to the watchers, then see which kinds are full.

        Called whenever a watcher fills up, drains, arrives or leaves, so ``full`` is exact."""
        counts = self.skipped_while_full
        for slot, count in enumerate(counts):
            if count:
                flag = 1 << (slot - 1)
                for watcher in self.watchers:
                    if watcher.flags & flag:
                        watcher.skipped += count
                        self.watcher_skipped += count
                counts[slot] = 0
        with_room = 0
        for watcher in self.watchers:
            if watcher.has_room():
                with_room |= watcher.flags
        self.full = self.flags & ~with_room

    def stats(self) -> List[Tuple[str, int]]:
        self.refresh_full()  # count the skips still held for full watchers
        return [
            ("log_worker_dropped", 0),
            ("log_worker_written", self.worker_written),
            ("log_watcher_skipped", self.watcher_skipped),
            ("log_watcher_sent", self.watcher_sent),
            ("log_watchers", len(self.watchers)),
        ]

    def reset_stats(self) -> None:
        self.worker_written = self.watcher_sent = self.watcher_skipped = 0

    # ------------------------------------------------------------------ rendering
    def _next_gid(self) -> int:
        self._gid += 1
        return self._gid

    def room_for(self, flag: int) -> bool:
        """Whether an event of kind ``flag`` (which someone watches) is worth preparing.

        When every watcher of that kind is full the event is accounted for here (its gid spent,
        one skip per watcher) and the caller need not look anything up or render anything:
        this keeps a stalled watcher from slowing the server down. It runs for every event
        while a watcher is stalled, hence the inlined tests.
        """
        if not self.full & flag:
            return True
        self.skip(flag.bit_length())
        return False

    def skip(self, slot: int) -> None:
        """An event of a kind whose every watcher is full (``slot``: the kind's bit_length())."""
        self._gid += 1
        self.worker_written += 1
        self.skipped_while_full[slot] += 1

    def emit(self, flag: int, body: bytes, *args) -> None:
        """Deliver one event of kind ``flag`` to every watcher that asked for it.

        ``body % args`` is rendered at most once, and only if some watcher has room.
        """
        gid = self._next_gid()
        self.worker_written += 1
        line = None
        for watcher in self.watchers:
            if not watcher.flags & flag or gid < watcher.min_gid:
                continue
            if not watcher.has_room():
                watcher.skipped += 1
                self.watcher_skipped += 1
                continue
            if line is None:
                now = self._clock()
                seconds = int(now)
                line = b"ts=%d.%d gid=%d " % (seconds, int((now - seconds) * 1e6), gid) \
                    + body % args + b"\n"
            watcher.offer(line)
            self.watcher_sent += 1

    def item_get(self, key: bytes, status: bytes, clsid: int, conn_id: int, size: int) -> None:
        self.emit(FETCHERS, b"type=item_get key=%s status=%s clsid=%d cfd=%d size=%d",
                  encode_key(key), status, clsid, conn_id, size)

    def item_store(self, key: bytes, status: bytes, command: bytes, ttl: int, clsid: int,
                   conn_id: int, size: int) -> None:
        self.emit(MUTATIONS,
                  b"type=item_store key=%s status=%s cmd=%s ttl=%d clsid=%d cfd=%d size=%d",
                  encode_key(key), status, command, ttl, clsid, conn_id, size)

    def _evicted(self, item: "ItemView") -> None:
        if not self.room_for(EVICTIONS):
            return
        now = self.store.now
        self.emit(EVICTIONS, b"type=eviction key=%s fetch=%s ttl=%d la=%d clsid=%d size=%d",
                  encode_key(item.key), b"yes" if item.fetched else b"no",
                  item.exptime - now if item.exptime > 0 else -1,
                  now - item.last_access, item.clsid, item.nbytes)

    def _system_event(self, body: bytes) -> None:
        if self.room_for(SYSEVENTS):
            self.emit(SYSEVENTS, b"%s", body)

    def connection(self, opened: bool, conn_id: int, host: str, port: int, transport: str,
                   reason: str = "normal") -> None:
        """conn_new / conn_close; ``host`` is ``unix`` (port 0) for unix sockets."""
        if opened:
            self.emit(CONNEVENTS, b"type=conn_new rip=%s rport=%d transport=%s cfd=%d",
                      host.encode(), port, TRANSPORTS[transport], conn_id)
        else:
            self.emit(CONNEVENTS,
                      b"type=conn_close rip=%s rport=%d transport=%s reason=%s cfd=%d",
                      host.encode(), port, TRANSPORTS[transport], reason.encode(), conn_id)


# ---------------------------------------------------------------------- hooks for commands

def _item_class(store: "Store", key: bytes, flags: int, nbytes: int) -> int:
    """The slab class an item of this shape lives in (no lookup, no side effect)."""
    return store.slabs.class_for(accounted_size(len(key), flags, nbytes, store.settings.use_cas))


def log_lookup(session: "Session", key: bytes) -> None:
    """item_get for the lookup a mutation, delete, touch, counter or meta request starts with.

    Call it before the store operation (only when ``event_log.flags`` is set). It peeks, which
    reclaims a dead item exactly as those operations' own uncounted lookups would.
    """
    log = session.server.event_log
    if not log.flags & FETCHERS:
        return
    if log.full & FETCHERS:  # skip() inlined: this runs per request while a watcher stalls
        log._gid += 1
        log.worker_written += 1
        log.skipped_while_full[FETCHERS_SLOT] += 1
        return
    item = session.store.peek(key)
    if item is None:
        log.item_get(key, NOT_FOUND, 0, session.conn_id, 0)
    else:
        log.item_get(key, FOUND, item.clsid, session.conn_id, item.nbytes)


def logged_fetch(session: "Session", fetch: Callable[[bytes], Optional[tuple]]
                 ) -> Callable[[bytes], Optional[tuple]]:
    """Wrap a counted store fetch (get, gat) so each key's outcome is logged as item_get.

    A miss is told apart as expired or flushed by the store's own counters, so watching does
    not change what ``stats`` counts.
    """
    store = session.store
    log = session.server.event_log
    conn_id = session.conn_id

    def fetch_and_log(key: bytes) -> Optional[tuple]:
        expired, flushed = store.get_expired, store.get_flushed
        hit = fetch(key)
        if log.room_for(FETCHERS):
            if hit is not None:
                size = len(hit[1])
                log.item_get(key, FOUND, _item_class(store, key, hit[0], size), conn_id, size)
            else:
                status = EXPIRED if store.get_expired != expired else \
                    FLUSHED if store.get_flushed != flushed else NOT_FOUND
                log.item_get(key, status, 0, conn_id, 0)
        return hit

    return fetch_and_log


def log_store(session: "Session", key: bytes, result: int, mode: int, flags: int,
              exptime: int, nbytes: int) -> None:
    """item_store after a storage request (set/add/replace/append/prepend/cas, ms).

    An item is described as the request built it, as memcached logs its new item whether or
    not it was linked; only a stored append or prepend, which keeps the old TTL and grows the
    value, is looked up.
    """
    log = session.server.event_log
    if not log.flags & MUTATIONS:
        return
    if log.full & MUTATIONS:  # skip() inlined, as in log_lookup
        log._gid += 1
        log.worker_written += 1
        log.skipped_while_full[MUTATIONS_SLOT] += 1
        return
    store = session.store
    command = STORE_COMMAND.get(mode, b"na")
    if result == outcomes.TOO_LARGE:
        log.item_store(key, STORE_STATUS[result], command, 0, 0, session.conn_id, 0)
        return
    concatenated = mode in (outcomes.APPEND, outcomes.PREPEND) and result == outcomes.STORED
    item = store.peek(key) if concatenated else None
    if item is not None:
        ttl = item.exptime - store.now if item.exptime else 0
        log.item_store(key, STORE_STATUS[result], command, ttl, item.clsid, session.conn_id,
                       item.nbytes)
    else:
        ttl = store.realtime(exptime) - store.now if exptime else 0
        log.item_store(key, STORE_STATUS[result], command, ttl,
                       _item_class(store, key, flags, nbytes), session.conn_id, nbytes)
