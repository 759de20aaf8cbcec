"""Property tests of the sans-IO machines: any bytes, cut into reads anywhere, give replies or a
close, never an exception, and the same replies however they are cut.

A connection is driven as the stream layer drives it: after every read (and every yield) the
replies are taken, a close drops the replies memcached would not have written yet, and nothing
is read after a close. One exception to "the same replies however cut" is memcached's own:
closing at once (conn_closing) drops the replies of the read in progress, so where the input
makes the server hang up, the replies of the whole input in one read must be a prefix of those
of the cut input, and both must close.
"""

from __future__ import annotations

import struct
from typing import List, Tuple

from hypothesis import HealthCheck, given, settings, strategies as st

from machines import Clock
from pymcd.commands.registry import CommandRegistry
from pymcd.context import ServerContext
from pymcd.protocol.binary import BinaryMachine
from pymcd.protocol.text import TextMachine
from pymcd.protocol.udp import HEADER as UDP_HEADER, answer
from pymcd.settings import Settings
from pymcd.store import Store

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TEXT_LINES = [
    b"set k 0 0 3\r\nabc\r\n", b"set k 5 0 1 noreply\r\nx\r\n", b"get k\r\n", b"gets k j\r\n",
    b"add j 0 0 2\r\nzz\r\n", b"append k 0 0 1\r\n!\r\n", b"prepend k 0 0 1\r\n<\r\n",
    b"cas k 0 0 1 1\r\ny\r\n", b"incr n 5\r\n", b"set n 0 0 2\r\n10\r\n", b"decr n 1\r\n",
    b"delete k\r\n", b"touch k 10\r\n", b"gat 10 k\r\n", b"flush_all\r\n", b"version\r\n",
    b"verbosity 1\r\n", b"stats slabs\r\n", b"quit\r\n", b"mn\r\n",
    b"mg k v f t c k s\r\n", b"ms k 2 T0 F3\r\nhi\r\n", b"ms k S2 I\r\nhi\r\n", b"md k q\r\n",
    b"ma n D3\r\n", b"ma n N0 J4\r\n", b"me k\r\n", b"mg k O123 q\r\n", b"set k 0 0 x\r\n",
    b"set k 0 0 5\r\nabc\r\n", b"get " + b"k" * 251 + b"\r\n", b"GET / HTTP/1.1\r\n",
    b"bogus\r\n", b"\r\n", b" \r\n", b"set k 0 0 4294967297\r\nab\r\n", b"ms k 4\r\n",
    b"lru_crawler metadump all\r\n", b"cache_memlimit 10\r\n",
]

BINARY_OPCODES = list(range(0x00, 0x25)) + [0x55, 0xFF]
# Discovering the command plugins takes a while: once for every example.
COMMANDS = CommandRegistry.discover()


def new_server(**overrides) -> ServerContext:
    """A fresh store and context per run, so that both runs of an input start alike."""
    settings = Settings(**overrides)
    return ServerContext(settings, Store(settings.store, clock=Clock()), COMMANDS)


@st.composite
def text_input(draw) -> bytes:
    parts = draw(st.lists(st.one_of(st.sampled_from(TEXT_LINES), st.binary(max_size=30)),
                          max_size=16))
    return b"".join(parts)[:1800]  # memcached's 2 KiB line rule depends on read sizes


@st.composite
def binary_packet(draw) -> bytes:
    key = draw(st.sampled_from([b"", b"k", b"n", b"x" * 251]))
    extras = draw(st.sampled_from([b"", b"\0" * 4, b"\0" * 8, struct.pack(">QQI", 1, 0, 0)]))
    value = draw(st.binary(max_size=12))
    bodylen = len(key) + len(extras) + len(value)
    bodylen = draw(st.one_of(st.just(bodylen), st.integers(0, 300)))
    magic = draw(st.sampled_from([0x80, 0x80, 0x80, 0x81, 0x00]))
    opcode = draw(st.sampled_from(BINARY_OPCODES))
    header = struct.pack(">BBHBBHIIQ", magic, opcode, len(key), len(extras), 0, 0, bodylen,
                         draw(st.integers(0, 2**32 - 1)), draw(st.sampled_from([0, 1, 2])))
    return header + extras + key + value


@st.composite
def binary_input(draw) -> bytes:
    parts = draw(st.lists(st.one_of(binary_packet(), st.binary(max_size=30)), max_size=10))
    return b"".join(parts)


def cuts(data: bytes, points: List[int]) -> List[bytes]:
    edges = sorted({min(point, len(data)) for point in points} | {0, len(data)})
    return [data[a:b] for a, b in zip(edges, edges[1:])] or [b""]


