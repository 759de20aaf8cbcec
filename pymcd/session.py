"""The protocol-independent state of one client connection.

Commands receive a Session, never a Twisted transport: it carries the reply list that the
connection writes once per read, the noreply flag of the request being served, and the requests a
command can make of its connection (swallow a data block, close after writing, shut the server
down). Keeping it free of Twisted lets the protocol machines and commands run without sockets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional

if TYPE_CHECKING:  # pragma: no cover
    from pymcd.context import ServerContext

# Backpressure: how many value bytes one batch of requests may queue before the machine yields,
# so that the batch is written (and the connection paused, if the transport could not send it)
# before more requests run. A batch holds at least one request, so a full-size item (-I 1m) is
# a batch of its own. It is also the most work one connection does in one reactor turn: over
# TLS a 2 MiB batch took 10-14 ms of CPU to copy and encrypt, long enough to hold other
# clients' replies past 10 ms; a 256 KiB one (or one 500 KB value) takes 2-4 ms, and streaming
# big values is as fast (bench/stalled.py, and pipelined gets of 50 KB and 500 KB values: no
# difference within noise). Below -R's 20 requests a batch, only values over 13 KB reach it.
# A client that never reads costs a batch plus the transport's 64 KiB mark, never memory in
# proportion to its requests.
OUTPUT_BOUND = 256 * 1024


class Session:
    """One connection's state as commands see it."""

    __slots__ = (
        "server",
        "store",
        "conn_id",
        "out",
        "flushed",
        "noreply",
        "swallow_bytes",
        "close_after_write",
        "close_now",
        "authenticated",
        "protocol_name",
        "transport_name",
        "peer",
        "listen_address",
        "state",
        "user",
        "watcher",
        "sasl",
        "udp",
        "last_cmd_time",
        "proxy",
        "reply_bytes",
        "close_reason",
    )

    def __init__(
        self,
        server: "ServerContext",
        conn_id: int,
        transport_name: str = "tcp",
        peer: str = "",
        listen_address: str = "",
        udp: bool = False,
    ) -> None:
        self.server = server
        self.store = server.store
        self.conn_id = conn_id
        self.out: List[bytes] = []
        # How many replies at the front of ``out`` memcached would already have written: a get
        # flushes its reply at once (conn_mwrite), so a close or an error later in the same read
        # does not take it back.
        self.flushed = 0
        self.noreply = False
        self.swallow_bytes = 0
        self.close_after_write = False
        self.close_now = False
        self.authenticated = not (server.settings.sasl or server.settings.auth_file)
        self.protocol_name = "auto"
        self.transport_name = transport_name
        self.peer = peer
        self.listen_address = listen_address
        self.state = "conn_new_cmd"
        self.user: Optional[str] = None
        self.watcher = None
        self.sasl = None
        self.udp = udp
        self.last_cmd_time = 0
        # The proxy client connection this session belongs to, in proxy mode (pymcd.proxy).
        self.proxy = None
        # Value bytes queued on ``out`` since the last write: the machines yield past
        # OUTPUT_BOUND (only commands that return values count, the rest are small).
        self.reply_bytes = 0
        # Why the server closes this connection, for watchers' conn_close lines: memcached's
        # default is "error"; quit says "normal", shutdown "shutdown".
        self.close_reason = "error"

    def take_output(self, count: Optional[int] = None) -> bytes:
        """The first ``count`` replies queued on ``out`` (all by default), as one string to
        write; the queue starts afresh with what is left."""
        out = self.out
        if count is None or count == len(out):
            data = out[0] if len(out) == 1 else b"".join(out)
            del out[:]
        else:
            data = b"".join(out[:count])
            del out[:count]
        self.flushed = 0
        self.reply_bytes = 0
        return data

    def reply(self, line: bytes) -> None:
        """Queue a one-line reply (with its CRLF), honouring noreply as memcached's out_string does."""
        if self.noreply:
            self.noreply = False
            if self.server.verbose > 1:
                self.server.trace(">%d NOREPLY %s" % (self.conn_id, line[:-2].decode("latin-1")))
            return
        if self.server.verbose > 1:
            self.server.trace(">%d %s" % (self.conn_id, line[:-2].decode("latin-1")))
        self.out.append(line)

    def error(self, line: bytes) -> None:
        """Queue an error that noreply must not hide (memcached's out_errstring)."""
        self.noreply = False
        self.reply(line)

    def swallow(self, nbytes: int) -> None:
        """Discard the next ``nbytes`` of input: the data block of a refused storage request."""
        self.swallow_bytes = nbytes

    def swallowed(self, available: int) -> int:
        """How many of ``available`` input bytes go to the block being swallowed (conn_swallow)."""
        take = min(self.swallow_bytes, available)
        self.swallow_bytes -= take
        return take

    def close(self) -> None:
        """Close the connection at once, dropping what memcached would not have written yet
        (conn_closing)."""
        self.close_now = True

    def quit(self) -> None:
        """Close once the replies queued so far are written (``quit``)."""
        self.close_after_write = True
