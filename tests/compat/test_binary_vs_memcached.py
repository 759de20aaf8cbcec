"""The binary protocol side by side with Debian's memcached 1.6.18: the same request bytes must get
the same reply bytes (CAS values included) and the same close, plain and under -S."""

from __future__ import annotations

import re
import socket
import struct
import time

import pytest

from support import have_memcached, start_memcached, start_pymcd

pytestmark = pytest.mark.skipif(not have_memcached(), reason="Debian's memcached is not installed")

HEADER = struct.Struct(">BBHBBHIIQ")
SENTINEL_OPAQUE = 0xFEEDFACE


def req(opcode, key=b"", extras=b"", value=b"", cas=0, opaque=0, magic=0x80, bodylen=None):
    if bodylen is None:
        bodylen = len(extras) + len(key) + len(value)
    return HEADER.pack(magic, opcode, len(key), len(extras), 0, 0, bodylen, opaque,
                       cas) + extras + key + value


def store(key, value, flags=0, exptime=0, opcode=0x01, cas=0, opaque=0):
    return req(opcode, key, struct.pack(">II", flags, exptime), value, cas=cas, opaque=opaque)


def counter(opcode, key, delta, initial=0, exptime=0, cas=0):
    return req(opcode, key, struct.pack(">QQI", delta, initial, exptime), cas=cas)


TTL = struct.pack(">I", 0)
SENTINEL = req(0x0A, opaque=SENTINEL_OPAQUE)

# One connection per entry, replayed in this order on both servers.
SCRIPT = [
    req(0x09, b"a", opaque=1) + req(0x0D, b"a", opaque=2) + req(0x0A, opaque=3),
    req(0x00, b"a", opaque=1) + req(0x0C, b"a", opaque=2),
    store(b"a", b"v", 5, 0, 0x11, opaque=4) + req(0x09, b"a", opaque=5) + req(0x0A, opaque=6),
    req(0x0C, b"a") + req(0x0D, b"a"),
    store(b"a", b"v", opcode=0x12, opaque=7) + store(b"zz", b"v", opcode=0x13, opaque=8),
    req(0x1E, b"a", TTL) + req(0x1E, b"zz", TTL) + req(0x24, b"a", TTL) + req(0x24, b"zz", TTL),
    req(0x1D, b"zz", TTL) + req(0x23, b"zz", TTL),
    req(0x1C, b"a", struct.pack(">I", 100)) + req(0x1C, b"zz", struct.pack(">I", 100)),
    counter(0x05, b"n", 5, 10) + counter(0x05, b"n", 5, 10) + counter(0x06, b"m", 5, 10, 0xFFFFFFFF)
    + counter(0x05, b"a", 5, 10),
    counter(0x15, b"n", 1) + counter(0x16, b"zz2", 1, 0, 0xFFFFFFFF),
    counter(0x06, b"n", 100) + counter(0x05, b"n", 2 ** 64 - 1),
    req(0x14, b"n") + req(0x04, b"n"),
    req(0x0E, b"a", value=b"X") + req(0x0F, b"a", value=b"Y") + req(0x0E, b"qq", value=b"Y")
    + req(0x19, b"qq", value=b"Y") + req(0x00, b"a"),
    req(0x0B) + req(0x1B, extras=struct.pack(">I", 0)),
    store(b"c", b"1") + store(b"c", b"2", cas=999) + store(b"nokey", b"3", cas=5)
    + store(b"c", b"2", opcode=0x02, cas=1) + req(0x00, b"c"),
    req(0x04, b"c", cas=1) + req(0x14, b"c", cas=1),
    store(b"n", b"5") + counter(0x05, b"n", 1, cas=1) + req(0x04, b"n"),
    req(0x10, b"bogus") + req(0x10, b"detail on") + req(0x10, b"detail off")
    + req(0x10, b"detail xx") + req(0x10, b"detail dump") + req(0x10, b"reset"),
    req(0x10, b"conns") + req(0x10, b"cachedump 1 1") + req(0x10, b"sizes"),
    # stats detail counts binary gets (touches too), sets, appends and deletes per prefix
    req(0x10, b"detail on") + store(b"bp:k", b"v") + req(0x00, b"bp:k") + req(0x0C, b"bp:x")
    + req(0x1C, b"bq:k", struct.pack(">I", 100)) + req(0x0E, b"bq:k", value=b"X")
    + req(0x04, b"bp:k") + store(b"bz:big", b"x" * (1024 * 1024 + 10)) + req(0x0D, b"bp:k")
    + req(0x10, b"detail dump") + req(0x10, b"detailx") + req(0x10, b"detail off")
    + req(0x00, b"bp:k") + req(0x10, b"detail dumpx") + req(0x10, b"resetx")
    + req(0x10, b"detail dump"),
    req(0x20) + req(0x21, b"PLAIN", value=b"\0a\0b") + req(0x22, b"PLAIN", value=b"x"),
    store(b"big", b"x" * (1024 * 1024 + 10)) + req(0x19, b"big", value=b"x" * (1024 * 1024 + 10)),
    store(b"big", b"x" * 1000000) + req(0x00, b"big"),
    req(0x18) + req(0x08, extras=struct.pack(">I", 0)) + req(0x00, b"a"),
    # Malformed: each closes the connection (the sentinel NOOP is never answered).
    req(0x00, b"a", bodylen=0),
    req(0x00, b"k" * 251),
    req(0x00, b"a", extras=b"1234"),
    req(0x01, b"a", value=b"v"),
    req(0x0A, value=b"xx"),
    req(0x00),
    req(0x00, b"a", value=b"zz"),
    req(0x04, b"a", extras=b"1234"),
    req(0x08, b"a"),
    req(0x08, extras=b"123"),
    req(0x05, b"a"),
    req(0x0A) + req(0x00, b"a", magic=0x81),
    req(0x0B) + req(0x00, b"a", magic=0x81),
    req(0x17),
    req(0x07),
]