def drive(reads: List[bytes], binary: bool = False, **settings) -> Tuple[bytes, bool]:
    """(everything written, whether the server hung up) for ``reads`` on a new connection."""
    server = new_server(**settings)
    session = server.open_session()
    if binary:
        machine = BinaryMachine(session, server.commands.binary_dispatch)
    else:
        machine = TextMachine(session, server.commands.text_dispatch)
    written = []
    for data in reads:
        more = True
        while more:
            more = machine.receive(data)
            data = b""
            if session.close_now:
                del session.out[session.flushed:]
            written.append(session.take_output())
            if session.close_now or session.close_after_write:
                return b"".join(written), True
    return b"".join(written), False


# Requests whose replies depend on what is stacked unwritten, so on where writes fell, as in
# memcached: a multi-get with a key over 250 bytes drops the stacked replies, and metadump
# refuses to run behind them.
WRITE_DEPENDENT = (b"k" * 251, b"metadump")


def same_however_cut(data: bytes, whole: Tuple[bytes, bool], cut: Tuple[bytes, bool],
                     yielding: bool = False) -> None:
    """A close drops the replies stacked since the last write. Without yields, a cut input is
    written at least wherever the whole one is, so it loses no more; with yields (``-R``) the
    writes fall where each run's request budget ran out, so either may have lost more, but
    what both wrote is the same."""
    (whole_out, whole_closed), (cut_out, cut_closed) = whole, cut
    assert whole_closed == cut_closed
    if any(marker in data for marker in WRITE_DEPENDENT):
        return
    if not whole_closed:
        assert whole_out == cut_out
    elif yielding:
        assert cut_out.startswith(whole_out) or whole_out.startswith(cut_out)
    else:
        assert cut_out.startswith(whole_out)


@FUZZ
@given(text_input(), st.lists(st.integers(0, 2000), max_size=8))
def test_text_machine(data, points):
    same_however_cut(data, drive([data]), drive(cuts(data, points)))


@FUZZ
@given(text_input(), st.lists(st.integers(0, 2000), max_size=8), st.sampled_from([1, 3, 20]))
def test_text_machine_yielding(data, points, requests_per_event):
    """With any -R, yielding changes when replies are written, never what they are."""
    same_however_cut(data, drive([data], reqs_per_event=requests_per_event),
                     drive(cuts(data, points), reqs_per_event=requests_per_event), yielding=True)


@FUZZ
@given(binary_input(), st.lists(st.integers(0, 600), max_size=8))
def test_binary_machine(data, points):
    same_however_cut(data, drive([data], binary=True), drive(cuts(data, points), binary=True))


@FUZZ
@given(st.lists(st.one_of(st.sampled_from([b"set a 0 0 9\r\n", b"user pass\r\n",
                                           b"set a 0 0 3\r\n", b"abc\r\n", b"get k\r\n"]),
                          st.binary(max_size=20)), max_size=8),
       st.lists(st.integers(0, 300), max_size=6))
def test_ascii_auth_handshake(tmp_path_factory, parts, points):
    """-Y: replies depend on how reads are cut (memcached answers only the last handshake
    reply of a read), so only: no exception, and nothing but handshake replies before auth."""
    users = tmp_path_factory.getbasetemp() / "fuzz-users"
    users.write_text("user:pass\n")
    data = b"".join(parts)
    out, _ = drive(cuts(data, points), auth_file=str(users))
    if b"STORED" not in out:
        assert set(out.split(b"\r\n")) <= {
            b"", b"CLIENT_ERROR unauthenticated", b"CLIENT_ERROR authentication failure",
            b"CLIENT_ERROR bad command line termination",
            b"CLIENT_ERROR bad authentication token format"}


@FUZZ
@given(st.one_of(st.binary(max_size=100),
                 st.builds(lambda header, payload: header + payload,
                           st.builds(UDP_HEADER.pack, st.integers(0, 65535), st.integers(0, 2),
                                     st.integers(0, 2), st.integers(0, 65535)),
                           st.one_of(text_input(), binary_input()))))
def test_udp_datagrams(datagram):
    """A datagram is dropped or answered by whole frames, each with the request's id."""
    session = new_server().open_session(udp=True, counted=False)
    frames = answer(session, datagram)
    if frames is None:
        assert len(datagram) <= UDP_HEADER.size
        return
    request_id = UDP_HEADER.unpack_from(datagram)[0]
    for number, frame in enumerate(frames):
        assert UDP_HEADER.unpack_from(frame)[:3] == (request_id, number, len(frames))
    # The next datagram starts afresh whatever this one left half done.
    again = answer(session, UDP_HEADER.pack(7, 0, 1, 0) + b"version\r\n")
    assert again == [UDP_HEADER.pack(7, 0, 1, 0) + b"VERSION 1.6.18\r\n"]
