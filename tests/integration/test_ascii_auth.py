"""-Y: the ASCII authentication handshake against a real pymcd, with raw sockets and pymemcache.

The expected bytes are what Debian's memcached 1.6.18 answers (tests/compat/
test_auth_vs_memcached.py replays the same conversations against both servers).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from pymemcache.client.base import Client

from support import HOST, exchange, start_pymcd

BINARY_GET_HEADER = bytes([0x80, 0x00, 0, 0] + [0] * 20)


@pytest.fixture(scope="module")
def auth_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("auth") / "users"
    path.write_bytes(b"alice:secret\nbob:pw2\n")
    return path


@pytest.fixture(scope="module")
def server(auth_file):
    with start_pymcd(["-Y", str(auth_file)]) as server:
        yield server


def talk(server, *sends):
    """Each send's reply, in order, on one connection."""
    sock = server.connect()
    try:
        return [exchange(sock, data) for data in sends]
    finally:
        sock.close()


def stat(server, name: str, section: bytes = b"") -> bytes:
    sock = server.connect()
    exchange(sock, b"set k 0 0 12\r\nalice secret\r\n")
    lines = exchange(sock, b"stats %s\r\n" % section, expect_end=b"END\r\n").split(b"\r\n")
    sock.close()
    prefix = b"STAT %s " % name.encode()
    return next(line[len(prefix):] for line in lines if line.startswith(prefix))


def test_success_then_commands_work(server):
    assert talk(server, b"set anykey 7 0 12\r\nalice secret\r\n", b"set k 0 0 1\r\nv\r\n",
                b"get k\r\n") == [b"STORED\r\n", b"STORED\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n"]


def test_wrong_password_then_retry(server):
    assert talk(server, b"set x 0 0 11\r\nalice wrong\r\n", b"get x\r\n",
                b"set x 0 0 7\r\nbob pw2\r\n", b"version\r\n") == [
        b"CLIENT_ERROR authentication failure\r\n", b"CLIENT_ERROR unauthenticated\r\n",
        b"STORED\r\n", b"VERSION 1.6.18\r\n"]


def test_malformed_token(server):
    assert talk(server, b"set x 0 0 5\r\nalice\r\n", b"set x 0 0 12\r\nalice\tsecret\r\n") == [
        b"CLIENT_ERROR bad authentication token format\r\n"] * 2


@pytest.mark.parametrize("line", [b"get x\r\n", b"\r\n", b"SET x 0 0 12\r\n", b"set x 0 0\r\n",
                                  b"set x 0 0 -1\r\n", b"version\r\n"])
def test_any_other_command_is_unauthenticated(server, line):
    assert talk(server, line, b"set x 0 0 12\r\nalice secret\r\n") == [
        b"CLIENT_ERROR unauthenticated\r\n", b"STORED\r\n"]


def test_one_read_sends_only_the_last_handshake_reply(server):
    """memcached reuses one response object until the read is consumed."""
    assert talk(server, b"get x\r\nset x 0 0 11\r\nalice wrong\r\nget y\r\n") == [
        b"CLIENT_ERROR unauthenticated\r\n"]
    assert talk(server, b"get x\r\nset x 0 0 12\r\nalice secret\r\nversion\r\n") == [
        b"STORED\r\nVERSION 1.6.18\r\n"]


def test_credentials_split_across_reads_and_bad_termination(server):
    assert talk(server, b"set x 0 0 12\r\nalice ", b"secret\r\n") == [b"", b"STORED\r\n"]
    assert talk(server, b"set x 0 0 5\r\nalice\n", b"ab\r\n") == [
        b"", b"CLIENT_ERROR unauthenticated\r\n"]


def test_binary_protocol_is_refused(server):
    sock = server.connect()
    assert exchange(sock, BINARY_GET_HEADER) == b""  # waits for a newline, as memcached does
    assert exchange(sock, b"\r\n") == b"CLIENT_ERROR unauthenticated\r\n"
    sock.close()


