"""The binary protocol's connection machine: 24-byte headers, framing, and response packing.

memcached reads a binary request in two steps, and so does this machine: first the header with
the extras and the key (``conn_parse_cmd``), which is enough to validate the request and to refuse
a value too large before reading it; then, for the few opcodes that carry one, the value
(``conn_nread``), or the bytes to discard after a refusal (``conn_swallow``). Keeping those steps
means a client announcing a 100 MB value gets ``Too large.`` at once, and pymcd never buffers it.

The machine is sans-IO, like :class:`pymcd.protocol.text.TextMachine`: ``receive`` takes what a
read returned and leaves the replies on ``session.out``. It checks what every opcode shares
(magic, lengths that add up, authentication, key length) and hands the rest to the command
serving the opcode.
"""

from __future__ import annotations

import struct
from typing import Dict, List, NamedTuple, Optional, Tuple

from pymcd.commands.registry import BinaryDispatch
from pymcd.protocol.pending_input import PendingInput
from pymcd.session import OUTPUT_BOUND, Session

REQUEST_MAGIC = 0x80
RESPONSE_MAGIC = 0x81
RAW_BYTES = 0
KEY_MAX_LENGTH = 250
INT32_MAX = 2**31 - 1

# magic, opcode, key length, extras length, data type, vbucket/status, body length, opaque, cas.
HEADER = struct.Struct(">BBHBBHIIQ")
# A response header and the 4 bytes of flags that are a value response's extras, packed at once.
HEADER_AND_FLAGS = struct.Struct(">BBHBBHIIQI")
HEADER_SIZE = HEADER.size


class Opcode:
    """The opcodes memcached 1.6.18 serves (protocol_binary.h)."""

    GET = 0x00
    SET = 0x01
    ADD = 0x02
    REPLACE = 0x03
    DELETE = 0x04
    INCREMENT = 0x05
    DECREMENT = 0x06
    QUIT = 0x07
    FLUSH = 0x08
    GETQ = 0x09
    NOOP = 0x0A
    VERSION = 0x0B
    GETK = 0x0C
    GETKQ = 0x0D
    APPEND = 0x0E
    PREPEND = 0x0F
    STAT = 0x10
    SETQ = 0x11
    ADDQ = 0x12
    REPLACEQ = 0x13
    DELETEQ = 0x14
    INCREMENTQ = 0x15
    DECREMENTQ = 0x16
    QUITQ = 0x17
    FLUSHQ = 0x18
    APPENDQ = 0x19
    PREPENDQ = 0x1A
    VERBOSITY = 0x1B
    TOUCH = 0x1C
    GAT = 0x1D
    GATQ = 0x1E
    SASL_LIST_MECHS = 0x20
    SASL_AUTH = 0x21
    SASL_STEP = 0x22
    GATK = 0x23
    GATKQ = 0x24


# Each quiet opcode and the opcode it is the silent form of.
QUIET_OF = {
    Opcode.GETQ: Opcode.GET,
    Opcode.GETKQ: Opcode.GETK,
    Opcode.SETQ: Opcode.SET,
    Opcode.ADDQ: Opcode.ADD,
    Opcode.REPLACEQ: Opcode.REPLACE,
    Opcode.DELETEQ: Opcode.DELETE,
    Opcode.INCREMENTQ: Opcode.INCREMENT,
    Opcode.DECREMENTQ: Opcode.DECREMENT,
    Opcode.QUITQ: Opcode.QUIT,
    Opcode.FLUSHQ: Opcode.FLUSH,
    Opcode.APPENDQ: Opcode.APPEND,
    Opcode.PREPENDQ: Opcode.PREPEND,
    Opcode.GATQ: Opcode.GAT,
    Opcode.GATKQ: Opcode.GATK,
}


class Status:
    """Response status codes."""

    SUCCESS = 0x00
    KEY_ENOENT = 0x01
    KEY_EEXISTS = 0x02
    E2BIG = 0x03
    EINVAL = 0x04
    NOT_STORED = 0x05
    DELTA_BADVAL = 0x06
    AUTH_ERROR = 0x20
    AUTH_CONTINUE = 0x21
    UNKNOWN_COMMAND = 0x81
    ENOMEM = 0x82


