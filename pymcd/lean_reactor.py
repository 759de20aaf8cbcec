"""The reactor pymcd runs on (server and pymcd-slap): Twisted's epoll reactor without per-event
logging contexts.

Twisted's ``doPoll`` wraps every readiness event in ``log.callWithLogger`` (a logging context
for the selectable, for the legacy ``twisted.python.log`` prefixes). A cache server and a load
generator handle one event per request and log through ``twisted.logger`` namespaces, which
need no such context; the wrapper cost a fifth of pymcd-slap's time at 80k ops/s (cProfile) and
pymcd serves about 30% more memaslap requests per second without it (bench/throughput.py).
Plain read events also skip ``_doReadOrWrite``'s generic checks; whatever a protocol raises is
still logged (through twisted.python.log, as the stock reactor does) and disconnects it.

Its TCP and UNIX listeners write without Twisted's buffer: Twisted's ``transport.write``
buffers every reply and registers the socket for writability, so each reply costs two
``epoll_ctl`` calls and one more trip round the loop before ``send`` (py-spy under memaslap: the
registering was 16% of pymcd's samples, the write events' dispatch another 10%). With nothing
queued, the lean transports ``send`` themselves and only buffer what the kernel did not take.
On CPython they send when all the events of one poll have run, not while the next
connection's request waits: a reply sent at once wakes a client that went to sleep waiting for
it, and on these machines each wake-up costs the sender microseconds of kernel time (an
interprocessor interrupt). memaslap slept 0.34-0.40 times per request with pymcd sending at
once and 0.05 with memcached; with the replies of a poll sent together, 0.04-0.05 with pymcd
too, and pymcd served 1.16x the requests per second (bench/throughput.py --twins against the
tree sending at once, 10 pairs, 95% interval 1.14-1.18).

Its UDP ports answer without Twisted's per-write address checks (see ``LeanUDPPort.write``),
and also once the poll's events have run (without that, UDP served 0.78x the requests of TCP
at the same moments; with it, 0.93x).
"""

from __future__ import annotations

import errno
import sys
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

if TYPE_CHECKING:  # pragma: no cover
    from pymcd.settings import Settings

# A full send buffer, no kernel memory, or an ICMP refusal reported on a later send.
DROPPABLE_SEND_ERRORS = (errno.EAGAIN, errno.ENOBUFS, errno.ECONNREFUSED)
# Whether a poll's replies wait for its other events (see the module's docstring): on CPython.
# pymcd on PyPy keeps up with memaslap (which slept 0.06-0.08 times per request with replies
# sent at once), and there the batching cost more than it saved: 0.974x the requests per
# second (bench/throughput.py --twins against the tree sending at once, 8 pairs, 95% interval
# 0.952-0.996).
BATCHES_REPLIES = not hasattr(sys, "pypy_version_info")


def install_server_reactor(settings: "Settings") -> None:
    """The server's reactor, chosen before anything imports one, by both entry points: the lean
    one unless ``--stock-reactor`` (under twistd, unless ``--reactor`` chose one: this then does
    nothing), and no pyOpenSSL at all when no listener needs TLS (Twisted treats it as
    optional; it and cryptography cost about 12 MiB of RSS)."""
    from pymcd.options import serves_plain_only

    if serves_plain_only(settings):
        sys.modules.setdefault("OpenSSL", None)
    if not settings.stock_reactor:
        install()


