"""memcached's connection-state trace (-vvv): ``N: going from conn_X to conn_Y``.

pymcd does not need memcached's state machine to serve requests, but operators read these
traces, so at -vvv the protocol machine reports what it does as the transitions memcached 1.6.18
would print for the same conversation (checked line for line against it). Below -vvv none of
this runs.
"""

from __future__ import annotations

from pymcd.session import Session


class StateTrace:
    """Turns a machine's events into memcached's state transitions for one connection."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.unflushed = False

    def go(self, state: str) -> None:
        session = self.session
        session.server.trace(
            "%d: going from %s to %s" % (session.conn_id, session.state, state)
        )
        session.state = state

    def data_arrived(self) -> None:
        if self.session.state == "conn_waiting":
            self.go("conn_read")
            self.go("conn_parse_cmd")

    def line(self) -> None:
        if self.session.state in ("conn_new_cmd", "conn_read"):
            self.go("conn_parse_cmd")

    def after_command(self, writes_at_once: bool, awaits_value: bool) -> None:
        """A get-like command goes straight to conn_mwrite; a storage line to conn_nread."""
        if awaits_value:
            self.go("conn_nread")
        elif writes_at_once:
            self.go("conn_mwrite")
            self.go("conn_new_cmd")
            self.unflushed = False
        else:
            self.go("conn_new_cmd")
            self.unflushed = True

    def after_value(self) -> None:
        self.go("conn_new_cmd")
        self.unflushed = True

    def batch_done(self) -> None:
        """No complete request left: flush what is queued and wait for the socket."""
        if self.session.state != "conn_new_cmd":
            return
        if self.unflushed:
            self.go("conn_mwrite")
            self.go("conn_new_cmd")
            self.unflushed = False
        self.go("conn_waiting")

    def closed(self) -> None:
        """The client hung up while the connection waited for it."""
        if self.session.state == "conn_waiting":
            self.go("conn_read")
        self.go("conn_closing")
        self.session.server.trace("<%d connection closed." % self.session.conn_id)
        self.go("conn_closed")

    def connected(self) -> None:
        self.session.state = "conn_new_cmd"
        self.go("conn_waiting")