# The body memcached's write_bin_error sends for each status when it has no specific text.
ERROR_TEXT = {
    Status.ENOMEM: b"Out of memory",
    Status.UNKNOWN_COMMAND: b"Unknown command",
    Status.KEY_ENOENT: b"Not found",
    Status.EINVAL: b"Invalid arguments",
    Status.KEY_EEXISTS: b"Data exists for key.",
    Status.E2BIG: b"Too large.",
    Status.DELTA_BADVAL: b"Non-numeric server-side value for incr or decr",
    Status.NOT_STORED: b"Not stored.",
    Status.AUTH_ERROR: b"Auth failure.",
}


class BinaryRequest:
    """One parsed request: the header's fields, its extras and key, and later its value.

    ``quiet`` is true for the silent variants (GETQ, SETQ...); commands serve both variants of
    an opcode and only differ in whether success is answered.
    """

    __slots__ = ("opcode", "datatype", "vbucket", "bodylen", "opaque", "cas", "extras", "key",
                 "value", "value_length", "quiet", "flushes")

    def __init__(self, opcode: int, extras: bytes = b"", key: bytes = b"", value: bytes = b"",
                 cas: int = 0, opaque: int = 0, bodylen: Optional[int] = None,
                 datatype: int = RAW_BYTES, vbucket: int = 0) -> None:
        self.opcode = opcode
        self.datatype = datatype
        self.vbucket = vbucket
        self.extras = extras
        self.key = key
        self.value = value
        self.cas = cas
        self.opaque = opaque
        if bodylen is None:
            bodylen = len(extras) + len(key) + len(value)
        self.bodylen = bodylen
        # What the body holds after the extras and the key (the value of a SET); every
        # command's shape check asks for it.
        self.value_length = bodylen - len(extras) - len(key)
        self.quiet = opcode in QUIET_OF
        # Whether memcached writes the replies so far at once after this request (conn_mwrite:
        # errors and NOOP), so that they reach the client even if a later request is garbage.
        self.flushes = False

    def __repr__(self) -> str:
        return "<BinaryRequest opcode=0x%02x key=%r bodylen=%d>" % (
            self.opcode, self.key, self.bodylen)


def pack_request(request: BinaryRequest) -> bytes:
    """The request's bytes on the wire (for clients and tests)."""
    header = HEADER.pack(REQUEST_MAGIC, request.opcode, len(request.key), len(request.extras),
                         request.datatype, request.vbucket, request.bodylen, request.opaque,
                         request.cas)
    return b"".join((header, request.extras, request.key, request.value))


def pack_response(opcode: int, opaque: int, status: int = Status.SUCCESS, extras: bytes = b"",
                  key: bytes = b"", value: bytes = b"", cas: int = 0) -> bytes:
    """One response packet."""
    keylen = len(key)
    extlen = len(extras)
    return b"".join((HEADER.pack(RESPONSE_MAGIC, opcode, keylen, extlen, RAW_BYTES, status,
                                 extlen + keylen + len(value), opaque, cas), extras, key, value))


def pack_value_response(opcode: int, opaque: int, flags: int, key: bytes, value: bytes,
                        cas: int) -> bytes:
    """A successful get's packet: the item's flags as extras, then the key (or none) and the
    value; the same bytes as ``pack_response`` with packed flags, in one struct call."""
    keylen = len(key)
    return b"".join((HEADER_AND_FLAGS.pack(RESPONSE_MAGIC, opcode, keylen, 4, RAW_BYTES,
                                           Status.SUCCESS, 4 + keylen + len(value), opaque, cas,
                                           flags), key, value))


def error_response(request: BinaryRequest, status: int, text: Optional[bytes] = None) -> bytes:
    """memcached's write_bin_error: the status with its standard text (or ``text``) as body."""
    return pack_response(request.opcode, request.opaque, status,
                         value=ERROR_TEXT[status] if text is None else text)


