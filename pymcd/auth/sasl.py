"""SASL authentication for the binary protocol: SCRAM-SHA-256, CRAM-MD5 and PLAIN against a
password file.

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

memcached's binary protocol cannot carry data with a success (it answers ``Authenticated``), so a
mechanism that ends with a server message (SCRAM's signature) gets one more round, as Cyrus runs it
for such protocols: the message comes with AUTH_CONTINUE and an empty SASL_STEP completes.
"""

from __future__ import annotations

import base64
import hashlib
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


class ScramSha256(Mechanism):
    """RFC 5802 / RFC 7677 without channel binding.

    The file holds plain passwords, so each exchange salts afresh. An unknown user is led through
    the whole exchange with a made-up password and fails at the proof, so a client cannot tell
    unknown users from wrong passwords.
    """

    name = b"SCRAM-SHA-256"
    iterations = 4096

    def __init__(self, passwords: PasswordFile) -> None:
        super().__init__(passwords)
        self.known_user = False
        self.gs2_header = b""
        self.nonce = b""
        self.salted_password = b""
        self.first_messages = b""

    @staticmethod
    def new_salt() -> bytes:
        return secrets.token_bytes(16)

    @staticmethod
    def new_nonce() -> bytes:
        return base64.b64encode(secrets.token_bytes(18))

    def start(self, data: bytes) -> Outcome:
        cbind, _, rest = data.partition(b",")
        authzid, _, client_first_bare = rest.partition(b",")
        attributes = _scram_attributes(client_first_bare)
        if cbind not in (b"n", b"y") or "n" not in attributes or "r" not in attributes:
            return BAD_PROTOCOL, b""
        user = attributes["n"].replace(b"=2C", b",").replace(b"=3D", b"=")
        self.user = user
        if authzid and authzid != b"a=" + attributes["n"]:
            return BAD_AUTH, b""
        stored = self.passwords.password_for(user)
        self.known_user = stored is not None
        salt = self.new_salt()
        self.salted_password = hashlib.pbkdf2_hmac(
            "sha256", stored if stored is not None else secrets.token_bytes(16), salt,
            self.iterations)
        self.gs2_header = data[:len(data) - len(client_first_bare)]
        self.nonce = attributes["r"] + self.new_nonce()
        server_first = b"r=%s,s=%s,i=%d" % (self.nonce, base64.b64encode(salt), self.iterations)
        self.first_messages = client_first_bare + b"," + server_first
        return CONTINUE, server_first

    def step(self, data: bytes) -> Outcome:
        if not self.nonce:
            return BAD_PROTOCOL, b""
        nonce, self.nonce = self.nonce, b""
        without_proof, _, proof_field = data.rpartition(b",")
        attributes = _scram_attributes(without_proof)
        if (not proof_field.startswith(b"p=")
                or attributes.get("c") != base64.b64encode(self.gs2_header)
                or attributes.get("r") != nonce):
            return BAD_PROTOCOL, b""
        try:
            proof = base64.b64decode(proof_field[2:], validate=True)
        except ValueError:
            return BAD_PROTOCOL, b""
        auth_message = self.first_messages + b"," + without_proof
        client_key = _hmac(self.salted_password, b"Client Key")
        stored_key = hashlib.sha256(client_key).digest()
        signature = _hmac(stored_key, auth_message)
        claimed_key = bytes(a ^ b for a, b in zip(proof, signature)) if len(proof) == 32 else b""
        matches = hmac.compare_digest(hashlib.sha256(claimed_key).digest(), stored_key)
        if not (matches and self.known_user):
            return BAD_AUTH, b""
        server_signature = _hmac(_hmac(self.salted_password, b"Server Key"), auth_message)
        return OK, b"v=" + base64.b64encode(server_signature)


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, "sha256").digest()


def _scram_attributes(message: bytes) -> Dict[str, bytes]:
    """``a=1,b=2`` as a dict (the first of a repeated attribute wins)."""
    attributes: Dict[str, bytes] = {}
    for field in message.split(b","):
        if len(field) >= 2 and field[1:2] == b"=":
            attributes.setdefault(field[:1].decode("latin-1"), field[2:])
    return attributes


# Strongest first, as Cyrus lists them.
MECHANISMS: Dict[bytes, Type[Mechanism]] = {
    mechanism.name: mechanism for mechanism in (ScramSha256, CramMD5, Plain)
}


class SaslServer:
    """A connection's SASL state: the exchange under way and who authenticated."""

    def __init__(self, password_file: Optional[str]) -> None:
        self.passwords = PasswordFile(password_file_path(password_file))
        self.exchange: Optional[Mechanism] = None
        # The user named in the exchange that finished last (for logs and the session).
        self.user: Optional[bytes] = None
        # A mechanism succeeded with a final message, sent as a continuation: an empty step
        # from the client completes the exchange.
        self.success_pending = False

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
        return self._conclude(self.exchange.start(data))

    def step(self, data: bytes) -> Outcome:
        """SASL_STEP: continue the exchange SASL_AUTH started; without one it fails."""
        if self.exchange is None:
            return BAD_PROTOCOL, b""
        if self.success_pending:
            self.success_pending = False
            return self._conclude((BAD_PROTOCOL if data else OK, b""))
        return self._conclude(self.exchange.step(data))

    def _conclude(self, outcome: Outcome) -> Outcome:
        code, data = outcome
        if code == OK and data:
            self.success_pending = True
            return CONTINUE, data
        if code != CONTINUE:
            self.exchange_done()
        return outcome

    def exchange_done(self) -> None:
        self.user = self.exchange.user if self.exchange is not None else None
        self.exchange = None
        self.success_pending = False
