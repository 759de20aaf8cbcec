"""The two ways to start pymcd: memcached's command line and twistd."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
from support import HOST, ServerProcess, exchange, free_port


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pymcd", *args], capture_output=True, text=True,
                          timeout=30)


def test_version_flag():
    result = run_cli("-V")
    assert result.returncode == 0
    assert result.stdout.startswith("pymcd ")


def test_help_lists_every_option_with_its_default():
    """``pymcd -h`` and ``twistd pymcd --help`` print the same list: every flag, long option
    and -o key, in memcached's groups, each with its default or saying it is ignored."""
    from pymcd.extended_options import OPTIONS
    from pymcd.options import HELP_ROWS, LONG_OPTIONS, SHORT_OPTIONS

    script = run_cli("-h")
    venv_twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
    twistd = subprocess.run([venv_twistd, "pymcd", "--help"], capture_output=True,
                            text=True, timeout=60)
    assert script.returncode == twistd.returncode == 0
    assert script.stdout == twistd.stdout
    flags = " ".join(flag for flag, _ in HELP_ROWS)
    for letter in SHORT_OPTIONS.replace(":", ""):
        assert "-%s" % letter in flags
    for name in LONG_OPTIONS:
        assert "--" + name.rstrip("=") in flags
    for key in OPTIONS:  # "most options have a 'no_' prefix to disable"
        if key.startswith("ext_"):  # extstore's, listed as ext_* (see test_help_does_not_claim_extstore)
            assert "ext_*" in flags
            continue
        assert key in flags or key.replace("no_", "", 1) in flags or "no_" + key in flags, key
    assert flags.index("-Z") < flags.index("ssl_chain_cert") < flags.index("-N")
    actions = ("-h, ", "-i, ", "-V, ", "-vv", "-vvv", "-o, ", "pymcd's own")
    for flag, meaning in HELP_ROWS:
        if not flag.startswith(actions):
            assert "default" in meaning or "no effect" in meaning, flag


@pytest.mark.parametrize(
    "args, message",
    [
        (["-o", "x"], 'Illegal suboption "x"'),
        (["-c", "0"], "Maximum connections must be greater than 0"),
        (["-f", "1"], "Factor must be greater than 1"),
        (["-B", "bogus"], "Invalid value for binding protocol: bogus"),
        (["-I", "100"], "Item max size cannot be less than 1024 bytes."),
        (["-o", "hot_lru_pct=90"], "hot_lru_pct must be > 1 and < 80"),
        (["-Q"], "Illegal argument"),
    ],
)
def test_bad_values_exit_non_zero(args, message):
    result = run_cli(*args)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def test_memcached_style_command_line_serves():
    port = free_port()
    args = [sys.executable, "-m", "pymcd", "-p", str(port), "-U", "0", "-l", HOST, "-m", "64",
            "-c", "1024", "-t", "4", "-o", "hashpower=20,idle_timeout=30"]
    with ServerProcess(args, port) as server, server.connect() as sock:
        assert exchange(sock, b"set a 0 0 1\r\nx\r\nget a\r\n", b"END\r\n") == (
            b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n"
        )


def test_port_in_use_exits_as_memcached():
    """memcached says which port or interface it could not take and exits with EX_OSERR (71)."""
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        with_interface = run_cli("-p", port, "-U", "0", "-l", HOST)
        without = run_cli("-p", port, "-U", "0")
    assert with_interface.returncode == without.returncode == 71
    assert with_interface.stderr == (
        "failed to listen on one of interface(s) %s: Address already in use\n" % HOST)
    assert without.stderr == "failed to listen on TCP port %s: Address already in use\n" % port


@pytest.mark.skipif(shutil.which("twistd") is None, reason="twistd not on PATH")
def test_twistd_plugin_with_two_ports(tmp_path):
    port1, port2 = free_port(), free_port()
    sock_path = str(tmp_path / "mc.sock")
    command = [shutil.which("twistd"), "-n", "--pidfile=", "pymcd", "--port",
               "tcp:%d:interface=127.0.0.1" % port1, "--port", str(port2), "--port",
               "unix:%s" % sock_path]
    with ServerProcess(command, port1) as server:
        with server.connect() as sock:
            assert exchange(sock, b"set a 0 0 1\r\nx\r\n", b"\r\n") == b"STORED\r\n"
        import socket

        with socket.create_connection((HOST, port2), timeout=5) as sock:
            assert exchange(sock, b"get a\r\n", b"END\r\n") == b"VALUE a 0 1\r\nx\r\nEND\r\n"
        unix = socket.socket(socket.AF_UNIX)
        unix.connect(sock_path)
        assert exchange(unix, b"get a\r\n", b"END\r\n") == b"VALUE a 0 1\r\nx\r\nEND\r\n"
        unix.close()