class BinaryResponse(NamedTuple):
    """One response packet as a client reads it."""

    opcode: int
    status: int
    opaque: int
    cas: int
    extras: bytes
    key: bytes
    value: bytes


def parse_responses(data: bytes) -> Tuple[List[BinaryResponse], bytes]:
    """Split ``data`` into whole response packets and the incomplete rest (for clients, tests)."""
    packets = []
    pos = 0
    while len(data) - pos >= HEADER_SIZE:
        (_, opcode, keylen, extlen, _, status, bodylen, opaque,
         cas) = HEADER.unpack_from(data, pos)
        end = pos + HEADER_SIZE + bodylen
        if end > len(data):
            break
        key_start = pos + HEADER_SIZE + extlen
        value_start = key_start + keylen
        packets.append(BinaryResponse(opcode, status, opaque, cas,
                                      data[pos + HEADER_SIZE:key_start],
                                      data[key_start:value_start], data[value_start:end]))
        pos = end
    return packets, data[pos:]


def trace_header(session: Session, incoming: bool, header: bytes) -> None:
    """memcached's -vv dump of a request or response header, four bytes a line."""
    server = session.server
    if incoming:
        server.trace("<%d Read binary protocol data:" % session.conn_id)
        prefix = "<%d   " % session.conn_id
    else:
        server.trace(">%d Writing bin response:" % session.conn_id)
        prefix = ">%d  " % session.conn_id
    for start in range(0, HEADER_SIZE, 4):
        server.trace(prefix + "".join(" 0x%02x" % byte for byte in header[start:start + 4]))


def respond(session: Session, packet: bytes) -> None:
    """Queue a response packet (traced at -vv as memcached's add_bin_header does)."""
    if session.server.verbose > 1:
        trace_header(session, False, packet[:HEADER_SIZE])
    session.out.append(packet)


def send_error(session: Session, request: BinaryRequest, status: int,
               text: Optional[bytes] = None) -> None:
    """memcached's write_bin_error, sent for quiet requests too."""
    if session.server.verbose > 1:
        shown = ERROR_TEXT[status] if text is None else text
        session.server.trace(">%d Writing an error: %s"
                             % (session.conn_id, shown.decode("latin-1")))
    respond(session, error_response(request, status, text))
    request.flushes = True


def protocol_error(session: Session, request: BinaryRequest) -> None:
    """A request whose shape is wrong for its opcode: ``Invalid arguments``, then close."""
    send_error(session, request, Status.EINVAL)
    if session.server.verbose:
        session.server.trace("Protocol error (opcode %02x), close connection %d"
                             % (request.opcode, session.conn_id))
    session.quit()


