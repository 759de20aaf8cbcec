"""Start-up mistakes: one exception type, said in one line by both entry points.

memcached answers a port in use, a missing certificate or a bad flag with one line on stderr and
a non-zero exit. Anything that can stop pymcd before it serves (the command line, TLS files,
endpoint strings, listening, a memory file, a proxy config) raises :class:`StartupError` with
that line; the ``pymcd`` script prints it, and under twistd :func:`report_under_twistd` makes
sure it is printed (or logged, when daemonized) instead of a traceback. This module imports
nothing of Twisted so that any layer can raise into it.
"""

from __future__ import annotations

import sys

EX_USAGE = 64
EX_OSERR = 71


class StartupError(Exception):
    """The server cannot start: ``str(error)`` is the one line to show, ``exit_code`` the status."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def listen_failure(where: str, socket_error: object) -> StartupError:
    """memcached's words when a listening socket cannot be had: ``failed to listen on <where>:
    <reason>`` (``TCP port 11211``, ``one of interface(s) ...``, ``UNIX socket: <path>``), and
    its exit status, EX_OSERR."""
    reason = getattr(socket_error, "strerror", None) or str(socket_error)
    return StartupError("failed to listen on %s: %s" % (where, reason), EX_OSERR)


def report_under_twistd() -> None:
    """Have an uncaught StartupError end ``twistd pymcd`` with its line, not a traceback.

    twistd listens after it has daemonized and lets what the service raises propagate out of
    its main function. Under ``-n`` the line goes to the real stderr (twistd redirects
    ``sys.stderr`` into its log); a daemon's stderr is /dev/null, and its parent shows twistd's
    own "An error has occurred" with the same text and points at the log file, where the
    service has logged the line. Other exceptions keep Python's traceback: they are bugs, not
    mistakes of the user's.
    """
    previous = sys.excepthook

    def hook(kind, error, traceback) -> None:
        if not isinstance(error, StartupError):
            previous(kind, error, traceback)
            return
        stderr = sys.__stderr__ or sys.stderr
        stderr.write(str(error) + "\n")
        stderr.flush()

    sys.excepthook = hook


def raise_file_limit(maxconns: int) -> None:
    """Let the process hold ``-c`` connections, or fail in memcached's words.

    memcached sets RLIMIT_NOFILE to -c at start-up and exits when it may not; pymcd only
    raises the limit (a lower one would refuse descriptors Python itself holds).
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or maxconns <= soft:
        return
    try:
        new_hard = hard if hard == resource.RLIM_INFINITY or hard >= maxconns else maxconns
        resource.setrlimit(resource.RLIMIT_NOFILE, (maxconns, new_hard))
    except (OSError, ValueError):
        raise StartupError("failed to set rlimit for open files. Try starting as root or "
                           "requesting smaller maxconns value.", EX_OSERR) from None