def test_two_kilobytes_without_newline_closes(server):
    sock = server.connect()
    sock.sendall(b"x" * 3000)
    sock.settimeout(5)
    assert sock.recv(100) == b""
    sock.close()


def test_attempts_are_counted_and_settings_shown(server, auth_file):
    before_cmds, before_errors = int(stat(server, "auth_cmds")), int(stat(server, "auth_errors"))
    talk(server, b"set x 0 0 11\r\nalice wrong\r\n", b"set x 0 0 5\r\nalice\r\n")
    # The failure and the stat() logins count; a malformed token does not.
    assert int(stat(server, "auth_cmds")) == before_cmds + 3
    assert int(stat(server, "auth_errors")) == before_errors + 1
    assert stat(server, "auth_enabled_ascii", b"settings") == str(auth_file).encode()
    assert stat(server, "binding_protocol", b"settings") == b"ascii"


def test_pymemcache_authenticates_with_its_first_set(server):
    client = Client((HOST, server.port), default_noreply=False)
    assert client.set("whatever", "alice secret") is True
    assert client.set("greeting", "hello") is True
    assert client.get("greeting") == b"hello"
    assert client.incr("counter", 1) is None
    client.close()


def test_sighup_reloads_and_keeps_authenticated_connections(tmp_path):
    users = tmp_path / "users"
    users.write_bytes(b"alice:secret\n")
    with start_pymcd(["-Y", str(users)]) as server:
        old = server.connect()
        assert exchange(old, b"set x 0 0 12\r\nalice secret\r\n") == b"STORED\r\n"
        users.write_bytes(b"carol:pw3\n")
        server.process.send_signal(signal.SIGHUP)
        deadline = time.time() + 5
        while talk(server, b"set x 0 0 9\r\ncarol pw3\r\n") != [b"STORED\r\n"]:
            assert time.time() < deadline, "SIGHUP did not reload the auth file"
            time.sleep(0.1)
        assert talk(server, b"set x 0 0 12\r\nalice secret\r\n") == [
            b"CLIENT_ERROR authentication failure\r\n"]
        assert exchange(old, b"version\r\n") == b"VERSION 1.6.18\r\n"
        # A reload that fails keeps the table in use.
        users.write_bytes(b"no colon here\n")
        server.process.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        assert talk(server, b"set x 0 0 9\r\ncarol pw3\r\n") == [b"STORED\r\n"]
        assert server.process.poll() is None


def test_password_never_in_the_logs(auth_file):
    with start_pymcd(["-vv", "-Y", str(auth_file)]) as server:
        talk(server, b"set x 0 0 12\r\nalice secret\r\n", b"get x\r\n")
        talk(server, b"set x 0 0 11\r\nalice wrong\r\n")
        _, stderr = server.stop()
    assert b"<" in stderr  # -vv traces were written...
    assert b"secret" not in stderr and b"wrong" not in stderr


def run_pymcd(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pymcd", "-p", "0", "-l", HOST] + list(args)
    return subprocess.run(command, capture_output=True, timeout=30)


@pytest.mark.parametrize("contents, flags, code, message", [
    (None, (), 1, b"Could not open authfile [{path}] for reading, error No such file or "
                  b"directory: No such file or directory"),
    (b"alice:secret\n\n", (), 1, b"Authfile [{path}] has a malformed entry. Should be "
                                 b"'user:password'"),
    (b"alice:secret\n", ("-B", "binary"), 64, b"ERROR: You cannot allow the BINARY protocol "
                                              b"while using ascii authentication tokens."),
    (b"alice:secret\n", ("-U", "11211"), 64, b"Cannot use UDP with ascii authentication "
                                             b"enabled (-U 0 to disable)"),
])
def test_start_up_errors(tmp_path, contents, flags, code, message):
    path = tmp_path / "users"
    if contents is not None:
        path.write_bytes(contents)
    result = run_pymcd("-Y", str(path), *flags)
    assert result.returncode == code
    assert message.replace(b"{path}", str(path).encode()) in result.stderr
