"""``-d`` and ``-P`` as memcached does them: fork into the background before any socket or
reactor exists, and write the pid file once listening.

memcached's daemonize: the parent exits at once, the child starts a session, moves to ``/``
(unless ``-r``, to keep core dumps where they were) and, unless verbose, points stdin, stdout and
stderr at /dev/null. The pid file is written (through a temporary name and a rename) whenever -P
is given, and removed on exit only by a daemon.
"""

from __future__ import annotations

import os
import sys


def daemonize(change_directory: bool, keep_stdio: bool) -> None:
    if os.fork():
        os._exit(0)
    os.setsid()
    if change_directory:
        os.chdir("/")
    if not keep_stdio:
        sys.stdout.flush()
        sys.stderr.flush()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        if null > 2:
            os.close(null)


def save_pid(path: str) -> None:
    """Write this process's pid, warning (as memcached) if the file names a running process."""
    try:
        with open(path) as existing:
            previous = existing.readline().strip()
        if previous.isdigit():
            os.kill(int(previous), 0)
            sys.stderr.write("WARNING: The pid file contained the following (running) pid: %s\n"
                             % previous)
    except (OSError, ValueError):
        pass
    temporary = path + ".tmp"
    try:
        with open(temporary, "w") as pid_file:
            pid_file.write("%d\n" % os.getpid())
        os.rename(temporary, path)
    except OSError as error:
        sys.stderr.write("Could not write the pid file %s: %s\n" % (path, error.strerror))


def remove_pid(path: str) -> None:
    try:
        os.unlink(path)
    except OSError as error:
        sys.stderr.write("Could not remove the pid file %s: %s\n" % (path, error.strerror))