SASL_SCRIPT = [
    req(0x20),
    req(0x0B),
    req(0x0A),
    req(0x00, b"a"),
    req(0x10),
    req(0x30),
    req(0x21, b"PLAIN", value=b"\0alice\0wrong") + req(0x0B),
    req(0x21, b"FOO", value=b"x") + req(0x0B),
    req(0x22, b"PLAIN", value=b"x") + req(0x0B),
    req(0x21, b"PLAIN", extras=b"1234", value=b"\0alice\0secret"),
    req(0x21, value=b"\0alice\0secret"),
    b"version\r\nversion\r\nversion\r\n",
]


def replay(port: int, payload: bytes) -> tuple:
    """Send one connection's requests (then a NOOP sentinel); return (replies, closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload + SENTINEL)
        sock.settimeout(0.05)
        received = b""
        deadline = time.time() + 0.5
        while time.time() < deadline:
            try:
                chunk = sock.recv(1 << 20)
            except socket.timeout:
                continue
            if not chunk:
                return received, True
            received += chunk
            if sentinel_answered(received):
                return received, False
    return received, False


def sentinel_answered(received: bytes) -> bool:
    return len(received) >= 24 and received[-24:][12:16] == struct.pack(">I", SENTINEL_OPAQUE)


def run_script(port: int, script) -> list:
    return [replay(port, payload) for payload in script]


def test_binary_script_matches_memcached_byte_for_byte():
    with start_memcached(["-t", "1"]) as memcached, start_pymcd() as pymcd:
        expected = run_script(memcached.port, SCRIPT)
        actual = run_script(pymcd.port, SCRIPT)
    for number, (want, got) in enumerate(zip(expected, actual)):
        assert got == want, "script entry %d: %r" % (number, SCRIPT[number][:40])


@pytest.fixture
def sasl_environment(tmp_path, monkeypatch):
    """memcached finds its mechanisms in a Cyrus config; pymcd reads the password file."""
    (tmp_path / "memcached.conf").write_text("mech_list: scram-sha-256 cram-md5 plain\n")
    passwords = tmp_path / "pwdb"
    passwords.write_text("alice:secret\n")
    monkeypatch.setenv("SASL_CONF_PATH", str(tmp_path))
    monkeypatch.setenv("MEMCACHED_SASL_PWDB", str(passwords))


def test_sasl_refusals_match_memcached(sasl_environment):
    with start_memcached(["-S", "-t", "1"]) as memcached, start_pymcd(["-S"]) as pymcd:
        expected = run_script(memcached.port, SASL_SCRIPT)
        actual = run_script(pymcd.port, SASL_SCRIPT)
    # Before authentication even the sentinel NOOP is refused, after the mechanism list.
    assert expected[0][0][24:52] == b"SCRAM-SHA-256 CRAM-MD5 PLAIN"
    for number, (want, got) in enumerate(zip(expected, actual)):
        assert got == want, "sasl script entry %d: %r" % (number, SASL_SCRIPT[number][:40])


TRACED = (
    store(b"foo", b"bar") + req(0x00, b"foo") + req(0x0C, b"nope")
    + counter(0x05, b"n", 1, 5) + req(0x04, b"foo") + req(0x0E, b"foo", value=b"x")
    + req(0x1C, b"n", struct.pack(">I", 5)) + req(0x10, b"sizes") + req(0x30)
)


def binary_trace(server) -> list:
    """The -vv lines of one binary conversation, connection ids normalised to N."""
    time.sleep(0.3)
    replay(server.port, TRACED)
    time.sleep(0.3)
    _, err = server.stop()
    lines = err.decode(errors="replace").splitlines()
    start = max(i for i, line in enumerate(lines) if "new auto-negotiating client" in line)
    return [re.sub(r"^([<>]?)\d+", r"\1N", line) for line in lines[start:]
            if line != "Exiting normally"]


def test_binary_vv_traces_match_memcached():
    expected = binary_trace(start_memcached(["-vv"]))
    actual = binary_trace(start_pymcd(["-vv"]))
    assert len(expected) > 100
    assert actual == expected


@pytest.mark.parametrize("protocol", ["ascii", "binary", "auto"])
def test_protocol_pinning_matches_memcached(protocol):
    script = [req(0x0B), b"version\r\n" * 3, req(0x0B) + b"version\r\n" * 3]
    with start_memcached(["-B", protocol]) as memcached, start_pymcd(["-B", protocol]) as pymcd:
        expected = run_script(memcached.port, script)
        actual = run_script(pymcd.port, script)
    assert actual == expected
