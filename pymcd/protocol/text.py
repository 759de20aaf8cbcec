"""The text protocol's connection machine (classic and meta commands share it).

It mirrors memcached's states for one connection: parse a command line (``conn_parse_cmd``),
read a data block straight after it (``conn_nread``), or discard a refused one
(``conn_swallow``). It is sans-IO: :meth:`TextMachine.receive` takes the bytes a read returned,
runs every complete request through its command, and leaves the replies on ``session.out`` for
the transport to write in one go.

Large values are gathered by :class:`pymcd.protocol.pending_input.PendingInput` and joined once.
"""

from __future__ import annotations

from typing import Dict, List

from pymcd.auth.ascii_handshake import AsciiAuthHandshake
from pymcd.commands.base import ERROR
from pymcd.commands.registry import TextDispatch
from pymcd.protocol.pending_input import PendingInput
from pymcd.protocol.states import StateTrace
from pymcd.session import OUTPUT_BOUND, Session

# memcached keeps a line without a newline only while it may be a large multiget.
MAX_LINE_WITHOUT_NEWLINE = 2048
# memcached's read buffer (READ_BUFFER_SIZE). It looks for a line's newline only in what the
# buffer holds, and it writes the replies it has queued whenever it must read again with the
# buffer used up: the machine follows where those refills fall (see ``receive``).
READ_BUFFER_SIZE = 16384
MAX_LEADING_SPACES = 100
# memcached grows its read buffer without end for a multiget line; pymcd stops at 2 MiB with
# the answer memcached gives when that growth fails, and closes.
MAX_MULTIGET_LINE = 2 * 1024 * 1024
OUT_OF_MEMORY_READING = b"SERVER_ERROR out of memory reading request\r\n"
BAD_DATA_CHUNK = b"CLIENT_ERROR bad data chunk\r\n"
CRLF = b"\r\n"