class BinaryMachine:
    """Frames binary requests and runs them; one per connection."""

    def __init__(self, session: Session, dispatch: Dict[int, BinaryDispatch]) -> None:
        self.session = session
        self.dispatch = dispatch
        self.requests_per_event = session.server.settings.reqs_per_event
        self.pending_input = PendingInput()
        # The request whose value is being read: (command, request, value length).
        self._pending = None
        self._done = False
        self._announced = False

    def receive(self, data: bytes) -> bool:
        """Consume ``data``; return True if work is left because the request budget ran out.

        Call again with ``b""`` to continue after yielding.
        """
        if self._done:
            return False
        if self.pending_input.holds:
            data = self.pending_input.take(data)
            if data is None:
                return False
        session = self.session
        server = session.server
        if not self._announced:
            self._announced = True
            if server.verbose > 1:
                server.trace("%d: Client using the binary protocol" % session.conn_id)
        now = session.store.now  # for the idle sweep: the time of the last request header
        budget = self.requests_per_event
        dispatch = self.dispatch
        sasl = server.settings.sasl
        pos = 0
        size = len(data)
        while pos < size:
            if self._pending is not None:
                command, request, length = self._pending
                if size - pos < length:
                    self.pending_input.wait_for(data[pos:], length)
                    return False
                self._pending = None
                session.state = "conn_waiting"
                request.value = data[pos:pos + length]
                pos += length
                command.execute(session, request)
                if request.flushes:
                    session.flushed = len(session.out)
                if session.close_now or session.close_after_write:
                    self._stop()
                    return False
                continue
            if session.swallow_bytes:
                pos += session.swallowed(size - pos)
                continue
            if budget <= 0 or session.reply_bytes >= OUTPUT_BOUND:
                if budget <= 0:
                    server.stats.conn_yields += 1
                self.pending_input.keep(data[pos:])
                return True
            if size - pos < HEADER_SIZE:
                break
            (magic, opcode, keylen, extlen, datatype, vbucket, bodylen, opaque,
             cas) = HEADER.unpack_from(data, pos)
            if server.verbose > 1:
                trace_header(session, True, data[pos:pos + HEADER_SIZE])
            if magic != REQUEST_MAGIC:
                if server.verbose:
                    server.trace("Invalid magic:  %x" % magic)
                # conn_closing: replies memcached had not written yet are dropped.
                del session.out[session.flushed:]
                session.quit()
                self._done = True
                return False
            frame_end = pos + HEADER_SIZE + extlen + keylen
            if frame_end > size:
                self.pending_input.wait_for(data[pos:], frame_end - pos)
                return False
            budget -= 1
            session.last_cmd_time = now
            key_start = pos + HEADER_SIZE + extlen
            request = BinaryRequest(opcode, data[pos + HEADER_SIZE:key_start],
                                    data[key_start:frame_end], b"", cas, opaque, bodylen,
                                    datatype, vbucket)
            pos = frame_end
            # memcached's dispatch_bin_command: the checks every opcode shares (the rare answers
            # in _refused), the opcode's shape, then its command. Inline: a call per request
            # costs.
            entry = dispatch.get(opcode)
            if not ((entry is None or keylen > KEY_MAX_LENGTH or keylen + extlen > bodylen
                     or sasl) and self._refused(request, entry, keylen, extlen, bodylen)):
                command, shapes, staged = entry
                if shapes is not None and (
                        extlen, keylen > 0, request.value_length > 0) not in shapes:
                    protocol_error(session, request)
                elif not staged:
                    command.execute(session, request)
                else:
                    length = command.begin(session, request)
                    if length:
                        self._pending = (command, request, length)
                        # The idle sweep spares a connection in the middle of a value, as
                        # memcached does.
                        session.state = "conn_nread"
                    elif length is not None:
                        command.execute(session, request)
            # An error that swallows the body is not written until the body is gone
            # (write_bin_error goes to conn_swallow instead of conn_mwrite).
            if request.flushes and not session.swallow_bytes:
                session.flushed = len(session.out)
            if session.close_now or session.close_after_write:
                self._stop()
                return False
        if pos < size:
            self.pending_input.keep(data[pos:])
        return False

    def _refused(self, request: BinaryRequest, entry: Optional[BinaryDispatch], keylen: int,
                 extlen: int, bodylen: int) -> bool:
        """dispatch_bin_command's shared checks, in its order, for a request that may fail one
        (or that needs authentication): True if it was answered, False to run its command."""
        command = None if entry is None else entry[0]
        session = self.session
        server = session.server
        if keylen + extlen > bodylen:
            send_error(session, request, Status.UNKNOWN_COMMAND)
            session.quit()
            return True
        if server.settings.sasl:
            allowed = session.authenticated or (command is not None
                                                and command.allowed_before_auth)
            if server.verbose > 1:
                server.trace("authenticated() in cmd 0x%02x is %s"
                             % (request.opcode, "true" if allowed else "false"))
            if not allowed:
                send_error(session, request, Status.AUTH_ERROR)
                session.quit()
                return True
        if keylen > KEY_MAX_LENGTH:
            protocol_error(session, request)
            return True
        if command is None:
            # The extras and key are read already; memcached then discards as many bytes as
            # the whole body announced, so a body with a key eats into the next request. It
            # counts them in an int: a body of 2 GiB or more is not discarded at all.
            send_error(session, request, Status.UNKNOWN_COMMAND)
            if bodylen <= INT32_MAX:
                session.swallow(bodylen)
            return True
        return False

    def _stop(self) -> None:
        """A reply closed the connection: later requests in the same read are not run."""
        self._done = True
        self._pending = None