def test_vv_traces_in_memcached_format():
    port = free_port()
    args = [sys.executable, "-m", "pymcd", "-p", str(port), "-U", "0", "-l", HOST, "-vv"]
    server = ServerProcess(args, port)
    with server.connect() as sock:
        exchange(sock, b"set foo 0 0 1\r\nx\r\nget foo\r\n", b"END\r\n")
    _, err = server.stop()
    lines = err.decode().splitlines()
    assert any(line.startswith("slab class   1: chunk size ") for line in lines)
    # Id 1 is the listener, 2 the readiness probe; connection 3 is ours.
    assert "<1 server listening (auto-negotiate)" in lines
    conversation = [line for line in lines if line.startswith(("<3 ", ">3 ", "3: "))]
    assert conversation == [
        "<3 new auto-negotiating client connection",
        "3: Client using the ascii protocol",
        "<3 set foo 0 0 1",
        ">3 STORED",
        "<3 get foo",
        ">3 sending key foo",
        ">3 END",
        "<3 connection closed.",
    ]


@pytest.mark.parametrize("flags, reactor_class, openssl_loaded", [
    ([], "LeanEPollReactor", False),
    (["--stock-reactor"], "EPollReactor", False),
    (["-Z", "-o", "ssl_chain_cert=x,ssl_key=y"], "LeanEPollReactor", True),
])
def test_reactor_choice(flags, reactor_class, openssl_loaded):
    """The pymcd script runs on the lean reactor unless told otherwise, and loads pyOpenSSL
    only when a listener needs TLS."""
    probe = (
        "import sys; from pymcd.lean_reactor import install_server_reactor; from pymcd.options "
        "import parse_arguments; install_server_reactor(parse_arguments(%r)); "
        "from twisted.internet import reactor, tcp; "
        "print(type(reactor).__name__, 'OpenSSL.SSL' in sys.modules)" % flags)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.split() == [reactor_class, str(openssl_loaded)], result.stderr
    port = free_port()
    args = [sys.executable, "-m", "pymcd", "-p", str(port), "-U", "0", "-l", HOST] + flags[:1]
    if flags[:1] == ["-Z"]:
        return  # serving TLS is tested in test_transports with real certificates
    with ServerProcess(args, port) as server, server.connect() as sock:
        assert exchange(sock, b"set a 0 0 1\r\nx\r\nget a\r\n", b"END\r\n") == (
            b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n")


@pytest.mark.parametrize("flags, libcrypto_mapped", [
    ([], False),
    (["-Y", "{authfile}"], False),
    (["-S", "--sasl-pwdb", "{authfile}"], True),
    (["--http", "{http_port}"], True),
])
def test_libcrypto_only_where_used(flags, libcrypto_mapped, tmp_path):
    """The pymcd script leaves OpenSSL's libcrypto (4.8 MiB of RSS) out of a server that has
    no TLS, web site, SASL or proxy; SASL keeps it, for SCRAM's PBKDF2, which it still
    runs (a SCRAM-SHA-256 login through pymemcache's binary cousin is in test_sasl)."""
    authfile = tmp_path / "users"
    authfile.write_text("user:secret\n")
    flags = [flag.format(authfile=authfile, http_port=free_port()) for flag in flags]
    port = free_port()
    args = [sys.executable, "-m", "pymcd", "-p", str(port), "-U", "0", "-l", HOST] + flags
    with ServerProcess(args, port) as server:
        with open("/proc/%d/maps" % server.process.pid) as maps:
            assert ("libcrypto" in maps.read()) == libcrypto_mapped
        if "-S" not in flags:
            with server.connect() as sock:
                if "-Y" in flags:
                    assert exchange(sock, b"set a 0 0 11\r\nuser secret\r\n",
                                    b"\r\n") == b"STORED\r\n"
                assert exchange(sock, b"set a 0 0 1\r\nx\r\nget a\r\n", b"END\r\n") == (
                    b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n")


def daemon_life(command, tmp_path, name: str) -> tuple:
    """Start ``command -d -P <file>`` (the file exists, empty, as mkstemp leaves it), and follow
    the daemon: parent's exit, pid file, its stats pid, and the pid file after SIGTERM."""
    port = free_port()
    pid_path = tmp_path / (name + ".pid")
    pid_path.write_text("")
    parent = subprocess.run(command + ["-d", "-P", str(pid_path), "-p", str(port), "-U", "0",
                                       "-l", HOST], timeout=30)
    deadline = time.time() + 15
    while not pid_path.read_text() and time.time() < deadline:
        time.sleep(0.05)
    written = pid_path.read_text()
    pid = int(written)
    with socket.create_connection((HOST, port), timeout=5) as sock:
        reported = exchange(sock, b"stats\r\n", expect_end=b"END\r\n").split(b"\r\n")[0]
    os.kill(pid, signal.SIGTERM)
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    time.sleep(0.2)
    return (parent.returncode, written == "%d\n" % pid, reported == b"STAT pid %d" % pid,
            pid_path.exists())


@pytest.mark.skipif(shutil.which("memcached") is None, reason="memcached not installed")
def test_daemonizes_as_memcached(tmp_path):
    memcached = [shutil.which("memcached")] + (["-u", "root"] if os.geteuid() == 0 else [])
    theirs = daemon_life(memcached, tmp_path, "memcached")
    ours = daemon_life([sys.executable, "-m", "pymcd"], tmp_path, "pymcd")
    assert theirs == (0, True, True, False)
    assert ours == theirs


def test_help_does_not_claim_extstore():
    """memcached's test suite (and other tools) take "ext_path" in -h for an extstore build."""
    assert "ext_path" not in run_cli("-h").stdout
