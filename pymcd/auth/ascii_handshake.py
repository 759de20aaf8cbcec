"""The ``-Y`` handshake: a text connection proves itself with a ``set`` carrying ``user password``.

memcached 1.6.18 reads nothing else until a connection authenticates: the first line must look
like ``set <key> <flags> <exptime> <bytes>`` (only the verb and the length are checked), and its
data block must be ``<user> <password>``. Clients need no special support: any client can send
that ``set`` as its first request. Every reply below is memcached's byte for byte, including one
quirk clients can observe: until a read's bytes are all consumed, memcached reuses one response
object for the handshake, so of several handshake replies produced from one read only the last
is sent.

A connection that sends 2 KiB without a newline before authenticating is closed, as memcached
closes it, and so is one whose credentials block does not fit memcached's 16 KiB read buffer; a binary-protocol client (``-Y`` forces the text protocol) gets no answer until a
newline shows up in its bytes, then ``CLIENT_ERROR unauthenticated``.
"""

from __future__ import annotations

from typing import Optional

from pymcd.session import Session

UNAUTHENTICATED = b"CLIENT_ERROR unauthenticated\r\n"
AUTH_FAILED = b"CLIENT_ERROR authentication failure\r\n"
BAD_TOKEN_FORMAT = b"CLIENT_ERROR bad authentication token format\r\n"
BAD_TERMINATION = b"CLIENT_ERROR bad command line termination\r\n"
STORED = b"STORED\r\n"

MAX_LINE_WITHOUT_NEWLINE = 2048
READ_BUFFER_SIZE = 16384  # memcached's per-connection read buffer
UINT32_MASK = 0xFFFFFFFF
C_WHITESPACE = b" \t\n\v\f\r"


def _strtoul(token: bytes) -> Optional[int]:
    """memcached's safe_strtoul into a uint32: strtoul's digits, then whitespace or the end.

    A number past 64 bits or a negative one is refused; one past 32 bits wraps, as the C
    assignment to ``uint32_t`` does.
    """
    text = token.lstrip(C_WHITESPACE)
    sign = text[:1]
    if sign in (b"+", b"-"):
        text = text[1:]
    end = 0
    while end < len(text) and 48 <= text[end] <= 57:
        end += 1
    if end == 0 or (end < len(text) and text[end] not in C_WHITESPACE):
        return None
    value = int(text[:end])
    if value >= 1 << 64:
        return None
    if sign == b"-":
        value = -value % (1 << 64)
        if value >= 1 << 63:
            return None
    return value & UINT32_MASK


class AsciiAuthHandshake:
    """Runs the handshake on a connection's first bytes; sans-IO like the text machine."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._buffer = b""
        self._want: Optional[int] = None  # length of the credentials block, CRLF included

    def receive(self, data: bytes) -> Optional[bytes]:
        """Consume ``data``; once authenticated return the bytes that follow the handshake.

        Until then return None; the replies owed are on ``session.out``.
        """
        data = self._buffer + data
        self._buffer = b""
        session = self.session
        reply: Optional[bytes] = None
        pos = 0
        while True:
            if self._want is None:
                eol = data.find(b"\n", pos)
                if eol < 0:
                    if len(data) - pos > MAX_LINE_WITHOUT_NEWLINE:
                        session.close()
                        return None
                    break
                tokens = [token for token in data[pos:eol].split(b" ") if token]
                pos = eol + 1
                length = _strtoul(tokens[4]) if len(tokens) >= 5 and tokens[0] == b"set" else None
                if length is None:
                    reply = UNAUTHENTICATED
                    continue
                self._want = (length + 2) & UINT32_MASK
            if len(data) - pos < self._want:
                break
            block = data[pos:pos + self._want]
            pos += self._want
            self._want = None
            reply = self._check(block)
            if session.authenticated:
                session.out.append(reply)
                return data[pos:]
        self._buffer = data[pos:]
        if self._want is not None and len(self._buffer) >= READ_BUFFER_SIZE:
            # memcached waits for the block in its fixed read buffer and hangs up when that
            # fills: an unauthenticated client cannot make the server hold more.
            session.close()
            return None
        if reply is not None:
            session.out.append(reply)
        return None

    def _check(self, block: bytes) -> bytes:
        """The reply to a credentials block; counts the attempt as memcached does."""
        if block[-2:] != b"\r\n" or len(block) < 2:
            return BAD_TERMINATION
        # memcached tokenizes the block as a C string: a NUL ends it.
        text = block[:-2].split(b"\0", 1)[0]
        credentials = [token for token in text.split(b" ") if token]
        if len(credentials) < 2:
            return BAD_TOKEN_FORMAT
        server = self.session.server
        server.stats.auth_cmds += 1
        user, password = credentials[:2]
        if server.auth_table.check(user, password):
            self.session.authenticated = True
            self.session.user = user.decode("latin-1")
            return STORED
        server.stats.auth_errors += 1
        return AUTH_FAILED
