"""``pymcd-watch``: tail a server's ``watch`` stream from a terminal or a script.

It works against pymcd and memcached alike (it only speaks the text protocol): it connects,
authenticates with the ``-Y`` handshake when given a user, sends ``watch <types>`` and prints
every event line. For people it colours lines by event type on a terminal; for programs
``--json`` prints one JSON object per event. ``--grep`` keeps the events whose key matches a
regular expression. When the server goes away the tool reconnects and watches again, so it can
be left running across restarts; Ctrl-C prints a one-line summary of what was seen.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from typing import IO, Dict, List, Optional, Union
from urllib.parse import unquote_to_bytes

from twisted.internet import protocol
from twisted.protocols.basic import LineOnlyReceiver

EVENT_COLOURS = {
    "item_get": "32",      # green
    "item_store": "33",    # yellow
    "eviction": "31",      # red
    "conn_new": "36",      # cyan
    "conn_close": "35",    # magenta
    "skipped": "1;31",     # bold red
}
INTEGER_FIELDS = {"gid", "clsid", "cfd", "size", "ttl", "la", "rport", "skipped"}

Event = Dict[str, Union[str, int, float]]


def parse_event(line: str) -> Event:
    """A watch line as a dict: ``ts`` in seconds, counts as ints, ``key`` percent-decoded.

    ``skipped=N`` (lines the server dropped for us) becomes ``{"type": "skipped", ...}``.
    """
    event: Event = {}
    for field in line.split(" "):
        name, equals, value = field.partition("=")
        if not equals:
            continue
        if name == "ts":
            # The microseconds are printed unpadded: "5.2411" means 5.002411.
            seconds, _, micros = value.partition(".")
            event[name] = int(seconds) + int(micros or 0) / 1e6
        elif name == "key":
            event[name] = unquote_to_bytes(value).decode("utf-8", "backslashreplace")
        elif name in INTEGER_FIELDS and value.lstrip("-").isdigit():
            event[name] = int(value)
        else:
            event[name] = value
    if "skipped" in event:
        event["type"] = "skipped"
    return event


class EventPrinter:
    """Filters and prints events, and counts them for the summary."""

    def __init__(self, out: IO[str], as_json: bool, key_pattern: Optional[str],
                 colour: bool) -> None:
        self.out = out
        self.as_json = as_json
        self.key_pattern = re.compile(key_pattern) if key_pattern else None
        self.colour = colour
        self.counts: Counter = Counter()
        self.started = time.time()

    def line(self, text: str) -> None:
        event = parse_event(text)
        if self.key_pattern is not None and "key" in event and \
                not self.key_pattern.search(str(event["key"])):
            return
        kind = str(event.get("type", "other"))
        self.counts[kind] += 1
        if self.as_json:
            self.out.write(json.dumps(event, sort_keys=True) + "\n")
        elif self.colour and kind in EVENT_COLOURS:
            self.out.write("\x1b[%sm%s\x1b[0m\n" % (EVENT_COLOURS[kind], text))
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def summary(self) -> str:
        elapsed = max(time.time() - self.started, 1e-6)
        total = sum(self.counts.values())
        kinds = " ".join("%s=%d" % item for item in sorted(self.counts.items()))
        return "%d events in %.1fs (%.1f/s)%s" % (
            total, elapsed, total / elapsed, " " + kinds if kinds else "")


class WatchProtocol(LineOnlyReceiver):
    """Handshake (optional auth, then ``watch``), then one event per line.

    ``watch`` goes out only after the auth reply: memcached refuses a watch pipelined behind
    another command's reply.
    """

    delimiter = b"\n"
    MAX_LENGTH = 1 << 20

    def connectionMade(self) -> None:
        factory = self.factory
        factory.resetDelay()
        if factory.user is not None:
            credentials = b"%s %s" % (factory.user, factory.password)
            self.transport.write(
                b"set pymcd-watch 0 0 %d\r\n%s\r\n" % (len(credentials), credentials))
            self._expect = b"STORED"
        else:
            self._send_watch()

    def _send_watch(self) -> None:
        self.transport.write(b"watch %s\r\n" % b" ".join(self.factory.event_types))
        self._expect = b"OK"

    def lineReceived(self, line: bytes) -> None:
        line = line.rstrip(b"\r")
        expected = self._expect
        if expected is None:
            self.factory.printer.line(line.decode("latin-1"))
        elif line != expected:
            self.factory.refused(line.decode("latin-1"))
            self.transport.loseConnection()
        elif expected == b"STORED":
            self._send_watch()
        else:
            self._expect = None


class WatchClientFactory(protocol.ReconnectingClientFactory):
    """Keeps one watch connection alive across server restarts."""

    protocol = WatchProtocol
    maxDelay = 2.0
    initialDelay = 0.2

    def __init__(self, printer: EventPrinter, event_types: List[bytes],
                 user: Optional[bytes], password: Optional[bytes], reactor) -> None:
        self.printer = printer
        self.event_types = event_types
        self.user = user
        self.password = password
        self.reactor = reactor
        self.exit_code = 0

    def refused(self, reply: str) -> None:
        """The server said no (bad password, -W, unknown type): retrying cannot help."""
        sys.stderr.write("pymcd-watch: server refused: %s\n" % reply)
        self.exit_code = 1
        self.stopTrying()
        if self.reactor.running:
            self.reactor.stop()

    def clientConnectionLost(self, connector, reason) -> None:
        if self.continueTrying:
            sys.stderr.write("pymcd-watch: connection lost, reconnecting\n")
        super().clientConnectionLost(connector, reason)


def _arguments(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="pymcd-watch",
        description="Stream a memcached/pymcd server's live events (the watch command).")
    parser.add_argument("types", nargs="*", default=["fetchers"],
                        help="event types: fetchers mutations evictions connevents sysevents "
                             "rawcmds (default: fetchers)")
    parser.add_argument("--host", default="127.0.0.1")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--port", type=int, default=11211)
    target.add_argument("--unix", metavar="PATH", help="a unix socket instead of TCP")
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument("--tls-ca", metavar="FILE", help="CA certificates to verify the server")
    parser.add_argument("--tls-cert", metavar="FILE", help="client certificate (PEM, with key)")
    parser.add_argument("--user", help="authenticate as USER (servers started with -Y)")
    parser.add_argument("--password-file", metavar="FILE",
                        help="file whose first line is the password for --user")
    parser.add_argument("--json", action="store_true", help="one JSON object per event")
    parser.add_argument("--grep", metavar="KEY_PATTERN",
                        help="only events whose key matches this regular expression")
    parser.add_argument("--colour", "--color", choices=("auto", "always", "never"),
                        default="auto")
    args = parser.parse_args(argv)
    if args.user and not args.password_file:
        parser.error("--user needs --password-file")
    return args


def _read_password(path: str) -> bytes:
    with open(path, "rb") as source:
        return source.readline().rstrip(b"\r\n")


def _tls_options(args: argparse.Namespace):
    from twisted.internet import ssl

    trust = None
    if args.tls_ca:
        with open(args.tls_ca, "rb") as source:
            trust = ssl.Certificate.loadPEM(source.read())
    client = None
    if args.tls_cert:
        with open(args.tls_cert, "rb") as source:
            client = ssl.PrivateCertificate.loadPEM(source.read())
    return ssl.optionsForClientTLS(args.host, trustRoot=trust, clientCertificate=client)


def main(argv: Optional[List[str]] = None) -> int:
    args = _arguments(argv)
    from twisted.internet import reactor

    colour = args.colour == "always" or (args.colour == "auto" and sys.stdout.isatty())
    printer = EventPrinter(sys.stdout, args.json, args.grep, colour and not args.json)
    password = _read_password(args.password_file) if args.user else None
    factory = WatchClientFactory(
        printer, [name.encode() for name in args.types],
        args.user.encode() if args.user else None, password, reactor)
    if args.tls:
        from twisted.protocols.tls import TLSMemoryBIOFactory

        connect_factory = TLSMemoryBIOFactory(_tls_options(args), True, factory)
    else:
        connect_factory = factory
    if args.unix:
        reactor.connectUNIX(args.unix, connect_factory)
    else:
        reactor.connectTCP(args.host, args.port, connect_factory)

    def say_summary() -> None:
        factory.stopTrying()
        if factory.exit_code == 0:
            sys.stderr.write("pymcd-watch: %s\n" % printer.summary())

    reactor.addSystemEventTrigger("before", "shutdown", say_summary)
    reactor.run()
    return factory.exit_code


if __name__ == "__main__":
    sys.exit(main())
