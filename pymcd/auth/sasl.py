"""SASL authentication for the binary protocol: PLAIN and CRAM-MD5 against a password file.

memcached hands SASL to Cyrus libsasl and, with ``MEMCACHED_SASL_PWDB``, checks passwords against
a ``user:password`` file it re-reads on every attempt (so edits apply without a restart). pymcd
does the same with its own small mechanisms:

- the file is named by ``--sasl-pwdb`` or, as memcached names it, ``MEMCACHED_SASL_PWDB``;
- a line is ``user:password``, optionally followed by ``:more`` which is ignored; the first line
  naming the user decides;
- passwords are compared with :func:`hmac.compare_digest`, so a wrong guess takes as long however
  many of its bytes are right;
- nothing here logs or returns a password: a failure is reported as the user name only.

Each connection gets its own :class:`SaslServer`, so a reconnecting client starts over.
"""

from __future__ import annotations

import hmac
import os
import secrets
import socket
import time
from typing import Dict, Optional, Tuple, Type

PASSWORD_FILE_VARIABLE = "MEMCACHED_SASL_PWDB"

# What a mechanism step concluded, as Cyrus's result codes (memcached's -v trace prints them):
# SASL_OK, SASL_CONTINUE, and the failures SASL_BADAUTH, SASL_NOMECH and SASL_BADPROT.
OK = 0
CONTINUE = 1
BAD_AUTH = -13
NO_MECHANISM = -4
BAD_PROTOCOL = -5

# A result code and the data to send back (a challenge while the exchange continues).
Outcome = Tuple[int, bytes]


def password_file_path(configured: Optional[str]) -> Optional[str]:
    """The password file: the pymcd option if given, else memcached's environment variable."""
    return configured or os.environ.get(PASSWORD_FILE_VARIABLE) or None


class PasswordFile:
    """A ``user:password`` file, read afresh on every lookup as memcached reads it."""

    def __init__(self, path: Optional[str]) -> None:
        self.path = path

    def password_for(self, user: bytes) -> Optional[bytes]:
        """The stored password of ``user``, or None if the file is missing or lacks the user."""
        if not self.path or not user:
            return None
        try:
            with open(self.path, "rb") as lines:
                for line in lines:
                    name, colon, rest = line.rstrip(b"\r\n").partition(b":")
                    if colon and name == user:
                        return rest.split(b":", 1)[0]
        except OSError:
            return None
        return None

    def check(self, user: bytes, password: bytes) -> bool:
        """Whether ``password`` is ``user``'s, compared in constant time."""
        stored = self.password_for(user)
        # Compare against something even for an unknown user, so both cost the same.
        matches = hmac.compare_digest(password, stored if stored is not None else b"\0" * 32)
        return stored is not None and matches


class Mechanism:
    """One authentication exchange under one mechanism; a new one per SASL_AUTH."""

    name = b""

    def __init__(self, passwords: PasswordFile) -> None:
        self.passwords = passwords
        self.user: Optional[bytes] = None

    def start(self, data: bytes) -> Outcome:
        raise NotImplementedError

    def step(self, data: bytes) -> Outcome:
        """A further client message; only mechanisms with several rounds accept one."""
        return BAD_PROTOCOL, b""


class Plain(Mechanism):
    """RFC 4616: ``authzid NUL authcid NUL password`` in one message.

    As Cyrus does without proxy rights, an authorization identity other than the user's own is
    refused.
    """

    name = b"PLAIN"

    def start(self, data: bytes) -> Outcome:
        parts = data.split(b"\0")
        if len(parts) != 3:
            return BAD_PROTOCOL, b""
        authzid, user, password = parts
        self.user = user
        if authzid and authzid != user:
            return BAD_AUTH, b""
        return (OK if self.passwords.check(user, password) else BAD_AUTH), b""


class CramMD5(Mechanism):
    """RFC 2195: the server sends a challenge, the client answers ``user hex(HMAC-MD5)``."""

    name = b"CRAM-MD5"

    def __init__(self, passwords: PasswordFile) -> None:
        super().__init__(passwords)
        self.challenge = b""

    def start(self, data: bytes) -> Outcome:
        self.challenge = b"<%d.%d@%s>" % (
            secrets.randbits(63), int(time.time()), socket.gethostname().encode())
        return CONTINUE, self.challenge

    def step(self, data: bytes) -> Outcome:
        if not self.challenge:
            return BAD_PROTOCOL, b""
        user, space, digest = data.rpartition(b" ")
        self.user = user
        stored = self.passwords.password_for(user) if space else None
        key = stored if stored is not None else b"\0" * 32
        expected = hmac.new(key, self.challenge, "md5").hexdigest().encode()
        self.challenge = b""
        matches = hmac.compare_digest(digest.lower(), expected)
        return (OK if stored is not None and matches else BAD_AUTH), b""


MECHANISMS: Dict[bytes, Type[Mechanism]] = {
    mechanism.name: mechanism for mechanism in (CramMD5, Plain)
}


class SaslServer:
    """A connection's SASL state: the exchange under way and who authenticated."""

    def __init__(self, password_file: Optional[str]) -> None:
        self.passwords = PasswordFile(password_file_path(password_file))
        self.exchange: Optional[Mechanism] = None
        # The user named in the exchange that finished last (for logs and the session).
        self.user: Optional[bytes] = None

    @staticmethod
    def mechanism_list() -> bytes:
        """What SASL_LIST_MECHS answers: the names, space separated."""
        return b" ".join(MECHANISMS)

    def start(self, mechanism: bytes, data: bytes) -> Outcome:
        """SASL_AUTH: begin a new exchange (an unknown mechanism fails)."""
        factory = MECHANISMS.get(mechanism)
        if factory is None:
            self.exchange = None
            self.exchange_done()
            return NO_MECHANISM, b""
        self.exchange = factory(self.passwords)
        outcome = self.exchange.start(data)
        if outcome[0] != CONTINUE:
            self.exchange_done()
        return outcome

    def step(self, data: bytes) -> Outcome:
        """SASL_STEP: continue the exchange SASL_AUTH started; without one it fails."""
        if self.exchange is None:
            return BAD_PROTOCOL, b""
        outcome = self.exchange.step(data)
        if outcome[0] != CONTINUE:
            self.exchange_done()
        return outcome

    def exchange_done(self) -> None:
        self.user = self.exchange.user if self.exchange is not None else None
        self.exchange = None
