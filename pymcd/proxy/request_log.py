"""``watch proxyreqs``: one line per request a pool or the internal route answered.

The layout is memcached proxy's ``proxy_req`` log line: ``elapsed`` in microseconds, ``type``
the command's number in memcached's proxy (``CMD_MG`` is 1, ``CMD_GET`` 7...), ``code`` and
``status`` 0 for an answer and 1 for an error, ``be`` the backend's host and port (``internal:``
for pymcd's own store), ``detail`` the answer's first word, ``req`` the request line.
"""

from __future__ import annotations

from pymcd.event_log import PROXYREQS
from pymcd.proxy.backend import Done
from pymcd.proxy.request import ProxyRequest

# memcached proxy's CMD_* numbers (the order of its CMD_FIELDS list, after P_OK = 0).
COMMAND_NUMBERS = {
    b"mg": 1, b"ms": 2, b"md": 3, b"mn": 4, b"ma": 5, b"me": 6, b"get": 7, b"bget": 7,
    b"gat": 8, b"set": 9, b"add": 10, b"cas": 11, b"gets": 13, b"gats": 14, b"incr": 15,
    b"decr": 16, b"touch": 20, b"append": 22, b"delete": 23, b"replace": 24, b"prepend": 25,
}


class RequestLog:
    def __init__(self, event_log, clock) -> None:
        self.event_log = event_log
        self.clock = clock

    def watching(self) -> bool:
        return self.event_log is not None and bool(self.event_log.flags & PROXYREQS)

    def logged(self, request: ProxyRequest, host: bytes, port: bytes, done: Done) -> Done:
        started = self.clock.seconds()

        def answered(reply: bytes, error: bool) -> None:
            failed = 1 if error else 0
            self.event_log.emit(
                PROXYREQS, b"type=proxy_req elapsed=%d type=%d code=%d status=%d be=%s:%s "
                b"detail=%s req=%s", int((self.clock.seconds() - started) * 1e6),
                COMMAND_NUMBERS.get(request.command, 0), failed, failed, host, port,
                reply.split(b"\r\n", 1)[0].split(b" ", 1)[0][:150],
                request.raw.split(b"\r\n", 1)[0][:300])
            done(reply, error)

        return answered
