"""``pymcd-watch`` as a user runs it: a subprocess tailing a real server, stopped with Ctrl-C."""

from __future__ import annotations

import json
import shutil
import signal
import ssl
import subprocess
import sys
import time

import pytest

from support import exchange, start_pymcd


class Tail:
    """``python -m pymcd.watch ARGS`` in the background; :meth:`stop` sends SIGINT."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pymcd.watch"] + list(args),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def wait_watching(self, server, timeout: float = 15.0) -> None:
        """Until the server counts one more watcher."""
        deadline = time.time() + timeout
        while watchers(server) == 0:
            assert self.process.poll() is None, self.process.communicate()
            assert time.time() < deadline, "pymcd-watch never started watching"
            time.sleep(0.05)

    def stop(self):
        self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=15)
        return self.process.returncode, out.decode(), err.decode()


def watchers(server, login: bytes = b"") -> int:
    sock = server.connect()
    stats = exchange(sock, login + b"stats\r\n", expect_end=b"END\r\n")
    sock.close()
    return int(stats.split(b"STAT log_watchers ")[1].split(b"\r\n")[0])


def run_operations(server, login: bytes = b"") -> None:
    sock = server.connect()
    exchange(sock, login + b"set alpha 0 0 1\r\na\r\nset beta 0 0 2\r\nbb\r\n"
                           b"get alpha beta gamma\r\n", expect_end=b"END\r\n")
    sock.close()


def wait_for_events(server, count: int, login: bytes = b"", timeout: float = 10.0) -> None:
    """Until the server has sent ``count`` lines to watchers."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        sock = server.connect()
        stats = exchange(sock, login + b"stats\r\n", expect_end=b"END\r\n")
        sock.close()
        if int(stats.split(b"STAT log_watcher_sent ")[1].split(b"\r\n")[0]) >= count:
            time.sleep(0.3)  # let the tool print them
            return
        time.sleep(0.05)
    raise AssertionError("the server sent fewer than %d events" % count)


@pytest.fixture
def server():
    with start_pymcd() as server:
        yield server


def test_json_events_are_parsed(server):
    tail = Tail("--port", str(server.port), "--json", "fetchers", "mutations")
    tail.wait_watching(server)
    run_operations(server)
    wait_for_events(server, 7)
    code, out, err = tail.stop()
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [(e["type"], e["key"], e["status"]) for e in events] == [
        ("item_get", "alpha", "not_found"), ("item_store", "alpha", "stored"),
        ("item_get", "beta", "not_found"), ("item_store", "beta", "stored"),
        ("item_get", "alpha", "found"), ("item_get", "beta", "found"),
        ("item_get", "gamma", "not_found")]
    assert events[5]["size"] == 2 and events[5]["clsid"] == 1
    assert all(isinstance(e["ts"], float) and abs(e["ts"] - time.time()) < 60 for e in events)
    assert "7 events in" in err and "item_get=5 item_store=2" in err


def test_grep_and_plain_text(server):
    tail = Tail("--port", str(server.port), "--grep", "^b", "--colour", "never", "fetchers")
    tail.wait_watching(server)
    run_operations(server)
    wait_for_events(server, 5)
    code, out, err = tail.stop()
    lines = out.splitlines()
    assert len(lines) == 2
    assert all(line.startswith("ts=") and " key=beta " in line for line in lines)


def test_colour_on_request(server):
    tail = Tail("--port", str(server.port), "--colour", "always", "mutations")
    tail.wait_watching(server)
    run_operations(server)
    wait_for_events(server, 2)
    _, out, _ = tail.stop()
    assert out.splitlines()[0].startswith("\x1b[33mts=")


def test_authenticates_with_a_password_file(tmp_path):
    users = tmp_path / "users"
    users.write_bytes(b"ops:s3cret\n")
    password = tmp_path / "password"
    password.write_bytes(b"s3cret\n")
    login = b"set x 0 0 10\r\nops s3cret\r\n"
    with start_pymcd(["-Y", str(users)]) as server:
        tail = Tail("--port", str(server.port), "--user", "ops", "--password-file",
                    str(password), "--json", "mutations")
        deadline = time.time() + 15
        while watchers(server, login) == 0:
            assert time.time() < deadline
            time.sleep(0.05)
        run_operations(server, login)
        wait_for_events(server, 2, login)
        code, out, _ = tail.stop()
    assert code == 0
    assert [json.loads(line)["key"] for line in out.splitlines()] == ["alpha", "beta"]


def test_refusal_exits_non_zero(tmp_path):
    with start_pymcd(["-W"]) as server:
        result = subprocess.run([sys.executable, "-m", "pymcd.watch", "--port", str(server.port)],
                                capture_output=True, timeout=30)
    assert result.returncode == 1
    assert b"CLIENT_ERROR watch commands not allowed" in result.stderr


def test_reconnects_when_the_server_restarts():
    with start_pymcd() as first:
        port = first.port
        tail = Tail("--port", str(port), "--json", "mutations")
        tail.wait_watching(first)
    with start_pymcd(port=port) as second:
        tail.wait_watching(second)
        run_operations(second)
        wait_for_events(second, 2)
        code, out, err = tail.stop()
    assert [json.loads(line)["key"] for line in out.splitlines()] == ["alpha", "beta"]
    assert "reconnecting" in err


@pytest.mark.skipif(shutil.which("pymcd-watch") is None, reason="console script not installed")
def test_console_script_is_installed():
    result = subprocess.run(["pymcd-watch", "--help"], capture_output=True, timeout=30)
    assert result.returncode == 0 and b"--json" in result.stdout


def test_tls_with_a_verified_server(tmp_path):
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=pymcd-watch-test-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=127.0.0.1")
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    tls = ["-Z", "-o", "ssl_chain_cert=%s,ssl_key=%s" % (tmp_path / "server.pem",
                                                         tmp_path / "server.key")]
    context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    with start_pymcd(tls) as server:
        tail = Tail("--port", str(server.port), "--tls", "--tls-ca", str(tmp_path / "ca.pem"),
                    "--json", "mutations")
        with context.wrap_socket(server.connect(), server_hostname="127.0.0.1") as sock:
            deadline = time.time() + 15
            while b"STAT log_watchers 1\r\n" not in exchange(sock, b"stats\r\n",
                                                             expect_end=b"END\r\n"):
                assert tail.process.poll() is None and time.time() < deadline
                time.sleep(0.1)
            exchange(sock, b"set secure 0 0 1\r\ns\r\n", expect_end=b"STORED\r\n")
        time.sleep(0.5)
        code, out, _ = tail.stop()
    assert [json.loads(line)["key"] for line in out.splitlines()] == ["secure"]