def install() -> None:
    """Install the lean reactor unless a reactor is already in use (tests, other programs).

    ``twistd --reactor pymcd-epoll`` calls this through the reactor plugin in
    ``twisted/plugins/pymcd_plugin.py``."""
    if "twisted.internet.reactor" in sys.modules:
        return
    try:
        from twisted.internet.epollreactor import EPollReactor
    except ImportError:  # not Linux: Twisted's default reactor
        return
    from select import EPOLLIN

    from twisted.internet import main, tcp, udp, unix
    from twisted.internet.main import installReactor
    from twisted.python import log

    # What the transports wrote while the reactor ran one poll's events, by transport, for
    # LeanEPollReactor.doPoll to send when they have all run; None outside that loop.
    poll_replies: Optional[Dict[tcp.Server, List[bytes]]] = None
    # And what UDP ports wrote meanwhile: (port, datagram, address), in order.
    poll_datagrams: List[Tuple[udp.Port, bytes, tuple]] = []

    def write_eagerly(transport: tcp.Server, data: bytes) -> None:
        """Send with nothing queued ahead: once the poll's events have run, or now when
        written outside them (timers)."""
        replies = poll_replies
        if replies is None:
            send_now(transport, data)
        elif transport in replies:
            replies[transport].append(data)
        elif (transport.connected and not transport.dataBuffer and not transport._tempDataBuffer
                and not transport._writeDisconnected and not transport.disconnecting
                and not transport.TLS):
            # send_now's test, written out: as a function both call, it cost 1.7% of the
            # requests per second (twins, 10 pairs, 95% interval 0.978-0.989). What Twisted
            # buffers already goes first, and a transport it is closing sends through it.
            replies[transport] = [data]
        else:
            tcp.Server.write(transport, data)

    def send_now(transport: tcp.Server, data: bytes) -> None:
        """``send`` now when nothing is queued; let Twisted buffer (and report errors on its
        next write attempt) whatever the socket does not take. A connection that started TLS
        on itself (``startTLS``) writes as Twisted's does."""
        if (transport.connected and not transport.dataBuffer and not transport._tempDataBuffer
                and not transport._writeDisconnected and not transport.disconnecting
                and not transport.TLS):
            try:
                sent = transport.socket.send(data)
            except OSError:
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        tcp.Server.write(transport, data)

    def shared_buffer_reader():
        """PyPy: a ``doRead`` that ``recv``s into one buffer every connection shares, and copies
        out what came.

        PyPy's ``recv`` allocates a buffer of the whole read size for every call, 64 KiB of
        its 1 MiB nursery for a 100-byte request, so under memaslap a minor collection ran
        every 15 requests (PYPYLOG: 60,504 in about 900,000). Reading into one buffer, pymcd
        on PyPy served 1.29x the requests per second of the same server reading Twisted's
        way at the same share of a core (bench/throughput.py --twins, 20 pairs, 95% interval
        1.26-1.32). CPython's ``recv`` only shrinks its buffer, and gained nothing (0.995), so
        it neither reads this way nor holds the buffer."""
        buffer = bytearray(tcp.Server.bufferSize)
        view = memoryview(buffer)

        def read_into_shared_buffer(transport: tcp.Server):
            try:
                count = transport.socket.recv_into(buffer)
            except OSError as error:
                if error.args[0] == errno.EWOULDBLOCK:
                    return None
                return main.CONNECTION_LOST
            return transport._dataReceived(view[:count].tobytes())

        return read_into_shared_buffer

    class EagerTCPServer(tcp.Server):
        write = write_eagerly
        if hasattr(sys, "pypy_version_info"):
            doRead = shared_buffer_reader()

    class EagerTCPPort(tcp.Port):
        transport = EagerTCPServer

    class EagerUNIXServer(unix.Server):
        write = write_eagerly

    class EagerUNIXPort(unix.Port):
        transport = EagerUNIXServer

    class LeanUDPPort(udp.Port):
        def write(self, datagram: bytes, addr: Optional[tuple] = None) -> None:
            """``sendto`` at once for an unconnected port: Twisted first checks the address
            is a literal IPv4 or IPv6 one (two inet_pton calls, one of them failing with an
            exception, for every reply), and a server only answers addresses ``recvfrom``
            gave it. A datagram the socket cannot take now is dropped, as UDP may, rather
            than raised into the protocol."""
            if self._connectedAddr or addr is None:
                return udp.Port.write(self, datagram, addr)
            if poll_replies is None:
                self.send_datagram(datagram, addr)
            else:
                # Sent with the poll's other replies (see write_eagerly).
                poll_datagrams.append((self, datagram, addr))

        def send_datagram(self, datagram: bytes, addr: tuple) -> None:
            try:
                self.socket.sendto(datagram, addr)
            except OSError as error:
                if error.args[0] not in DROPPABLE_SEND_ERRORS:
                    raise

    class LeanEPollReactor(EPollReactor):
        def doPoll(self, timeout: Optional[float]) -> None:
            try:
                events = self._poller.poll(-1 if timeout is None else timeout,
                                           len(self._selectables))
            except OSError as error:
                if error.errno == errno.EINTR:
                    return
                raise
            nonlocal poll_replies
            selectables = self._selectables
            handle = self._doReadOrWrite
            replies = poll_replies = {} if BATCHES_REPLIES else None
            for fd, event in events:
                selectable = selectables.get(fd)
                if selectable is None:
                    continue
                if event != EPOLLIN:
                    handle(selectable, fd, event)
                    continue
                # A plain read, the event of nearly every reply: what _doReadOrWrite does
                # for it, without its checks for hang-ups, writes and a closed descriptor.
                try:
                    why = selectable.doRead()
                except BaseException:
                    why = sys.exc_info()[1]
                    log.err()
                if why:
                    # What it wrote before it failed goes out before it closes, as at once.
                    written = replies.pop(selectable, None) if replies else None
                    if written:
                        send_now(selectable, b"".join(written))
                    self._disconnectSelectable(selectable, why, True)
            if replies is None:
                return
            poll_replies = None
            for transport, written in replies.items():
                send_now(transport, written[0] if len(written) == 1 else b"".join(written))
            if poll_datagrams:
                for port, datagram, addr in poll_datagrams:
                    if port.connected:  # still listening
                        try:
                            port.send_datagram(datagram, addr)
                        except OSError:
                            log.err()
                del poll_datagrams[:]

        # EPollReactor binds its iteration to its own doPoll at class creation.
        doIteration = doPoll

        def listenTCP(self, port, factory, backlog=50, interface=""):
            listening = EagerTCPPort(port, factory, backlog, interface, self)
            listening.startListening()
            return listening

        def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
            listening = LeanUDPPort(port, protocol, interface, maxPacketSize, self)
            listening.startListening()
            return listening

        def listenUNIX(self, address, factory, backlog=50, mode=0o666, wantPID=0):
            listening = EagerUNIXPort(address, factory, backlog, mode, self, wantPID)
            listening.startListening()
            return listening

    installReactor(LeanEPollReactor())
