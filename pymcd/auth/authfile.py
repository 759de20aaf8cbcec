"""The ``-Y`` password file: ``user:password`` lines, read the way memcached 1.6.18 reads them.

memcached keeps the whole table in memory (it is "not supposed to be a huge database") and
re-reads it only on SIGHUP; a reload that fails keeps the previous table, so a half-edited file
never locks every client out. Its reading rules are reproduced because operators share one file
between memcached and pymcd:

- each line is read ``fgets``-style in pieces of at most 255 bytes, and every piece must contain
  a colon before its first NUL, or the whole file is refused as malformed (a blank line too);
- the user is what precedes the first colon; the password runs to the first CR, LF or NUL;
- only the first eight entries count (memcached's MAX_ENTRIES), whatever follows them.

Passwords are compared with :func:`hmac.compare_digest` and never logged or shown.
"""

from __future__ import annotations

import os
from typing import List, Tuple

MAX_ENTRY_LENGTH = 256
MAX_ENTRIES = 8

Entry = Tuple[bytes, bytes]


class AuthFileError(Exception):
    """The file cannot serve as an auth table; ``str(error)`` is memcached's start-up message."""


def _pieces(data: bytes) -> List[bytes]:
    """The successive buffers memcached's ``fgets(buf, 256)`` loop sees."""
    pieces = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos, pos + MAX_ENTRY_LENGTH - 1)
        end = pos + MAX_ENTRY_LENGTH - 1 if end < 0 else end + 1
        pieces.append(data[pos:end])
        pos = end
    return pieces


def parse_entries(path: str, data: bytes) -> List[Entry]:
    """The (user, password) pairs memcached would load from ``data``."""
    entries: List[Entry] = []
    for piece in _pieces(data):
        piece = piece.split(b"\0", 1)[0]
        user, colon, rest = piece.partition(b":")
        if not colon:
            raise AuthFileError(
                "Authfile [%s] has a malformed entry. Should be 'user:password'" % path)
        for terminator in (b"\r", b"\n"):
            rest = rest.split(terminator, 1)[0]
        entries.append((user, rest))
        if len(entries) == MAX_ENTRIES:
            break
    return entries


def read_entries(path: str) -> List[Entry]:
    """Load ``path``; raise AuthFileError with memcached's message if it cannot be used."""
    try:
        with open(path, "rb") as source:
            data = source.read()
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise AuthFileError(
            "Could not open authfile [%s] for reading, error %s: %s" % (path, reason, reason))
    return parse_entries(path, data)


class AuthTable:
    """The loaded users of one ``-Y`` file; :meth:`reload` swaps in a fresh copy (SIGHUP)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._entries: List[Entry] = read_entries(path)

    def reload(self) -> bool:
        """Re-read the file; on failure keep the current table, as memcached does."""
        try:
            self._entries = read_entries(self.path)
        except AuthFileError:
            return False
        return True

    def check(self, user: bytes, password: bytes) -> bool:
        """Whether the pair is in the table; every entry is compared, in constant time each."""
        # Imported here, not at the top: the file is read while the command line is parsed,
        # before the pymcd script decides to leave OpenSSL out (cli._leave_out_openssl), and
        # hmac would load it for its _hashlib.
        import hmac

        matched = False
        for known_user, known_password in self._entries:
            same_user = hmac.compare_digest(user, known_user)
            same_password = hmac.compare_digest(password, known_password)
            matched |= same_user and same_password
        return matched
