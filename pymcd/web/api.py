"""The dashboard's data: JSON endpoints and two server-sent event streams.

- ``/api/stats``, ``/api/settings``, ``/api/slabs``, ``/api/proxy``, ``/api/snapshot``: JSON
  read from the same functions as the ``stats`` commands, when asked.
- ``/api/events``: a snapshot a second (``event: snapshot``), computed once per second for all
  listeners, and only while someone listens. A listener whose connection cannot take more
  (a slow or suspended browser) is skipped, and told how many it missed.
- ``/api/watch?kinds=fetchers,mutations&key=REGEX``: the ``watch`` stream as events, from a
  watcher of the event log like any ``watch`` connection (it counts in ``log_watchers`` and has
  a bounded buffer: lines that do not fit are dropped and announced as ``skipped``).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Dict, List, Optional, Set
from urllib.parse import unquote_to_bytes

from twisted.internet.task import LoopingCall
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer
from twisted.internet.interfaces import IPushProducer

from pymcd import __version__
from pymcd.event_log import WATCH_FLAGS
from pymcd.web.exporter import per_class

if TYPE_CHECKING:  # pragma: no cover
    from pymcd.context import ServerContext
    from pymcd.proxy.service import ProxyService

# A browser's watch tail keeps less than a watch connection (256 KiB by default).
WATCH_TAIL_CAPACITY = 64 * 1024
SNAPSHOT_INTERVAL = 1.0
KEY_FIELD = re.compile(rb" key=(\S+)")


def _value(text: object):
    """A stats value as JSON would want it: numbers as numbers."""
    if isinstance(text, (int, float)):
        return text
    try:
        return int(text)
    except (TypeError, ValueError):
        try:
            return float(text)
        except (TypeError, ValueError):
            return text


def general(server: "ServerContext") -> Dict[str, object]:
    return {name: _value(value) for name, value in server.general_stats()}


def settings(server: "ServerContext") -> Dict[str, object]:
    return {name: _value(value) for name, value in server.settings_stats()}


def slabs(server: "ServerContext") -> Dict[str, object]:
    """Per slab class: geometry, chunks, LRU segment sizes and what left it."""
    store = server.store
    slab_lines = store.slabs_stats()
    items = per_class(store.items_stats(), "items:")
    classes = []
    for clsid, values in sorted(per_class(slab_lines).items(), key=lambda pair: int(pair[0])):
        row = {"class": int(clsid)}
        row.update((key, _value(values[key])) for key in (
            "chunk_size", "chunks_per_page", "total_pages", "total_chunks", "used_chunks",
            "free_chunks", "free_chunks_end"))
        counts = items.get(clsid, {})
        row.update((key, _value(counts.get(key, 0))) for key in (
            "number", "number_hot", "number_warm", "number_cold", "number_temp", "evicted",
            "reclaimed", "expired_unfetched", "evicted_unfetched", "crawler_reclaimed",
            "mem_requested"))
        classes.append(row)
    totals = {name: _value(value) for name, value in slab_lines if ":" not in name}
    return {"classes": classes, "totals": totals}


def proxy_backends(proxy: Optional["ProxyService"]) -> List[Dict[str, object]]:
    if proxy is None:
        return []
    return [{"name": backend.name, "up": not backend.down, "requests": backend.stats.requests,
             "errors": backend.stats.errors, "timeouts": backend.stats.timeouts,
             "failures": backend.stats.failures, "marked_down": backend.stats.marked_down}
            for backend in proxy.config.backends.values()]


def snapshot(server: "ServerContext", proxy: Optional["ProxyService"]) -> Dict[str, object]:
    return {"stats": general(server), "slabs": slabs(server), "proxy": proxy_backends(proxy),
            "pymcd_version": __version__}


class JsonResource(Resource):
    isLeaf = True

    def __init__(self, produce) -> None:
        super().__init__()
        self.produce = produce

    def render_GET(self, request) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(self.produce()).encode()


def start_event_stream(request) -> None:
    request.setHeader(b"content-type", b"text/event-stream")
    request.setHeader(b"cache-control", b"no-store")
    request.write(b"retry: 2000\n\n")


@implementer(IPushProducer)
class SnapshotListener:
    """One ``/api/events`` connection; paused while its socket buffer is full."""

    def __init__(self, request) -> None:
        self.request = request
        self.paused = False
        self.missed = 0
        request.registerProducer(self, True)

    def send(self, frame: bytes) -> None:
        if self.paused:
            self.missed += 1
            return
        if self.missed:
            self.request.write(b"event: missed\ndata: %d\n\n" % self.missed)
            self.missed = 0
        self.request.write(frame)

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False

    def stopProducing(self) -> None:
        pass


class SnapshotStream(Resource):
    """``/api/events``: one snapshot a second, shared by every listener."""

    isLeaf = True

    def __init__(self, server: "ServerContext", proxy: Optional["ProxyService"]) -> None:
        super().__init__()
        self.context = server
        self.proxy = proxy
        self.listeners: Set[SnapshotListener] = set()
        self.ticker = LoopingCall(self.tick)

    def render_GET(self, request):
        start_event_stream(request)
        listener = SnapshotListener(request)
        self.listeners.add(listener)
        request.notifyFinish().addBoth(lambda _: self._gone(listener))
        if not self.ticker.running:
            self.ticker.start(SNAPSHOT_INTERVAL, now=True)
        else:
            listener.send(self._frame())
        return NOT_DONE_YET

    def _gone(self, listener: SnapshotListener) -> None:
        self.listeners.discard(listener)
        if not self.listeners and self.ticker.running:
            self.ticker.stop()

    def _frame(self) -> bytes:
        return b"event: snapshot\ndata: %s\n\n" % json.dumps(
            snapshot(self.context, self.proxy)).encode()

    def tick(self) -> None:
        frame = self._frame()
        for listener in list(self.listeners):
            listener.send(frame)


class WatchTransport:
    """What a :class:`pymcd.event_log.Watcher` writes to: lines become events, filtered by key.

    The watcher registers itself as this request's producer, so a browser that stops reading
    pauses it and its bounded buffer drops and counts, exactly as for a ``watch`` connection.
    """

    def __init__(self, request, key_pattern: Optional["re.Pattern[bytes]"]) -> None:
        self.request = request
        self.key_pattern = key_pattern

    def registerProducer(self, producer, streaming: bool) -> None:
        self.request.registerProducer(producer, streaming)

    def write(self, data: bytes) -> None:
        frames = []
        for line in data.splitlines():
            if line.startswith(b"skipped="):
                frames.append(b"event: skipped\ndata: %s\n\n" % line[8:])
                continue
            if self.key_pattern is not None:
                key = KEY_FIELD.search(line)
                # Lines carry keys uriencoded, as memcached's; the pattern sees the real key.
                if key is None or not self.key_pattern.search(unquote_to_bytes(key.group(1))):
                    continue
            frames.append(b"data: %s\n\n" % line)
        if frames:
            self.request.write(b"".join(frames))


class WatchStream(Resource):
    """``/api/watch``: a live ``watch`` tail for the dashboard (or any EventSource)."""

    isLeaf = True

    def __init__(self, server: "ServerContext", clock) -> None:
        super().__init__()
        self.context = server
        self.clock = clock

    def render_GET(self, request):
        if not self.context.settings.watch_enabled:
            request.setResponseCode(403)
            return b"watch is disabled (-W)\n"
        kinds = (request.args.get(b"kinds") or [b"fetchers,mutations"])[0].split(b",")
        if not kinds or any(kind not in WATCH_FLAGS for kind in kinds):
            request.setResponseCode(400)
            return b"kinds: a comma-separated list of " + b" ".join(sorted(WATCH_FLAGS)) + b"\n"
        pattern = None
        key = (request.args.get(b"key") or [b""])[0]
        if key:
            try:
                pattern = re.compile(key)
            except re.error:
                request.setResponseCode(400)
                return b"key: not a valid regular expression\n"
        flags = 0
        for kind in kinds:
            flags |= WATCH_FLAGS[kind]
        watcher = self.context.event_log.add_watcher(flags)
        if watcher is None:
            request.setResponseCode(503)
            return b"too many watchers\n"
        watcher.capacity = WATCH_TAIL_CAPACITY
        start_event_stream(request)
        watcher.attach(WatchTransport(request, pattern), self.clock)
        request.notifyFinish().addBoth(lambda _: watcher.close())
        return NOT_DONE_YET


def api_resource(server: "ServerContext", proxy: Optional["ProxyService"], clock) -> Resource:
    api = Resource()
    api.putChild(b"stats", JsonResource(lambda: general(server)))
    api.putChild(b"settings", JsonResource(lambda: settings(server)))
    api.putChild(b"slabs", JsonResource(lambda: slabs(server)))
    api.putChild(b"proxy", JsonResource(lambda: proxy_backends(proxy)))
    api.putChild(b"snapshot", JsonResource(lambda: snapshot(server, proxy)))
    api.putChild(b"events", SnapshotStream(server, proxy))
    api.putChild(b"watch", WatchStream(server, clock))
    return api
