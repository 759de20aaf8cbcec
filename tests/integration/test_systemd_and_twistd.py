"""Running pymcd as operators do: socket activation as systemd hands sockets over, and twistd's
own --pidfile, --logfile, --syslog and --umask."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import HOST, exchange, free_port, wait_for_port

# The twistd script beside this interpreter (the virtualenv's), else the one on PATH.
TWISTD = [str(Path(sys.executable).with_name("twistd")) if Path(sys.executable).with_name(
    "twistd").exists() else shutil.which("twistd") or "twistd"]


def activated(command, listener: socket.socket, **popen) -> subprocess.Popen:
    """Start ``command`` the way systemd starts a socket-activated service: the listening socket
    is descriptor 3, LISTEN_FDS/LISTEN_FDNAMES say so, LISTEN_PID names the process itself
    (set by the shell that then execs the command, so the pid is the same)."""
    fd = listener.fileno()

    def as_descriptor_3() -> None:
        if fd != 3:
            os.dup2(fd, 3)
        else:
            os.set_inheritable(3, True)

    script = 'LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=pymcd.socket exec "$@"'
    return subprocess.Popen(["sh", "-c", script, "sh"] + list(command),
                            preexec_fn=as_descriptor_3, close_fds=False,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


@pytest.mark.parametrize("entry_point", ["pymcd", "twistd"])
def test_socket_activation_serves_on_the_inherited_socket(entry_point):
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    options = ["-U", "0", "--port", "systemd:domain=INET:index=0"]
    command = ([sys.executable, "-m", "pymcd"] + options if entry_point == "pymcd"
               else TWISTD + ["-n", "--pidfile=", "pymcd"] + options)
    server = activated(command, listener)
    # The service owns the socket now; a client connecting before it is ready just waits in
    # the backlog, as under systemd.
    listener.close()
    try:
        with socket.create_connection((HOST, port), timeout=15) as client:
            assert exchange(client, b"set k 0 0 2\r\nhi\r\nget k\r\n", b"END\r\n", timeout=15) \
                == b"STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\n"
        assert server.poll() is None
    finally:
        server.terminate()
        out, err = server.communicate(timeout=15)
    # twistd ends itself with the signal it was stopped by, once the reactor has stopped.
    assert server.returncode == (0 if entry_point == "pymcd" else -signal.SIGTERM), err.decode()


def test_without_listen_fds_the_systemd_endpoint_refuses_to_start():
    server = subprocess.run([sys.executable, "-m", "pymcd", "-U", "0", "--port",
                             "systemd:domain=INET:index=0"], capture_output=True, timeout=30,
                            env={k: v for k, v in os.environ.items() if not k.startswith("LISTEN")})
    assert server.returncode != 0


def _wait_gone(pid: int, timeout: float = 15.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError("pid %d still running" % pid)


def test_twistd_daemon_pidfile_logfile_and_umask(tmp_path: Path):
    port = free_port()
    pidfile, logfile = tmp_path / "pymcd.pid", tmp_path / "pymcd.log"
    subprocess.run(TWISTD + ["--pidfile", str(pidfile), "--logfile", str(logfile),
                             "--umask", "027", "pymcd", "-p", str(port), "-U", "0",
                             "-l", HOST], check=True, timeout=30, cwd=tmp_path)
    wait_for_port(port)
    pid = int(pidfile.read_text())
    try:
        assert pid != os.getpid()
        # --umask applies to what the daemon creates: its pidfile is rw-r----- under 027.
        assert stat.S_IMODE(pidfile.stat().st_mode) == 0o640
        with socket.create_connection((HOST, port)) as client:
            assert exchange(client, b"version\r\n", b"\r\n") == b"VERSION 1.6.18\r\n"
        assert "reactor class" in logfile.read_text()
    finally:
        os.kill(pid, signal.SIGTERM)
    _wait_gone(pid)
    assert not pidfile.exists()  # twistd removes its pidfile on a clean stop
    assert "Main loop terminated." in logfile.read_text()


def test_twistd_syslog_replaces_the_logfile(tmp_path: Path):
    port = free_port()
    server = subprocess.Popen(TWISTD + ["-n", "--pidfile=", "--syslog", "--prefix", "pymcd", "pymcd", "-p",
                                        str(port), "-U", "0", "-l", HOST],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, process=server)
        with socket.create_connection((HOST, port)) as client:
            assert exchange(client, b"version\r\n", b"\r\n") == b"VERSION 1.6.18\r\n"
    finally:
        server.terminate()
        out, err = server.communicate(timeout=15)
    assert server.returncode == -signal.SIGTERM, err.decode()
    # Log lines went to syslog: none to stdout and no twistd.log in the working directory.
    assert out == b"" and not (tmp_path / "twistd.log").exists()
