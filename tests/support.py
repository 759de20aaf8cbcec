"""Starting real servers for tests: pymcd (as a subprocess) and Debian's memcached.

Tests talk to these over real sockets; nothing about the network or the store is mocked.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

HOST = "127.0.0.1"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """An ephemeral port that is free for both TCP and UDP right now."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((HOST, 0))
            port = tcp.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind((HOST, port))
            except OSError:
                continue
            return port


def wait_for_port(port: int, host: str = HOST, timeout: float = 15.0, process=None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError("server exited with %s" % process.returncode)
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listening on %s:%d after %.0fs" % (host, port, timeout))


class ServerProcess:
    """A server started as a subprocess on an ephemeral port; use as a context manager."""

    def __init__(self, command: List[str], port: int, env: Optional[dict] = None,
                 wait: bool = True) -> None:
        self.port = port
        self.command = command
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        if wait:
            try:
                wait_for_port(port, process=self.process)
            except RuntimeError:
                out, err = self.stop()
                raise RuntimeError("%s failed to start: %s" % (command, err.decode(errors="replace")))

    @property
    def address(self) -> tuple:
        return (HOST, self.port)

    def connect(self, timeout: float = 5.0) -> socket.socket:
        return socket.create_connection(self.address, timeout=timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0):
        """Stop the server; returns its (stdout, stderr)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
        return out, err

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_pymcd(args: Sequence[str] = (), port: Optional[int] = None, env: Optional[dict] = None,
                wait: bool = True) -> ServerProcess:
    """``python -m pymcd -p PORT -U 0 -l 127.0.0.1 ARGS`` (memcached's flags)."""
    port = port or free_port()
    command = [sys.executable, "-m", "pymcd", "-p", str(port), "-U", "0", "-l", HOST] + list(args)
    full_env = dict(os.environ, **(env or {}))
    return ServerProcess(command, port, env=full_env, wait=wait)


def start_memcached(args: Sequence[str] = (), port: Optional[int] = None,
                    env: Optional[dict] = None, wait: bool = True) -> ServerProcess:
    """Debian's memcached with the same flags, for side-by-side comparisons."""
    binary = shutil.which("memcached")
    if binary is None:
        raise RuntimeError("memcached is not installed")
    port = port or free_port()
    command = [binary, "-p", str(port), "-U", "0", "-l", HOST] + list(args)
    if os.geteuid() == 0:
        command += ["-u", "root"]
    return ServerProcess(command, port, env=dict(os.environ, **(env or {})), wait=wait)


def have_memcached() -> bool:
    return shutil.which("memcached") is not None


def exchange(sock: socket.socket, data: bytes, expect_end: Optional[bytes] = None,
             timeout: float = 2.0, settle: float = 0.15) -> bytes:
    """Send ``data`` and read until ``expect_end`` ends the reply, or until the line is quiet."""
    if data:
        sock.sendall(data)
    sock.settimeout(timeout if expect_end else settle)
    received = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            if expect_end is None:
                break
            continue
        if not chunk:
            break
        received += chunk
        if expect_end is not None and received.endswith(expect_end):
            break
    return received


def stats(sock: socket.socket, section: bytes = b"") -> Dict[str, str]:
    """``stats [section]`` as a dict of names to values."""
    request = b"stats " + section + b"\r\n" if section else b"stats\r\n"
    reply = exchange(sock, request, expect_end=b"END\r\n", timeout=5.0)
    return {
        line.split(b" ")[1].decode(): line.split(b" ", 2)[2].decode()
        for line in reply.split(b"\r\n") if line.startswith(b"STAT ")
    }
