"""Start-up mistakes end in one line and a non-zero exit under every entry point, never a
traceback: the ``pymcd`` script, ``twistd -n pymcd`` and a daemonized ``twistd pymcd``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support import HOST, free_port

TWISTD = shutil.which("twistd", path=os.path.dirname(sys.executable)) or shutil.which("twistd")
ENTRY_POINTS = {
    "pymcd": [sys.executable, "-m", "pymcd"],
    "twistd -n": [TWISTD, "-n", "--pidfile=", "pymcd"],
}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """Two self-signed pairs (for a mismatch), a file that is not PEM, bad auth files."""
    folder = tmp_path_factory.mktemp("startup")
    for name in ("a", "b"):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-keyout", "%s.key" % name, "-out",
                        "%s.pem" % name], cwd=folder, check=True, capture_output=True)
    (folder / "not.pem").write_text("this is not a certificate\n")
    (folder / "malformed.auth").write_text("no colon on this line\n")
    (folder / "broken.py").write_text("def route(:\n")
    return folder


@pytest.fixture(scope="module")
def taken_port():
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        yield taken.getsockname()[1]


def tls(chain: str = "a.pem", key: str = "a.key", extra: str = "") -> list:
    return ["-Z", "-o", "ssl_chain_cert={d}/%s,ssl_key={d}/%s%s" % (chain, key, extra)]


# (case, flags with {d} for the files folder and {taken} for a port in use, words expected)
CASES = [
    ("port in use", ["-p", "{taken}"], "failed to listen on TCP port {taken}: Address already in use"),
    ("interface in use", ["-p", "{taken}", "-l", HOST],
     "failed to listen on one of interface(s) %s: Address already in use" % HOST),
    ("endpoint in use", ["--port", "tcp:{taken}"],
     "failed to listen on tcp:{taken}: Address already in use"),
    ("address not ours", ["-l", "192.0.2.1"],
     "failed to listen on one of interface(s) 192.0.2.1: Cannot assign requested address"),
    ("socket dir missing", ["-s", "{d}/no/such/dir/mc.sock"],
     "failed to listen on UNIX socket: {d}/no/such/dir/mc.sock: No such file or directory"),
    ("unknown endpoint", ["--port", "carrier-pigeon:11211"],
     "Invalid endpoint 'carrier-pigeon:11211': Unknown endpoint type: 'carrier-pigeon'"),
    ("bad endpoint", ["--port", "tcp:notaport"], "Invalid endpoint 'tcp:notaport'"),
    ("ssl endpoint without cert", ["--port", "ssl:0:privateKey={d}/missing.key"],
     "Invalid endpoint 'ssl:0:privateKey={d}/missing.key'"),
    ("tls without cert", ["--tls"], "add -o ssl_chain_cert=cert.pem,ssl_key=key.pem"),
    ("cert missing", tls(chain="missing.pem"),
     "Error loading the certificate chain: {d}/missing.pem : No such file or directory"),
    ("key missing", tls(key="missing.key"),
     "Error loading the key: {d}/missing.key : No such file or directory"),
    ("cert not pem", tls(chain="not.pem"), "Error loading the certificate chain: {d}/not.pem : "),
    ("key not pem", tls(key="not.pem"), "Error loading the key: {d}/not.pem : "),
    ("key mismatch", tls(key="b.key"), "Error loading the key: {d}/b.key : key values mismatch"),
    ("ca missing", tls(extra=",ssl_ca_cert={d}/missing.pem"),
     "Error loading the CA certificate: {d}/missing.pem : No such file or directory"),
    ("ca not pem", tls(extra=",ssl_ca_cert={d}/not.pem"),
     "Error loading the CA certificate: {d}/not.pem : "),
    ("bad ciphers", tls(extra=",ssl_ciphers=BOGUS"), "Error setting the provided cipher(s): BOGUS"),
    ("unknown -o", ["-o", "no_such_thing=1"], 'Illegal suboption "no_such_thing=1"'),
    ("bad -o value", ["-o", "hot_lru_pct=95"], "hot_lru_pct must be > 1 and < 80"),
    ("sasl without file", ["-S"], "-S needs a user:password file"),
    ("sasl file missing", ["-S", "--sasl-pwdb", "{d}/missing.pwdb"],
     "cannot read the password file {d}/missing.pwdb: No such file or directory"),
    ("auth file missing", ["-Y", "{d}/missing.auth"],
     "Could not open authfile [{d}/missing.auth] for reading"),
    ("auth file malformed", ["-Y", "{d}/malformed.auth"],
     "Authfile [{d}/malformed.auth] has a malformed entry. Should be 'user:password'"),
    ("conn limit zero", ["-c", "0"], "Maximum connections must be greater than 0"),
    ("conn limit huge", ["-c", "99999999999"], "failed to set rlimit for open files"),
    ("memory zero", ["-m", "0"], "Cannot set item size limit higher than 1/2 of memory max."),
    ("proxy config missing", ["--proxy-config", "{d}/missing.py"],
     "Failed to load proxy config: "),
    ("proxy config broken", ["--proxy-config", "{d}/broken.py"], "Failed to load proxy config: "),
    ("memory file unmappable", ["-e", "{d}/no/such/dir/mem.file"],
     "failed to open file for mmap: No such file or directory"),
]


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("case, flags, words", CASES, ids=[case[0] for case in CASES])
def test_startup_mistake_is_one_line(entry, case, flags, words, files, taken_port):
    def fill(text: str) -> str:
        return text.replace("{d}", str(files)).replace("{taken}", str(taken_port))

    port = [] if any(flag in ("-p", "--port", "-s") for flag in flags) else ["-p", str(free_port())]
    command = ENTRY_POINTS[entry] + ["-U", "0"] + port + [fill(flag) for flag in flags]
    env = {k: v for k, v in os.environ.items() if k != "MEMCACHED_SASL_PWDB"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=files,
                            env=env)
    assert result.returncode != 0, result
    assert "Traceback" not in result.stdout + result.stderr
    problem = [line for line in result.stderr.splitlines() if line]
    assert len(problem) == 1 and fill(words) in problem[0], result.stderr


def test_daemonized_twistd_says_why_on_the_terminal_and_in_its_log(files, taken_port):
    """twistd reports the daemon's failure on the terminal and points at its log file."""
    log = files / "daemon.log"
    result = subprocess.run([TWISTD, "--pidfile=", "--logfile", str(log), "pymcd", "-U", "0",
                             "-p", str(taken_port)], capture_output=True, text=True, timeout=60)
    words = "failed to listen on TCP port %d: Address already in use" % taken_port
    assert result.returncode != 0
    assert words in result.stderr and "Traceback" not in result.stderr
    logged = log.read_text()
    assert "[pymcd#critical] " + words in logged and "Traceback" not in logged
