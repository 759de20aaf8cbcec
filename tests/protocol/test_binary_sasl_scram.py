"""SCRAM-SHA-256 over the binary protocol: RFC 7677's test vector, and whole exchanges through the
machine with a client written from the RFC (memcached's extra empty step included)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import pytest

from pymcd.auth.sasl import CONTINUE, OK, PasswordFile, ScramSha256, SaslServer
from pymcd.protocol.binary import Opcode, Status

from test_binary_commands import Server, req


class Rfc7677Exchange(ScramSha256):
    """The salt and server nonce of RFC 7677's example, so its messages can be checked."""

    @staticmethod
    def new_salt() -> bytes:
        return base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")

    @staticmethod
    def new_nonce() -> bytes:
        return b"%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"


def test_rfc7677_example(tmp_path):
    path = tmp_path / "pwdb"
    path.write_bytes(b"user:pencil\n")
    exchange = Rfc7677Exchange(PasswordFile(str(path)))
    assert exchange.start(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO") == (
        CONTINUE, b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                  b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
    assert exchange.step(
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=") == (
        OK, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")


class ScramClient:
    """The client side of RFC 5802 with SHA-256, over a test connection."""

    def __init__(self, conn, user: bytes, password: bytes) -> None:
        self.conn = conn
        self.user = user
        self.password = password

    def first(self):
        self.client_nonce = base64.b64encode(secrets.token_bytes(12))
        self.first_bare = b"n=%s,r=%s" % (self.user, self.client_nonce)
        return self.conn.one(req(Opcode.SASL_AUTH, b"SCRAM-SHA-256", value=b"n,," + self.first_bare))

    def final(self, server_first: bytes, nonce_suffix: bytes = b""):
        fields = dict(field.split(b"=", 1) for field in server_first.split(b","))
        salted = hashlib.pbkdf2_hmac("sha256", self.password, base64.b64decode(fields[b"s"]),
                                     int(fields[b"i"]))
        without_proof = b"c=biws,r=" + fields[b"r"] + nonce_suffix
        auth_message = self.first_bare + b"," + server_first + b"," + without_proof
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        signature = hmac.new(hashlib.sha256(client_key).digest(), auth_message, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        self.expected_verifier = b"v=" + base64.b64encode(
            hmac.new(server_key, auth_message, "sha256").digest())
        return self.conn.one(req(Opcode.SASL_STEP, b"SCRAM-SHA-256",
                                 value=without_proof + b",p=" + base64.b64encode(proof)))


@pytest.fixture
def sasl_server(tmp_path):
    passwords = tmp_path / "pwdb"
    passwords.write_bytes(b"alice:secret\n")
    return Server(sasl=True, sasl_password_file=str(passwords), binding_protocol="binary")


def test_scram_is_listed_first(sasl_server):
    listed = sasl_server.connect().one(req(Opcode.SASL_LIST_MECHS)).value
    assert listed.split(b" ")[0] == b"SCRAM-SHA-256"


def test_scram_exchange_verifies_both_sides(sasl_server):
    conn = sasl_server.connect()
    client = ScramClient(conn, b"alice", b"secret")
    first = client.first()
    assert first.status == Status.AUTH_CONTINUE
    verifier = client.final(first.value)
    # memcached cannot send data with success: the verifier comes as a continuation...
    assert (verifier.status, verifier.value) == (Status.AUTH_CONTINUE, client.expected_verifier)
    assert conn.one(req(Opcode.GET, b"k")).status == Status.AUTH_ERROR
    conn = sasl_server.connect()
    client = ScramClient(conn, b"alice", b"secret")
    verifier = client.final(client.first().value)
    # ...and an empty step completes the exchange.
    done = conn.one(req(Opcode.SASL_STEP, b"SCRAM-SHA-256"))
    assert (done.status, done.value) == (0, b"Authenticated")
    assert conn.one(req(Opcode.NOOP)).status == 0
    stats = dict(sasl_server.context.general_stats())
    assert (stats["auth_cmds"], stats["auth_errors"]) == (1, 0)


@pytest.mark.parametrize("user, password, nonce_suffix", [
    (b"alice", b"wrong", b""),
    (b"mallory", b"secret", b""),
    (b"alice", b"secret", b"tampered"),
])
def test_scram_failures(sasl_server, user, password, nonce_suffix):
    conn = sasl_server.connect()
    client = ScramClient(conn, user, password)
    first = client.first()
    assert first.status == Status.AUTH_CONTINUE  # unknown users are not told apart early
    failed = client.final(first.value, nonce_suffix)
    assert (failed.status, failed.value) == (Status.AUTH_ERROR, b"Auth failure.")


def test_scram_refuses_channel_binding(tmp_path):
    path = tmp_path / "pwdb"
    path.write_bytes(b"alice:secret\n")
    assert SaslServer(str(path)).start(b"SCRAM-SHA-256", b"p=tls-unique,,n=alice,r=abc")[0] < 0
    exchange = Rfc7677Exchange(PasswordFile(str(path)))
    assert exchange.step(b"c=biws,r=x,p=AAAA")[0] < 0  # no first message yet


def test_scram_last_step_must_be_empty(sasl_server):
    conn = sasl_server.connect()
    client = ScramClient(conn, b"alice", b"secret")
    assert client.final(client.first().value).status == Status.AUTH_CONTINUE
    refused = conn.one(req(Opcode.SASL_STEP, b"SCRAM-SHA-256", value=b"more"))
    assert refused.status == Status.AUTH_ERROR and not conn.session.authenticated
