"""-Y side by side: pymcd and Debian's memcached 1.6.18 share one auth file and must answer every
step of every handshake conversation with the same bytes, and fail to start the same way."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from support import HOST, exchange, have_memcached, start_memcached, start_pymcd

pytestmark = pytest.mark.skipif(not have_memcached(), reason="Debian's memcached is not installed")

BINARY_VERSION = bytes([0x80, 0x0B, 0, 0] + [0] * 20)

# Each conversation is a list of sends on one connection; every send's reply is compared.
CONVERSATIONS = {
    "success": [b"set x 0 0 12\r\nalice secret\r\n", b"get x\r\n"],
    "success_with_more_in_the_read": [b"set x 0 0 12\r\nalice secret\r\nversion\r\nget x\r\n"],
    "second_user": [b"set a 1 2 7\r\nbob pw2\r\n", b"version\r\n"],
    "wrong_password": [b"set x 0 0 11\r\nalice wrong\r\n", b"get x\r\n",
                       b"set x 0 0 12\r\nalice secret\r\n"],
    "unknown_user": [b"set x 0 0 10\r\nmallory pw\r\n"],
    "malformed_token": [b"set x 0 0 5\r\nalice\r\n", b"set x 0 0 0\r\n\r\n"],
    "tab_is_no_separator": [b"set x 0 0 12\r\nalice\tsecret\r\n"],
    "extra_tokens": [b"set x 0 0 16\r\nalice secret foo\r\n", b"version\r\n"],
    "extra_spaces": [b"set x 0 0 14\r\n alice  secret\r\n", b"version\r\n"],
    "nul_ends_credentials": [b"set x 0 0 14\r\nalice secret\x00x\r\n"],
    "noreply_is_ignored": [b"set x 0 0 12 noreply\r\nalice secret\r\n", b"version\r\n"],
    "bare_newline": [b"set x 0 0 12\nalice secret\r\n", b"version\r\n"],
    "split_credentials": [b"set x 0 0 12\r\nalice ", b"secret\r\n", b"version\r\n"],
    "bad_termination": [b"set x 0 0 5\r\nalice\n", b"ab\r\n", b"version\r\n"],
    "unauthenticated": [b"get x\r\n", b"get y\r\n", b"\r\n", b"set\r\n", b"version\r\n"],
    "uppercase_verb": [b"SET x 0 0 12\r\nalice secret\r\n"],
    "negative_length": [b"set x 0 0 -1\r\n", b"version\r\n"],
    "wrapping_length": [b"set x 0 0 4294967295\r\n", b"version\r\n"],
    "pipelined_failures": [b"get x\r\nset x 0 0 11\r\nalice wrong\r\nget y\r\n"],
    "binary_refused": [BINARY_VERSION, b"\r\n", b"version\r\n"],
    "long_line_closes": [b"y" * 2048, b"z", b"\r\n"],
    "authenticate_twice": [b"set x 0 0 12\r\nalice secret\r\nset x 0 0 12\r\nalice secret\r\n",
                           b"get x\r\n"],
    "watch_behind_auth_reply": [b"set x 0 0 12\r\nalice secret\r\nwatch\r\n"],
}


@pytest.fixture(scope="module")
def auth_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("auth") / "users"
    path.write_bytes(b"alice:secret\nbob:pw2\n")
    os.chmod(path, 0o644)
    os.chmod(path.parent, 0o755)
    return path


@pytest.fixture(scope="module")
def servers(auth_file):
    with start_pymcd(["-Y", str(auth_file)]) as pymcd, \
            start_memcached(["-Y", str(auth_file)]) as memcached:
        yield pymcd, memcached


def replay(server, sends):
    sock = server.connect()
    replies = []
    for data in sends:
        sock.sendall(data)
        reply = exchange(sock, b"", settle=0.25)
        replies.append(reply)
    sock.close()
    return replies


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_handshake_replies_match(servers, name):
    pymcd, memcached = servers
    sends = CONVERSATIONS[name]
    assert replay(pymcd, sends) == replay(memcached, sends)


def _start_up_failure(command):
    result = subprocess.run(command, capture_output=True, timeout=30)
    return result.returncode, result.stderr.strip()


@pytest.mark.parametrize("contents, flags", [
    (None, ()),
    (b"alice:secret\n\n", ()),
    (b"alice:secret\nno-colon", ()),
    (b"alice:secret\n", ("-B", "binary")),
    (b"alice:secret\n", ("-B", "auto")),
    (b"alice:secret\n", ("-U", "11211")),
])
def test_start_up_errors_match(tmp_path, contents, flags):
    path = tmp_path / "users"
    if contents is not None:
        path.write_bytes(contents)
    os.chmod(tmp_path, 0o755)
    common = ["-p", "0", "-l", HOST, "-Y", str(path)] + list(flags)
    memcached = [shutil.which("memcached")] + common + (["-u", "root"] if os.geteuid() == 0 else [])
    pymcd = [sys.executable, "-m", "pymcd"] + common
    assert _start_up_failure(pymcd) == _start_up_failure(memcached)