class TextMachine:
    """Frames text requests and runs them; one per connection."""

    def __init__(self, session: Session, dispatch: Dict[bytes, TextDispatch]) -> None:
        self.session = session
        self.dispatch = dispatch
        self.requests_per_event = session.server.settings.reqs_per_event
        # -o read_buf_mem_limit: responses stacked since the last write, and how many may be.
        self.response_limit = session.server.response_limit
        self._stacked = 0
        self.pending_input = PendingInput()
        # The storage request waiting for its data block: (command, tokens, length).
        self._pending = None
        # Where memcached's read buffer ends, relative to the input kept when the machine
        # yielded (None: the next input starts a fresh buffer).
        self._window_left = None
        self._announced = False
        self.states = StateTrace(session)
        # -Y: nothing is parsed as a command until the connection authenticates.
        self.handshake = None
        if session.server.settings.auth_file and not session.authenticated:
            self.handshake = AsciiAuthHandshake(session)

    def receive(self, data: bytes) -> bool:
        """Consume ``data``; return True if work is left because the request budget ran out.

        Call again with ``b""`` to continue after yielding.
        """
        if self.handshake is not None:
            data = self.handshake.receive(data)
            if data is None:
                return False
            self.handshake = None
        if self.pending_input.holds:
            data = self.pending_input.take(data)
            if data is None:
                return False
        session = self.session
        server = session.server
        verbose = server.verbose
        states = self.states if verbose > 2 else None
        if states is not None:
            states.data_arrived()
        if not self._announced:
            self._announced = True
            if verbose > 1:
                server.trace("%d: Client using the ascii protocol" % session.conn_id)
        dispatch = self.dispatch
        # The idle sweep measures from the last command, not the last byte (memcached): a
        # client trickling a line a byte at a time is idle.
        now = session.store.now
        budget = self.requests_per_event
        response_limit = self.response_limit
        self._stacked = 0
        pos = 0
        size = len(data)
        # memcached's read buffer as if each of its reads took all that had arrived: it starts
        # where this input does (an unfinished line is moved to the front before a read). A
        # data block or a swallow that began in an earlier read was read to its end straight
        # from the socket, so the buffer starts again after it (a window that already ended).
        window_end = READ_BUFFER_SIZE if self._window_left is None else self._window_left
        self._window_left = None
        if self._pending is not None or session.swallow_bytes:
            window_end = 0
        while pos < size:
            if self._pending is not None:
                command, tokens, length = self._pending
                end = pos + length
                if end + 2 > size:
                    self.pending_input.wait_for(data[pos:], length + 2)
                    return False
                self._pending = None
                if data[end:end + 2] == CRLF:
                    command.execute(session, tokens, data[pos:end])
                else:
                    session.reply(BAD_DATA_CHUNK)
                if states is None:
                    session.state = "conn_waiting"
                else:
                    states.after_value()
                pos = end + 2
                if session.close_now or session.close_after_write:
                    return False
                if pos >= window_end:
                    # The block ran to or past the buffer's end: memcached read its rest into the
                    # item, writes its queued replies and reads afresh from here.
                    self._written()
                    window_end = pos + READ_BUFFER_SIZE
                continue
            if session.swallow_bytes:
                pos += session.swallowed(size - pos)
                if not session.swallow_bytes and pos >= window_end:
                    self._written()
                    window_end = pos + READ_BUFFER_SIZE
                continue
            if budget <= 0 or session.reply_bytes >= OUTPUT_BOUND:
                if budget <= 0:
                    server.stats.conn_yields += 1
                self.pending_input.keep(data[pos:])
                self._window_left = window_end - pos
                return True
            # The newline must be in the buffer (after a long multiget, whose grown buffer the
            # machine does not follow, the buffer counts as used up).
            limit = window_end if window_end < size else size
            eol = data.find(b"\n", pos, limit) if limit > pos else -1
            if eol < 0:
                if limit - pos > MAX_LINE_WITHOUT_NEWLINE:
                    # try_read_command_ascii: over 2 KiB without a newline in the buffer.
                    if not self._may_be_long_get(data, pos):
                        session.close()
                        return False
                    eol = data.find(b"\n", pos)
                    if eol < 0 and size - pos > MAX_MULTIGET_LINE:
                        session.error(OUT_OF_MEMORY_READING)
                        session.quit()
                        return False
                elif limit < size:
                    # memcached writes what it has queued, moves the line's start to the front
                    # of its buffer and fills the rest.
                    self._written()
                    window_end = pos + READ_BUFFER_SIZE
                    continue
                if eol < 0:
                    self.pending_input.keep(data[pos:])
                    break
            line = data[pos:eol - 1] if eol - pos > 1 and data[eol - 1] == 13 else data[pos:eol]
            pos = eol + 1
            # memcached's tokenizer sees the line as a C string: it ends at a NUL byte. (find,
            # not ``in``: CPython's bytes ``in`` first tries the operand as an int and formats
            # a TypeError message for every bytes operand.)
            nul = line.find(b"\0")
            if nul >= 0:
                line = line[:nul]
            budget -= 1
            session.last_cmd_time = now
            session.noreply = False
            if states is not None:
                states.line()
            if verbose > 1:
                server.trace("<%d %s" % (session.conn_id, line.decode("latin-1")))
            tokens = line.split(b" ")
            if b"" in tokens:
                tokens = [token for token in tokens if token]
            entry = dispatch.get(tokens[0]) if tokens else None
            if response_limit and not self._claim_responses(entry, tokens):
                if session.close_now:
                    return False
                continue
            if entry is None:
                self._unknown(tokens)
            else:
                command, low, high, takes_value = entry
                if not low <= len(tokens) <= high:
                    session.reply(ERROR)
                elif takes_value:
                    length = command.begin(session, tokens)
                    if length is not None:
                        self._pending = (command, tokens, length)
                        if states is None:
                            session.state = "conn_nread"
                else:
                    command.execute(session, tokens, None)
                    if command.writes_at_once:
                        self._stacked = 0
                if states is not None:
                    states.after_command(command.writes_at_once, self._pending is not None)
            if session.close_now or session.close_after_write:
                # conn_closing / quit's conn_mwrite: nothing after this line is read.
                return False
        if states is not None:
            states.batch_done()
        return False


    def _written(self) -> None:
        """memcached writes its queued replies here (conn_mwrite before a read): a close later in
        this input does not take them back, and their response objects are free again."""
        self.session.flushed = len(self.session.out)
        self._stacked = 0

    def _claim_responses(self, entry, tokens: List[bytes]) -> bool:
        """memcached's resp_start under a response budget: False if the request was refused."""
        needed = 1 if entry is None else entry[0].responses(tokens)
        stacked = self._stacked
        if stacked + needed <= self.response_limit:
            self._stacked = stacked + needed
            return True
        session = self.session
        session.server.stats.response_obj_oom += 1
        if stacked + 1 > self.response_limit:
            session.close()
        else:
            entry[0].out_of_responses(session)
            self._stacked = 1
        return False

    def _unknown(self, tokens: List[bytes]) -> None:
        """memcached closes on what looks like an HTTP request, else answers ERROR."""
        if tokens and tokens[-1].startswith(b"HTTP/"):
            self.session.close()
        else:
            self.session.reply(ERROR)

    @staticmethod
    def _may_be_long_get(data: bytes, pos: int) -> bool:
        """A line over 2 KiB is allowed only for a multiget (memcached's rule)."""
        stripped = data[pos:pos + MAX_LEADING_SPACES + 6].lstrip(b" ")
        leading = min(len(data) - pos, MAX_LEADING_SPACES + 6) - len(stripped)
        if leading > MAX_LEADING_SPACES:
            return False
        return stripped.startswith(b"get ") or stripped.startswith(b"gets ")
