"""SASL (-S) against a real pymcd: python-binary-memcached authenticating with PLAIN, the
password file from MEMCACHED_SASL_PWDB or --sasl-pwdb, and the ASCII protocol refused."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys

import bmemcached
import pytest
from bmemcached.exceptions import MemcachedException

from support import start_pymcd

HEADER = struct.Struct(">BBHBBHIIQ")
AUTH_ERROR = 0x20


def packet(opcode: int, key: bytes = b"", value: bytes = b"") -> bytes:
    return HEADER.pack(0x80, opcode, len(key), 0, 0, 0, len(key) + len(value), 0, 0) + key + value


def read_packet(sock: socket.socket):
    header = b""
    while len(header) < 24:
        chunk = sock.recv(24 - len(header))
        if not chunk:
            return None
        header += chunk
    _, opcode, _, _, _, status, bodylen, _, _ = HEADER.unpack(header)
    body = b""
    while len(body) < bodylen:
        body += sock.recv(bodylen - len(body))
    return opcode, status, body


@pytest.fixture(scope="module")
def password_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sasl") / "pwdb"
    path.write_text("alice:secret\nbob:hunter2\n")
    return str(path)


@pytest.fixture(scope="module")
def sasl_server(password_file):
    with start_pymcd(["-S"], env={"MEMCACHED_SASL_PWDB": password_file}) as server:
        yield server


def client(server, user: str, password: str) -> bmemcached.Client:
    return bmemcached.Client(["127.0.0.1:%d" % server.port], user, password)


def test_bmemcached_authenticates_and_works(sasl_server):
    mc = client(sasl_server, "alice", "secret")
    assert mc.set("k", "v")
    assert mc.get("k") == "v"
    assert mc.set("n", 5)
    assert mc.incr("n", 3) == 8
    assert mc.decr("n", 10) == 0
    value, cas = mc.gets("k")
    assert value == "v"
    assert mc.cas("k", "w", cas) is True
    assert mc.cas("k", "x", cas) is False
    assert mc.get_multi(["k", "n", "missing"]) == {"k": "w", "n": 0}
    assert mc.delete("k") is True
    assert mc.get("k") is None
    stats = mc.stats()["127.0.0.1:%d" % sasl_server.port]
    assert int(stats["auth_cmds"]) >= 1
    mc.disconnect_all()


def test_wrong_password_fails_with_memcacheds_auth_error(sasl_server):
    before = bmemcached_stats(sasl_server)
    with pytest.raises(MemcachedException) as failure:
        client(sasl_server, "alice", "wrong").get("k")
    assert failure.value.code == AUTH_ERROR and "Auth failure." in failure.value.message
    after = bmemcached_stats(sasl_server)
    assert int(after["auth_errors"]) == int(before["auth_errors"]) + 1
    assert int(after["auth_cmds"]) == int(before["auth_cmds"]) + 2  # the check's own auth


def bmemcached_stats(server) -> dict:
    mc = client(server, "bob", "hunter2")
    try:
        return mc.stats()["127.0.0.1:%d" % server.port]
    finally:
        mc.disconnect_all()


def test_failed_auth_is_logged_without_the_password(password_file):
    with start_pymcd(["-S", "--sasl-pwdb", password_file]) as server:
        with pytest.raises(MemcachedException):
            client(server, "alice", "Sup3rSecretGuess").get("k")
        assert client(server, "bob", "hunter2").set("k", "v")
        _, err = server.stop()
    log = err.decode(errors="replace")
    assert "authentication failed for user 'alice'" in log
    assert "Sup3rSecretGuess" not in log


def test_each_connection_must_authenticate(sasl_server):
    first = sasl_server.connect()
    first.sendall(packet(0x21, b"PLAIN", b"\0alice\0secret"))
    assert read_packet(first)[1:] == (0, b"Authenticated")
    first.sendall(packet(0x0A))
    assert read_packet(first)[1] == 0
    first.close()
    second = sasl_server.connect()
    second.sendall(packet(0x00, b"k"))
    assert read_packet(second)[1:] == (AUTH_ERROR, b"Auth failure.")
    assert read_packet(second) is None  # closed
    second.close()


def test_ascii_is_refused_under_sasl(sasl_server):
    sock = sasl_server.connect()
    sock.sendall(b"version\r\nversion\r\nversion\r\n")
    sock.settimeout(5)
    assert sock.recv(100) == b""
    sock.close()


@pytest.mark.parametrize("extra, message", [
    (["-B", "ascii"], "ERROR: You cannot allow the ASCII protocol while using SASL."),
    (["-B", "auto"], "ERROR: You cannot allow the ASCII protocol while using SASL."),
    (["-U", "11299"], "ERROR: Cannot enable UDP while using binary SASL authentication."),
])
def test_sasl_with_ascii_does_not_start(extra, message):
    result = subprocess.run([sys.executable, "-m", "pymcd", "-S", "-p", "0"] + extra,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 64
    assert message in result.stderr
